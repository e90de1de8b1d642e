"""The dask configuration's cluster: one per run, shared by its benchmarks, gone when the run is."""

from __future__ import annotations

import os
import signal
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import dask_cluster  # noqa: E402


def _session(pid: int) -> list[psutil.Process]:
    """The cluster process and its workers: it runs in a session of its own."""
    alive = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == pid and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def _semaphores() -> list[str]:
    """multiprocessing's named semaphores in /dev/shm (Linux)."""
    try:
        return [name for name in os.listdir("/dev/shm") if name.startswith("sem.mp-")]
    except OSError:
        return []


def _wait_gone(pid: int, seconds: float = 30) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := _session(pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    yield str(path)
    shutil.rmtree(path, ignore_errors=True)


def test_benchmarks_of_a_run_share_one_cluster_that_goes_with_the_run(run_dir):
    first = dask_cluster.address_in(run_dir, 2)
    pid = int(Path(run_dir, "dask-cluster", "pid").read_text())
    assert dask_cluster.address_in(run_dir, 2) == first  # the next benchmark connects to it
    import distributed

    with distributed.Client(first, set_as_default=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.submit(pow, 2, 10).result() == 1024
    assert len(_session(pid)) >= 3  # the cluster process and its 2 workers

    shutil.rmtree(run_dir)  # asv removes the setup_cache directory when the run is done
    assert not _wait_gone(pid), "the cluster outlived its run"


def test_a_dead_clusters_address_is_replaced(run_dir):
    semaphores_before = set(_semaphores())
    first = dask_cluster.address_in(run_dir, 1)
    pid = int(Path(run_dir, "dask-cluster", "pid").read_text())
    os.kill(pid, signal.SIGKILL)  # as a SIGKILLed cluster leaves its address file behind
    # Its workers and multiprocessing's resource tracker follow it; the tracker
    # unlinks the semaphores it leaves in /dev/shm (killing them all leaks 6 a time).
    assert not _wait_gone(pid)
    assert not set(_semaphores()) - semaphores_before
    assert Path(run_dir, "dask-cluster", "address").read_text() == first
    second = dask_cluster.address_in(run_dir, 1)
    new_pid = int(Path(run_dir, "dask-cluster", "pid").read_text())
    assert new_pid != pid and _session(new_pid)  # a new cluster (the port may be the same)
    assert dask_cluster._reachable(second)


def test_a_process_without_a_run_gets_a_private_cluster_stopped_on_close():
    address = dask_cluster.private_address(1)
    assert dask_cluster.private_address(1) == address
    run_dir = dask_cluster._private_dir
    pid = int(Path(run_dir, "dask-cluster", "pid").read_text())
    dask_cluster.close_private()
    assert not _wait_gone(pid)
    assert not os.path.exists(run_dir)


def test_a_cluster_that_cannot_start_says_why(run_dir, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(RuntimeError, match="did not start.*log"):
        dask_cluster.address_in(run_dir, 1)


def test_an_unused_cluster_stops_by_itself(run_dir, monkeypatch):
    """If asv is killed, its directory stays: the cluster stops after IDLE_SECONDS without clients or tasks."""
    monkeypatch.setattr(dask_cluster, "IDLE_SECONDS", 2.0)
    dask_cluster.address_in(run_dir, 1)
    pid = int(Path(run_dir, "dask-cluster", "pid").read_text())
    assert not _wait_gone(pid)
    assert not Path(run_dir, "dask-cluster", "address").exists()
    assert "stopped: idle for 2 s" in Path(run_dir, "dask-cluster", "log").read_text()


def test_the_cluster_listens_on_loopback_only(run_dir):
    """Scheduler, nannies, workers and the scheduler's HTTP endpoint: 127.0.0.1, never 0.0.0.0."""
    dask_cluster.address_in(run_dir, 1)
    pid = int(Path(run_dir, "dask-cluster", "pid").read_text())
    listening = [
        (proc.pid, conn.laddr.ip)
        for proc in _session(pid)
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert len(listening) >= 4, listening  # scheduler + its HTTP server, nanny, worker
    assert {ip for _pid, ip in listening} == {"127.0.0.1"}, listening
