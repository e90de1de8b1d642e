"""The ``dask`` configuration: sync tasks run on the workers of a Dask distributed cluster.

The driver keeps deciding what is ready (discovery, completeness, dynamic
dependencies, fail modes); Dask runs tasks and orders the ones handed over
early. A task whose unmet dependencies all run on Dask is submitted at once,
with their futures as Dask dependencies (the driver's pipelining), so a chain
runs link after link on the workers without a round trip through the driver.
If a dependency does not succeed, the task does not run: it comes back
``BLOCKED`` and waits again in the driver.

What a worker gets for a task is its own record (class, fields, id) with the
tasks in its parameters as references; a referenced task that is a Dask future
of this build arrives as that future's result (the task object itself, rebuilt
where it ran), any other is sent along as records once. So the bytes shipped per
task do not grow with the depth of the DAG. Submissions are batched: one
``update-graph`` per turn of the driver's loop (``flush``).

A worker runs a task under the process pool's contract (``_run_in_worker``): a
task that yields dynamic dependencies which are not complete returns them, and
runs again from the start once they are built. A plain success returns the task
itself, so the future's result type tells the driver; other outcomes are
fetched. Those results stay on the workers for the tasks built from them; when
a worker dies, Dask computes the ones it held again: the worker function finds
the task complete and returns it without running it. Tasks with ``run_aio`` never come here: they run on the driver's
event loop.

The Client runs its own event loop in a thread (distributed's synchronous mode).
One thread of ours takes finished futures from ``as_completed`` and posts their
outcomes to the driver's inbox; it ends with the build, as does the Client's
thread, so no thread outlives the build (a later process pool can still fork). With no
scheduler address, the build starts a ``LocalCluster`` and closes it after.
Workers must see the driver's target root at the same path: the executor checks
that at start by a file written on one side and read on the other.

``import stardag.build`` never imports dask: the first Dask build does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import itertools
import os
import pickle
import signal
import socket
import threading
import traceback
import uuid
from typing import Any, Callable

from ..errors import StardagError, TargetError, TaskPicklingError, WorkerDiedError
from ..target import TMP_DIR, get_target_root, set_target_root, temporary_path
from ..task import Task, _flatten, _rebuild
from ._executors import (
    BLOCKED,
    FAILED,
    NOT_RUN,
    OK,
    _Executor,
    _ignore,
    _run_in_worker,
    pack_failure,
    unpack_failure,
    unsendable,
    unsendable_outcome,
)

__all__ = ["DaskExecutor", "SchedulerUnreachableError", "dask_setup", "local_cluster", "require_distributed"]

CONNECT_TIMEOUT_S = 5.0
# For a LocalCluster we start: a task whose worker dies is tried on one more
# worker, then fails with KilledWorker (Dask's default allows 3 deaths).
ALLOWED_FAILURES = 1
# Tasks in flight at Dask. The whole DAG, as Dask's own ``client.get`` would send
# it, unless it is larger: Dask orders the tasks (and, for ready ones beyond
# twice its threads, queues them on its scheduler until a thread is free).
# Measured: with the leaves of a fan-in sent in batches and its root after
# them, Dask itself took 2-3x the CPU per task of one graph holding both.
MAX_IN_FLIGHT = 100_000
# Stopping a build's own cluster at once (second Ctrl-C): its workers are killed
# after 0.8 times this, not Dask's 4 s.
KILL_AFTER_S = 0.5

_INSTALL_HINT = "pip install 'stardag[dask]'"


class SchedulerUnreachableError(StardagError, ConnectionError):
    """The Dask scheduler could not be reached, or has no workers."""


def require_distributed() -> None:
    """Raise ImportError saying what to install when dask.distributed is missing (imports nothing)."""
    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ImportError(
            f"the 'dask' execution mode needs dask.distributed, which is not installed; {_INSTALL_HINT}",
            name="distributed",
        )


def _import_distributed() -> Any:
    try:
        import dask
        import distributed
    except ImportError as err:
        raise ImportError(
            f"the 'dask' execution mode needs dask.distributed, which cannot be imported ({err}); "
            f"{_INSTALL_HINT}",
            name="distributed",
        ) from err
    return dask, distributed


def local_cluster(n_workers: int | None = None) -> Any:
    """The LocalCluster a build without a scheduler address starts: ``n_workers`` processes, 1 thread each.

    Its scheduler and nannies run in this process; its workers are child processes
    that ignore Ctrl-C (this module is their preload, see ``dask_setup``), and
    exit at once when this process dies, even by SIGKILL (distributed's own watch
    on a pipe from the parent).
    """
    dask, distributed = _import_distributed()
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          # queued tasks go to a worker only when it has a free thread
                          "distributed.scheduler.worker-saturation": 1.0}):
        try:
            return distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                # Every server on loopback only (scheduler, workers, nannies); no dashboard,
                # the scheduler's HTTP server on a free local port, not 8787 (may be taken).
                host="127.0.0.1", scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                preload=[__name__],
            )
        except Exception as exc:  # Dask says only "Nanny failed to start."
            raise RuntimeError(
                f"the build's Dask LocalCluster could not start ({type(exc).__name__}: {exc}); its "
                "workers' errors are above. Dask starts workers with 'spawn', which imports the main "
                "script again: a script must start its build under 'if __name__ == \"__main__\":'"
            ) from exc


def dask_setup(worker: Any) -> None:
    """Preload of the LocalCluster's workers: Ctrl-C in a terminal (SIGINT to the whole
    process group) must not kill their tasks; the driver stops them when it means to."""
    try:
        signal.signal(signal.SIGINT, _ignore)
    except ValueError:  # not the worker process's main thread: leave it
        pass


async def _close_nannies(nannies: list[Any], timeout: float) -> None:
    """Close the nannies of our LocalCluster, killing their workers after ``0.8 * timeout`` s."""
    await asyncio.gather(*(nanny.close(timeout=timeout) for nanny in nannies), return_exceptions=True)


def _run_task(root: str, data: bytes, *deps: Any) -> Any:
    """Run one task on a Dask worker: the task itself for a plain success, else ``(kind, payload[, task])``.

    ``deps`` are the results of the task's Dask dependencies: the tasks its
    records refer to, or an outcome that says one did not succeed (then the
    task does not run: ``BLOCKED``).
    """
    if root != get_target_root():
        set_target_root(root)
    known: dict[str, Task] = {}
    for dep in deps:
        if isinstance(dep, Task):
            known[dep.id] = dep
        elif type(dep) is tuple and dep[0] == OK:  # a success that also reported complete yields
            known[dep[2].id] = dep[2]
        else:
            return BLOCKED, None
    try:
        task = _rebuild(pickle.loads(data), known)
    except Exception as exc:
        return FAILED, pack_failure(TaskPicklingError(
            f"the task cannot be rebuilt on the Dask worker on {socket.gethostname()!r} "
            f"({type(exc).__name__}: {exc}); workers must be able to import the task's module and "
            "have the driver's versions of the packages it uses"
        ), traceback.format_exc())
    try:
        # Dask computes a result again when the worker that held it died (a task
        # still to run needs it): a task that is complete must not run again.
        if task.complete():
            return task
    except Exception:  # run() and the check after it say what is wrong
        pass
    try:
        kind, payload = _run_in_worker(task)
    except BaseException as exc:  # SystemExit must fail the task, not the worker's thread
        kind, payload = FAILED, (exc, traceback.format_exc())
    if kind == OK:  # payload: dynamic dependencies found complete
        return (OK, payload, task) if payload else task
    if kind == FAILED:  # the error pickled on its own: the driver gets its text at worst
        return FAILED, pack_failure(*payload)
    try:  # a round trip here, where the task can still be named
        pickle.loads(pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        return FAILED, unsendable_outcome(task, exc, "a Dask worker")
    return kind, payload


_CLIENT_CLASS: Any = None


def _client_class(distributed: Any) -> Any:
    """``distributed.Client``, except that one that cannot connect stops the event-loop thread it started.

    (Dask's Client leaves that thread running when its connection fails: a
    process pool started later in the process would then give up fork.)
    """
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        class _Client(distributed.Client):
            def start(self, **kwargs: Any) -> None:
                try:
                    super().start(**kwargs)
                except BaseException:
                    runner = getattr(self, "_loop_runner", None)
                    if runner is not None:
                        with contextlib.suppress(Exception):
                            runner.stop()
                    raise

        _CLIENT_CLASS = _Client
    return _CLIENT_CLASS


def _probe_root(probe: str, token: str) -> tuple[bool, str]:
    """On a worker: read the driver's probe file, then write a reply beside it."""
    try:
        with open(probe, encoding="ascii") as f:
            seen = f.read()
    except OSError as exc:
        return False, f"cannot read the probe file {probe!r} the driver wrote ({exc.strerror or exc})"
    if seen != token:
        return False, f"reads other contents from the probe file {probe!r}"
    reply = temporary_path(os.path.dirname(probe), f"{os.path.basename(probe).partition('.tmp-')[0]}-reply")
    try:
        with open(reply, "w", encoding="ascii") as f:
            f.write(token)
    except OSError as exc:
        return False, f"cannot write {reply!r} ({exc.strerror or exc})"
    return True, reply


