"""The asv suite, called directly: every benchmark builds every task, skips are the intended ones.

These run the suite as a smoke run (``STARDAG_BENCH_SMOKE=1``: work x0.01, DAGs
up to 100 tasks) in a subprocess, so they take seconds, not the suite's minutes.
"""

from __future__ import annotations

import json
import statistics
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("suite_harness.py")
sys.path.insert(0, str(REPO))

from benchmarks import configuration, ideal  # noqa: E402
from benchmarks.common import BuildError, RootPool, build_checked  # noqa: E402
from benchmarks.scenario import SCENARIOS  # noqa: E402

EXPECTED_SKIPS = (
    "smoke run",  # DAG larger than a smoke run allows; instruction counts (bench_cost)
    "no instructions to count in one",  # bench_cost: dask runs in other processes
    "only sequential builds over",  # light DAGs of 100,000 tasks (budget)
)


def run_harness(*args: str, block_stardag: bool = False, smoke: bool = True) -> list[dict]:
    env = dict(os.environ)
    env.pop("STARDAG_BENCH_SMOKE", None)
    if smoke:
        env["STARDAG_BENCH_SMOKE"] = "1"
    code = "import runpy, sys\n"
    if block_stardag:
        code += "sys.modules['stardag'] = None  # as on a commit without the library\n"
    code += f"sys.argv = [{str(HARNESS)!r}, {str(REPO)!r}, *{list(args)!r}]\n"
    code += f"runpy.run_path({str(HARNESS)!r}, run_name='__main__')\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def outcomes() -> list[dict]:
    return run_harness("--twice")


def test_every_benchmark_call_builds_every_task(outcomes):
    """Each call checks n_succeeded == tasks in the DAG; called twice without a new setup."""
    errors = [f"{o['name']}{o['params']}:\n{o['detail']}" for o in outcomes if o["outcome"] == "error"]
    assert not errors, "\n".join(errors)
    skips = [o for o in outcomes if o["outcome"] == "skipped"]
    unexpected = [o for o in skips if not any(reason in o["detail"] for reason in EXPECTED_SKIPS)]
    assert not unexpected, unexpected


# The configurations each family leaves out on purpose (see its docstring).
PARTIAL_FAMILIES = {
    "bench_build.HybridIO": {"thread_pool"},
    "bench_build.HeavyCPU": {"sequential", "thread_pool", "process_pool", "dask"},
    "bench_build.FileIO": {"sequential", "thread_pool", "async"},
    "bench_scaling.LightScaling": {"sequential", "thread_pool", "async"},  # memory:// lives in one process
}


def test_every_configuration_runs_in_every_benchmark_family(outcomes):
    ran: dict[str, set[str]] = {}
    for o in outcomes:
        if o["outcome"] == "ok":
            ran.setdefault(o["name"], set()).update(p for p in o["params"] if p in configuration.NAMES)
    names = {o["name"] for o in outcomes}
    families = ["IOBound", "HybridIO", "CPUBound", "HeavyCPU", "Light", "FileIO", "DynamicDeps"]
    expected = {f"bench_build.{f}.{m}" for f in families for m in ("time_build", "track_efficiency")}
    expected |= {"bench_scaling.LightScaling.track_overhead_us", "bench_scaling.LightScalingFile.track_overhead_us",
                 "bench_scaling.LightFloor.track_floor_us", "bench_scaling.LargeDagMemory.peakmem_build"}
    assert expected <= names
    # The instruction counts (bench_cost) are taken in real runs only: a smoke
    # run checks that each works and skips them (tests/benchmarks/test_cost.py).
    timed = {n for n in names if not n.startswith("bench_cost.")}
    for name in timed - {"bench_scaling.LightFloor.track_floor_us"}:
        family = name.rsplit(".", 1)[0]
        assert ran.get(name) == PARTIAL_FAMILIES.get(family, set(configuration.NAMES)), (name, ran.get(name))


def test_every_scenario_runs_in_the_suite(outcomes):
    ran = {o["params"][0] for o in outcomes if o["name"].startswith("bench_build.") and o["outcome"] == "ok"}
    assert ran == set(SCENARIOS)


