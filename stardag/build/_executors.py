"""Where a task runs: inline, in a thread, in a worker process, on the event loop.

Executors only run. Each hands an outcome ``(executor, task_id, kind, payload)``
to the driver's inbox and never touches scheduler state. Outcome kinds:

- ``OK``: the task finished and is complete (checked where it ran); payload
  ``None``, or from a worker process the dynamic dependencies it found already
  complete. A task that returns without its output is ``FAILED`` with a
  ``TaskOutputMissingError``.
- ``FAILED``: payload ``(error, traceback_text)``.
- ``DEPS``: the task yielded dynamic dependencies; payload ``(tasks, generator)``.
  In-process executors keep the suspended generator, which the driver resumes
  once the tasks have run (as ``(generator, tasks)``: a task still incomplete
  then fails the generator's task). A generator cannot cross processes, so the
  process pool closes it and returns only the missing tasks (generator
  ``None``): the driver then runs the task again from the start, and ``run()``
  must yield the same tasks again (Luigi's contract for dynamic dependencies).
- ``NOT_RUN``: the executor was stopping and skipped the task.
- ``BLOCKED``: a task handed out before its dependencies were done (Dask) did
  not run, because one of them did not succeed; it waits again.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from types import AsyncGeneratorType, GeneratorType
from typing import Any, Callable

from ..errors import TaskOutputMissingError, TaskPicklingError, WorkerDiedError
from ..target import get_target_root, set_target_root
from ..task import Task, check_unchanged, dumps_for, flatten_tasks, loads_into

__all__ = [
    "AsyncExecutor",
    "BLOCKED",
    "DEPS",
    "FAILED",
    "InlineExecutor",
    "NOT_RUN",
    "OK",
    "ProcessExecutor",
    "ThreadExecutor",
    "run_async",
    "run_sync",
    "unsendable",
]

OK, FAILED, DEPS, NOT_RUN, BLOCKED = range(5)


def run_sync(task: Task, resume: tuple[GeneratorType, list[Task]] | None = None) -> tuple[int, Any]:
    """Run a sync task, or resume it (``(generator, tasks it yielded)``): ``(kind, payload)``."""
    try:
        if resume is None:
            check_unchanged(task)
            result = task.run()
            if not isinstance(result, GeneratorType):
                return finished(task, "run()")
            gen = result
            yielded = next(gen)
        else:
            gen, waited_on = resume
            error = dependency_missing(task, waited_on)
            if error is not None:
                gen.close()
                return FAILED, (error, "")
            yielded = gen.send(None)
        return DEPS, (flatten_tasks(yielded), gen)
    except StopIteration:
        return finished(task, "run()")
    except Exception as exc:
        return FAILED, (exc, traceback.format_exc())


async def run_async(task: Task,
                    resume: tuple[AsyncGeneratorType, list[Task]] | None = None) -> tuple[int, Any]:
    """Run ``run_aio``, or resume it (``(async generator, tasks it yielded)``): ``(kind, payload)``."""
    try:
        if resume is None:
            check_unchanged(task)
            result = task.run_aio()
            if not isinstance(result, AsyncGeneratorType):
                await result
                return finished(task, "run_aio()")
            agen = result
            yielded = await agen.__anext__()
        else:
            agen, waited_on = resume
            error = dependency_missing(task, waited_on)
            if error is not None:
                await agen.aclose()
                return FAILED, (error, "")
            yielded = await agen.asend(None)
        return DEPS, (flatten_tasks(yielded), agen)
    except StopAsyncIteration:
        return finished(task, "run_aio()")
    except Exception as exc:
        return FAILED, (exc, traceback.format_exc())


_default_complete: dict[type, bool] = {}  # per class: does it keep Task.complete?


def declares_no_output(task: Task) -> bool:
    """A task with no output and the default ``complete()``: done when its run returns."""
    return type(task).complete is Task.complete and task.output() is None


def describe_output(task: Task) -> str:
    """The path of ``task``'s output (or its target's repr), quoted."""
    target = task.output()
    return repr(getattr(target, "path", target))


def finished(task: Task, method: str) -> tuple[int, Any]:
    """``OK`` if ``task`` is complete now that its ``method`` returned, else ``FAILED`` naming its output."""
    try:
        target = task.output()
        cls = type(task)
        default = _default_complete.get(cls)
        if default is None:  # a class attribute lookup costs more than this dict's
            default = _default_complete[cls] = cls.complete is Task.complete
        if default:  # Task.complete, inlined: this runs once per task
            if target is None or target.exists():
                return OK, None  # no output declared, or written
        elif task.complete():
            return OK, None
        if target is not None and not target.exists():
            error = TaskOutputMissingError(
                f"task {task!r} finished without writing its output {describe_output(task)}: "
                f"its {method} must save it, e.g. self.output().save(value)"
            )
        else:
            error = TaskOutputMissingError(
                f"task {task!r} finished, but its complete() still returns False "
                f"(output {describe_output(task)})"
            )
    except Exception as exc:
        return FAILED, (exc, traceback.format_exc())
    return FAILED, (error, "")


def dependency_missing(task: Task, waited_on: list[Task]) -> TaskOutputMissingError | None:
    """The error for the first task in ``waited_on`` (yielded by ``task``, since built) still incomplete."""
    for dep in waited_on:
        if not (dep.complete() or declares_no_output(dep)):
            return TaskOutputMissingError(
                f"task {task!r} yielded {dep!r}, which is still incomplete after it ran "
                f"(output {describe_output(dep)})"
            )
    return None


class _Executor:
    """Shared bookkeeping: capacity, tasks running here, tasks waiting for a slot.

    An executor that ``pipelines`` orders tasks itself: the driver may hand it a
    task before its dependencies are done, if they run there too
    (``submit(task, resume, unmet_dependency_ids)``).
    """

    pipelines = False

    def __init__(self, capacity: int, post: Callable[[tuple], None]):
        self.capacity = capacity
        self.n_running = 0
        self.backlog: collections.deque[str] = collections.deque()
        self._post = post

    def stop_queued(self) -> None:
        """A fail-fast build stops: tasks handed over but not started report NOT_RUN."""

    def flush(self) -> None:
        """Send what ``submit`` buffered; the driver calls it before it waits."""

    def shutdown(self, interrupted: bool) -> None:
        pass

    async def aclose(self) -> None:
        """Wait for what ``shutdown`` started on the event loop."""


class InlineExecutor(_Executor):
    """Runs sync tasks right here, blocking the driver (sequential and ``blocking`` mode)."""

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        kind, payload = run_sync(task, resume)
        self._post((self, task.id, kind, payload))


class AsyncExecutor(_Executor):
    """Runs ``run_aio`` as tasks on the driver's event loop."""

    def __init__(self, capacity: int, post: Callable[[tuple], None]):
        super().__init__(capacity, post)
        self._running: set[asyncio.Task] = set()

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        future = asyncio.ensure_future(self._run(task, resume))
        self._running.add(future)
        future.add_done_callback(self._running.discard)

    async def _run(self, task: Task, resume: Any) -> None:
        kind, payload = await run_async(task, resume)
        self._post((self, task.id, kind, payload))

    async def aclose(self) -> None:
        for future in self._running:
            future.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


