"""Timing policy, target roots and the "every task ran" check, shared by all benchmarks.

A build that persists outputs must start from a fresh target root on every
timed call, or it times a no-op on outputs left by the previous call. asv reruns
``setup`` only between samples, so besides ``number = 1`` and ``warmup_time = 0``
each call takes a new root itself (a new directory name, or a new
``memory://`` store: creating one costs nothing measurable), and checks that
the build ran every task of the DAG.

Where file targets go is a setting: ``$STARDAG_BENCH_ROOT``, else ``/dev/shm``
(tmpfs) when there is one, else the temp directory. A small file write costs
~20 us on tmpfs and up to 0.6 ms on some disks; left alone that drowns what
the benchmarks are about.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import timeit
import uuid
from typing import Any

ROOT_VAR = "STARDAG_BENCH_ROOT"
_TMPFS = "/dev/shm"

# A smoke run checks the plumbing (asv, every benchmark, every configuration)
# in seconds: work per task x0.01 and DAGs over 100 tasks skipped. Its
# numbers mean nothing; the tests use it on a temporary clone.
SMOKE_VAR = "STARDAG_BENCH_SMOKE"
SMOKE = os.environ.get(SMOKE_VAR, "") not in ("", "0")
WORK_SCALE = 0.01 if SMOKE else 1.0
SMOKE_MAX_TASKS = 100


def check_size(n_tasks: int) -> None:
    """Skip (NotImplementedError) a DAG too large for a smoke run."""
    if SMOKE and n_tasks > SMOKE_MAX_TASKS:
        raise NotImplementedError(f"smoke run (${SMOKE_VAR}): DAGs over {SMOKE_MAX_TASKS} tasks skip")


def base_root() -> tuple[str, str]:
    """The directory file targets go under, and why it was chosen."""
    configured = os.environ.get(ROOT_VAR)
    if configured:
        return os.path.abspath(os.path.expanduser(configured)), f"from ${ROOT_VAR}"
    if os.path.isdir(_TMPFS) and os.access(_TMPFS, os.W_OK):
        return _TMPFS, f"tmpfs, the default; set ${ROOT_VAR} to change"
    return tempfile.gettempdir(), (
        f"no tmpfs found, the temp directory; set ${ROOT_VAR} to a tmpfs if writes dominate"
    )


def describe_target_root() -> str:
    path, why = base_root()
    smoke = f"; SMOKE RUN (${SMOKE_VAR}): tiny work, numbers mean nothing" if SMOKE else ""
    return f"benchmark target root: {path} ({why}){smoke}"


class BuildError(RuntimeError):
    """A benchmarked build did not build what it was given: its time means nothing."""


def import_stardag() -> Any:
    """The stardag package, or NotImplementedError (asv: skip) on a commit without it."""
    try:
        import stardag
        import stardag.target
    except ImportError as err:
        raise NotImplementedError(f"this commit has no stardag library ({err})") from None
    from benchmarks import tasks

    if tasks.AutoTask is None:  # stardag imports, but without the task API the suite uses
        raise NotImplementedError("this commit's stardag has no AutoTask/Task to define tasks with")
    return stardag


class RootPool:
    """Hands out a fresh target root per call and removes them all afterwards."""

    def __init__(self, storage: str = "file"):
        if storage not in ("file", "memory"):
            raise ValueError(f"unknown storage {storage!r}; use 'file' or 'memory'")
        self.storage = storage
        self.used: list[str] = []
        self._base = base_root()[0] if storage == "file" else ""

    def fresh(self) -> str:
        name = f"stardag-bench-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        root = f"memory://{name}" if self.storage == "memory" else os.path.join(self._base, name)
        self.used.append(root)
        return root

    def clear(self) -> None:
        from stardag import target

        for root in self.used:
            if root.startswith("memory://"):
                clear = getattr(target, "clear_memory_root", None)
                if clear is not None:
                    clear(root)
            else:
                shutil.rmtree(root, ignore_errors=True)
        self.used.clear()


def build_checked(builder: Any, dag: Any, root: str) -> Any:
    """Build ``dag`` under ``root``; raise BuildError unless every task ran there."""
    from stardag.target import target_root

    with target_root(root):
        summary = builder(dag.roots)
        complete = all(task.complete() for task in dag.roots)
    check_summary(summary, dag.n_tasks, root)
    if not complete:
        raise BuildError(f"build reported success but the root output is missing under {root!r}")
    return summary


def timed_build(builder: Any, dag: Any, roots: RootPool) -> float:
    """Seconds for one checked build of ``dag`` from a fresh root of ``roots``."""
    start = timeit.default_timer()
    build_checked(builder, dag, roots.fresh())
    return timeit.default_timer() - start


def check_summary(summary: Any, n_tasks: int, root: str) -> None:
    if summary.n_succeeded != n_tasks or summary.n_failed or summary.n_previously_complete:
        detail = "; ".join(f"{f.task_id[:12]}: {f.error!r}" for f in summary.failures[:3])
        raise BuildError(
            f"build under {root!r} ran {summary.n_succeeded} of {n_tasks} tasks "
            f"({summary.n_previously_complete} previously complete, {summary.n_failed} failed"
            f"{': ' + detail if detail else ''})"
        )


def record_samples(run_dir: str, key: str, samples: list[float]) -> None:
    """Leave ``samples`` (seconds) of ``key`` in the run's directory for later benchmarks."""
    if not samples:
        return
    folder = os.path.join(run_dir, "samples")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(samples, f)
    os.replace(path + ".tmp", path)  # a killed process leaves no half-written samples


def recorded_samples(run_dir: str, key: str) -> list[float]:
    """Every sample of ``key`` that earlier benchmark processes of this run recorded.

    Not this process's own: asv runs ``teardown`` after each sample, so a
    ``time_build`` finds its own first samples before its next one.
    """
    samples: list[float] = []
    own = f"{key}.{os.getpid()}-"
    for path in sorted(glob.glob(os.path.join(glob.escape(run_dir), "samples", f"{glob.escape(key)}.*.json"))):
        if os.path.basename(path).startswith(own):
            continue
        with open(path) as f:
            samples.extend(json.load(f))
    return samples


class BuildBenchmark:
    """Timing policy for every benchmark of the suite (asv reads these attributes).

    One timed call is one whole build from a fresh root: ``number = 1`` and no
    warmup. Samples: up to 3, but no new one once 5 s have gone (the ~6 s heavy
    builds get one): a full run of the suite must stay within 5 minutes.
    The clock is wall time: the work runs in other threads and processes.

    Every benchmark takes the run's directory as its first argument
    (``setup_cache``, defined once here, so asv makes one for the whole suite
    per commit and environment, and removes it when the run is done): later
    benchmarks of the same run read what earlier ones left there.
    """

    number = 1
    repeat = (1, 3, 5.0)
    rounds = 1
    warmup_time = 0
    min_run_count = 1
    timeout = 60  # the slowest case takes ~12 s on a loaded 2-core machine
    timer = timeit.default_timer
    version = "stardag-build-1"

    roots: RootPool | None = None

    def setup_cache(self) -> str:
        return os.getcwd()  # asv runs this in a new directory of its own

    def teardown(self, run_dir: str, *params: Any) -> None:
        if self.roots is not None:
            self.roots.clear()
