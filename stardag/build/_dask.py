"""The ``dask`` configuration: sync tasks run on the workers of a Dask distributed cluster.

The driver keeps deciding what is ready (dynamic dependencies, fail modes,
skips); Dask only runs tasks. Each task is pickled here and submitted through a
``distributed.Client``; a worker runs it under the process pool's contract
(``_run_in_worker``): a task that yields dynamic dependencies which are not
complete returns them, and runs again from the start once they are built.
A plain success returns ``None``, so the future's result type alone tells the
driver; other outcomes are fetched. Tasks with ``run_aio`` never come here:
they run on the driver's event loop.

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
import concurrent.futures
import contextlib
import importlib.util
import itertools
import os
import pickle
import socket
import threading
import traceback
import uuid
from typing import Any, Callable

from ..errors import StardagError, TargetError, TaskPicklingError, WorkerDiedError
from ..target import get_target_root, set_target_root
from ..task import Task
from ._executors import FAILED, OK, _Executor, _run_in_worker, sendable, unsendable

__all__ = ["DaskExecutor", "SchedulerUnreachableError", "local_cluster", "require_distributed"]

CONNECT_TIMEOUT_S = 5.0
# For a LocalCluster we start: a task whose worker dies is tried on one more
# worker, then fails with KilledWorker (Dask's default allows 3 deaths).
ALLOWED_FAILURES = 1
# Tasks in flight per worker thread: enough waiting at the scheduler that a
# worker never idles for a round trip to the driver (measured: 2 is 2x slower).
TASKS_PER_THREAD = 8

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
    """The LocalCluster a build without a scheduler address starts: ``n_workers`` processes, 1 thread each."""
    dask, distributed = _import_distributed()
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          # queued tasks go to a worker only when it has a free thread
                          "distributed.scheduler.worker-saturation": 1.0}):
        return distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
            # Every server on loopback only (scheduler, workers, nannies); no dashboard,
            # the scheduler's HTTP server on a free local port, not 8787 (may be taken).
            host="127.0.0.1", scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )


def _run_on_worker(root: str, data: bytes) -> tuple[int, Any] | None:
    """Run one task on a Dask worker: ``None`` for a plain success, else ``(kind, payload)``."""
    if root != get_target_root():
        set_target_root(root)
    try:
        task = pickle.loads(data)
    except Exception as exc:
        return FAILED, (TaskPicklingError(
            f"the task cannot be rebuilt on the Dask worker on {socket.gethostname()!r} "
            f"({type(exc).__name__}: {exc}); workers must be able to import the task's module and "
            "have the driver's versions of the packages it uses"
        ), traceback.format_exc())
    try:
        kind, payload = _run_in_worker(task)
    except BaseException as exc:  # SystemExit must fail the task, not the worker's thread
        kind, payload = FAILED, (exc, traceback.format_exc())
    if kind == OK and not payload:  # payload: dynamic dependencies found complete
        return None
    try:  # a round trip here, where the original error can still be described
        pickle.loads(pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        return sendable(kind, payload, task, exc, "a Dask worker")
    return kind, payload


def _probe_scheduler(address: str) -> None:
    """Connect to the scheduler once and hang up; raise OSError when it cannot be reached.

    A Client that fails to connect leaves its event-loop thread running; this
    probe runs on a loop of its own, in a thread that ends with it.
    """
    from distributed.comm import connect

    async def probe() -> None:
        comm = await connect(address, timeout=CONNECT_TIMEOUT_S)
        await comm.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stardag-dask-probe") as pool:
        pool.submit(asyncio.run, probe()).result()


def _probe_root(probe: str, token: str) -> tuple[bool, str]:
    """On a worker: read the driver's probe file, then write a reply beside it."""
    try:
        with open(probe, encoding="ascii") as f:
            seen = f.read()
    except OSError as exc:
        return False, f"cannot read the probe file {probe!r} the driver wrote ({exc.strerror or exc})"
    if seen != token:
        return False, f"reads other contents from the probe file {probe!r}"
    reply = f"{probe}-{socket.gethostname()}-{os.getpid()}"
    try:
        with open(reply, "w", encoding="ascii") as f:
            f.write(token)
    except OSError as exc:
        return False, f"cannot write {reply!r} ({exc.strerror or exc})"
    return True, reply


