"""The ``dask`` configuration on a LocalCluster of 2 worker processes.

One cluster (conftest's ``dask_cluster``) serves the whole module (starting one
costs seconds); each build connects to it by address, as a build on a real
cluster would. The cluster lives in a child process: a Dask scheduler hosted
here would leave a thread behind (Dask's offload pool), and later tests'
process pools would give up fork. For the same reason a build that starts a
LocalCluster of its own runs in a subprocess.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

import dask_tasks_for_tests as dt  # noqa: E402
import tasks_for_tests as tt  # noqa: E402
from stardag.build import (  # noqa: E402
    BuildStatus,
    BuildSummary,
    DefaultExecutionModeSelector,
    FailMode,
    HybridConcurrentTaskRunner,
    build,
)
from stardag.build import _dask  # noqa: E402
from stardag.errors import TargetError, TaskPicklingError, WorkerDiedError  # noqa: E402
from stardag.target import target_root  # noqa: E402


@pytest.fixture
def address(dask_cluster: str) -> str:
    """conftest's LocalCluster of 2 worker processes, one per module."""
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)  # after a test that killed workers
    return dask_cluster


def dask_runner(address: str | None, **kwargs: Any) -> HybridConcurrentTaskRunner:
    return HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="dask"),
        dask_address=address, **kwargs,
    )


def build_on(address: str | None, tasks: Any, fail_mode: FailMode = FailMode.FAIL_FAST,
             **kwargs: Any) -> BuildSummary:
    return build(tasks, task_runner=dask_runner(address, **kwargs), fail_mode=fail_mode)


