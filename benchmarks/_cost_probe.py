"""The work the instruction-count benchmarks count; runs under Valgrind, started by instructions.py.

    valgrind --tool=cachegrind ... python -B benchmarks/_cost_probe.py MANIFEST N1 N2 KIND...

One process imports stardag once (a start costs ~1e9 instructions, most of it
importing pydantic). For each kind it forks a process that makes the kind's
input for both sizes and then forks one child per size, which does the work
of ``n`` items and exits. Valgrind follows forks and reports each child's
total at its exit. A child starts from its parent's count at the fork, so two
children of one kind differ by exactly ``work(n2) - work(n1)`` plus the
parent's loop between the two forks; a third child, at ``n1`` again, measures
that loop (instructions.py subtracts it). Each kind starts from the same
state, whatever ran before it. The manifest (JSON) names the children's pids
per kind, or why a kind could not run.

What keeps a count the same on identical code: the same interpreter and
environment, ``PYTHONHASHSEED`` (the harness sets it), no bytecode written
(``-B``; the harness warms the caches first), in-memory targets (file
targets only where worker processes need them, under a name of fixed
length), and no garbage collection in the children: a full collection costs
what is alive, so one allocation more anywhere could move one across the two
sizes and change the slope more than the work did.

Kinds, ``FAMILY:ARG...``: ``build:CONFIGURATION:SHAPE`` (light tasks, this
process's instructions: a process pool's workers are not counted),
``make:SHAPE``, ``save:FORMAT``, ``load:FORMAT``, ``scheduler:SHAPE``.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import os
import sys
import tempfile
from typing import Any, Callable

SHAPES = ("fan_in", "chain")
MEMORY_ROOT = "memory://stardag-cost"
# File targets (only for process-pool workers, which cannot see this process's
# memory) go under this directory, made and removed by the harness.
FILE_ROOT_VAR = "STARDAG_COST_FILE_ROOT"
# The process pool is counted with one worker: the parent sends a task, waits,
# takes the result, in strict turns. With more, how many results one wake-up
# of the event loop collects depends on timing, and the count moves by ~2%.
PROCESS_WORKERS = 1
# A thread-pool build's fixed costs move with timing: how often a worker looks
# at the first task of a class before the GIL gate judges it (stardag/build/
# _gil.py) differs from run to run by up to ~80k instructions, 0.2% of the
# slope over 400 tasks. Counted over five times as many tasks, it stays under
# 0.05%.
SPAN_FACTOR = {"build:thread_pool": 5}


def sizes_for(kind: str, sizes: list[int]) -> list[int]:
    """The two sizes ``kind`` is counted at: its span widened where fixed costs move."""
    n1, n2 = sizes
    factor = next((f for prefix, f in SPAN_FACTOR.items() if kind.startswith(prefix + ":")), 1)
    return [n1, n1 + factor * (n2 - n1)]


class Missing(Exception):
    """This commit's library lacks what a kind counts: its benchmark skips."""


@dataclasses.dataclass(frozen=True)
class Record:
    """The value the pickle kinds save: a plain class, so pickle is its serializer."""

    index: int
    name: str
    weights: tuple[float, ...]


def _tasks() -> Any:
    try:
        import stardag  # noqa: F401
        from benchmarks import tasks
    except ImportError as err:
        raise Missing(f"this commit has no stardag library ({err})") from None
    if tasks.AutoTask is None:
        raise Missing("this commit's stardag has no AutoTask/Task to define tasks with")
    return tasks


def _make(shape: str) -> tuple[Callable, Callable]:
    """Construct ``n`` light tasks (validation and id included), as a fan-in or a chain."""
    cls = _tasks().LightTask

    def work(n: int) -> None:
        if shape == "fan_in":
            leaves = tuple(cls(index=i) for i in range(n - 1))
            cls(deps=leaves, index=n - 1)
        else:
            prev = cls(index=0)
            for i in range(1, n):
                prev = cls(deps=(prev,), index=i)

    return (lambda n: n), work


