"""The dask configuration's LocalCluster: one per benchmark run, in a process of its own.

Starting a cluster takes ~1 s and asv runs each benchmark in a new process, so
the first dask benchmark of a run starts one and the others connect to it. It
lives in the run's directory (the suite's ``setup_cache``): its address is in
``dask-cluster/address`` (its pid in ``pid``, its output in ``log``), and it shuts down by itself when that directory is
removed (asv does so when the run is done), after ``IDLE_SECONDS`` without a
client or a task (asv was killed), or on SIGTERM. A process with no run
directory (tests, one-off use) gets a private cluster, stopped at its exit.

    python dask_cluster.py RUN_DIR REPO N_WORKERS IDLE_SECONDS   (the cluster process)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

IDLE_SECONDS = 600.0  # longer than any gap between dask benchmarks of a run
START_TIMEOUT_S = 120.0


def _paths(run_dir: str) -> tuple[str, str, str]:
    folder = os.path.join(run_dir, "dask-cluster")
    return folder, os.path.join(folder, "address"), os.path.join(folder, "log")


def _process(folder: str):
    """The cluster process that wrote ``folder``'s pid (a psutil.Process), or None once it is gone."""
    import psutil  # a dependency of distributed

    try:
        with open(os.path.join(folder, "pid")) as f:
            proc = psutil.Process(int(f.read()))
        return proc if proc.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, psutil.Error):
        return None


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition("://")[2].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def _start(run_dir: str, n_workers: int) -> subprocess.Popen:
    folder, _, log = _paths(run_dir)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(log, "ab") as out:  # not our stdout: asv would wait for the cluster to close it
        return subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), run_dir, repo, str(n_workers), str(IDLE_SECONDS)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,  # outlives the benchmark that starts it
        )


def address_in(run_dir: str, n_workers: int) -> str:
    """The scheduler address of the run's cluster, started now if there is none (or it died)."""
    import fcntl

    folder, address_file, log = _paths(run_dir)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time
        with contextlib.suppress(FileNotFoundError):
            with open(address_file) as f:
                address = f.read().strip()
            if _process(folder) is not None and _reachable(address):  # its port may serve another process
                return address
            os.remove(address_file)  # left by a killed cluster
        proc = _start(run_dir, n_workers)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(address_file):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                with open(log, errors="replace") as f:
                    tail = f.read()[-2000:]
                raise RuntimeError(f"the benchmark's Dask LocalCluster did not start; its log ({log}):\n{tail}")
            time.sleep(0.05)
        with open(address_file) as f:
            return f.read().strip()


_private_dir: str | None = None


def private_address(n_workers: int) -> str:
    """A cluster for this process alone, stopped by ``close_private`` or at exit."""
    global _private_dir
    if _private_dir is None:
        _private_dir = tempfile.mkdtemp(prefix="stardag-bench-dask-")
        atexit.register(close_private)
    return address_in(_private_dir, n_workers)


def close_private() -> None:
    """Stop this process's private cluster, if it has one, and wait for it to exit."""
    global _private_dir
    if _private_dir is not None:
        import psutil

        run_dir, _private_dir = _private_dir, None
        atexit.unregister(close_private)
        proc = _process(_paths(run_dir)[0])
        shutil.rmtree(run_dir, ignore_errors=True)  # the cluster's signal to stop
        if proc is not None:
            with contextlib.suppress(psutil.Error):  # gone already, or still closing after 30 s
                proc.wait(timeout=30)


def _loopback_only(distributed) -> None:
    """Make every LocalCluster this process starts listen on 127.0.0.1 only.

    The suite runs against old commits too, whose ``local_cluster()`` served the
    scheduler's HTTP endpoint on all interfaces: whatever the commit asks for,
    the scheduler, its workers and nannies bind loopback, with no dashboard.
    """
    base = distributed.LocalCluster

    class LoopbackCluster(base):
        def __init__(self, *args, **kwargs):
            kwargs.update(host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None)
            kwargs["scheduler_kwargs"] = dict(kwargs.get("scheduler_kwargs") or {},
                                              dashboard_address="127.0.0.1:0")
            super().__init__(*args, **kwargs)

    distributed.LocalCluster = LoopbackCluster


def _serve(run_dir: str, repo: str, n_workers: int, idle_seconds: float) -> str:
    """Run a LocalCluster until the run directory goes, it idles, or SIGTERM; return why it stopped."""
    folder, address_file, _ = _paths(run_dir)
    with open(os.path.join(folder, "pid"), "w") as f:
        f.write(str(os.getpid()))
    stop: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
    # The workers (spawned, they inherit sys.path) import the benchmark tasks from
    # there. Appended, not prepended: ``stardag`` must stay the commit under test's,
    # installed in asv's environment, not the copy beside the benchmarks.
    sys.path.append(repo)
    import importlib

    import distributed
    from distributed.core import Status

    _loopback_only(distributed)
    try:  # the LocalCluster the library starts for a build without a scheduler address
        from stardag.build._dask import local_cluster
    except ImportError:  # a commit before local_cluster()
        def local_cluster(n: int):
            return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True)
    cluster = local_cluster(n_workers)
    with distributed.Client(cluster, set_as_default=False) as client:  # not in the first timed build
        client.run(importlib.import_module, "benchmarks.tasks")
    scheduler = cluster.scheduler
    with open(address_file + ".tmp", "w") as f:
        f.write(cluster.scheduler_address)
    os.replace(address_file + ".tmp", address_file)

    # The scheduler's own idle_timeout ignores connected clients: track activity here.
    last_active, last_count, why = time.monotonic(), scheduler.transition_counter, ""
    while not why:
        time.sleep(0.5)
        now, count = time.monotonic(), scheduler.transition_counter
        # "fire-and-forget" is always a client; idle_since is None while tasks run
        if len(scheduler.clients) > 1 or scheduler.idle_since is None or count != last_count:
            last_active, last_count = now, count
        if stop:
            why = stop[0]
        elif not os.path.isdir(run_dir):
            why = "run directory removed"
        elif now - last_active > idle_seconds:
            why = f"idle for {idle_seconds:.0f} s"
        elif scheduler.status in (Status.closing, Status.closed):
            why = "scheduler closed"
            cluster.shutdown_scheduler = False  # else close() retries the dead scheduler for 30 s
    with contextlib.suppress(OSError):
        os.remove(address_file)
    cluster.close(timeout=20)
    return why


if __name__ == "__main__":
    sys.path.pop(0)  # this script's folder: its modules would shadow others by name
    reason = _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    print(f"benchmark dask cluster stopped: {reason}", flush=True)
