"""End to end, with a CPU burner running: only regressions measured again and confirmed are reported.

Five nights of the job on the tiny project, one benchmark timed (CPU time) and
one counted (Valgrind instructions): identical code on three nights; then a
commit 25% slower per call, one after it at the same speed and one with 3%
more instructions per call; then a night with nothing new. The job nominates at
a factor of 1.05 (a step of 5%), well inside what load does to a timing between
nights (the 25% commit was once stored at 1.106x): noise does nominate, and the
interleaved measurement has to throw it out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib
from nightly_project import BASE_N, PYTHON, ROOT, TinyProject, check_run, env_dir  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from _nightly import noise  # noqa: E402
from _nightly.store import read_result  # noqa: E402

TIMED = "bench_tiny.TimeTiny.time_work"
COUNTED = "bench_count.CountTiny.track_instructions_per_call"
ARGS = ("--fail-on-regression", "--compare-factor", "1.05", "--confirm-rounds", "6")
__all__ = ["env_dir"]  # fixture


@pytest.fixture
def burner():
    """Keeps one core busy for the whole test: the runs share the machine with it."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait()


def _night(project: TinyProject, code: int) -> dict:
    out = check_run(project.run(*ARGS), code=code)
    data = json.loads((project.site / "nightly-regressions.json").read_text())
    data["report"] = (project.site / "regressions.txt").read_text()
    data["out"] = out
    return data


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind (apt-get install valgrind)")
def test_only_confirmed_regressions_are_reported_with_the_machine_loaded(tmp_path, env_dir, burner,
                                                                        monkeypatch):
    project = TinyProject(tmp_path, env_dir, counted=True,
                          thresholds={"^(?!bench_count\\.).*": 0.05, "bench_count\\..*": 0.01})
    project.commit("c0")
    nights = []
    for i in range(1, 4):  # identical code, three separate nights
        project.commit(f"c{i}", n=BASE_N)
        night = _night(project, code=0)
        assert night["regressions"] == [], night["report"]
        assert "No regressions." in night["report"]
        nights.append(night)
    # Every stored result says which machine and settings measured it.
    for commit, result in project.stored_results().items():
        label = result["stardag_nightly"]
        assert (label["machine"], label["quick"], label["smoke"]) == ("testbox", False, False)
        assert label["PYTHONHASHSEED"] == "0" and label["valgrind"].startswith("valgrind")
        assert len(label["suite_commit"]) == 40 and len(label["load_1min"]) == 2
    # What the nomination alone would have reported: all judged noise, none reported.
    nominated = [r for night in nights for r in night["not_reported"]]
    assert all(r["verdict"] == "noise" and r["interleaved"] for r in nominated), nominated

    slow_n = BASE_N * 5 // 4
    slow = project.commit("25% slower per call", n=slow_n)
    after = project.commit("after it, the same speed", n=slow_n)
    more = project.commit("3% more work per call", n=slow_n * 103 // 100)
    night = _night(project, code=3)
    new = {(r["benchmark"], r["commit_after"], r["verdict"]) for r in night["regressions"]
           if r["new"]}
    required = {(TIMED, slow, "confirmed"), (COUNTED, slow, "counted"), (COUNTED, more, "counted")}
    # 3% more work is below the timed factor (1.05) but real: on a loaded machine it measured
    # 1.054x in all 6 rounds once, and then reporting it by its timing too is right.
    assert required <= new <= required | {(TIMED, more, "confirmed")}, night["report"]
    timed = next(r for r in night["regressions"]
                 if r["benchmark"] == TIMED and r["commit_after"] == slow)
    figures = timed["interleaved"]
    assert 1.15 < figures["ratio"] < 1.4 and figures["p_value"] < 0.01, figures
    assert len(figures["base_samples"]) >= 20 and len(figures["new_samples"]) >= 20
    counted = {r["commit_after"]: r for r in night["regressions"] if r["benchmark"] == COUNTED}
    assert 1.2 < counted[slow]["ratio"] < 1.3, counted[slow]
    assert 1.02 < counted[more]["ratio"] < 1.04, counted[more]
    assert after not in {r["commit_after"] for r in night["regressions"]}  # the same speed
    reported = night["report"].split("Not confirmed")[0]
    assert f"..{slow[:8]} " in reported and f"..{more[:8]} " in reported
    assert "interleaved with" in reported and "6 rounds" in reported and "p=" in reported
    assert f"New regressions ({len(new)})" in night["out"]  # also in the log / stderr

    # The noise band of a benchmark, read from the store: the ratios of consecutive results
    # (here 5: c0 c1 c2 c3 slow after, before `more`; a real band needs 6 or more).
    results = [read_result(str(p), "testbox") for p in (project.store / "testbox").glob("*.json")
               if p.name != "machine.json"]
    history = noise.History(str(project.repo), results, "testbox")
    monkeypatch.setattr(noise, "MIN_RATIOS", 5)
    band = history.band(TIMED, more, PYTHON)
    assert band is not None and band.n_ratios == 5 and 1.1 < band.factor < 2  # the 25% step
    assert history.band(COUNTED, more, PYTHON).factor == pytest.approx(counted[slow]["ratio"])

    # The next night has nothing new to alarm about; what is open stays listed.
    night = _night(project, code=0)
    assert not [r for r in night["regressions"] if r["new"]], night["report"]
    print("\nnominated on 3 nights of identical code (all judged noise):",
          [(r["benchmark"], round(r["ratio"], 3), round(r["interleaved"]["ratio"], 3),
            round(r["interleaved"]["p_value"], 4)) for r in nominated])
    print("25% slower: stored", round(timed["ratio"], 3), "interleaved",
          round(figures["ratio"], 3), "p", figures["p_value"], "| counted:",
          round(counted[slow]["ratio"], 4), round(counted[more]["ratio"], 4))


def test_a_smoke_environment_is_refused_before_anything_is_measured(tmp_path, env_dir):
    project = TinyProject(tmp_path, env_dir)
    project.commit("c0")
    proc = subprocess.run(project.args(), env=project.env(STARDAG_BENCH_SMOKE="1"),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    out = check_run(proc, code=2)
    assert "nightly run refused: $STARDAG_BENCH_SMOKE=1 is set" in out and "unset it" in out
    assert "Traceback" not in out
    assert not (project.store / "testbox").exists()  # nothing stored
    assert not (project.state / "staging").exists()
