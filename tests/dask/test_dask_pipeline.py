"""Dask orders the tasks: a DAG goes to it whole, each task carrying only its own record.

A task whose dependencies all run on Dask is submitted with their futures as
Dask dependencies, before they finish; its parameter tasks reach the worker as
those futures' results, not pickled along with it. So the bytes shipped per
task do not grow with the depth of the DAG, and a chain runs without a round
trip through the driver per link. When a dependency fails, what was handed
over behind it does not run: it is upstream-failed, as in every other mode.
"""

from __future__ import annotations

from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

import tasks_for_tests as tt  # noqa: E402
from stardag.build import BuildStatus, DefaultExecutionModeSelector, FailMode, HybridConcurrentTaskRunner  # noqa: E402
from stardag.build import _dask, build  # noqa: E402


@pytest.fixture
def address(dask_cluster: str) -> str:
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    return dask_cluster


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    """Per Dask build: the graphs it sent and its largest task, in bytes."""
    builds: list[dict[str, int]] = []
    flush, shutdown = _dask.DaskExecutor.flush, _dask.DaskExecutor.shutdown

    def counting_flush(self: Any) -> None:
        if self._pending:
            self.n_graphs = getattr(self, "n_graphs", 0) + 1
        flush(self)

    def noting_shutdown(self: Any, interrupted: bool) -> None:
        builds.append({"graphs": getattr(self, "n_graphs", 0), "max_task_bytes": self.max_task_bytes,
                       "bytes": self.n_bytes_shipped})
        shutdown(self, interrupted)

    monkeypatch.setattr(_dask.DaskExecutor, "flush", counting_flush)
    monkeypatch.setattr(_dask.DaskExecutor, "shutdown", noting_shutdown)
    return builds


def chain(n: int, fail_at: int = -1) -> list[tt.Sum]:
    tasks = [tt.Sum(value=0)]
    for i in range(1, n):
        tasks.append(tt.Sum(deps=(tasks[-1],), value=i, fail=i == fail_at))
    return tasks


def build_on(address: str, tasks: Any, fail_mode: FailMode = FailMode.FAIL_FAST, registry: Any = None) -> Any:
    runner = HybridConcurrentTaskRunner(
        registry=registry, execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="dask"),
        dask_address=address,
    )
    return build(tasks, task_runner=runner, fail_mode=fail_mode)


def test_bytes_shipped_per_task_do_not_grow_with_the_depth_of_a_chain(address: str, fresh_dir: str,
                                                                      sent: list[dict[str, int]]) -> None:
    from stardag.target import target_root

    for n in (10, 150):
        with target_root(f"{fresh_dir}/{n}"):
            tasks = chain(n)
            summary = build_on(address, [tasks[-1]])
            assert summary.n_succeeded == n
            assert tasks[-1].load() == sum(range(n))
    short, long = sent
    # The same record per task, whatever its depth (a longer index may add a byte or two).
    assert long["max_task_bytes"] <= short["max_task_bytes"] + 8, sent
    assert long["bytes"] <= 15 * short["bytes"] + 8 * 150, sent
    # The whole chain went to Dask at once: Dask runs link after link.
    assert long["graphs"] == 1, sent


def test_a_failure_in_a_chain_handed_over_whole_leaves_the_rest_upstream_failed(address: str, root: str,
                                                                                sent: list[dict[str, int]]) -> None:
    tasks = chain(10, fail_at=4)
    recorder = tt.Recorder()
    summary = build_on(address, [tasks[-1]], FailMode.CONTINUE, recorder)
    assert summary.status == BuildStatus.FAILURE
    assert (summary.n_succeeded, summary.n_failed, summary.n_upstream_failed) == (4, 1, 5), summary
    assert "fails on purpose" in str(summary.failures[0].error)
    tt.assert_counts_add_up(summary)
    started = [value for kind, value in recorder.events if kind == "task_start"]
    # The registry hears of a task start only for tasks that ran.
    assert sorted(started) == sorted(t.task_id for t in tasks[:5])
    assert sent[0]["graphs"] == 1


def test_a_fan_in_goes_to_dask_as_one_graph_and_its_root_sees_every_leaf(address: str, root: str,
                                                                         sent: list[dict[str, int]]) -> None:
    leaves = tuple(tt.Leaf(value=i) for i in range(40))
    top = tt.Sum(deps=leaves, value=1)
    summary = build_on(address, [top])
    assert summary.n_succeeded == 41
    assert top.load() == 1 + sum(range(40))
    assert sent[0]["graphs"] == 1
