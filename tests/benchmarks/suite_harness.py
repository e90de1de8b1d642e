"""Call every benchmark of the asv suite directly, as asv would, and report each outcome as JSON.

    python tests/benchmarks/suite_harness.py REPO [--twice]

For every class in ``benchmarks/bench_*.py``, every benchmark method and every
combination of ``params``: ``setup``, the method, (with ``--twice``: the method
again, without a new ``setup``, as asv's timeit loop may), ``teardown``; with
``--twice``, a ``time_`` method then gets a second sample as asv takes one
(``setup``, the method, ``teardown``, in the same process). As in
asv, benchmarks run in name order, and a class with ``setup_cache`` gets its
result as first argument: one directory for the whole run, as the suite's
classes share one ``setup_cache``.
Prints one JSON list of {"name", "params", "outcome": "ok"|"skipped"|"error",
"detail"}. Run it in a subprocess: the environment (``STARDAG_BENCH_SMOKE``,
a blocked stardag import) must be set before the suite is imported.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import os
import pkgutil
import shutil
import sys
import tempfile
import traceback

PREFIXES = ("time_", "track_", "peakmem_", "mem_", "timeraw_")


def benchmarks(package: str = "benchmarks"):
    """(qualified name, class, method name) for every benchmark, as asv discovers them."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__, f"{package}."):
        module = importlib.import_module(info.name)  # every module must import
        if not info.name.rsplit(".", 1)[1].startswith("bench_"):
            continue
        for cls_name, cls in sorted(vars(module).items()):
            if not inspect.isclass(cls) or cls.__module__ != module.__name__ or cls_name.startswith("_"):
                continue
            for attr in sorted(dir(cls)):
                if attr.startswith(PREFIXES) and callable(getattr(cls, attr)):
                    short = info.name.split(".", 1)[1]
                    yield f"{short}.{cls_name}.{attr}", cls, attr


def run_all(twice: bool) -> list[dict]:
    outcomes = []
    caches: dict[object, object] = {}
    for name, cls, attr in sorted(benchmarks(), key=lambda b: b[0]):
        params = getattr(cls, "params", [])
        combos = list(itertools.product(*params)) if params else [()]
        cache = ()
        if hasattr(cls, "setup_cache"):
            key = cls.setup_cache.__code__  # asv's key: where the function is defined
            if key not in caches:
                here = os.getcwd()
                os.chdir(tempfile.mkdtemp(prefix="suite-harness-"))
                try:
                    caches[key] = cls().setup_cache()
                finally:
                    os.chdir(here)
            cache = (caches[key],)
        for combo in combos:
            bench = cls()
            entry = {"name": name, "params": list(combo), "outcome": "ok", "detail": ""}
            args = (*cache, *combo)
            try:
                if hasattr(bench, "setup"):
                    bench.setup(*args)
            except NotImplementedError as err:
                entry.update(outcome="skipped", detail=str(err))
                outcomes.append(entry)
                continue
            except Exception:
                entry.update(outcome="error", detail=traceback.format_exc())
                outcomes.append(entry)
                continue
            try:
                for _ in range(2 if twice else 1):
                    value = getattr(bench, attr)(*args)
                    if attr.startswith("track_"):
                        entry["detail"] = value
            except Exception:
                entry.update(outcome="error", detail=traceback.format_exc())
            finally:
                if hasattr(bench, "teardown"):
                    bench.teardown(*args)
            if twice and attr.startswith("time_") and entry["outcome"] == "ok":
                second = cls()
                try:
                    second.setup(*args)
                    getattr(second, attr)(*args)
                except Exception:
                    entry.update(outcome="error", detail="second sample:\n" + traceback.format_exc())
                finally:
                    second.teardown(*args)
            outcomes.append(entry)
    for run_dir in caches.values():
        shutil.rmtree(str(run_dir), ignore_errors=True)
    return outcomes


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    print(json.dumps(run_all(twice="--twice" in sys.argv)))
