"""Stopping a ``dask`` build that started its own LocalCluster: Ctrl-C, SIGTERM, SIGKILL.

Each test runs the build in a subprocess (``stopping_harness``; the cluster's
workers are spawned, so they import the script) and sends it real signals.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

pytest.importorskip("distributed")

from stopping_harness import CANCELLED, STOPPING, STOPPING_NOW, assert_all_gone, gated_ids  # noqa: E402

N_GATED = 4


def test_ctrl_c_lets_the_running_tasks_finish_cancels_the_rest_and_closes_the_cluster(scripted: Any) -> None:
    """Ctrl-C from a terminal reaches the whole process group: the cluster's workers ignore it."""
    run = scripted("dask", N_GATED, n_workers=1)
    run.wait_for_gated(1)
    processes = run.descendants()
    run.send(signal.SIGINT, group=True)
    run.wait_for_err(CANCELLED)  # Dask cancels over the network: not yet when the handler returns
    run.release()
    result = run.result(timeout=60)
    assert result == {"signal": "SIGINT", "status": "interrupted", "n_discovered": 3 + N_GATED, "n_succeeded": 3,
                      "n_failed": 0, "n_not_run": N_GATED, "restored": True}
    assert len(gated_ids(run.root, "start")) == 1 and len(gated_ids(run.root)) == 1
    assert "KeyboardInterrupt" not in "".join(run.err)  # no worker was hit
    assert_all_gone(processes)


def test_a_second_sigterm_stops_the_running_tasks_and_closes_the_cluster(scripted: Any) -> None:
    run = scripted("dask", N_GATED, n_workers=1)
    run.wait_for_gated(1)
    processes = run.descendants()
    run.send(signal.SIGTERM)
    run.wait_for_err(STOPPING)
    run.send(signal.SIGTERM)
    run.wait_for_err(STOPPING_NOW)
    result = run.result(timeout=60)  # the gated tasks would wait 60 s
    assert result == {"signal": "SIGTERM", "status": "interrupted", "n_discovered": 3 + N_GATED, "n_succeeded": 2,
                      "n_failed": 0, "n_not_run": 1 + N_GATED, "restored": True}
    assert_all_gone(processes)
    run.release()
    time.sleep(0.1)
    assert gated_ids(run.root) == []


def test_the_clusters_processes_die_with_a_driver_killed_by_sigkill(scripted: Any) -> None:
    run = scripted("dask", N_GATED, n_workers=1)
    run.wait_for_gated(1)
    processes = run.descendants()  # the worker (its nanny and the scheduler run in the driver)
    assert len(processes) >= 1
    run.send(signal.SIGKILL)
    run.proc.wait(timeout=10)
    took = assert_all_gone(processes)
    print(f"the cluster's {len(processes)} processes were gone {took:.3f} s after SIGKILL of the driver")
    run.release()
    time.sleep(0.1)
    assert gated_ids(run.root) == []
