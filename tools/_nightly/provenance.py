"""What may enter the results store, and the label each result carries there.

The store is the history every report and graph is drawn from, so only
full measurements go in: never a smoke run (``STARDAG_BENCH_SMOKE``: a
hundredth of the work, numbers that mean nothing) and never ``asv run
--quick`` (one sample; the job never passes it). A job started in a smoke
environment refuses to run. Each result file the job stores gets a
``stardag_nightly`` entry (asv ignores keys it does not know): the machine,
the run, and the settings it was measured with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import asv

SMOKE_VAR = "STARDAG_BENCH_SMOKE"  # benchmarks/common.py
ROOT_VAR = "STARDAG_BENCH_ROOT"
LABEL = "stardag_nightly"


class UncleanEnvironment(ValueError):
    """The job was asked to measure in a way whose results must not be kept."""


def refuse_unclean(raw_config: dict) -> None:
    """Raise UncleanEnvironment if benchmarks would run as a smoke run."""
    if os.environ.get(SMOKE_VAR, "") not in ("", "0"):
        raise UncleanEnvironment(
            f"${SMOKE_VAR}={os.environ[SMOKE_VAR]} is set: a smoke run does a hundredth of the "
            "work and its numbers mean nothing, so the nightly job never stores them; unset it "
            f"(env -u {SMOKE_VAR} ..., or remove it from the env file) and run again")
    matrix = raw_config.get("matrix") or {}
    for part in ("env", "env_nobuild"):
        value = (matrix.get(part) or {}).get(SMOKE_VAR)
        if value not in (None, "", "0", [], [""], ["0"]):
            raise UncleanEnvironment(
                f"the asv config sets {SMOKE_VAR} in matrix.{part}: a smoke run's numbers mean "
                "nothing and the nightly job never stores them; remove it from the config")


def settings(opts, run_stamp: str, suite_commit: str) -> dict:
    """The settings every result of this run is measured with."""
    return {
        "machine": opts.machine,
        "run": run_stamp,
        "job": "tools/nightly.py",
        "suite_commit": suite_commit,  # the benchmarks and asv.conf.json used
        "asv": asv.__version__,
        "quick": False,
        "smoke": False,
        "record_samples": True,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "threads": opts.threads,
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
        "benchmark_target_root": os.environ.get(ROOT_VAR) or "default (/dev/shm when writable)",
        "valgrind": _valgrind_version(),
        "n_cpus": os.cpu_count(),
    }


def label(staging: str, machine: str, run_settings: dict, load_1min: list[float]) -> int:
    """Add the ``stardag_nightly`` entry to every result file asv wrote into ``staging``."""
    directory = os.path.join(staging, machine)
    if not os.path.isdir(directory):
        return 0
    n = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json") or name == "machine.json":
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue  # the store's own check reports an unreadable file
        data[LABEL] = dict(run_settings, load_1min=[round(x, 2) for x in load_1min])
        tmp = path + ".label-tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
        n += 1
    return n


def _valgrind_version() -> str | None:
    tool = shutil.which("valgrind")
    if tool is None:
        return None
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
