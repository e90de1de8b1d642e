"""What asv runs in: the pinned CPUs and thread variables, the interpreters, the config.

The job never edits asv.conf.json. It reads main's committed copy (from the
export of main's tip) and writes two derived copies into the state directory:
paths made absolute, ``results_dir`` pointed at the staging directory (for
``asv run``) or at the results store (for ``asv publish``).
"""

from __future__ import annotations

import json
import logging
import os

from asv import util as asv_util

import interpreter
from _nightly import scratch

log = logging.getLogger("nightly")

# Variables that make numeric libraries spawn one thread per core; on a
# benchmark machine they turn a one-core measurement into a scheduling lottery.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def control_noise(opts) -> None:
    """Pin the job (and so asv and every benchmark) and fix thread counts."""
    if opts.cpu_affinity:
        os.sched_setaffinity(0, opts.cpu_affinity)
    for var in THREAD_VARS:
        os.environ[var] = str(opts.threads)
    os.environ["PYTHONHASHSEED"] = "0"
    log.info(
        "noise control: cpus %s, %s=%d, PYTHONHASHSEED=0",
        sorted(os.sched_getaffinity(0)), "/".join(THREAD_VARS), opts.threads,
    )


def discover_pythons(versions: list[str], opts, state) -> list[str]:
    """Find real interpreters (tools/interpreter.py) and put their links on PATH."""
    if not versions:
        raise ValueError(f"no Python versions: set 'pythons' in {opts.config!r} or --pythons")
    found = interpreter.discover(versions)
    link_dir = os.path.join(opts.state_dir, "pythons")
    scratch.fresh_dir(link_dir)
    interpreter.link_dir(found, link_dir)
    os.environ["PATH"] = link_dir + os.pathsep + os.environ.get("PATH", "")
    log.info("interpreters:\n%s", interpreter.describe(versions, found))
    for version in versions:
        if version not in found:
            state.problem(f"python {version} not found; its benchmarks are skipped this run "
                          f"(install it, or list its directory in {interpreter.EXTRA_PATH_VAR})")
    if not found:
        raise RuntimeError(f"none of the Python versions {versions} was found")
    return [v for v in versions if v in found]


def load_config(code: str, config: str, repo: str, state_dir: str) -> dict:
    """asv's config ``config`` of the exported tree ``code``, with its paths made absolute.

    The suite (``benchmark_dir``) is taken from the export, the history from
    ``repo`` (asv's ``repo``, relative to the checkout as asv would read it),
    and a relative ``env_dir`` lives in the state directory.
    """
    path = os.path.join(code, config)
    if not os.path.isfile(path):
        raise ValueError(f"{config!r} is not in the committed tree of {repo!r}; pass --config "
                         "the asv config's path inside the repository")
    raw = asv_util.load_json(path, api_version=1, js_comments=True)
    base = os.path.dirname(config)
    history = os.path.normpath(os.path.join(repo, base, raw.get("repo", ".")))
    if not os.path.isdir(history):
        raise ValueError(f"'repo' in {config!r} must be a local git checkout; {history!r} is not")
    raw["repo"] = history
    raw["benchmark_dir"] = os.path.normpath(
        os.path.join(code, base, raw.get("benchmark_dir", "benchmarks")))
    env_dir = raw.get("env_dir", "env")
    raw["env_dir"] = env_dir if os.path.isabs(env_dir) else os.path.join(state_dir, "env")
    return raw


def write_config(raw: dict, path: str, results_dir: str, opts) -> str:
    conf = dict(raw, version=1, results_dir=results_dir,
                html_dir=os.path.join(opts.state_dir, "html-unused"))
    if opts.regression_threshold is not None:
        conf["regressions_thresholds"] = {".*": opts.regression_threshold}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(conf, f, indent=2)
    os.replace(tmp, path)
    return path


def load_note(loads: list[float]) -> str:
    """A warning for the report when the machine was busier than its CPU count."""
    n_cpus = os.cpu_count() or 1
    if not loads:
        return ""
    note = f"\nmachine load (1-min average) around the benchmarks: {min(loads):.1f}-" \
           f"{max(loads):.1f} on {n_cpus} CPUs"
    if max(loads) > n_cpus:
        note += (
            "\nWARNING: the machine was overloaded while benchmarking; tonight's timings "
            "may be off by several times, so treat the regressions below with suspicion "
            "(see README 'nightly', noise control)"
        )
    return note