def worker_pids(address: str) -> set[int]:
    with distributed.Client(address, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


# -- the seed's DAGs -----------------------------------------------------------


def tree() -> tuple[dt.Where, list[dt.Where]]:
    """15 tasks: 8 leaves -> 4 -> 2 -> 1 root."""
    level = [dt.Where(index=i) for i in range(8)]
    every = list(level)
    index = 8
    while len(level) > 1:
        level = [dt.Where(index=index + j // 2, deps=(level[j], level[j + 1])) for j in range(0, len(level), 2)]
        index += len(level)
        every += level
    return level[0], every


def test_the_15_task_tree_runs_on_the_workers(address: str, root: str) -> None:
    top, every = tree()
    summary = build_on(address, [top])
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert (summary.n_discovered, summary.n_succeeded) == (15, 15)
    assert top.load()["inputs"] == [12, 13]
    assert every[8].load()["inputs"] == [0, 1]
    pids = {task.load()["pid"] for task in every}
    assert os.getpid() not in pids and pids <= worker_pids(address)
    assert not list(Path(root, ".stardag-tmp").glob("probe-*")), "the root check must clean up"


def test_the_flat_33_task_fan_in(address: str, root: str) -> None:
    leaves = tuple(dt.Where(index=i) for i in range(32))
    top = dt.Where(index=32, deps=leaves)
    summary = build_on(address, [top])
    assert (summary.status, summary.n_succeeded) == (BuildStatus.SUCCESS, 33), summary.failures
    assert top.load()["inputs"] == list(range(32))


def test_the_heavy_4_plus_1_dag_uses_both_workers(address: str, root: str) -> None:
    leaves = tuple(dt.Where(index=i, iterations=20_000, sleep=0.3) for i in range(4))
    top = dt.Where(index=4, deps=leaves, iterations=20_000)
    summary = build_on(address, top)
    assert (summary.status, summary.n_succeeded) == (BuildStatus.SUCCESS, 5), summary.failures
    assert {leaf.load()["pid"] for leaf in leaves} == worker_pids(address)


def test_the_second_build_skips_what_the_first_built(address: str, root: str) -> None:
    top, _ = tree()
    assert build_on(address, top).n_succeeded == 15
    again = build_on(address, top)
    assert (again.status, again.n_discovered, again.n_previously_complete, again.n_succeeded) == (
        BuildStatus.SUCCESS, 1, 1, 0)


def test_dynamic_dependencies_rerun_the_task_until_all_it_yields_is_complete(address: str, root: str) -> None:
    """
    Dynamic ── yields Leaf x3 ── then yields Sum(-1 leaf, -2 leaf) ── then sums
    """
    task = tt.Dynamic(n=3, value=5)
    summary = build_on(address, task)
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    # Dynamic, 3 leaves, Sum and its 2 leaves.
    assert (summary.n_succeeded, summary.n_previously_complete) == (7, 0)
    assert task.load() == 5 + (5000 + 5001 + 5002) + (5 - 1 - 2)
    tt.assert_counts_add_up(summary)


def test_dynamic_dependencies_already_complete_count_as_previously_complete(address: str, root: str) -> None:
    task = tt.Dynamic(n=2, value=1)
    assert build_on(address, task.first()).n_succeeded == 2
    summary = build_on(address, task)
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert (summary.n_succeeded, summary.n_previously_complete) == (4, 2)
    tt.assert_counts_add_up(summary)


def test_run_aio_tasks_run_on_the_driver_and_sync_tasks_on_the_workers(address: str,
                                                                     root: str) -> None:
    sync_leaf = dt.Where(index=1)
    async_mid = dt.AsyncWhere(index=2, deps=(sync_leaf,))
    sync_top = dt.Where(index=3, deps=(async_mid,))
    summary = build_on(address, sync_top)
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert async_mid.load()["pid"] == os.getpid()
    assert {sync_leaf.load()["pid"], sync_top.load()["pid"]} <= worker_pids(address)


def test_no_thread_outlives_the_build(address: str, root: str) -> None:
    """A thread left behind would make a later process pool give up fork for forkserver."""
    import threading

    def new_threads() -> list[str]:
        return [t.name for t in set(threading.enumerate()) - before]

    before = set(threading.enumerate())
    assert build_on(address, tt.Sum(deps=(tt.Leaf(value=1),))).n_succeeded == 2
    deadline = time.monotonic() + 5
    while new_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert new_threads() == []


# -- failures ------------------------------------------------------------------


def test_a_failing_task_under_fail_fast_keeps_its_error_and_stops(address: str, root: str) -> None:
    bad = tt.Leaf(value=1, fail=True)
    top = tt.Sum(deps=(bad, tt.Leaf(value=2)))
    summary = build_on(address, top)
    assert summary.status is BuildStatus.FAILURE
    [failure] = summary.failures
    assert failure.task_id == bad.task_id
    assert isinstance(failure.error, ValueError) and "fails on purpose" in str(failure.error)
    assert "_finish" in failure.traceback, failure.traceback  # the worker's traceback
    assert not top.complete() and summary.n_succeeded <= 1
    tt.assert_counts_add_up(summary)
    with pytest.raises(Exception, match="fails on purpose"):
        summary.raise_for_status()


def test_a_failing_task_under_continue_builds_everything_else(address: str, root: str) -> None:
    """
    top ── bad            other ── leaf 3
     └──── leaf 2
    """
    bad = tt.Leaf(value=1, fail=True)
    top = tt.Sum(deps=(bad, tt.Leaf(value=2)))
    other = tt.Sum(deps=(tt.Leaf(value=3),), value=10)
    summary = build_on(address, [top, other], fail_mode=FailMode.CONTINUE)
    assert summary.status is BuildStatus.FAILURE
    assert (summary.n_failed, summary.n_upstream_failed, summary.n_succeeded) == (1, 1, 3)
    assert other.load() == 13 and not top.complete()
    tt.assert_counts_add_up(summary)


def test_an_exception_that_cannot_be_unpickled_is_sent_as_text(address: str, root: str) -> None:
    task = tt.RaisesUnreadable()
    summary = build_on(address, task)
    [failure] = summary.failures
    assert failure.task_id == task.task_id and isinstance(failure.error, TaskPicklingError)
    assert "task RaisesUnreadable() raised tasks_for_tests.BadError: 1/2 in its Dask worker" in str(failure.error)
    assert "raise BadError" in failure.traceback


def test_an_exception_only_the_worker_can_import_reaches_the_summary_as_text(address: str, root: str) -> None:
    task = tt.RaisesWorkerOnlyError()
    summary = build_on(address, task)
    [failure] = summary.failures
    assert failure.task_id == task.task_id and isinstance(failure.error, TaskPicklingError)
    assert "worker_only_errors.WorkerOnlyError: only the worker knows this class" in str(failure.error)
    assert "No module named 'worker_only_errors'" in str(failure.error)
    assert "raise WorkerOnlyError" in failure.traceback


def test_fail_fast_cancels_the_tasks_dask_has_not_started(address: str, root: str) -> None:
    """
    bad (fails at once)       sum 0..5 ── first (1.5 s)

    Dask runs bad and first; the sums, handed to Dask or not, must not start after the failure.
    """
    bad = tt.Leaf(value=-1, fail=True)
    first = tt.Leaf(value=100, sleep=1.5)
    sums = [tt.Sum(deps=(first,), value=i) for i in range(6)]
    summary = build_on(address, [bad, *sums])
    assert [f.task_id for f in summary.failures] == [bad.task_id]
    assert (summary.n_succeeded, summary.n_not_run) == (1, 6), summary
    tt.assert_counts_add_up(summary)
    assert sorted(tt.done_ids(root)) == [first.id] and not any(s.complete() for s in sums)


def test_system_exit_in_a_task_fails_the_task_not_the_worker(address: str, root: str) -> None:
    before = worker_pids(address)
    summary = build_on(address, dt.ExitsTask())
    [failure] = summary.failures
    assert isinstance(failure.error, SystemExit)
    assert worker_pids(address) == before


def test_an_unpicklable_task_fails_naming_it(address: str, root: str) -> None:
    task = tt.Sum(deps=(tt.Leaf(value=1),), value=2)
    local = type("LocalLeaf", (tt.Leaf,), {"__module__": __name__, "__qualname__": "nowhere.LocalLeaf"})
    summary = build_on(address, [local(value=4), task], fail_mode=FailMode.CONTINUE)
    [failure] = summary.failures
    assert isinstance(failure.error, TaskPicklingError) and "LocalLeaf(value=4" in str(failure.error)
    assert task.load() == 3


# -- killed workers --------------------------------------------------------------


def test_a_worker_killed_mid_task_fails_that_task_and_the_next_build_resumes(address: str, root: str) -> None:
    """
    top ── Dies (SIGKILLs every worker it runs on: the first and Dask's one retry)
     ├──── leaf 1
     └──── leaf 2
    """
    dies = tt.Dies(how="sigkill")
    leaves = (tt.Leaf(value=1), tt.Leaf(value=2))
    top = tt.Sum(deps=(dies, *leaves))
    first = build_on(address, top, fail_mode=FailMode.CONTINUE)
    assert first.status is BuildStatus.FAILURE
    [failure] = first.failures
    assert failure.task_id == dies.task_id and isinstance(failure.error, WorkerDiedError)
    message = str(failure.error)
    assert "Dies(how='sigkill'" in message and "died, 2 time(s)" in message and "next build resumes" in message
    assert (first.n_succeeded, first.n_upstream_failed) == (2, 1)
    assert [leaf.load() for leaf in leaves] == [1, 2]

    Path(root, f"allow-{dies.task_id}").touch()
    second = build_on(address, top)
    assert second.status is BuildStatus.SUCCESS, second.failures
    assert (second.n_previously_complete, second.n_succeeded) == (2, 2)
    assert top.load() == 42 + 1 + 2


def test_a_task_that_kills_its_workers_fails_alone(address: str, root: str) -> None:
    """Tasks queued behind it are not on the dying workers: Dask queues them on the scheduler."""
    dies = tt.Dies(how="exit")
    leaves = tuple(tt.Leaf(value=i, sleep=0.1) for i in range(8))
    summary = build_on(address, [dies, *leaves], fail_mode=FailMode.CONTINUE)
    assert [f.task_id for f in summary.failures] == [dies.task_id]
    assert summary.n_succeeded == 8


def test_a_worker_killed_once_is_retried_by_dask(address: str, root: str) -> None:
    task = dt.DiesOnce(index=1)
    summary = build_on(address, task)
    assert (summary.status, summary.n_succeeded) == (BuildStatus.SUCCESS, 1), summary.failures
    killed = int(Path(root, f"attempted-{task.task_id}").read_text())
    assert task.load() != killed


def test_a_worker_lost_after_its_tasks_succeeded_does_not_run_them_again(address: str, root: str) -> None:
    """
    top ── Gated (waits for <root>/release)
     └──── leaf 0..11

    Once every leaf has run, the worker not running Gated is killed: the leaf
    results it held (top is built from them) are gone, and Dask computes them
    again, but the leaves are complete: none runs again.
    """
    import signal
    import threading

    leaves = tuple(tt.Leaf(value=i, sleep=0.02) for i in range(12))
    top = tt.Sum(deps=(*leaves, tt.Gated(value=100)))
    killed: list[int] = []

    def kill_once_the_leaves_ran() -> None:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                starts = tt.read_runs(root, "start")
                gated = [pid for name, _, pid, _ in starts if name == "Gated"]
                if gated and sum(name == "Leaf" for name, *_ in tt.read_runs(root)) == len(leaves):
                    break
                time.sleep(0.02)
            ran_leaves = {pid for name, _, pid, _ in tt.read_runs(root) if name == "Leaf"}
            (victim,) = worker_pids(address) - set(gated)
            if victim in ran_leaves:  # else nothing is lost: the test says so below
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                with distributed.Client(address, set_as_default=False) as client:
                    while time.monotonic() < deadline:
                        try:  # the scheduler may still list the dead worker: its broadcast fails
                            if victim not in set(client.run(os.getpid).values()):
                                break
                        except (OSError, distributed.comm.CommClosedError):
                            pass
                        time.sleep(0.05)
        finally:
            Path(root, "release").touch()

    killer = threading.Thread(target=kill_once_the_leaves_ran, daemon=True)
    killer.start()
    summary = build_on(address, top)
    killer.join()
    assert killed, "the worker not running Gated ran no leaf: nothing was lost"
    assert summary.status is BuildStatus.SUCCESS, summary.failures
    assert summary.n_succeeded == len(leaves) + 2
    assert top.load() == sum(range(12)) + 100
    runs = sorted(task_id for name, task_id, _, _ in tt.read_runs(root) if name == "Leaf")
    assert runs == sorted(leaf.task_id for leaf in leaves), "a leaf ran again"


# -- the build's own cluster, and errors at start ---------------------------------


_OWN_CLUSTER_SCRIPT = """
import json, sys
import psutil
import dask_tasks_for_tests as dt
from stardag.build import DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build
from stardag.target import set_target_root

if __name__ == "__main__":  # the LocalCluster's workers are spawned: they import this file
    set_target_root(sys.argv[1])
    leaves = tuple(dt.Where(index=i) for i in range(4))
    top = dt.Where(index=4, deps=leaves)
    runner = HybridConcurrentTaskRunner(
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="dask"), dask_n_workers=2)
    summary = build(top, task_runner=runner)
    pids = {task.load()["pid"] for task in (*leaves, top)}
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    print(json.dumps({"n_succeeded": summary.n_succeeded, "pids": sorted(pids), "alive": alive}))
"""


def test_without_an_address_the_build_starts_a_local_cluster_and_closes_it(fresh_dir: str) -> None:
    import json
    import subprocess
    import sys

    from conftest import TESTS_DIR, subprocess_env

    script = Path(fresh_dir, "own_cluster_build.py")
    script.write_text(_OWN_CLUSTER_SCRIPT)
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR / "dask"), env["PYTHONPATH"]])
    done = subprocess.run([sys.executable, str(script), os.path.join(fresh_dir, "root")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["n_succeeded"] == 5
    assert os.getpid() not in result["pids"] and len(result["pids"]) <= 2
    assert result["alive"] == [], "the build's cluster still runs after the build"


def test_a_script_without_the_main_guard_is_told_about_it(fresh_dir: str) -> None:
    import subprocess
    import sys

    from conftest import TESTS_DIR, subprocess_env

    script = Path(fresh_dir, "unguarded.py")
    script.write_text(_OWN_CLUSTER_SCRIPT.replace('if __name__ == "__main__":', "if True:"))
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR / "dask"), env["PYTHONPATH"]])
    done = subprocess.run([sys.executable, str(script), os.path.join(fresh_dir, "root")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: the build's Dask LocalCluster could not start"), done.stderr[-3000:]
    assert """'if __name__ == "__main__":'""" in last


class _Scheduler:
    """A ``dask scheduler`` (and optionally a ``dask worker``) in child processes."""

    def __init__(self, directory: str, worker_threads: int = 0):
        import subprocess
        import sys

        from conftest import subprocess_env

        info = os.path.join(directory, "scheduler.json")
        common = ["--scheduler-file", info, "--no-dashboard"]
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--port", "0", *common],
            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        if worker_threads:
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--nthreads", str(worker_threads), "--no-nanny", *common],
                env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(scheduler_file=info, timeout=60, set_as_default=False) as client:
            if worker_threads:
                client.wait_for_workers(1, timeout=60)
            self.address = client.scheduler.address

    def kill(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def test_an_unreachable_scheduler_fails_fast_naming_its_address(monkeypatch: pytest.MonkeyPatch, root: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT_S", 1.0)
    import threading

    threads = set(threading.enumerate())
    start = time.monotonic()
    with pytest.raises(_dask.SchedulerUnreachableError, match=address) as raised:
        build_on(address, tt.Leaf(value=1))
    assert time.monotonic() - start < 10
    assert isinstance(raised.value, ConnectionError) and "within 1 s" in str(raised.value)
    assert not tt.Leaf(value=1).complete()
    # The Client that failed to connect stopped its event-loop thread (a later process pool can fork).
    assert set(threading.enumerate()) <= threads


def test_a_scheduler_without_workers_fails_fast_naming_it(monkeypatch: pytest.MonkeyPatch, fresh_dir: str,
                                                          root: str) -> None:
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT_S", 0.5)
    empty = _Scheduler(fresh_dir)
    try:
        with pytest.raises(_dask.SchedulerUnreachableError, match="has no workers") as raised:
            build_on(empty.address, tt.Leaf(value=1))
    finally:
        empty.kill()
    assert repr(empty.address) in str(raised.value)


def test_dynamic_dependencies_that_cannot_be_sent_back_fail_the_task_naming_it(address: str, root: str) -> None:
    task = tt.YieldsLocalTask(value=3)
    summary = build_on(address, [task])
    [failure] = summary.failures
    assert failure.task_id == task.task_id and isinstance(failure.error, TaskPicklingError)
    assert "the outcome of task YieldsLocalTask(value=3" in str(failure.error)
    assert "a Dask worker" in str(failure.error)
    assert not task.complete()


def test_a_task_module_the_workers_cannot_import_fails_the_task_saying_so(
        address: str, root: str, fresh_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # On the driver's sys.path only: the workers started before it was added.
    Path(fresh_dir, "driver_only_tasks.py").write_text(
        "from stardag import AutoTask\n"
        "class DriverOnly(AutoTask[int]):\n"
        "    def run(self):\n"
        "        self.output().save(1)\n"
    )
    monkeypatch.syspath_prepend(fresh_dir)
    from driver_only_tasks import DriverOnly

    summary = build_on(address, DriverOnly())
    [failure] = summary.failures
    assert isinstance(failure.error, TaskPicklingError)
    assert "No module named 'driver_only_tasks'" in str(failure.error)
    assert "import the task's module" in str(failure.error)


def test_losing_the_scheduler_mid_build_fails_the_running_tasks_naming_it(fresh_dir: str, root: str) -> None:
    import threading

    cluster = _Scheduler(fresh_dir, worker_threads=2)
    address = cluster.address
    try:
        def kill_once_started() -> None:
            deadline = time.monotonic() + 60
            while len(tt.read_runs(root, "start")) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            cluster.processes[0].kill()

        killer = threading.Thread(target=kill_once_started, daemon=True)
        killer.start()
        leaves = tuple(tt.Leaf(value=i, sleep=30) for i in range(2))
        start = time.monotonic()
        summary = build_on(address, tt.Sum(deps=leaves), fail_mode=FailMode.CONTINUE)
        assert time.monotonic() - start < 30, "the build waited for the tasks instead"
    finally:
        cluster.kill()
    assert (summary.n_failed, summary.n_upstream_failed) == (2, 1), summary
    for failure in summary.failures:
        assert isinstance(failure.error, WorkerDiedError)
        assert "Dask lost task Leaf(" in str(failure.error) and repr(address) in str(failure.error)


def test_an_in_memory_root_is_refused_before_connecting(memory_root: str) -> None:
    # The address is unreachable: reaching it would be a SchedulerUnreachableError.
    with pytest.raises(TargetError, match=memory_root) as raised:
        build_on("tcp://127.0.0.1:9", tt.Leaf(value=1))
    assert "set_target_root" in str(raised.value)


def test_a_root_the_workers_do_not_see_is_refused_naming_it(address: str, fresh_dir: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc/self/cwd is this process's working directory here, and each worker's
    # own on the workers: the same path, two different directories, as on two
    # machines without a shared filesystem.
    monkeypatch.chdir(fresh_dir)
    unshared = "/proc/self/cwd/targets"
    with target_root(unshared):
        with pytest.raises(TargetError, match="cannot reach the target root") as raised:
            build_on(address, tt.Leaf(value=1))
    message = str(raised.value)
    assert repr(unshared) in message and "cannot read the probe file" in message
    assert "shared filesystem" in message
    assert [p for p in Path(fresh_dir, "targets").rglob("*") if p.is_file()] == []  # the probe was removed


_KILLED_DURING_THE_PROBE = """
import os, signal, sys
from stardag.build import _dask

class Client:  # the driver is killed while the workers read its probe
    def run(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

_dask._check_root(Client(), sys.argv[1])
"""


def test_a_probe_left_by_a_driver_killed_mid_check_goes_with_the_next_build(fresh_dir: str) -> None:
    import subprocess
    import sys

    from conftest import subprocess_env
    from stardag.target import remove_stale_temporary_files

    root = os.path.join(fresh_dir, "root")
    done = subprocess.run([sys.executable, "-c", _KILLED_DURING_THE_PROBE, root], env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    [left] = [p for p in Path(root).rglob("*") if p.is_file()]
    assert left.parent == Path(root, ".stardag-tmp")  # not in the root itself, for good
    assert remove_stale_temporary_files(root) == [str(left)]  # what a build does when it starts
