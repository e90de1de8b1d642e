"""The build loop: the one place that waits, and the only code that changes scheduler state.

It discovers the graph (an explicit-stack walk of ``requires()``, skipping
tasks already complete), hands ready tasks to executors, and turns their
outcomes into scheduler updates, until nothing is left to run. A task whose
``requires()`` or ``complete()`` raises fails like a task whose ``run()`` does:
under ``FailMode.CONTINUE`` the rest of the graph still builds.

Ctrl-C (and SIGTERM, with a pool) stops the build: the first starts nothing new
and lets the running tasks finish, the second stops them (``_stop.py``). Either
way the build ends with ``BuildInterrupted``, which carries the summary.

While it runs, full (oldest-generation) garbage collections are deferred: a
large graph is long-lived by nature, and collecting it again and again made a
100,000-task build cost twice as much per task as a 10,000-task one. Young
collections still run, so a task's short-lived cycles are still freed.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import queue
import signal
import time
import traceback
from types import GeneratorType
from typing import Any

from ..errors import (
    BuildInterrupted,
    DependencyCycleError,
    TargetError,
    TaskDefinitionError,
    TaskOutputMissingError,
)
from ..target import get_target_root, is_memory_root, remove_stale_temporary_files
from ..task import Task, flatten_tasks, task_has_run, task_has_run_aio
from . import _executors as ex
from ._runner import (
    ASYNC,
    BLOCKING,
    DASK,
    PROCESS,
    THREAD,
    DefaultExecutionModeSelector,
    HybridConcurrentTaskRunner,
    _SequentialSelector,
)
from ._scheduler import UPSTREAM_FAILED, WAITING, Scheduler
from ._stop import StopSignals
from ._summary import BuildStatus, BuildSummary, FailMode, TaskFailure

__all__ = ["Driver"]

_log = logging.getLogger("stardag")
_OTHER_PROCESSES = (PROCESS, DASK)
# A task whose dynamic dependencies a worker process reports missing is run
# again from the start; each run must get further (yield a task not built yet).
# This bounds the runs of a run() that yields new tasks every time.
MAX_RERUNS = 1000
_POOLS = (THREAD, PROCESS, DASK)  # SIGTERM stops a build like Ctrl-C once it runs one
_BY_CLASS = (DefaultExecutionModeSelector.__call__, _SequentialSelector.__call__)


# The longest the driver blocks on worker threads before it looks at the event
# loop again (a Ctrl-C that only cancels the build's task is seen then).
_POLL_S = 0.5
_WAKE = object()  # put on ``_Inbox.threaded`` by wake(): not an outcome


class _Inbox:
    """Outcomes waiting for the driver.

    Executors on the loop's thread append to ``items``; worker threads put on
    ``threaded`` and wake the loop only while the driver awaits it. When only
    threads have work in flight and the driver owns its loop, it blocks on
    ``threaded`` directly (a thread hand-off, not a trip through the selector)
    and is ``lazy``: an outcome posted as not urgent (a task done, its worker
    busy with the next one) goes to ``deferred`` and wakes nobody. The driver
    takes it with the next urgent one, at the latest when the thread pool's
    queue runs dry; that is soon enough, as the tasks it would dispatch
    meanwhile could only start after those already queued. Each wake-up costs a
    hand-off of the GIL to the driver and back: on CPU-bound tasks, one per task
    cost more than the contention between the worker threads themselves.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.items: collections.deque[tuple] = collections.deque()
        self.threaded: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.deferred: collections.deque[tuple] = collections.deque()  # appended by worker threads
        self.lazy = False
        self._loop = loop
        self._waiter: asyncio.Future | None = None
        self._awaiting = False
        self._wake_pending = False

    def post(self, outcome: tuple) -> None:
        self.items.append(outcome)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def post_threadsafe(self, outcome: tuple, urgent: bool = True) -> None:
        if not urgent and self.lazy:
            self.deferred.append(outcome)
            return
        self.threaded.put(outcome)
        # The put comes before the flag test, and the driver sets the flag before
        # it last looks at the queue: one of the two always sees the other.
        if self._awaiting and not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._wake)

    def wake(self) -> None:
        """Wake the driver wherever it waits (from any thread, or a signal handler)."""
        self.threaded.put(_WAKE)
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nothing waits
            pass

    def _wake(self) -> None:
        self._wake_pending = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _time_up(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drain_threaded(self) -> None:
        threaded, items, deferred = self.threaded, self.items, self.deferred
        while deferred:
            items.append(deferred.popleft())
        while not threaded.empty():
            outcome = threaded.get_nowait()
            if outcome is not _WAKE:
                items.append(outcome)

    async def wait(self, timeout: float | None = None) -> None:
        """Wait for an outcome, or ``timeout`` seconds."""
        self._awaiting = True
        timer = None
        try:
            if self.items or self.deferred or not self.threaded.empty():
                return
            self._waiter = self._loop.create_future()
            if timeout is not None:
                timer = self._loop.call_later(timeout, self._time_up)
            await self._waiter
        finally:
            self._awaiting = False
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def wait_threads(self, timeout: float | None = None) -> None:
        """Block until a worker thread posts an urgent outcome, yielding to the loop every ``_POLL_S`` (or ``timeout``)."""
        self.lazy = True
        try:
            if self.items:
                return
            try:
                outcome = self.threaded.get(timeout=_POLL_S if timeout is None else timeout)
            except queue.Empty:
                await asyncio.sleep(0)
            else:
                if outcome is not _WAKE:
                    self.items.append(outcome)
        finally:
            self.lazy = False


def _short_cycle(task_ids: list[str], tasks: dict[str, Task]) -> str:
    return " -> ".join(repr(tasks[t]) if t in tasks else t for t in task_ids)


class Driver:
    """One build: discovery, dispatch, outcomes."""

    def __init__(self, runner: HybridConcurrentTaskRunner, fail_mode: FailMode, owns_loop: bool = False,
                 rebuild: Any = None):
        if not isinstance(fail_mode, FailMode):
            raise ValueError(f"fail_mode must be a FailMode, got {fail_mode!r}")
        if not isinstance(runner, HybridConcurrentTaskRunner):
            raise TypeError(
                f"task_runner must be a HybridConcurrentTaskRunner, got {type(runner).__name__}: {runner!r}; "
                "e.g. HybridConcurrentTaskRunner(execution_mode_selector="
                "DefaultExecutionModeSelector(sync_run_default='thread'))"
            )
        self.runner = runner
        self.owns_loop = owns_loop
        self.registry = runner.registry
        self.fail_mode = fail_mode
        self.scheduler = Scheduler()
        self.tasks: dict[str, Task] = {}
        self.complete_ids: set[str] = set()
        self.failures: list[TaskFailure] = []
        self.n_succeeded = 0
        self.n_in_flight = 0
        self.stopping = False  # start nothing new: a fail-fast failure, or a signal
        self.signals = StopSignals(self._on_signal)
        self._signalled = False  # a signal the loop has not acted on yet
        self._started = False  # the registry heard build_start
        self._early_failures: list[tuple[Task, BaseException]] = []  # for the registry, after build_start
        self._resume: dict[str, Any] = {}
        self._restarts: set[str] = set()  # asked for dynamic deps: started (and reported) before
        # Tasks a worker process stopped because dynamic dependencies were missing:
        # how often, and the ids it waited on last time.
        self._reruns: dict[str, int] = {}
        self._waited_on: dict[str, set[str]] = {}
        self._rebuild_roots = flatten_tasks(rebuild)
        self._rebuild = {task.id for task in self._rebuild_roots}
        self._executor_of_class: dict[type, Any] = {}
        self._executors: dict[str, Any] = {}
        self._flushing: list[Any] = []  # executors that buffer submissions (Dask)
        # Pipelining (Dask): tasks handed to an executor that orders them itself,
        # and per waiting dependent, how many of its unmet dependencies are not.
        self._pipelined: set[str] = set()
        self._outside: dict[str, int] = {}
        self._pipelinable: collections.deque[str] = collections.deque()  # waited for capacity
        self._unannounced: set[str] = set()  # started early: the registry hears when it runs
        self._checked: set[type] = set()

    # -- discovery ---------------------------------------------------------

    def _check_class(self, task: Task) -> None:
        cls = type(task)
        if not (task_has_run(cls) or task_has_run_aio(cls)):
            raise TaskDefinitionError(
                f"task {task!r} defines neither run() nor run_aio(); implement one of them in "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        self._checked.add(cls)

    def _requires(self, task: Task) -> list[Task] | None:
        """The tasks ``task`` requires, or ``None`` when ``requires()`` raised (the task failed)."""
        try:
            return flatten_tasks(task.requires())
        except Exception as exc:
            self._fail_unrun(task, "requires()", exc)
            return None

    def _is_complete(self, task: Task) -> bool | None:
        """Whether ``task`` is complete, or ``None`` when ``complete()`` raised (the task failed)."""
        if type(task) not in self._checked:
            self._check_class(task)
        if self._rebuild and task.id in self._rebuild:
            self._remove_output(task)
            return False
        try:
            complete = task.complete()
        except Exception as exc:
            self._fail_unrun(task, "complete()", exc)
            return None
        if complete:
            self.complete_ids.add(task.id)
            return True
        return False

    def _remove_output(self, task: Task) -> None:
        """A task to rebuild: delete its output, so it runs and its completion check means something."""
        self._rebuild.discard(task.id)
        target = task.output()
        if target is None:  # nothing to delete: it runs, as in every build
            return
        remove = getattr(target, "remove", None)
        if remove is None:
            raise TargetError(
                f"cannot rebuild task {task!r}: its output {target!r} has no remove(); delete the "
                "output yourself, then build"
            )
        remove()

    def _fail_unrun(self, task: Task, method: str, exc: Exception) -> None:
        """``task``'s ``requires()`` or ``complete()`` raised: it fails, what needs it is upstream-failed."""
        error = TaskDefinitionError(f"{method} of task {task!r} failed: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        task_id = task.id
        self.tasks[task_id] = task
        self.scheduler.add_failed(task_id)
        self.failures.append(TaskFailure(task_id, repr(task), error, "".join(traceback.format_exception(exc))))
        if self._started:
            self.registry.task_fail(task, error)
        else:
            self._early_failures.append((task, error))
        if self.fail_mode is FailMode.FAIL_FAST:
            self._stop_starting()

    def discover(self, roots: list[Task]) -> list[str]:
        """Add every incomplete task reachable from ``roots``; return the roots' ids in the graph.

        A task whose ``requires()`` or ``complete()`` raises is added as failed.
        Once a fail-fast build stops, discovery stops too.
        """
        tasks, complete_ids, add = self.tasks, self.complete_ids, self.scheduler.add
        found: list[str] = []
        for root in roots:
            if not isinstance(root, Task):
                raise TypeError(f"expected tasks to build, got {type(root).__name__}: {root!r}")
            root_id = root.id
            if root_id in tasks:
                found.append(root_id)
                continue
            if root_id in complete_ids:
                continue
            complete = self._is_complete(root)
            if complete:
                continue
            deps = None if complete is None else self._requires(root)
            if deps is None:  # failed
                found.append(root_id)
                if self.stopping:
                    return found
                continue
            # Depth-first, post-order: a task is added after all its dependencies.
            path = [root]
            on_path = {root_id}
            iters = [iter(deps)]
            waits: list[list[str]] = [[]]
            while iters:
                for dep in iters[-1]:
                    dep_id = dep.id
                    if dep_id in tasks:
                        waits[-1].append(dep_id)
                    elif dep_id in on_path:
                        ids = [t.id for t in path]
                        cycle = ids[ids.index(dep_id):] + [dep_id]
                        raise DependencyCycleError(
                            f"dependency cycle: {_short_cycle(cycle, {t.id: t for t in path})}", cycle
                        )
                    elif dep_id not in complete_ids:
                        complete = self._is_complete(dep)
                        if complete:
                            continue
                        deps = None if complete is None else self._requires(dep)
                        if deps is not None:
                            path.append(dep)
                            on_path.add(dep_id)
                            iters.append(iter(deps))
                            waits.append([])
                            break
                        waits[-1].append(dep_id)  # failed: what needs it is upstream-failed
                        if self.stopping:
                            return found
                else:
                    task = path.pop()
                    iters.pop()
                    task_id = task.id
                    on_path.discard(task_id)
                    tasks[task_id] = task
                    add(task_id, waits.pop())
                    if waits:
                        waits[-1].append(task_id)
            found.append(root_id)
        return found

    # -- dispatch ----------------------------------------------------------

    def _executor_for(self, task: Task) -> Any:
        mode = self.runner.mode(task)
        executor = self._executors.get(mode)
        if executor is None:
            executor = self._executors[mode] = self._make_executor(mode)
        # Only the built-in selectors decide by class alone; a custom one may look
        # at parameters, so it is asked about every task.
        if type(self.runner.execution_mode_selector).__call__ in _BY_CLASS:
            self._executor_of_class[type(task)] = executor
        return executor

    def _make_executor(self, mode: str) -> Any:
        capacity = self.runner.capacity(mode)
        if self.runner.max_in_flight is not None:
            capacity = min(capacity, self.runner.max_in_flight)
        if mode == ASYNC:
            return ex.AsyncExecutor(capacity, self.inbox.post)
        if mode in _POOLS:
            self.signals.handle(signal.SIGTERM)
        if mode == THREAD:
            return ex.ThreadExecutor(capacity, self.inbox.post_threadsafe)
        if mode == PROCESS:
            self._check_root(mode)
            executor = ex.ProcessExecutor(capacity, self.inbox.post, self.runner.process_start_method)
            executor.start_workers()
            return executor
        if mode == DASK:
            self._check_root(mode)
            from ._dask import DaskExecutor  # dask is optional: imported by the first Dask build

            runner = self.runner
            executor = DaskExecutor(self.inbox.post_threadsafe, runner.dask_address, runner.dask_n_workers)
            self._flushing.append(executor)
            return executor
        assert mode == BLOCKING
        return ex.InlineExecutor(capacity, self.inbox.post, self.signals)

    def _start(self, executor: Any, task_id: str) -> None:
        task = self.tasks[task_id]
        if task_id not in self._restarts:
            self.registry.task_start(task)
        self.n_in_flight += 1
        executor.submit(task, self._resume.pop(task_id, None))
        if executor.pipelines:
            self._unannounced.discard(task_id)
            self._pipeline(executor, [task_id])

    # -- pipelining: dependents handed over before their dependencies are done --

    def _pipeline(self, executor: Any, started: list[str]) -> None:
        """``started`` now run on ``executor``: hand it each dependent that waits on nothing else.

        The executor runs such a task once its dependencies succeed, without a
        round trip through the driver; if one does not, the task comes back
        ``BLOCKED`` and waits again. A dependent is looked at once per edge.
        """
        scheduler, pipelined, outside = self.scheduler, self._pipelined, self._outside
        pipelined.update(started)
        stack = list(started)
        while stack:
            for dependent in scheduler.waiting_dependents(stack.pop()):
                left = outside.get(dependent)
                if left is None:
                    left = sum(dep not in pipelined for dep in scheduler.unmet(dependent))
                else:
                    left -= 1
                outside[dependent] = left
                if left or self.stopping or self._executor_of(dependent) is not executor:
                    continue
                if executor.n_running < executor.capacity:
                    self._start_early(executor, dependent)
                    stack.append(dependent)
                else:
                    self._pipelinable.append(dependent)

    def _executor_of(self, task_id: str) -> Any:
        task = self.tasks[task_id]
        return self._executor_of_class.get(type(task)) or self._executor_for(task)

    def _start_early(self, executor: Any, task_id: str) -> None:
        self.scheduler.start_early(task_id)
        self._unannounced.add(task_id)
        self._pipelined.add(task_id)
        self.n_in_flight += 1
        executor.submit(self.tasks[task_id], None, self.scheduler.unmet(task_id))

    def _start_pipelinable(self, executor: Any) -> None:
        """Capacity freed up: start tasks that could have started early but found none."""
        waiting, started = self._pipelinable, []
        while waiting and executor.n_running < executor.capacity:
            task_id = waiting.popleft()
            if self.scheduler.state(task_id) == WAITING and self._outside.get(task_id) == 0 \
                    and self._executor_of(task_id) is executor:
                self._start_early(executor, task_id)
                started.append(task_id)
        if started:
            self._pipeline(executor, started)

    def _settle(self, task_id: str, kind: int) -> None:
        """An outcome from a pipelining executor: leave the pipeline, tell the registry of an early start."""
        if task_id in self._pipelined:
            self._pipelined.discard(task_id)
            if kind != ex.OK:  # its waiting dependents wait on one more task outside again
                outside = self._outside
                for dependent in self.scheduler.waiting_dependents(task_id):
                    if dependent in outside:
                        outside[dependent] += 1
        if task_id in self._unannounced and kind in (ex.OK, ex.FAILED, ex.DEPS):
            self._unannounced.discard(task_id)
            if task_id not in self._restarts:
                self.registry.task_start(self.tasks[task_id])

    def _requeue(self, task_id: str) -> None:
        """A task started early did not run (a dependency did not succeed): it waits again."""
        self.scheduler.requeue(task_id)

    def _dispatch_ready(self) -> None:
        scheduler, tasks, by_class = self.scheduler, self.tasks, self._executor_of_class
        limit = self.runner.max_in_flight
        while scheduler.has_ready():
            if limit is not None and self.n_in_flight >= limit:
                return
            task_id = scheduler.pop_ready()
            task = tasks[task_id]
            executor = by_class.get(type(task)) or self._executor_for(task)
            if executor.n_running < executor.capacity:
                self._start(executor, task_id)
            else:
                executor.backlog.append(task_id)

    # -- outcomes ----------------------------------------------------------

    def _handle(self, outcome: tuple) -> None:
        executor, task_id, kind, payload = outcome
        executor.n_running -= 1
        self.n_in_flight -= 1
        if executor.pipelines:
            self._settle(task_id, kind)
        if kind == ex.OK:
            if payload:
                self._note_complete(payload)
            self.scheduler.done(task_id)
            self.n_succeeded += 1
            self.registry.task_complete(self.tasks[task_id])
        elif kind == ex.DEPS:
            self._extend(task_id, *payload)
        elif kind == ex.FAILED:
            self._fail(task_id, *payload)
        elif kind == ex.BLOCKED:
            self._requeue(task_id)
        # else NOT_RUN: the build stopped before this task started; it stays unfinished
        if (executor.backlog or self._pipelinable) and not self.stopping:
            if executor.backlog:
                self._start(executor, executor.backlog.popleft())
            else:
                self._start_pipelinable(executor)

    def _note_complete(self, tasks: list[Task]) -> None:
        for task in tasks:
            task_id = task.id
            if task_id not in self.tasks:
                self.complete_ids.add(task_id)

    def _extend(self, task_id: str, deps: list[Task], resume: Any) -> None:
        if self.stopping:  # the task stays unfinished: not run
            if isinstance(resume, GeneratorType):
                resume.close()
            return
        if resume is None:  # a worker process stopped the task: it runs again from the start
            error = self._no_progress(task_id, deps)
            if error is not None:
                self._fail(task_id, error, "")
                return
        try:
            dep_ids = self.discover(deps)
        except DependencyCycleError:
            raise
        except Exception as exc:  # a bad dynamic dependency fails its task, not the build
            self._fail(task_id, exc, "")
            return
        if self.stopping:  # discovery failed a task under fail-fast: this one stays unfinished
            if isinstance(resume, GeneratorType):
                resume.close()
            return
        self._restarts.add(task_id)
        if resume is not None:
            self._resume[task_id] = (resume, deps)
        if task_id in dep_ids:
            raise DependencyCycleError(
                f"dependency cycle: task {self.tasks[task_id]!r} yielded itself as a dependency",
                [task_id, task_id],
            )
        if self.scheduler.extend(task_id, dep_ids) == UPSTREAM_FAILED:
            suspended = self._resume.pop(task_id, None)
            if suspended is not None and isinstance(suspended[0], GeneratorType):
                suspended[0].close()

    def _no_progress(self, task_id: str, deps: list[Task]) -> BaseException | None:
        """Why running ``task_id`` again would not get further than the run that yielded ``deps``.

        The tasks its previous run waited on have all run (or were complete) since:
        one of them reported missing again means its output is not what the worker sees.
        """
        task = self.tasks[task_id]
        waited_on = self._waited_on.get(task_id, ())
        for dep in deps:
            if dep.id not in waited_on:
                continue
            if ex.declares_no_output(dep):
                return TaskOutputMissingError(
                    f"task {task!r} yielded {dep!r}, which has no output: a worker process cannot tell "
                    f"that it ran, and would run {task!r} again for ever; give {type(dep).__name__} "
                    "an output, or run the task that yields it in 'thread' mode"
                )
            return TaskOutputMissingError(
                f"task {task!r} yielded {dep!r} again after it ran (or was found complete), but its "
                f"output {ex.describe_output(dep)} is still missing in the worker process that ran "
                f"{task!r}; outputs must be visible to every process of the build"
            )
        self._waited_on[task_id] = {dep.id for dep in deps}
        n_runs = self._reruns[task_id] = self._reruns.get(task_id, 0) + 1
        if n_runs > MAX_RERUNS:
            return TaskDefinitionError(
                f"task {task!r} was run {n_runs} times and yielded tasks not built yet every time; "
                "in a worker process run() starts again after its dynamic dependencies are built, so "
                "it must yield the same tasks again (yield many at once rather than one per run)"
            )
        return None

    def _fail(self, task_id: str, error: BaseException, text: str) -> None:
        task = self.tasks[task_id]
        text += self._discard_output(task)
        self.scheduler.failed(task_id)
        self.failures.append(TaskFailure(task_id, repr(task), error, text))
        self.registry.task_fail(task, error)
        if self.fail_mode is FailMode.FAIL_FAST:
            self._stop_starting()

    @staticmethod
    def _discard_output(task: Task) -> str:
        """A task that failed after it started: what it saved before failing is not a result.

        Left in place, it would count as complete in the next build and be handed
        to the tasks that depend on it. The task was incomplete when it started
        (or its output was deleted for a rebuild), so nothing older is lost.
        Returns a note for the failure's text when the output could not be removed.
        """
        try:
            remove = getattr(task.output(), "remove", None)
            if remove is not None:
                remove()
        except Exception as exc:  # the task's own failure stays the one reported
            return (f"\nwhat the task saved before it failed could not be removed ({type(exc).__name__}: "
                    f"{exc}): delete its output by hand, or the next build takes it as complete\n")
        return ""

    def _stop_starting(self) -> None:
        """Start nothing new; tasks handed to an executor but not started come back ``NOT_RUN``."""
        if not self.stopping:
            self.stopping = True
            self._cancel_unstarted()

    def _cancel_unstarted(self) -> None:
        self.scheduler.cancel()
        for executor in self._executors.values():
            executor.backlog.clear()
            executor.stop_queued()

    # -- signals -----------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        """Ctrl-C or SIGTERM arrived (in a signal handler): tell the user, wake the loop.

        Setting ``stopping`` here keeps an inline task that just returned from
        starting the next one; the loop does the rest on its next turn.
        """
        first = not self.stopping
        self.stopping = True
        self._signalled = first or self.signals.n_received > 1
        threads = self._executors.get(THREAD)
        if threads is not None:  # its queued tasks must not start before the loop wakes: a flag
            threads.stop_queued()
        try:
            name = signal.Signals(signum).name
            if self.signals.n_received == 1:
                again = "Ctrl-C" if signum == signal.SIGINT else name
                _log.warning("stardag: %s: stopping the build; no new task starts, the running ones "
                             "finish (%s again stops them now)", name, again)
            elif self.signals.n_received == 2:
                _log.warning("stardag: %s again: stopping the running tasks now", name)
        except Exception:  # the handler may have interrupted a write to the same stream
            pass
        self.inbox.wake()

    # -- the loop ----------------------------------------------------------

    def _check_root(self, mode: str) -> None:
        """Tasks in other processes (``process``, ``dask``) need a root they can all reach."""
        root = get_target_root()
        if is_memory_root(root):
            raise TargetError(
                f"the in-memory target root {root!r} cannot be shared with the worker processes of "
                f"{mode!r} mode; set a directory they all reach as target root (set_target_root or "
                "STARDAG_TARGET_ROOT) or use thread mode"
            )

    async def run(self, roots: Any) -> BuildSummary:
        if roots is None:  # requires() may return None; a build of None is a slip (a function that returned nothing)
            raise TypeError("build() got None: pass a task or a list of tasks")
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], 1000))
        try:
            summary = await self._run(flatten_tasks(roots))
        finally:
            gc.set_threshold(*thresholds)
        return summary

    async def _run(self, roots: list[Task]) -> BuildSummary:
        started = time.perf_counter()
        root = get_target_root()  # a bad STARDAG_TARGET_ROOTS fails here, before any task runs
        for mode in _OTHER_PROCESSES:
            if self.runner.may_use(mode):
                self._check_root(mode)
        remove_stale_temporary_files(root)
        self.inbox = _Inbox(asyncio.get_running_loop())
        signals = self.signals
        signals.handle(signal.SIGINT)
        hard = True  # stop what still runs: after an error, a cancellation or a second signal
        try:
            signals.raise_now = True  # nothing runs yet: Ctrl-C may stop discovery anywhere
            self.discover(roots + self._rebuild_roots)
            signals.raise_now = False
            self._started = True
            self.registry.build_start(roots)
            for task, error in self._early_failures:
                self.registry.task_fail(task, error)
            await self._loop()
            hard = self.n_in_flight > 0
        except KeyboardInterrupt:  # a second signal in an inline task, or one not ours
            if signals.first is None:
                signals.first = signal.SIGINT
        finally:
            signals.raise_now = False
            try:
                for executor in self._executors.values():
                    executor.shutdown(hard)
                    await executor.aclose()
                # Temporary files of workers that died or were stopped mid-write.
                remove_stale_temporary_files(root)
            finally:
                signals.restore()  # only now: a Ctrl-C during the shutdown must not cut it short
        summary = self._summary(time.perf_counter() - started)
        if self._started:
            self.registry.build_complete(summary)
        if signals.first is not None:
            raise BuildInterrupted(summary, signals.first)
        return summary

    async def _loop(self) -> None:
        scheduler, inbox, handle, flushing = self.scheduler, self.inbox, self._handle, self._flushing
        items = inbox.items
        while True:
            if self._signalled:
                self._signalled = False
                if self.signals.n_received > 1:
                    return  # stop now: the shutdown stops what still runs
                self._cancel_unstarted()
                _log.debug("stardag: the tasks not started are cancelled; waiting for the running ones")
            if not self.stopping:
                self._dispatch_ready()
            inbox.drain_threaded()
            if items:
                while items:
                    handle(items.popleft())
                continue
            if self.n_in_flight == 0:
                if self.stopping or scheduler.n_unfinished == 0:
                    return
                cycle = scheduler.find_cycle()
                if cycle is None:  # pragma: no cover - would be a scheduler bug
                    raise RuntimeError("build stalled with unfinished tasks and no cycle")
                raise DependencyCycleError(f"dependency cycle: {_short_cycle(cycle, self.tasks)}", cycle)
            if flushing:
                for executor in flushing:
                    executor.flush()
            threads = self._executors.get(THREAD)
            # A serial class's running task, with others of its class waiting, is
            # looked at every REVIEW_S: it may turn out to wait (see _gil.py).
            timeout = threads.review() if threads is not None and threads.gate.serial else None
            if self.owns_loop and threads is not None and threads.n_running == self.n_in_flight:
                await inbox.wait_threads(timeout)
            else:
                await inbox.wait(timeout)

    def _summary(self, duration: float) -> BuildSummary:
        n_failed = len(self.failures)
        n_upstream = self.scheduler.n_upstream_failed
        n_not_run = self.scheduler.n_unfinished  # not started, or stopped while running
        if self.signals.first is not None:
            status = BuildStatus.INTERRUPTED
        elif n_failed == 0 and n_upstream == 0 and n_not_run == 0:
            status = BuildStatus.SUCCESS
        else:
            status = BuildStatus.FAILURE
        return BuildSummary(
            status=status,
            n_discovered=len(self.tasks) + len(self.complete_ids),
            n_previously_complete=len(self.complete_ids),
            n_succeeded=self.n_succeeded,
            n_failed=n_failed,
            n_upstream_failed=n_upstream,
            n_not_run=n_not_run,
            failures=tuple(self.failures),
            duration_s=duration,
        )