def _check_root(client: Any, root: str) -> int:
    """Raise TargetError unless every worker sees and can write the driver's ``root``; return how many answered."""
    token = uuid.uuid4().hex
    # In the temporary files' directory, named as they are: a build killed before it
    # removes them leaves them to the next build's clean-up, not in the root for good.
    tmp_dir = os.path.join(root, TMP_DIR)
    probe = temporary_path(tmp_dir, f"probe-{token}")
    try:
        os.makedirs(tmp_dir, exist_ok=True)
        with open(probe, "w", encoding="ascii") as f:
            f.write(token)
    except OSError as exc:
        raise TargetError(f"cannot write to the target root {root!r} ({exc.strerror or exc})") from exc
    seen = [probe]
    problems = []
    try:
        replies = client.run(_probe_root, probe, token, on_error="return")
        for worker, reply in sorted(replies.items()):
            if isinstance(reply, BaseException):
                problems.append(f"worker {worker}: {type(reply).__name__}: {reply}")
            elif not reply[0]:
                problems.append(f"worker {worker} {reply[1]}")
            elif not os.path.exists(reply[1]):
                problems.append(f"worker {worker} wrote {reply[1]!r}, which the driver does not see")
            else:
                seen.append(reply[1])
    finally:
        for path in seen:
            try:
                os.unlink(path)
            except OSError:
                pass
    if problems:
        raise TargetError(
            f"Dask workers cannot reach the target root {root!r}: {'; '.join(problems)}. Workers must "
            "see the driver's target root at the same path (a shared filesystem); set a shared "
            "directory with set_target_root() or STARDAG_TARGET_ROOT"
        )
    return len(replies)