def _build(config_name: str, shape: str) -> tuple[Callable, Callable]:
    """Build a light DAG made beforehand, checked: every task ran."""
    _tasks()
    from benchmarks import configuration, dags
    from benchmarks.common import build_checked

    config = configuration.get(config_name)
    if config_name == "dask":
        raise ValueError("the dask configuration runs in other processes: nothing to count here")
    try:
        if config_name == "process_pool":
            builder = configuration._hybrid("process", max_process_workers=PROCESS_WORKERS)
        else:
            builder = config.make_builder()
    except NotImplementedError as err:
        raise Missing(str(err)) from None
    file_root = os.environ.get(FILE_ROOT_VAR) or tempfile.gettempdir()

    def prepare(n: int) -> Any:
        cls = dags.light_class(config.async_tasks)
        return dags.fan_in(cls, n) if shape == "fan_in" else dags.chain(cls, n)

    def work(dag: Any) -> None:
        if config.in_process:
            root = MEMORY_ROOT  # each child starts from its parent's empty store
        else:
            root = tempfile.mkdtemp(prefix="build-", dir=file_root)
        build_checked(builder, dag, root)

    return prepare, work


def _outputs(fmt: str) -> tuple[type, Callable[[int], Any]]:
    """A task class whose output has the serializer ``fmt``, and the value of item ``i``."""
    tasks = _tasks()
    weights = (0.5, 1.5, 2.5, 3.5)
    if fmt == "json":
        class JsonOutput(tasks.AutoTask[dict]):
            index: int

        return JsonOutput, lambda i: {"index": i, "name": "item", "weights": list(weights)}
    if fmt == "pydantic":
        from pydantic import BaseModel

        class Measurement(BaseModel):
            index: int
            name: str
            weights: list[float]

        class ModelOutput(tasks.AutoTask[Measurement]):
            index: int

        return ModelOutput, lambda i: Measurement(index=i, name="item", weights=list(weights))
    if fmt == "pickle":
        class PickleOutput(tasks.AutoTask[Record]):
            index: int

        return PickleOutput, lambda i: Record(index=i, name="item", weights=weights)
    raise ValueError(f"unknown format {fmt!r}; use 'json', 'pydantic' or 'pickle'")


def _save(fmt: str) -> tuple[Callable, Callable]:
    """``task.output().save(value)``: the target's path (first call), serializing, storing."""
    cls, value = _outputs(fmt)
    from stardag.target import target_root

    def work(items: Any) -> None:
        with target_root(MEMORY_ROOT):
            for task, val in items:
                task.output().save(val)

    return (lambda n: [(cls(index=i), value(i)) for i in range(n)]), work


def _load(fmt: str) -> tuple[Callable, Callable]:
    """``task.output().load()`` of values saved beforehand: reading and deserializing."""
    cls, value = _outputs(fmt)
    from stardag.target import target_root

    def prepare(n: int) -> Any:
        items = [cls(index=i) for i in range(n)]
        with target_root(MEMORY_ROOT):
            for i, task in enumerate(items):
                task.output().save(value(i))
        return items

    def work(items: Any) -> None:
        with target_root(MEMORY_ROOT):
            for task in items:
                task.output().load()

    return prepare, work


def _scheduler(shape: str) -> tuple[Callable, Callable]:
    """The scheduler core alone: add every task, then pop_ready/done until none is left."""
    _tasks()
    try:
        from stardag.build._scheduler import Scheduler
    except ImportError as err:
        raise Missing(f"this commit has no stardag.build._scheduler.Scheduler ({err})") from None

    def work(ids: list[str]) -> None:
        s = Scheduler()
        if shape == "fan_in":
            for task_id in ids[:-1]:
                s.add(task_id, ())
            s.add(ids[-1], ids[:-1])
        else:
            s.add(ids[0], ())
            for prev, task_id in zip(ids, ids[1:]):
                s.add(task_id, (prev,))
        n_done = 0
        while (task_id := s.pop_ready()) is not None:
            s.done(task_id)
            n_done += 1
        if n_done != len(ids):
            raise RuntimeError(f"the scheduler handed out {n_done} of {len(ids)} tasks")

    return (lambda n: [f"{i:032x}" for i in range(n)]), work  # ids as long as real ones