def test_tracks_report_plausible_values(outcomes):
    efficiencies = [(o["params"], o["detail"]) for o in outcomes
                    if o["name"].endswith("track_efficiency") and o["outcome"] == "ok"]
    assert efficiencies
    assert all(0 < e < 1.5 for _, e in efficiencies), [x for x in efficiencies if not 0 < x[1] < 1.5]
    floors = [o["detail"] for o in outcomes
              if o["name"].endswith("track_floor_us") and o["outcome"] == "ok"]
    assert floors and all(f > 0 for f in floors)


def test_suite_skips_cleanly_without_the_library():
    """As on an old commit: every module imports, every setup raises NotImplementedError."""
    outcomes = run_harness(block_stardag=True)
    assert outcomes
    not_skipped = [o for o in outcomes if o["outcome"] != "skipped"]
    assert not not_skipped, not_skipped[:3]
    assert all("no stardag" in o["detail"] for o in outcomes), outcomes[0]["detail"]


def test_build_on_a_used_root_is_refused(tmp_path):
    """The check fails when a build finds its outputs already there (a no-op build)."""
    from benchmarks import dags

    dag = dags.light_family("fan_in", 10, False)
    builder = configuration.get("sequential").make_builder()
    root = str(tmp_path / "root")
    build_checked(builder, dag, root)
    with pytest.raises(BuildError, match="ran 0 of 10 tasks"):
        build_checked(builder, dag, root)


def test_each_call_gets_a_new_root():
    pool = RootPool("memory")
    assert pool.fresh() != pool.fresh()
    assert all(r.startswith("memory://") for r in pool.used)


class _CountingBuilder:
    def __init__(self, builder):
        self.builder, self.calls = builder, 0

    def __call__(self, roots):
        self.calls += 1
        return self.builder(roots)


def _efficiency_bench(run_dir: str):
    from benchmarks.bench_build import CPUBound

    bench = CPUBound()
    bench.setup(run_dir, "cpu_tree", "sequential")
    bench.builder = _CountingBuilder(bench.builder)
    return bench


def test_efficiency_reuses_the_runs_time_build_samples(tmp_path, monkeypatch):
    """track_efficiency = ideal / median of time_build's samples from earlier processes of the run."""
    from benchmarks import ideal as ideal_module

    monkeypatch.setattr(ideal_module, "seconds_per_sha256", lambda: 2e-7)  # else measured afresh
    args = (str(tmp_path), "cpu_tree", "sequential")
    timed = _efficiency_bench(args[0])
    for _ in range(3):
        timed.time_build(*args)
    with monkeypatch.context() as m:  # as if time_build had run in another process, as under asv
        m.setattr(os, "getpid", lambda: 1)
        timed.teardown(*args)
    assert timed.builder.calls == 3 and len(timed.samples) == 3

    tracker = _efficiency_bench(args[0])
    try:
        efficiency = tracker.track_efficiency(*args)
    finally:
        tracker.teardown(*args)
    ideal = tracker.scenario.ideal_seconds(tracker.config, tracker.dag)
    assert tracker.builder.calls == 0
    assert tracker.builder.builder is None  # with samples there, setup made no builder (Dask: ~0.5 s)
    assert efficiency == pytest.approx(ideal / statistics.median(timed.samples))


def test_time_build_ignores_its_own_earlier_samples(tmp_path):
    """asv calls setup and teardown around every sample: the second sample must still build."""
    from benchmarks.bench_build import Light

    args = (str(tmp_path), "light_tree", "sequential")
    for _ in range(2):
        bench = Light()
        bench.setup(*args)
        bench.time_build(*args)
        bench.teardown(*args)
    assert len(list(tmp_path.rglob("*.json"))) == 2


def test_efficiency_alone_times_a_build_of_its_own(tmp_path):
    """Without time_build samples (asv run --bench track_efficiency) it builds, from a fresh root."""
    args = (str(tmp_path), "cpu_tree", "sequential")
    tracker = _efficiency_bench(args[0])
    try:
        efficiency = tracker.track_efficiency(*args)
    finally:
        tracker.teardown(*args)
    assert tracker.builder.calls == 1
    assert 0 < efficiency < 1.5
    assert not list(tmp_path.rglob("*.json")), "only time_build's samples are shared"