class _Submitted:
    """A task sent to Dask: its future and the futures of its Dask dependencies."""

    __slots__ = ("task", "future", "deps")

    def __init__(self, task: Task, future: Any, deps: list[Any]):
        self.task = task
        self.future = future
        self.deps = deps


class DaskExecutor(_Executor):
    """Runs sync tasks on a Dask cluster: the one at ``address``, else a LocalCluster of its own.

    The futures of tasks that succeeded are kept until the build ends: their
    results (the tasks, on the workers that ran them) are what later tasks that
    refer to them are built from (computed again, without running, if their
    worker dies).

    Raises (at creation):
        TargetError: a target root the workers cannot reach (the driver refuses in-memory ones).
        SchedulerUnreachableError: no scheduler at ``address`` within the timeout, or no workers.
        ImportError: dask.distributed is not installed.
    """

    def __init__(self, post: Callable[[tuple], None], address: str | None = None,
                 n_workers: int | None = None):
        super().__init__(1, post)
        dask, distributed = _import_distributed()
        self._root = get_target_root()  # the driver has refused an in-memory one
        self._address = address
        self._killed_worker = distributed.KilledWorker
        self._futures: dict[str, _Submitted] = {}  # by key, until the outcome is posted
        # task id -> the future of its latest submission, while it runs or once it succeeded
        self._alive: dict[str, Any] = {}
        self._pending: list[tuple[Task, list[str]]] = []  # submitted, not yet flushed
        self._dead: collections.deque[tuple[str, Any]] = collections.deque()  # futures to forget
        self._cancelled: set[str] = set()
        self._prefix = uuid.uuid4().hex[:8]
        self._counter = itertools.count()
        self._cluster: Any = None
        self._client: Any = None
        self._done: Any = None
        self._more = threading.Event()
        self._stopping = False
        self._waiter: threading.Thread | None = None
        self.n_bytes_shipped = 0  # pickled task data sent to the scheduler
        self.max_task_bytes = 0  # of the largest task sent
        try:
            self._client = self._connect(dask, distributed, address, n_workers)
            self._address = self._client.scheduler.address
            try:
                self._check_workers()
            except (StardagError, ImportError):
                raise
            except Exception as exc:
                raise SchedulerUnreachableError(
                    f"lost the Dask scheduler at {self._address!r} at build start "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
        except BaseException:
            self._close()
            raise
        self.capacity = MAX_IN_FLIGHT
        self._done = distributed.as_completed(loop=self._client.loop)
        self._waiter = threading.Thread(target=self._wait, name="stardag-dask-outcomes", daemon=True)
        self._waiter.start()

    def _connect(self, dask: Any, distributed: Any, address: str | None, n_workers: int | None) -> Any:
        if address is None:
            self._cluster = local_cluster(n_workers)
            return distributed.Client(self._cluster, set_as_default=False)
        try:
            return _client_class(distributed)(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:
            raise SchedulerUnreachableError(
                f"cannot reach the Dask scheduler at {address!r} within {CONNECT_TIMEOUT_S:g} s "
                f"({type(exc).__name__}: {exc}); check the address and that the scheduler runs "
                "('dask scheduler'), or pass no address to start a local cluster"
            ) from exc

    def _check_workers(self) -> None:
        """Check that the workers share the target root (``_check_root``); wait for one if there is none."""
        if _check_root(self._client, self._root):
            return
        try:
            self._client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, asyncio.TimeoutError) as exc:  # two classes before Python 3.11
            raise SchedulerUnreachableError(
                f"the Dask scheduler at {self._address!r} has no workers "
                f"after {CONNECT_TIMEOUT_S:g} s; start some ('dask worker ADDRESS') before building"
            ) from exc
        _check_root(self._client, self._root)

    pipelines = True

    def submit(self, task: Task, resume: Any, after: list[str] = ()) -> None:  # type: ignore[assignment]
        """Queue ``task`` for the next :meth:`flush`; ``after``: its unmet dependencies, all on Dask."""
        self.n_running += 1
        self._pending.append((task, after))

    def flush(self) -> None:
        """Send the queued tasks to the scheduler as one graph."""
        self._forget_dead()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        alive = self._alive
        in_batch: dict[str, str] = {}  # task id -> key, for tasks of this graph
        known = collections.ChainMap(in_batch, alive)
        graph: dict[str, tuple] = {}
        submitted: list[tuple[str, Task, list[str]]] = []
        for task, after in pending:
            try:
                records = _flatten(task, known)
                data = pickle.dumps(records, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                self._post(unsendable(self, task, exc, "a Dask worker"))
                continue
            self.n_bytes_shipped += len(data)
            self.max_task_bytes = max(self.max_task_bytes, len(data))
            dep_ids = list(dict.fromkeys(
                [record[3] for record in records if record[0] is None] + [d for d in after if d in known]
            ))
            # One key group ("stardag"), so that once the build has more tasks in
            # flight than twice Dask's threads, Dask queues the ready ones on the
            # scheduler ("root-ish" tasks) instead of on the workers: a worker that
            # dies then takes only the tasks it was running, not those queued
            # behind them. Unique per submission: a task may be submitted again.
            key = f"stardag-{self._prefix}{next(self._counter)}-{type(task).__name__}-{task.id[:16]}"
            graph[key] = (_run_task, self._root, data, *(known[d] for d in dep_ids))
            in_batch[task.id] = key
            submitted.append((key, task, dep_ids))
        if not submitted:
            return
        futures = self._client.get(graph, [key for key, _, _ in submitted], sync=False)
        for (key, task, dep_ids), future in zip(submitted, futures):
            alive[task.id] = future  # a later submission of the same task replaces it
        for (key, task, dep_ids), future in zip(submitted, futures):
            self._futures[key] = _Submitted(task, future, [alive[d] for d in dep_ids])
            self._done.add(future)
        self._more.set()

    def _forget_dead(self) -> None:
        """Drop the futures of tasks that did not succeed (on the driver's thread, like ``flush``)."""
        alive, dead = self._alive, self._dead
        while dead:
            task_id, future = dead.popleft()
            if alive.get(task_id) is future:
                del alive[task_id]
            future.release()

    def _wait(self) -> None:
        """Our thread: post the outcome of each future as it finishes, until shutdown."""
        while not self._stopping:
            # The iteration ends when no future is left; the event, set after
            # each add, says when to look again (set before the clear is fine:
            # the iteration that follows sees the future).
            for future in self._done:
                self._on_done(future)
            self._more.wait()
            self._more.clear()

    def _on_done(self, future: Any) -> None:
        """Turn a finished future into an outcome for the driver."""
        submitted = self._futures.pop(future.key, None)
        if submitted is None:  # cancelled at shutdown
            return
        task = submitted.task
        status = future.status
        if status == "finished":
            kind, payload = OK, None
            if future.type is tuple:
                try:
                    kind, payload = future.result()[:2]
                    if kind == FAILED:
                        payload = unpack_failure(payload, task, "its Dask worker")
                except Exception as exc:
                    kind, payload = FAILED, (TaskPicklingError(
                        f"the outcome of task {task!r} cannot be read back from its Dask worker: {exc}"
                    ), traceback.format_exc())
        elif future.key in self._cancelled:
            kind, payload = NOT_RUN, None
        elif any(dep.status != "finished" for dep in submitted.deps):
            kind, payload = BLOCKED, None  # Dask lost or failed a dependency: the task did not run
        elif status == "error":
            payload = self._error(task, future)
            kind = FAILED
        else:
            kind, payload = FAILED, (WorkerDiedError(
                f"Dask lost task {task!r} (future {status}): the scheduler at {self._address!r} or "
                "the connection to it may have gone; outputs already written stay valid, and the "
                "next build resumes from them"
            ), "")
        if kind != OK:
            self._dead.append((task.id, future))
        self._post((self, task.id, kind, payload))

    def stop_queued(self) -> None:
        """Tasks not started yet (not sent, waiting on dependencies, queued at Dask) come back ``NOT_RUN``.

        Tasks a worker is processing run to their end: Dask cannot stop a
        running thread, and their outputs are valid.
        """
        pending, self._pending = self._pending, []
        for task, _ in pending:
            self._post((self, task.id, NOT_RUN, None))
        try:
            # What runs in a worker's thread now (processing() also lists what waits in a worker).
            running = {key for keys in self._client.call_stack().values() for key in keys}
        except Exception:  # the connection may be what failed: leave the rest to run
            return
        waiting = [s.future for s in list(self._futures.values())
                   if s.future.key not in running and s.future.status == "pending"]
        if waiting:
            self._cancelled.update(future.key for future in waiting)
            with contextlib.suppress(Exception):
                self._client.cancel(waiting)

    def _error(self, task: Task, future: Any) -> tuple[BaseException, str]:
        exc = future.exception()
        if isinstance(exc, self._killed_worker):
            last = getattr(exc.last_worker, "address", exc.last_worker)
            error = WorkerDiedError(
                f"the Dask worker running task {task!r} died, {exc.allowed_failures + 1} time(s) "
                f"in a row (last worker {last}); a task that kills its worker "
                "(os._exit, a crash, running out of memory) is retried up to the scheduler's "
                "'distributed.scheduler.allowed-failures'; outputs already written stay valid, and "
                "the next build resumes from them"
            )
            error.__cause__ = exc
            return error, ""
        return exc, "".join(traceback.format_tb(future.traceback()))

    def shutdown(self, interrupted: bool) -> None:
        if interrupted and self._futures and self._client is not None:
            futures = [submitted.future for submitted in list(self._futures.values())]
            self._futures.clear()
            try:
                self._client.cancel(futures, force=True)
            except Exception:  # the connection may be what failed
                pass
        self._stopping = True
        self._more.set()
        if self._waiter is not None:
            self._waiter.join(timeout=5)
        self._close(interrupted)

    def _close(self, interrupted: bool = True) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        # Closing after a lost connection may raise too: the error that
        # ended the build is the one to see.
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()
        if cluster is None:
            return
        if interrupted:  # a nanny gives its busy worker 4 s to stop: we do not wait for its task
            with contextlib.suppress(Exception):
                cluster.sync(_close_nannies, list(cluster.workers.values()), KILL_AFTER_S)
        cluster.close()
