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

from benchmarks import configuration  # noqa: E402
from benchmarks.common import BuildError, RootPool, build_checked  # noqa: E402

EXPECTED_SKIPS = (
    "in-memory targets cannot be shared",  # process pool + memory://
    "smoke run",  # DAG larger than a smoke run allows; instruction counts (bench_cost)
    "no instructions to count in one",  # bench_cost: dask runs in other processes
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


def test_every_configuration_runs_in_every_benchmark_family(outcomes):
    ran: dict[str, set[str]] = {}
    for o in outcomes:
        if o["outcome"] == "ok":
            ran.setdefault(o["name"], set()).update(p for p in o["params"] if p in configuration.NAMES)
    names = {o["name"] for o in outcomes}
    expected = {"bench_build.IOBound.time_build", "bench_build.CPUBound.time_build",
                "bench_build.HeavyCPU.time_build", "bench_build.DynamicDeps.time_build",
                "bench_build.IOBound.track_efficiency", "bench_scaling.LightScaling.track_overhead_us",
                "bench_scaling.LightFloor.track_floor_us", "bench_scaling.LargeDagMemory.peakmem_build"}
    assert expected <= names
    # The instruction counts (bench_cost) are taken in real runs only: a smoke
    # run checks that each works and skips them (tests/benchmarks/test_cost.py).
    timed = {n for n in names if not n.startswith("bench_cost.")}
    for name in timed - {"bench_scaling.LightFloor.track_floor_us"}:
        assert ran.get(name) == set(configuration.NAMES), (name, ran.get(name))


def test_tracks_report_plausible_values(outcomes):
    efficiencies = [o["detail"] for o in outcomes
                    if o["name"].endswith("track_efficiency") and o["outcome"] == "ok"]
    assert efficiencies and all(0 < e < 1.5 for e in efficiencies), efficiencies
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
    timed.teardown(*args)
    assert timed.builder.calls == 3 and len(timed.samples) == 3

    tracker = _efficiency_bench(args[0])
    try:
        efficiency = tracker.track_efficiency(*args)
    finally:
        tracker.teardown(*args)
    ideal = tracker.scenario.ideal_seconds(tracker.config, tracker.dag)
    assert tracker.builder.calls == 0
    assert efficiency == pytest.approx(ideal / statistics.median(timed.samples))


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
