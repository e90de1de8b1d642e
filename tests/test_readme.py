"""The snippet from the issue (and README) works exactly as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import tasks_for_tests as tt
from conftest import subprocess_env
from stardag.build import (
    BuildStatus,
    DefaultExecutionModeSelector,
    HybridConcurrentTaskRunner,
    build,
    build_sequential,
)
from stardag.registry import NoOpRegistry
from stardag.target import target_root

# Verbatim from the issue, except that ``dag`` must exist before it is built.
SNIPPET = '''
import asyncio, time
from stardag import AutoTask
from stardag.build import (build, build_aio, build_sequential, build_sequential_aio,
    HybridConcurrentTaskRunner, DefaultExecutionModeSelector, FailMode, BuildSummary)
from stardag.registry import NoOpRegistry

class IOBoundTask(AutoTask[dict]):
    sleep_duration: float = 0.1
    def run(self) -> None:
        time.sleep(self.sleep_duration)                  # blocks a thread
        self.output().save({"task_id": self.task_id})
    async def run_aio(self) -> None:                     # true async, no thread
        await asyncio.sleep(self.sleep_duration)
        self.output().save({"task_id": self.task_id})
{DAG}
runner = HybridConcurrentTaskRunner(
    registry=NoOpRegistry(),
    execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="process"),
    max_process_workers=4,
)
summary = build([dag], task_runner=runner)   # also sync_run_default="thread" with max_thread_workers
build_sequential([dag])                      # deterministic order, for debugging
'''

DAG = '''
from tasks_for_tests import Fan
dag = Fan(deps=tuple(IOBoundTask(sleep_duration=0.2 + i / 1000) for i in range(8)))
'''

CHECK = '''
import json, os
from stardag.target import set_target_root
first_output = dag.load()
again = build_sequential([dag])
set_target_root(os.path.join(os.environ["STARDAG_TARGET_ROOT"], "thread"))
started = time.perf_counter()
threaded = build([dag], task_runner=HybridConcurrentTaskRunner(
    registry=NoOpRegistry(),
    execution_mode_selector=DefaultExecutionModeSelector(sync_run_default="thread"),
    max_thread_workers=4))
threaded_s = time.perf_counter() - started
set_target_root(os.path.join(os.environ["STARDAG_TARGET_ROOT"], "sequential"))
sequential = build_sequential([dag])
print(json.dumps({
    "first": [summary.status.value, summary.n_discovered, summary.n_succeeded, summary.duration_s],
    "again": [again.status.value, again.n_discovered, again.n_previously_complete, again.n_succeeded],
    "threaded": [threaded.status.value, threaded.n_succeeded, threaded_s],
    "sequential": [sequential.status.value, sequential.n_succeeded, sequential.duration_s],
    "output": first_output, "pid": os.getpid(),
    "ids": sorted(d.task_id for d in dag.deps), "is_summary": isinstance(summary, BuildSummary),
}))
'''


def test_the_snippet_runs_as_written(fresh_dir: str) -> None:
    source = SNIPPET.replace("{DAG}", DAG) + CHECK
    script = os.path.join(fresh_dir, "snippet.py")
    with open(script, "w") as f:
        f.write(source)
    root = os.path.join(fresh_dir, "root")
    result = subprocess.run([sys.executable, script], env=subprocess_env(STARDAG_TARGET_ROOT=root),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["is_summary"]
    status, n_discovered, n_succeeded, _ = out["first"]
    assert (status, n_discovered, n_succeeded) == ("success", 9, 9)
    assert out["again"] == ["success", 1, 1, 0]  # build_sequential after build: all complete
    assert out["threaded"][:2] == ["success", 9]
    assert out["sequential"][:2] == ["success", 9]
    assert out["sequential"][2] >= 8 * 0.2  # one at a time, through run()
    assert out["output"]["ids"] == out["ids"]
    assert out["output"]["pid"] != out["pid"]  # Fan (sync only) ran in the process pool


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_io_bound_tasks_overlap(mode: str, root: str) -> None:
    dag = tt.Fan(deps=tuple(tt.IOBoundTask(sleep_duration=0.2 + i / 1000) for i in range(4)))
    runner = HybridConcurrentTaskRunner(
        registry=NoOpRegistry(),
        execution_mode_selector=DefaultExecutionModeSelector(sync_run_default=mode),
        max_process_workers=4, max_thread_workers=4,
    )
    started = time.perf_counter()
    first = build(list(dag.deps), task_runner=runner)  # on the event loop: no pool start-up to time
    elapsed = time.perf_counter() - started
    assert first.status is BuildStatus.SUCCESS and first.n_succeeded == 4
    assert elapsed < 0.6, elapsed  # 0.8 s of sleeping, overlapped
    summary = build([dag], task_runner=runner)
    assert summary.status is BuildStatus.SUCCESS
    assert (summary.n_previously_complete, summary.n_succeeded) == (4, 1)
    assert dag.load()["ids"] == sorted(d.task_id for d in dag.deps)
    assert (dag.load()["pid"] == os.getpid()) == (mode == "thread")


def test_build_sequential_prefers_run(root: str) -> None:
    tasks = [tt.IOBoundTask(sleep_duration=0.01 * i) for i in range(3)]
    summary = build_sequential(tasks)
    assert summary.n_succeeded == 3
    assert [t.load() for t in tasks] == [{"task_id": t.task_id} for t in tasks]
    with target_root(os.path.join(root, "again")):
        assert build_sequential(tasks).n_succeeded == 3
