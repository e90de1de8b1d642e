"""The LocalCluster a build starts (``local_cluster``) serves nothing beyond this machine."""

from __future__ import annotations

import psutil
import pytest

pytest.importorskip("distributed")


def test_local_cluster_listens_on_loopback_only(dask_cluster: str) -> None:
    """Scheduler, its HTTP endpoint, nannies and workers: 127.0.0.1, never 0.0.0.0."""
    port = int(dask_cluster.rsplit(":", 1)[1])
    host = next(psutil.Process(c.pid) for c in psutil.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid)
    listening = [
        (proc.pid, conn.laddr.ip)
        for proc in [host, *host.children(recursive=True)]
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert len(listening) >= 4, listening  # scheduler + its HTTP server, a nanny, a worker
    assert {ip for _pid, ip in listening} == {"127.0.0.1"}, listening