@pytest.mark.parametrize("name, n_tasks, slots, steps", [
    ("io_dynamic_flat", 9, 4, 3),  # 8 leaves in 2 rounds of 4, then the root
    ("io_dynamic_flat", 9, 64, 2),
    ("io_flat_many", 101, 4, 26),
    ("io_flat_many", 101, 64, 3),
    ("file_io_heavy", 17, 2, 9),
    ("light_tree", 15, 1, 15),
])
def test_new_shapes_and_their_ideal_schedule(name, n_tasks, slots, steps):
    dag = SCENARIOS[name].make_dag(False)
    assert dag.n_tasks == n_tasks
    assert ideal.ideal_steps(dag.deps, slots) == steps


def test_the_seeds_dynamic_shape_is_a_root_that_yields_its_leaves(root):
    """io_dynamic_flat: nothing but the root is known before it runs; it yields 8 leaves."""
    from stardag.build import build_sequential

    dag = SCENARIOS["io_dynamic_flat"].make_dag(False)
    (top,) = dag.roots
    assert tuple(top.requires()) == () and len(top.leaves()) == 8
    assert set(dag.tasks[:-1]) == set(top.leaves())
    summary = build_sequential([top])
    assert summary.n_succeeded == 9


def test_hybrid_tasks_go_to_the_event_loop_under_the_thread_pool():
    """As in the seed: tasks with run() and run_aio() built with sync_run_default="thread" run on the loop."""
    from stardag.build import DefaultExecutionModeSelector

    scenario = SCENARIOS["io_flat_hybrid"]
    dag = scenario.dag_for(configuration.get("thread_pool"))
    selector = DefaultExecutionModeSelector(sync_run_default="thread")
    assert {selector(task) for task in dag.tasks} == {"async"}
    assert scenario.slots(configuration.get("thread_pool")) == configuration.ASYNC_WORKERS
    plain = SCENARIOS["io_flat"].dag_for(configuration.get("thread_pool"))
    assert {selector(task) for task in plain.tasks} == {"thread"}


def test_file_scenarios_write_through_the_file_interface(root):
    """The outputs are the bytes written with open("w") (or open_aio), and load back."""
    from stardag.build import build_sequential

    for name, n_bytes in (("file_io_flat", 10_000), ("file_io_heavy", 50_000)):
        for async_tasks in (False, True):
            dag = SCENARIOS[name].make_dag(async_tasks)
            summary = build_sequential(list(dag.roots)) if not async_tasks else _build_async(dag)
            assert summary.n_succeeded == dag.n_tasks
            for task in dag.tasks:
                assert os.path.getsize(task.output().path) == n_bytes
                assert task.load() == "x" * (n_bytes - 2)


def _build_async(dag):
    return configuration.get("async").make_builder()(dag.roots)


def test_file_scenarios_skip_on_a_commit_without_open(monkeypatch):
    from stardag import target

    class OldTarget:  # what LocalTarget offered before open()/open_aio()
        def save(self, value):
            pass

    monkeypatch.setattr(target, "LocalTarget", OldTarget)
    for config in ("sequential", "async"):
        with pytest.raises(NotImplementedError, match="no open"):
            SCENARIOS["file_io_flat"].check(configuration.get(config))
    SCENARIOS["io_flat"].check(configuration.get("sequential"))  # others do not care


def test_hybrid_scenarios_refuse_other_configurations():
    with pytest.raises(NotImplementedError, match="thread_pool only"):
        SCENARIOS["io_tree_hybrid"].check(configuration.get("process_pool"))


def test_the_floor_leaves_out_tasks_that_only_yield(monkeypatch):
    """light_dynamic_flat's unit of work is its 8 leaves' run(); the root's run() is a generator."""
    counted = []
    monkeypatch.setattr(ideal, "run_floor", lambda dag, root: counted.append(len(dag.tasks)) or 8e-6)
    dag = SCENARIOS["light_dynamic_flat"].make_dag(False)
    assert ideal.floor_seconds_per_task(dag) == pytest.approx(1e-6)
    assert counted == [8] * 5