def _check_root(client: Any, root: str) -> None:
    """Raise TargetError unless every worker sees and can write the driver's ``root``."""
    token = uuid.uuid4().hex
    probe = os.path.join(root, f".stardag-probe-{token}")
    try:
        os.makedirs(root, exist_ok=True)
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


class DaskExecutor(_Executor):
    """Runs sync tasks on a Dask cluster: the one at ``address``, else a LocalCluster of its own.

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
        self._futures: dict[str, tuple[Task, Any]] = {}
        self._prefix = uuid.uuid4().hex[:8]
        self._counter = itertools.count()
        self._cluster: Any = None
        self._client: Any = None
        self._done: Any = None
        self._more = threading.Event()
        self._stopping = False
        self._waiter: threading.Thread | None = None
        try:
            self._client = self._connect(dask, distributed, address, n_workers)
            self._address = self._client.scheduler.address
            try:
                n_threads = self._wait_for_threads()
                _check_root(self._client, self._root)
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
        self.capacity = TASKS_PER_THREAD * n_threads
        self._done = distributed.as_completed(loop=self._client.loop)
        self._waiter = threading.Thread(target=self._wait, name="stardag-dask-outcomes", daemon=True)
        self._waiter.start()

    def _connect(self, dask: Any, distributed: Any, address: str | None, n_workers: int | None) -> Any:
        if address is None:
            self._cluster = local_cluster(n_workers)
            return distributed.Client(self._cluster, set_as_default=False)
        try:
            _probe_scheduler(address)
            return distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:
            raise SchedulerUnreachableError(
                f"cannot reach the Dask scheduler at {address!r} within {CONNECT_TIMEOUT_S:g} s "
                f"({type(exc).__name__}: {exc}); check the address and that the scheduler runs "
                "('dask scheduler'), or pass no address to start a local cluster"
            ) from exc

    def _wait_for_threads(self) -> int:
        n_threads = sum(self._client.nthreads().values())
        if n_threads:
            return n_threads
        try:
            self._client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise SchedulerUnreachableError(
                f"the Dask scheduler at {self._address!r} has no workers "
                f"after {CONNECT_TIMEOUT_S:g} s; start some ('dask worker ADDRESS') before building"
            ) from exc
        return sum(self._client.nthreads().values())

    def submit(self, task: Task, resume: Any) -> None:
        self.n_running += 1
        try:
            data = pickle.dumps(task, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            self._post(unsendable(self, task, exc, "a Dask worker"))
            return
        # One key group ("stardag"), so that once the build has more tasks in
        # flight than twice Dask's threads, Dask queues them on the scheduler
        # ("root-ish" tasks) instead of on the workers: a worker that dies then
        # takes only the tasks it was running, not those queued behind them.
        # Unique per submission: a task that yielded dynamic dependencies comes back.
        key = f"stardag-{self._prefix}{next(self._counter)}-{type(task).__name__}-{task.id[:16]}"
        future = self._client.submit(_run_on_worker, self._root, data, key=key, pure=False)
        self._futures[key] = (task, future)
        self._done.add(future)
        self._more.set()

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
        entry = self._futures.pop(future.key, None)
        if entry is None:  # cancelled at shutdown
            return
        task = entry[0]
        status = future.status
        if status == "finished":
            kind, payload = OK, None
            if future.type is tuple:
                try:
                    kind, payload = future.result()
                except Exception as exc:
                    kind, payload = FAILED, (TaskPicklingError(
                        f"the outcome of task {task!r} cannot be read back from its Dask worker: {exc}"
                    ), traceback.format_exc())
        elif status == "error":
            payload = self._error(task, future)
            kind = FAILED
        else:
            kind, payload = FAILED, (WorkerDiedError(
                f"Dask lost task {task!r} (future {status}): the scheduler at {self._address!r} or "
                "the connection to it may have gone; outputs already written stay valid, and the "
                "next build resumes from them"
            ), "")
        future.release()
        self._post((self, task.id, kind, payload))

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
            futures = [future for _, future in list(self._futures.values())]
            self._futures.clear()
            try:
                self._client.cancel(futures, force=True)
            except Exception:  # the connection may be what failed
                pass
        self._stopping = True
        self._more.set()
        if self._waiter is not None:
            self._waiter.join(timeout=5)
        self._close()

    def _close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        # Closing after a lost connection may raise too: the error that
        # ended the build is the one to see.
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()
        if cluster is not None:
            cluster.close()