class ThreadExecutor(_Executor):
    """A lean thread pool: one queue in, outcomes posted to the driver thread-safely.

    ``n_workers`` threads run tasks; up to ``QUEUED_AHEAD`` more (at least as
    many as threads) wait in the queue, so a thread that finishes picks up its
    next task without waiting for the driver. Its outcome is then not urgent:
    the driver hears of it when the queue runs dry (see ``_Inbox``), instead of
    taking the GIL from the workers after every task. Queued tasks that a
    stopping build no longer wants come back ``NOT_RUN``.
    """

    QUEUED_AHEAD = 8

    def __init__(self, n_workers: int, post: Callable[..., None]):
        super().__init__(n_workers + max(n_workers, self.QUEUED_AHEAD), post)
        self.n_workers = n_workers
        self._queue: Any = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        if len(self._threads) < min(self.n_running, self.n_workers):
            thread = threading.Thread(
                target=self._work, name=f"stardag-worker-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._queue.put((task, resume))

    def _work(self) -> None:
        tasks, post = self._queue, self._post
        item = tasks.get()
        while item is not None:
            task, resume = item
            if self._stopping:
                kind, payload = NOT_RUN, None
            else:
                try:
                    kind, payload = run_sync(task, resume)
                except BaseException as exc:  # SystemExit and friends must not kill the worker silently
                    kind, payload = FAILED, (exc, traceback.format_exc())
            try:
                item = tasks.get_nowait()
            except queue.Empty:  # idle next: the driver must hear now
                post((self, task.id, kind, payload), True)
                item = tasks.get()
            else:  # urgent unless it went well and more tasks wait behind the one taken
                post((self, task.id, kind, payload), kind != OK or tasks.empty())

    def stop_queued(self) -> None:
        """Tasks not started yet come back ``NOT_RUN``."""
        self._stopping = True

    def shutdown(self, interrupted: bool) -> None:
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        if not interrupted:
            for thread in self._threads:
                thread.join()


def _worker_main(conn: Any, inherited_fds: list[int]) -> None:
    """A worker process: run tasks sent over ``conn`` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    # A forked worker holds copies of its siblings' pipes; close them, or a
    # sibling would never see EOF when the parent dies, and live on as an orphan.
    for fd in inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    cache: dict[str, Task] = {}  # every task received so far: the parent sends only new ones
    while True:
        try:
            root, data = conn.recv()
        except (EOFError, OSError):
            return
        if root != get_target_root():
            set_target_root(root)
        reset = False
        task: Any = None
        try:
            task = loads_into(data, cache)
        except Exception as exc:
            cache.clear()
            reset = True
            outcome = FAILED, (TaskPicklingError(
                f"a task could not be loaded in its worker process: {exc}; make its class importable"
            ), traceback.format_exc())
        else:
            try:
                outcome = _run_in_worker(task)
            except Exception as exc:
                outcome = FAILED, (exc, traceback.format_exc())
        try:
            message = pickle.dumps((*outcome, reset), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            message = pickle.dumps((*sendable(*outcome, task, exc, "its worker process"), reset))
        conn.send_bytes(message)


def sendable(kind: int, payload: Any, task: Any, exc: Exception, where: str) -> tuple[int, Any]:
    """What a worker sends instead of an outcome that cannot be pickled (``exc``).

    An unpicklable exception goes as its text; anything else fails the task
    with a TaskPicklingError naming it.
    """
    if kind == FAILED:
        error, text = payload
        return FAILED, (RuntimeError(f"{type(error).__name__}: {error}"), text)
    return FAILED, (TaskPicklingError(
        f"the outcome of task {task!r} cannot be sent back from {where}: {exc}"
    ), traceback.format_exc())


def _run_in_worker(task: Task) -> tuple[int, Any]:
    """Run ``task`` to the end, or until it yields a task that is not complete.

    ``OK`` carries the yielded tasks that were already complete, so the driver
    counts them as it would have in-process.
    """
    complete: list[Task] = []
    kind, payload = run_sync(task)
    while kind == DEPS:
        tasks, gen = payload
        missing = []
        for t in tasks:
            (complete if t.complete() else missing).append(t)
        if missing:
            gen.close()
            return DEPS, (missing, None)
        kind, payload = run_sync(task, (gen, []))
    if kind == OK:
        return OK, complete
    return kind, payload


def unsendable(executor: Any, task: Task, exc: Exception, where: str) -> tuple:
    """The ``FAILED`` outcome of a task that could not be pickled for ``where``."""
    error = TaskPicklingError(
        f"task {task!r} cannot be sent to {where}: {exc}; make its class importable "
        "and its parameters picklable, or run it in 'thread' mode"
    )
    error.__cause__ = exc
    return (executor, task.id, FAILED, (error, traceback.format_exc()))


class _Worker:
    __slots__ = ("process", "conn", "task", "known")

    def __init__(self, process: Any, conn: Any):
        self.process = process
        self.conn = conn
        self.task: Task | None = None
        self.known: set[str] = set()  # ids of the tasks this worker holds


class ProcessExecutor(_Executor):
    """A process pool that knows which task each worker runs.

    Workers talk over pipes watched by the event loop (no extra thread). A
    worker that dies fails exactly the task it was running; a fresh worker
    replaces it and the rest of the build goes on.
    """

    def __init__(self, capacity: int, post: Callable[[tuple], None], start_method: str | None):
        super().__init__(capacity, post)
        self._loop = asyncio.get_running_loop()
        self._method = _start_method(start_method)
        self._context = multiprocessing.get_context(self._method)
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []

    def start_workers(self) -> None:
        """Start every worker now (fork before any other thread exists)."""
        while len(self._workers) < self.capacity:
            self._idle.append(self._spawn())

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe()
        inherited: list[int] = []
        if self._method == "fork":
            inherited = [w.conn.fileno() for w in self._workers] + [parent_conn.fileno()]
        process = self._context.Process(target=_worker_main, args=(child_conn, inherited), daemon=True,
                                        name="stardag-process-worker")
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self._workers.append(worker)
        self._loop.add_reader(parent_conn.fileno(), self._on_readable, worker)
        return worker

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        worker = self._idle.pop() if self._idle else self._spawn()
        try:
            data = dumps_for(task, worker.known)
        except Exception as exc:
            self._idle.append(worker)
            self._post(unsendable(self, task, exc, "a worker process"))
            return
        worker.task = task
        worker.conn.send((get_target_root(), data))

    def _on_readable(self, worker: _Worker) -> None:
        task = worker.task
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_death(worker)
            return
        worker.task = None
        self._idle.append(worker)
        try:
            kind, payload, reset = pickle.loads(message)
            if reset:
                worker.known.clear()
        except Exception as exc:
            kind, payload = FAILED, (TaskPicklingError(
                f"the outcome of task {task!r} cannot be read back from its worker process: {exc}"
            ), traceback.format_exc())
        self._post((self, task.id, kind, payload))

    def _on_death(self, worker: _Worker) -> None:
        self._loop.remove_reader(worker.conn.fileno())
        worker.conn.close()
        worker.process.join(timeout=5)
        self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        task = worker.task
        if task is None:
            return
        code = worker.process.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code and code < 0 else f"exited with code {code}"
        error = WorkerDiedError(
            f"worker process {worker.process.pid} {how} while running task {task!r}; outputs "
            "already written stay valid, and the next build resumes from them"
        )
        self._post((self, task.id, FAILED, (error, "")))

    def shutdown(self, interrupted: bool) -> None:
        for worker in self._workers:
            self._loop.remove_reader(worker.conn.fileno())
            if interrupted and worker.task is not None:
                worker.process.terminate()
            worker.conn.close()  # idle workers see EOF and exit
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._workers.clear()
        self._idle.clear()


def _start_method(requested: str | None) -> str:
    if requested is not None:
        return requested
    methods = multiprocessing.get_all_start_methods()
    # fork starts a worker in milliseconds, but is unsafe once other threads run.
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


