"""Candidate regressions and their confirmation, without asv runs: thresholds, verdicts, memory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from _nightly import confirm, noise, provenance  # noqa: E402
from _nightly.regression import (CONFIRMED, COUNTED, NOISE, UNMEASURED, Regression,  # noqa: E402
                                 format_report, threshold_for)

THRESHOLDS = {  # the shape of asv.conf.json's
    "^(?!bench_cost\\.).*": 0.2,
    "bench_(build|scaling)\\..*\\.track_.*": 0.25,
    "bench_cost\\..*": 0.01,
}


def test_thresholds_are_asvs_largest_match_and_counted_benchmarks_keep_1_percent():
    assert threshold_for("bench_cost.Build.track_instructions_per_task('fan_in')", "main",
                         THRESHOLDS) == 0.01
    assert threshold_for("bench_build.CPUBound.time_build('cpu_tree')", "main", THRESHOLDS) == 0.2
    assert threshold_for("bench_scaling.LightScaling.track_overhead_us(1)", None, THRESHOLDS) == 0.25
    assert threshold_for("anything", None, {}) == 0.05  # asv's default


def _candidate(name="b.T.time_x", before=1.0, after=1.3, new=True, commit="c" * 40,
               factor=1.2, **kw) -> Regression:
    return Regression(benchmark=name, graph={"machine": "m", "python": "3.11"},
                      commit_before="a" * 40, commit_after=commit, value_before=before,
                      value_after=after, unit=kw.pop("unit", "seconds"), new=new,
                      found_by="asv compare --factor 1.2", factor=factor, **kw)


class _Fake(confirm.Confirmer):
    """A confirmer whose measurements are given, not run: (base, new) samples per benchmark."""

    def __init__(self, state_dir, samples, **kw):
        super().__init__(run_asv=None, write_conf=None, machine="m", env_type="virtualenv",
                         repo=str(ROOT), benchmarked=set(), state_dir=str(state_dir), **kw)
        self.samples = samples
        self.measured: list[str] = []

    def _measure_group(self, baseline, commit, python, rows):
        self.measured += [r.benchmark for r in rows]
        return [self._judge(r, baseline, *(self._rounds(x) for x in self.samples[r.benchmark]),
                            []) for r in rows]

    def _rounds(self, samples: list) -> list[list[float]]:
        """The rounds themselves (lists), or samples spread evenly over ``rounds`` rounds."""
        if all(isinstance(x, list) for x in samples):
            return samples
        size = len(samples) // self.rounds
        return [samples[i * size:(i + 1) * size] for i in range(self.rounds)]


def test_a_slowdown_the_interleaved_rounds_repeat_is_confirmed_a_fluke_is_noise(tmp_path):
    slow = [1.25 + 0.01 * (i % 3) for i in range(12)]
    same = [1.0 + 0.01 * (i % 3) for i in range(12)]
    fake = _Fake(tmp_path, {"b.T.time_real": (same, slow), "b.T.time_fluke": (same, same)},
                 rounds=6)
    done = fake.confirm([_candidate("b.T.time_real"), _candidate("b.T.time_fluke", after=2.0)])
    verdicts = {r.benchmark: r for r in done}
    real, fluke = verdicts["b.T.time_real"], verdicts["b.T.time_fluke"]
    assert (real.verdict, fluke.verdict) == (CONFIRMED, NOISE)
    assert real.alarm and not fluke.alarm
    assert real.interleaved["ratio"] == pytest.approx(1.26 / 1.01) and real.interleaved["p_value"] < 0.01
    text = format_report(done, "header")
    assert "New regressions (1)" in text and "Not confirmed (noise) (1)" in text
    assert "interleaved with aaaaaaaa, 6 rounds, 12+12 samples" in text
    assert text.index("time_real") < text.index("Not confirmed") < text.index("time_fluke")


def test_samples_of_one_round_are_not_taken_as_independent_evidence(tmp_path):
    """Each round is one process per commit, and a process's samples share its luck.

    Identical code, 6 rounds of 10 samples: some processes of either commit ran 10%
    slow (a busy neighbour), more of the new commit's. Pooled, 60 samples against 60
    are a certain 1.10x slowdown (asv's U test: p ~ 1e-5); round against round, 4 slow
    rounds of 6 against 2 of 6 are no evidence at all.
    """
    def one_round(level, k):
        return [level * (1 + 0.0005 * ((j * 7 + k) % 10)) for j in range(10)]

    base = [one_round(level, k) for k, level in enumerate((1.0, 1.0, 1.0, 1.0, 1.1, 1.1))]
    new = [one_round(level, k + 3) for k, level in enumerate((1.0, 1.1, 1.1, 1.1, 1.1, 1.1))]
    assert confirm.mann_whitney_u(sum(base, []), sum(new, []))[1] < 1e-4  # pooled: "certain"
    fake = _Fake(tmp_path, {"b.T.time_x": (base, new)}, rounds=6)
    [done] = fake.confirm([_candidate(factor=1.05)])
    assert done.interleaved["ratio"] > 1.05  # slower by the factor, as pooled medians go...
    assert done.verdict == NOISE and not done.alarm  # ...but not from round to round
    assert done.interleaved["p_value"] > 0.05 and done.interleaved["rounds"] == 6
    assert len(done.interleaved["new_samples"]) == 60


def test_slower_but_not_by_the_factor_is_not_confirmed(tmp_path):
    base = [1.0 + 0.001 * i for i in range(12)]
    new = [1.1 + 0.001 * i for i in range(12)]  # 10% slower, clearly: but found at 1.2
    done = _Fake(tmp_path, {"b.T.time_x": (base, new)}).confirm([_candidate()])
    assert done[0].verdict == NOISE and done[0].interleaved["p_value"] < 0.01


def test_counted_ones_are_never_rerun_and_verdicts_are_remembered(tmp_path):
    counted = _candidate("bench_cost.B.track_instructions_per_task", 100.0, 103.0,
                         unit="instructions", verdict=COUNTED)
    fake = _Fake(tmp_path, {"b.T.time_x": ([1.0] * 6, [1.5] * 6)})
    first = fake.confirm([counted, _candidate()])
    assert fake.measured == ["b.T.time_x"]
    assert {r.verdict for r in first} == {COUNTED, CONFIRMED}

    again = _Fake(tmp_path, {})  # a later night: step detection lists the same regression
    second = again.confirm([counted, _candidate(new=False)])
    assert again.measured == []
    remembered = next(r for r in second if r.benchmark == "b.T.time_x")
    assert remembered.verdict == CONFIRMED and "measured again by run" in remembered.note


def test_over_the_budget_waits_for_the_next_night(tmp_path):
    samples = {f"b.T.time_{i}": ([1.0] * 6, [2.0] * 6) for i in range(3)}
    fake = _Fake(tmp_path, samples, max_confirm=1)
    rows = [_candidate(f"b.T.time_{i}", after=1.5 + i) for i in range(3)]
    first = fake.confirm(rows)
    assert fake.measured == ["b.T.time_2"]  # the biggest slowdown first
    unmeasured = [r for r in first if r.verdict == UNMEASURED]
    assert len(unmeasured) == 2 and all("--max-confirm 1" in r.note for r in unmeasured)
    assert not any(r.alarm for r in unmeasured)
    assert "Not measured again (2)" in format_report(first, "h")

    # Next night nothing new is found, but the two left over are measured then.
    later = _Fake(tmp_path, samples, max_confirm=5)
    second = later.confirm([])
    assert sorted(later.measured) == ["b.T.time_0", "b.T.time_1"]
    # Never reported before: news tonight, so they alarm (--fail-on-regression exits 3).
    assert all(r.verdict == CONFIRMED and r.alarm and "nominated on an earlier night" in r.note
               for r in second)
    assert "New regressions (2)" in format_report(second, "h")
    # Remembered as confirmed: a third night lists them as still open, without alarm.
    third = _Fake(tmp_path, samples).confirm([])
    assert third == []  # nothing pending; step detection would list them again, not as new


def test_a_smoke_environment_is_refused(monkeypatch):
    monkeypatch.setenv("STARDAG_BENCH_SMOKE", "1")
    with pytest.raises(provenance.UncleanEnvironment, match="never stores them; unset it"):
        provenance.refuse_unclean({})
    monkeypatch.delenv("STARDAG_BENCH_SMOKE")
    provenance.refuse_unclean({})
    with pytest.raises(provenance.UncleanEnvironment, match="matrix.env_nobuild"):
        provenance.refuse_unclean({"matrix": {"env_nobuild": {"STARDAG_BENCH_SMOKE": "1"}}})


def test_a_noise_band_is_the_90th_percentile_of_consecutive_ratios():
    steady = [1.0, 1.1, 1.0, 0.95, 1.05, 1.0, 1.1, 1.0, 1.02, 1.0, 0.98]
    band = noise.band_of(steady)
    assert band.n_ratios == 10 and 1.09 < band.factor <= 1.11
    noisy = [1.0, 3.0, 1.0, 2.5, 1.0, 4.0, 1.2, 1.0, 3.5, 1.0, 1.0]
    assert noise.band_of(noisy).factor >= 3.0
    assert noise.band_of([1.0, 2.0, 1.0]) is None  # too few results: no band yet
    assert noise.band_of([None, float("nan"), 0.0] + steady).n_ratios == 10  # gaps left out


class _History:
    def __init__(self, factor):
        self.factor = factor

    def band(self, benchmark, commit, python):
        return noise.Band(self.factor, 12)


def test_a_candidate_inside_its_noise_band_is_noise_without_a_second_look(tmp_path):
    fake = _Fake(tmp_path, {"b.T.time_big": ([1.0] * 6, [3.0] * 6)})
    fake.history = _History(2.0)
    done = fake.confirm([_candidate("b.T.time_small", after=1.8),
                         _candidate("b.T.time_big", after=3.0)])
    assert fake.measured == ["b.T.time_big"]  # only the one beyond its band
    small = next(r for r in done if r.benchmark == "b.T.time_small")
    assert small.verdict == NOISE and "noise band on this machine: 2.00x" in small.note
    assert "inside its noise band" in format_report(done, "h")
