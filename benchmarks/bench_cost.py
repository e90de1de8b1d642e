"""What stardag's CPU work costs, in instructions per task: counted by Valgrind, not timed.

Timings of identical code on a busy shared machine move by 1.1-4x; these
counts move by less than 0.01% (benchmarks/instructions.py says how, and what
they cannot see; a thread-pool build's by less than 0.06%). The slope
between 100 and 500 items (a thread-pool build: 100 and 2,100), so Python's
start and every import cancel out. Unit: instructions, per task (or per save, per
load).

- ``Build``: a whole build of light tasks (``sum(range(100))`` and one JSON
  output, in memory), per task: ``sequential``, ``thread_pool`` (4 threads),
  ``async``, and ``process_pool``: the parent process only (one worker: with
  more, the count depends on how results arrive), its workers not counted.
- ``MakeTask``: constructing a light task: validation and its id.
- ``TargetSave``, ``TargetLoad``: ``task.output().save(value)`` and
  ``.load()`` in memory, for a JSON dict, a pydantic model and a pickled object.
- ``SchedulerCore``: the scheduler alone, add + pop_ready + done per task.

One Valgrind run counts them all (~30 s of CPU), in ``setup_cache``; each
benchmark returns its number. Without Valgrind they skip, saying how to
install it. A smoke run (``$STARDAG_BENCH_SMOKE``) runs each kind once without
Valgrind, to check it works, and skips.
"""

from __future__ import annotations

from dataclasses import asdict

from benchmarks import configuration, instructions
from benchmarks.common import SMOKE, SMOKE_VAR, import_stardag

SHAPES = ["fan_in", "chain"]
# Every configuration, so the site's configuration filter covers these too;
# dask runs everything in other processes and skips (see Build).
BUILD_CONFIGURATIONS = configuration.NAMES
COUNTED_CONFIGURATIONS = ["sequential", "thread_pool", "process_pool", "async"]
FORMATS = ["json", "pydantic", "pickle"]
UNIT = "instructions"

KINDS = (
    [f"build:{c}:{s}" for s in SHAPES for c in COUNTED_CONFIGURATIONS]
    + [f"make:{s}" for s in SHAPES]
    + [f"{op}:{fmt}" for fmt in FORMATS for op in ("save", "load")]
    + [f"scheduler:{s}" for s in SHAPES]
)
UNCOUNTED = [f"build:{c}:{s}" for s in SHAPES for c in BUILD_CONFIGURATIONS
             if c not in COUNTED_CONFIGURATIONS]


class _Counted:
    """One count per benchmark, read from the suite's one Valgrind run (``setup_cache``)."""

    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0
    min_run_count = 1
    timeout = 60
    version = "stardag-cost-1"

    def setup_cache(self) -> dict[str, dict]:
        try:
            import_stardag()
        except NotImplementedError as err:
            return {kind: {"skip": str(err)} for kind in KINDS + UNCOUNTED}
        uncounted = {kind: {"skip": f"{kind.split(':')[1]} builds in other processes (a "
                                    "cluster's): there are no instructions to count in one"}
                     for kind in UNCOUNTED}
        if SMOKE:
            checked = instructions.check(KINDS)
            reason = (f"smoke run (${SMOKE_VAR}): each kind ran once without Valgrind and works; "
                      "instructions are counted in a real run")
            return {kind: asdict(c) if c.skip or c.error else {"skip": reason}
                    for kind, c in checked.items()} | uncounted
        if instructions.valgrind() is None:
            return {kind: {"skip": instructions.INSTALL_HINT} for kind in KINDS + UNCOUNTED}
        return {kind: asdict(c) for kind, c in instructions.count(KINDS).items()} | uncounted

    setup_cache.timeout = instructions.TIMEOUT + 120  # a plain run, then the counted one

    def _use(self, counts: dict[str, dict], kind: str) -> None:
        """In ``setup``: skip or fail as the count says, else keep it for the benchmark."""
        found = counts[kind]
        if found.get("skip"):
            raise NotImplementedError(found["skip"])
        if found.get("error"):
            raise RuntimeError(found["error"])
        self.count = found["per_item"]


class Build(_Counted):
    """A whole build of light tasks, per task (process_pool: the parent process, one worker)."""

    params = [SHAPES, BUILD_CONFIGURATIONS]
    param_names = ["shape", "configuration"]

    def setup(self, counts: dict, shape: str, config: str) -> None:
        self._use(counts, f"build:{config}:{shape}")

    def track_instructions_per_task(self, counts: dict, shape: str, config: str) -> float:
        return self.count

    track_instructions_per_task.unit = UNIT


class MakeTask(_Counted):
    """Constructing a light task (validation and id), per task, as a fan-in or a chain."""

    params = [SHAPES]
    param_names = ["shape"]

    def setup(self, counts: dict, shape: str) -> None:
        self._use(counts, f"make:{shape}")

    def track_instructions_per_task(self, counts: dict, shape: str) -> float:
        return self.count

    track_instructions_per_task.unit = UNIT


class TargetSave(_Counted):
    """``task.output().save(value)`` in memory: the target's path, serializing, storing; per save."""

    params = [FORMATS]
    param_names = ["format"]

    def setup(self, counts: dict, fmt: str) -> None:
        self._use(counts, f"save:{fmt}")

    def track_instructions_per_save(self, counts: dict, fmt: str) -> float:
        return self.count

    track_instructions_per_save.unit = UNIT


class TargetLoad(_Counted):
    """``task.output().load()`` in memory: reading and deserializing; per load."""

    params = [FORMATS]
    param_names = ["format"]

    def setup(self, counts: dict, fmt: str) -> None:
        self._use(counts, f"load:{fmt}")

    def track_instructions_per_load(self, counts: dict, fmt: str) -> float:
        return self.count

    track_instructions_per_load.unit = UNIT


class SchedulerCore(_Counted):
    """The scheduler alone: add, pop_ready and done, per task."""

    params = [SHAPES]
    param_names = ["shape"]

    def setup(self, counts: dict, shape: str) -> None:
        self._use(counts, f"scheduler:{shape}")

    def track_instructions_per_task(self, counts: dict, shape: str) -> float:
        return self.count

    track_instructions_per_task.unit = UNIT
