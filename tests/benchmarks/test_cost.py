"""The instruction-count benchmarks (benchmarks/bench_cost.py): the same count under load, skips, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import bench_cost, instructions  # noqa: E402

needs_valgrind = pytest.mark.skipif(instructions.valgrind() is None, reason=instructions.INSTALL_HINT)


def _burn_cpus(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _count_in_subprocess(kinds: list[str]) -> subprocess.Popen:
    code = ("import json, sys\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "from benchmarks import instructions\n"
            f"counts = instructions.count({kinds!r})\n"
            "print(json.dumps({k: [c.per_item, c.skip, c.error] for k, c in counts.items()}))\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


@needs_valgrind
def test_the_same_count_twice_with_both_cores_busy():
    """Two counts of identical code, at the same time, beside two CPU burners: within 0.1%."""
    import json

    kinds = ["build:sequential:fan_in", "build:thread_pool:fan_in", "scheduler:chain"]
    burners = _burn_cpus(2)
    try:
        runs = [_count_in_subprocess(kinds) for _ in range(2)]
        outs = [p.communicate(timeout=900) for p in runs]
    finally:
        for p in burners:
            p.kill()
            p.wait()
    for p, (out, err) in zip(runs, outs):
        assert p.returncode == 0, err[-3000:]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _err in outs)
    for kind in kinds:
        (a, skip_a, err_a), (b, _skip_b, _err_b) = first[kind], second[kind]
        assert (skip_a, err_a) == (None, None), (kind, first[kind])
        assert abs(a - b) <= 0.001 * a, (kind, a, b)
    # Plausible sizes: a build does far more per task than the scheduler core alone.
    assert 20_000 < first["build:sequential:fan_in"][0] < 2_000_000, first
    assert 1_000 < first["scheduler:chain"][0] < first["build:sequential:fan_in"][0] / 3, first


def test_without_valgrind_every_counted_benchmark_skips_saying_how_to_install_it(monkeypatch):
    monkeypatch.setattr(instructions, "valgrind", lambda: None)
    monkeypatch.setattr(bench_cost, "SMOKE", False)
    counts = bench_cost._Counted().setup_cache()
    assert set(counts) == set(bench_cost.KINDS + bench_cost.UNCOUNTED)
    with pytest.raises(NotImplementedError, match=r"apt-get install valgrind"):
        bench_cost.Build().setup(counts, "fan_in", "sequential")
    with pytest.raises(NotImplementedError, match=r"apt-get install valgrind"):
        bench_cost.TargetLoad().setup(counts, "pickle")


def test_a_kind_that_fails_is_an_error_not_a_skip():
    found = instructions.check(["make:triangle", "scheduler:chain", "build:dask:fan_in"])
    assert found["scheduler:chain"] == instructions.Count()
    assert "unknown shape 'triangle'" in found["make:triangle"].error
    assert "dask" in found["build:dask:fan_in"].error
    counts = {k: {"error": c.error} for k, c in found.items()}
    with pytest.raises(RuntimeError, match="unknown shape"):
        bench_cost.MakeTask()._use(counts, "make:triangle")


def test_every_kind_of_the_suite_runs_on_this_commit():
    """Each kind once, tiny, without Valgrind: what a smoke run checks."""
    found = instructions.check(list(bench_cost.KINDS))
    assert found == {kind: instructions.Count() for kind in bench_cost.KINDS}


def test_the_probe_measures_the_installed_library_not_a_copy_beside_the_suite(tmp_path):
    """Run from a checkout, the probe must not import that checkout's stardag (asv's rule)."""
    suite = tmp_path / "checkout"
    (suite / "stardag").mkdir(parents=True)
    (suite / "stardag" / "__init__.py").write_text("raise ImportError('the checkout copy')\n")
    os.symlink(REPO / "benchmarks", suite / "benchmarks")
    proc = subprocess.run(
        [sys.executable, "-B", str(suite / "benchmarks" / "_cost_probe.py"),
         str(tmp_path / "m.json"), "2", "3", "scheduler:chain"],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
            "PYTHONPATH": str(REPO)}, cwd=suite, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import json

    entry = json.loads((tmp_path / "m.json").read_text())["kinds"]["scheduler:chain"]
    assert "pids" in entry, entry
