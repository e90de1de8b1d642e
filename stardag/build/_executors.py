"""Where a task runs: inline, in a thread, in a worker process, on the event loop.

Executors only run. Each hands an outcome ``(executor, task_id, kind, payload)``
to the driver's inbox and never touches scheduler state. Outcome kinds:

- ``OK``: the task finished and is complete (checked where it ran); payload
  ``None``, or from a worker process the dynamic dependencies it found already
  complete. A task that returns without its output is ``FAILED`` with a
  ``TaskOutputMissingError``.
- ``FAILED``: payload ``(error, traceback_text)``.
  From another process the error travels pickled on its own, beside its
  description (``pack_failure``): an error that cannot cross still arrives as
  text, with its traceback.
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
import sys
import threading
import traceback
from types import AsyncGeneratorType, GeneratorType
from typing import Any, Callable

from ..errors import TaskOutputMissingError, TaskPicklingError, WorkerDiedError
from ..target import get_target_root, set_target_root
from ..task import Task, check_unchanged, dumps_for, flatten_tasks, loads_into
from ._gil import REVIEW_S, GilGate

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
    "pack_failure",
    "run_async",
    "run_sync",
    "unpack_failure",
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
        cls = type(task)
        default = _default_complete.get(cls)
        if default is None:  # a class attribute lookup costs more than this dict's
            default = _default_complete[cls] = cls.complete is Task.complete
        if default:  # Task.complete, inlined: this runs once per task
            target = task.output()
            if target is None or target.exists():
                return OK, None  # no output declared, or written
        elif task.complete():
            return OK, None
        target = task.output()
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
        """The build stops: tasks handed over but not started report NOT_RUN."""

    def flush(self) -> None:
        """Send what ``submit`` buffered; the driver calls it before it waits."""

    def shutdown(self, interrupted: bool) -> None:
        pass

    async def aclose(self) -> None:
        """Wait for what ``shutdown`` started on the event loop."""


class InlineExecutor(_Executor):
    """Runs sync tasks right here, blocking the driver (sequential and ``blocking`` mode).

    While a task runs, ``signals.inline`` is set: a second Ctrl-C interrupts it.
    """

    def __init__(self, capacity: int, post: Callable[[tuple], None], signals: Any):
        super().__init__(capacity, post)
        self._signals = signals

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        signals = self._signals
        signals.inline = True
        try:
            kind, payload = run_sync(task, resume)
        finally:
            signals.inline = False
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


class _Everything:
    def __contains__(self, item: Any) -> bool:
        return True


_EVERYTHING = _Everything()  # every class is free where the gate cannot judge
_NOTHING = object()


class ThreadExecutor(_Executor):
    """A lean thread pool: one queue in, outcomes posted to the driver thread-safely.

    ``n_workers`` threads run tasks; up to ``QUEUED_AHEAD`` more (at least as
    many as threads) wait in the queue, so a thread that finishes picks up its
    next task without waiting for the driver. Its outcome is then not urgent:
    the driver hears of it when the queue runs dry (see ``_Inbox``), instead of
    taking the GIL from the workers after every task. Tasks of a class found
    to hold the GIL run one at a time (``_gil.GilGate``): the worker that ends
    one runs the next, the others take what else is queued. Queued tasks that a
    stopping build no longer wants come back ``NOT_RUN``.
    """

    QUEUED_AHEAD = 8

    def __init__(self, n_workers: int, post: Callable[..., None]):
        super().__init__(n_workers + max(n_workers, self.QUEUED_AHEAD), post)
        self.n_workers = n_workers
        self._queue: Any = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.gate = GilGate(self._queue.put)

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        if len(self._threads) < min(self.n_running, self.n_workers):
            thread = threading.Thread(
                target=self._work, name=f"stardag-worker-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        item = (task, resume)
        if type(task) in self.gate.serial and self.gate.hold(type(task), item):
            return  # the worker running its class takes it next
        self._queue.put(item)

    def _work(self) -> None:
        tasks, post, gate = self._queue, self._post, self.gate
        free = gate.free if gate.enabled else _EVERYTHING
        item, gated = tasks.get(), False  # gated: the gate let this item run, and hears when it ends
        while item is not None:
            task, resume = item
            if self._stopping:
                kind, payload = NOT_RUN, None
            else:
                if not gated and type(task) not in free:
                    if not gate.admit(type(task), item):
                        item = tasks.get()  # held: the worker running its class runs it later
                        continue
                    gated = True
                try:
                    kind, payload = run_sync(task, resume)
                except BaseException as exc:  # SystemExit and friends must not kill the worker silently
                    kind, payload = FAILED, (exc, traceback.format_exc())
            if gated:
                held = gate.finished(type(task))
                if held is not None:  # its class runs serially: this worker goes on with it
                    post((self, task.id, kind, payload), kind != OK)
                    item = held
                    continue
                gated = False
            item = _NOTHING
            if not tasks.empty():  # (a chain finds it empty every time: no exception raised then)
                try:
                    item = tasks.get_nowait()
                except queue.Empty:  # another worker took it
                    pass
            if item is _NOTHING:  # idle next: the driver must hear now
                post((self, task.id, kind, payload), True)
                item = tasks.get()
            else:  # urgent unless it went well and more tasks wait behind the one taken
                post((self, task.id, kind, payload), kind != OK or tasks.empty())

    def review(self) -> float | None:
        """Let the gate look at the running tasks of serial classes; in how many seconds to call again, if at all."""
        return REVIEW_S if self.gate.review() else None

    def stop_queued(self) -> None:
        """Tasks not started yet come back ``NOT_RUN`` (a flag: safe in a signal handler)."""
        self._stopping = True

    def shutdown(self, interrupted: bool) -> None:
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        if not interrupted:
            for thread in self._threads:
                thread.join()


def _ignore(signum: int, frame: Any) -> None:
    """A handler that does nothing; unlike SIG_IGN, programs a task starts do not inherit it."""


# Linux kills a worker when its parent dies (prctl(PR_SET_PDEATHSIG)). Elsewhere,
# and under forkserver (the worker's parent is the forkserver, which outlives the
# build while any of its children holds its "alive" pipe: the busy workers), a
# thread in the worker waits for EOF on a pipe only the build holds open.
_PDEATHSIG = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int, alive: Any) -> None:
    """Make this worker die with the process that started it, and exit now if that one is gone.

    ``parent_pid``: the pid of the build that started the worker, its parent under
    fork and spawn; ``alive``: the read end of the build's liveness pipe, or
    ``None`` to use prctl.
    """
    if alive is None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl: then we have a new parent.
        if parent_pid and os.getppid() != parent_pid:
            os._exit(1)
        return

    def watch() -> None:
        try:
            alive.recv_bytes()  # the parent never writes: this returns at EOF, when it is gone
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="stardag-parent-watch", daemon=True).start()


def _worker_main(conn: Any, inherited_fds: list[int], parent_pid: int = 0, alive: Any = None) -> None:
    """A worker process: run tasks sent over ``conn`` until it closes, or its parent dies."""
    # The parent decides when we stop: Ctrl-C in a terminal (SIGINT to the whole
    # process group) or a service manager's SIGTERM to every process must not
    # kill a running task; the parent stops its workers itself.
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGTERM, _ignore)
    # A forked worker holds copies of its siblings' pipes; close them, or a
    # sibling would never see EOF when the parent dies, and live on as an orphan.
    for fd in inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _die_with_parent(parent_pid, alive)
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
        kind, payload = outcome
        if kind == FAILED:
            payload = pack_failure(*payload)
        try:
            message = pickle.dumps((kind, payload, reset), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            message = pickle.dumps((FAILED, unsendable_outcome(task, exc, "its worker process"), reset))
        conn.send_bytes(message)


def pack_failure(error: BaseException, text: str) -> tuple[bytes | None, str, str, str]:
    """A ``FAILED`` payload that always crosses a process boundary.

    ``(pickled error or None, traceback text, "Type: message", why it did not pickle)``.
    """
    try:
        data, why = pickle.dumps(error, pickle.HIGHEST_PROTOCOL), ""
    except Exception as exc:
        data, why = None, f"{type(exc).__name__}: {exc}"
    return data, text, _describe(error), why


def unpack_failure(packed: tuple, task: Any, where: str) -> tuple[BaseException, str]:
    """The ``(error, traceback text)`` of a packed failure; as text when the error cannot be unpickled here."""
    data, text, described, why = packed
    if data is not None:
        try:
            return pickle.loads(data), text
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
    return TaskPicklingError(
        f"task {task!r} raised {described} in {where}; that exception cannot be sent back as "
        f"itself ({why}), so here it is as text, with its traceback"
    ), text


def _describe(error: BaseException) -> str:
    cls = type(error)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    try:
        return f"{name}: {error}"
    except Exception:
        return f"{name} (its message cannot be printed)"


def unsendable_outcome(task: Any, exc: Exception, where: str) -> tuple:
    """The packed failure of a task whose outcome (not an error) cannot be pickled."""
    return pack_failure(TaskPicklingError(
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
            try:
                done = t.complete()
            except Exception:  # the driver checks again, and fails that task, not this one
                done = False
            (complete if done else missing).append(t)
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
    __slots__ = ("process", "conn", "task", "known", "answered")

    def __init__(self, process: Any, conn: Any):
        self.process = process
        self.conn = conn
        self.task: Task | None = None
        self.known: set[str] = set()  # ids of the tasks this worker holds
        self.answered = False  # it sent an outcome: it started, and ran a task


class ProcessExecutor(_Executor):
    """A process pool that knows which task each worker runs.

    Workers talk over pipes watched by the event loop (no extra thread). A
    worker that dies fails exactly the task it was running, or none if it was
    idle; a fresh worker replaces it and the rest of the build goes on. Workers
    die with this process, even when it is killed (``_die_with_parent``).
    """

    max_send_attempts = 3  # fresh workers tried for one task before it fails

    def __init__(self, capacity: int, post: Callable[[tuple], None], start_method: str | None):
        super().__init__(capacity, post)
        self._loop = asyncio.get_running_loop()
        self._method = _start_method(start_method)
        self._context = multiprocessing.get_context(self._method)
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._alive: Any = None  # (read end, write end) of the liveness pipe, without prctl
        if not _PDEATHSIG or self._method == "forkserver":
            self._alive = self._context.Pipe(duplex=False)

    def start_workers(self) -> None:
        """Start every worker now (fork before any other thread exists)."""
        while len(self._workers) < self.capacity:
            self._idle.append(self._spawn())

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe()
        inherited: list[int] = []
        if self._method == "fork":
            inherited = [w.conn.fileno() for w in self._workers] + [parent_conn.fileno()]
            if self._alive is not None:
                inherited.append(self._alive[1].fileno())
        alive = self._alive[0] if self._alive is not None else None
        process = self._context.Process(target=_worker_main, daemon=True, name="stardag-process-worker",
                                        args=(child_conn, inherited, os.getpid(), alive))
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self._workers.append(worker)
        self._loop.add_reader(parent_conn.fileno(), self._on_readable, worker)
        return worker

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        for _ in range(self.max_send_attempts):
            worker = self._idle.pop() if self._idle else self._spawn()
            try:
                data = dumps_for(task, worker.known)
            except Exception as exc:
                self._idle.append(worker)
                self._post(unsendable(self, task, exc, "a worker process"))
                return
            try:
                worker.conn.send((get_target_root(), data))
            except OSError:  # it died idle, and the loop has not seen its EOF yet: try another
                self._on_death(worker)
                continue
            worker.task = task
            return
        self._post((self, task.id, FAILED, (WorkerDiedError(
            f"{self.max_send_attempts} worker processes in a row died before they could be sent task "
            f"{task!r}; the machine may be out of memory or processes"
        ), "")))

    def _on_readable(self, worker: _Worker) -> None:
        task = worker.task
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_death(worker)
            return
        worker.task = None
        worker.answered = True
        self._idle.append(worker)
        try:
            kind, payload, reset = pickle.loads(message)
            if reset:
                worker.known.clear()
            if kind == FAILED:
                payload = unpack_failure(payload, task, "its worker process")
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
        hint = ""
        if code == 1 and not worker.answered and self._method != "fork":
            # What multiprocessing's bootstrap does when the main script starts a build at
            # import: the worker imports it again (spawn, forkserver), and that build fails.
            hint = (f" (if it failed to start, its error is above: a worker started by {self._method!r} "
                    "imports the main script again, so a script must start its build under "
                    "'if __name__ == \"__main__\":')")
        error = WorkerDiedError(
            f"worker process {worker.process.pid} {how} while running task {task!r}{hint}; outputs "
            "already written stay valid, and the next build resumes from them"
        )
        self._post((self, task.id, FAILED, (error, "")))

    def shutdown(self, interrupted: bool) -> None:
        for worker in self._workers:
            self._loop.remove_reader(worker.conn.fileno())
            if interrupted and worker.task is not None:
                worker.process.kill()  # workers ignore SIGTERM
            worker.conn.close()  # idle workers see EOF and exit
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._workers.clear()
        self._idle.clear()
        if self._alive is not None:
            for end in self._alive:
                end.close()
            self._alive = None


def _start_method(requested: str | None) -> str:
    if requested is not None:
        return requested
    methods = multiprocessing.get_all_start_methods()
    # fork starts a worker in milliseconds, but is unsafe once other threads run.
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