_FAMILIES: dict[str, Callable[..., tuple[Callable, Callable]]] = {
    "build": _build, "make": _make, "save": _save, "load": _load, "scheduler": _scheduler,
}


def kind_functions(kind: str) -> tuple[Callable, Callable]:
    """(prepare(n) -> input, work(input)) of ``kind``; raises Missing."""
    family, *args = kind.split(":")
    if family not in _FAMILIES:
        raise ValueError(f"unknown kind {kind!r}; families: {', '.join(_FAMILIES)}")
    shape = args[-1] if family in ("build", "make", "scheduler") and args else None
    if shape is not None and shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r} in kind {kind!r}; use one of {', '.join(SHAPES)}")
    return _FAMILIES[family](*args)


def _fork(body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child that exits with its status at once; return the status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)  # no interpreter teardown: its cost grows with the heap
    return pid


def _measure_kind(kind: str, sizes: list[int], out_path: str) -> int:
    """In a process of its own: prepare both inputs, fork a child per size; write the entry."""
    entry: dict[str, Any] = {"sizes": sizes}
    try:
        prepare, work = kind_functions(kind)
        inputs = [prepare(n) for n in sizes]
    except Missing as err:
        entry["missing"] = str(err)
    except Exception as err:
        entry["error"] = f"preparing: {type(err).__name__}: {err}"
    else:
        gc.collect()
        gc.freeze()  # the parent's objects are never walked by a child's collector
        entry["pids"] = []
        for index in (0, 1, 0):  # n1, n2, n1: the repeat measures this loop
            error_path = f"{out_path}.{len(entry['pids'])}.err"

            def child(prepared: Any = inputs[index], error_path: str = error_path) -> int:
                gc.disable()
                try:
                    work(prepared)
                except BaseException as exc:
                    with open(error_path, "w") as f:
                        f.write(f"{type(exc).__name__}: {exc}")
                    return 1
                return 0

            pid = _fork(child)
            _, status = os.waitpid(pid, 0)
            entry["pids"].append(pid)
            if status != 0:
                try:
                    with open(error_path) as f:
                        entry["error"] = f.read()
                except OSError:
                    entry["error"] = f"the counting process ended with wait status {status}"
                break
    with open(out_path, "w") as f:
        json.dump(entry, f)
    return 0


def run(manifest_path: str, sizes: list[int], kinds: list[str]) -> None:
    """Count every kind (see the module's docstring); write the manifest last, whole."""
    manifest: dict[str, Any] = {"sizes": sizes, "kinds": {}}
    try:  # once, here: every kind's process starts from these imports done
        _tasks()
        from benchmarks import common, configuration, dags  # noqa: F401
        import stardag.build  # noqa: F401
    except (Missing, ImportError):
        pass  # each kind says what is missing
    for i, kind in enumerate(kinds):
        out_path = f"{manifest_path}.kind{i}"
        pid = _fork(lambda: _measure_kind(kind, sizes_for(kind, sizes), out_path))
        _, status = os.waitpid(pid, 0)
        try:
            with open(out_path) as f:
                manifest["kinds"][kind] = json.load(f)
        except (OSError, ValueError):
            manifest["kinds"][kind] = {"error": f"the process counting it ended with wait status {status}"}
    tmp = manifest_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f)
    os.replace(tmp, manifest_path)


def _import_suite() -> None:
    """Import ``benchmarks`` from beside this file without putting its parent on sys.path.

    The parent is often the repository root, with another stardag in it: the
    library counted must be the installed one, as in asv's own processes.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.realpath(sys.path[0] or ".") == os.path.realpath(here):
        del sys.path[0]  # the script's own directory: its modules are not top-level ones
    spec = importlib.util.spec_from_file_location(
        "benchmarks", os.path.join(here, "__init__.py"), submodule_search_locations=[here])
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    _import_suite()
    from benchmarks import _cost_probe

    _cost_probe.run(sys.argv[1], [int(sys.argv[2]), int(sys.argv[3])], sys.argv[4:])
