"""The console of tools/bench.py (asv's output through tools/progress.py) and of the standalone runner.

The asv output fed here is the shape asv 0.6 prints: a benchmark's name when it
starts, the rest of the line (``ok``) and its table when every case is done.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO))

import progress  # noqa: E402
from benchmarks import bench_scaling, configuration, run_benchmark  # noqa: E402
from benchmarks.scenario import SCENARIOS  # noqa: E402

EFFICIENCY = "bench_build.CPUBound.track_efficiency"
TIME = "bench_build.CPUBound.time_build"
OVERHEAD = "bench_scaling.LightScaling.track_overhead_us"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def console(tmp_path: Path, durations: dict[str, float] | None = None):
    results = tmp_path / "results"
    (results / "box").mkdir(parents=True)
    meta = {"version": 2,
            TIME: {"unit": "seconds", "params": [["'a'", "'b'"], ["'x'", "'y'"]]},
            EFFICIENCY: {"unit": "ideal / measured", "params": [["'a'", "'b'"], ["'x'", "'y'"]]},
            OVERHEAD: {"unit": "us per task", "params": [["'fan_in'"], ["'x'", "'y'"]]}}
    (results / "benchmarks.json").write_text(json.dumps(meta))
    if durations:
        (results / "box" / "abc-env.json").write_text(json.dumps({
            "result_columns": ["result", "params", "version", "started_at", "duration"],
            "results": {name: [1, [], "1", 0, seconds] for name, seconds in durations.items()}}))
    out, clock = io.StringIO(), Clock()
    return progress.AsvConsole(results, "box", "the reasons", out=out, clock=clock), out, clock


def feed(con, text: str) -> None:
    con.feed(text.encode())


HEADER = ("· Creating environments\n· Discovering benchmarks\n"
          "· Running 3 total benchmarks (1 commits * 1 environments * 3 benchmarks)\n"
          "[ 0.00%] · For stardag commit 1398ddc5 <main>:\n")


def test_silence_is_filled_with_progress_done_of_total_elapsed_and_what_is_left(tmp_path):
    con, out, clock = console(tmp_path, durations={TIME: 20.0, EFFICIENCY: 1.0, OVERHEAD: 40.0})
    feed(con, HEADER)
    feed(con, f"[ 0.00%] ··· {TIME}")  # started; asv finishes the line when it is done
    clock.now += 9
    con.tick()
    assert out.getvalue().count("bench:") == 0  # under 10 s of silence: nothing to add
    clock.now += 2
    con.tick()
    status = out.getvalue().splitlines()[-1]
    # expected: 61 s in all, 20 s of them for the one running, 11 s of which have gone
    assert status.startswith("bench: 0/3 benchmarks done, 11 s elapsed, about 50 s left")
    assert f"now {TIME} (11 s)" in status
    feed(con, "                ok\n")
    assert out.getvalue().splitlines()[-1].startswith(f"[ 0.00%] ··· {TIME}")  # asv's line stays whole
    feed(con, f"[33.33%] ··· {EFFICIENCY}                        ok\n")
    clock.now += 10
    con.tick()
    status = out.getvalue().splitlines()[-1]
    # 21 s of the expected 61 s took 11 s: the 40 s left should take about 21 s
    assert status.startswith("bench: 2/3 benchmarks done, 21 s elapsed, about 21 s left")


def test_without_earlier_results_the_estimate_follows_the_pace_by_parameter_cases(tmp_path):
    con, out, clock = console(tmp_path)
    feed(con, HEADER + f"[ 0.00%] ··· {TIME}")
    clock.now += 10
    con.tick()
    assert "time left known after the first benchmark" in out.getvalue()
    clock.now += 10
    feed(con, " ok\n")  # 4 of 10 cases after 20 s: 5 s a case
    clock.now += 10
    con.tick()  # the 6 cases to go take 30 s
    assert "1/3 benchmarks done, 30 s elapsed, about 30 s left" in out.getvalue().splitlines()[-1]


def test_the_estimate_falls_while_a_long_benchmark_runs(tmp_path):
    con, out, clock = console(tmp_path, durations={TIME: 20.0, EFFICIENCY: 1.0, OVERHEAD: 40.0})
    feed(con, HEADER + f"[ 0.00%] ··· {TIME}")
    left = []
    for _ in range(4):
        clock.now += 10
        left.append(con.left_s())
    assert left == sorted(left, reverse=True) and left[-1] >= 41  # never below what is still queued


def test_a_long_setup_cache_is_named_while_it_runs(tmp_path):
    con, out, clock = console(tmp_path)
    feed(con, HEADER + f"[ 0.00%] ··· {TIME}  ok\n[33.33%] ··· Setting up bench_cost:40")
    clock.now += 10
    con.tick()
    assert out.getvalue().splitlines()[-1].endswith("now the setup of bench_cost:40 (10 s)")
    feed(con, "     ok\n")
    clock.now += 10
    con.tick()
    assert ", now " not in out.getvalue().splitlines()[-1]


def test_setting_up_says_so(tmp_path):
    con, out, clock = console(tmp_path)
    feed(con, "· Creating environments\n·· Installing 1398ddc5 <main> into virtualenv-py3.11\n")
    clock.now += 12
    con.tick()
    assert out.getvalue().splitlines()[-1] == "bench: 12 s elapsed, setting up: Installing 1398ddc5 <main>"


def test_track_values_get_their_unit_and_precision_and_tables_stay_aligned(tmp_path):
    con, out, _ = console(tmp_path)
    table = [
        "[18.18%] ··· ========== =============== =====================",
        "              scenario   configuration                       ",
        "             ---------- --------------- ---------------------",
        "              cpu_tree     sequential     0.5333243808034275 ",
        "              cpu_flat    thread_pool    0.48163247485677163 ",
        "             ========== =============== =====================",
        "",
    ]
    feed(con, HEADER + f"[18.18%] ··· {EFFICIENCY}                        ok\n" + "\n".join(table) + "\n")
    lines = out.getvalue().splitlines()
    assert lines[4] == f"[18.18%] ··· {EFFICIENCY}                        ok  [ideal / measured]"
    assert "0.533" in lines[8] and "0.5333" not in lines[8] and "0.482" in lines[9]
    assert [len(line) for line in lines[5:11]] == [len(line) for line in table[:6]]
    feed(con, f"[90.00%] ··· {OVERHEAD}    ok\n              fan_in    11474.41234567  3.89304000009 \n")
    assert out.getvalue().splitlines()[-1].split() == ["fan_in", "11474", "µs", "3.9", "µs"]


def test_seconds_are_left_as_asv_prints_them(tmp_path):
    con, out, _ = console(tmp_path)
    feed(con, HEADER + f"[ 9.09%] ··· {TIME}   ok\n              cpu_tree   sequential   798±100ms \n")
    assert out.getvalue().splitlines()[-1] == "              cpu_tree   sequential   798±100ms "


def test_na_is_explained_once_after_its_table(tmp_path):
    con, out, _ = console(tmp_path)
    table = f"[90.00%] ··· {OVERHEAD}    ok\n ===\n  fan_in  n/a \n ===\n\n"
    feed(con, HEADER + table + table)
    text = out.getvalue()
    assert text.count("bench: n/a = skipped, not failed: the reasons") == 1
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("bench: n/a"))
    assert lines[at - 3:at] == ["  fan_in  n/a ", " ===", ""]  # after the table's end


def test_bench_explains_na_from_the_suite_limits():
    import bench

    text = bench.na_explanation()
    for name in (c.name for c in configuration.CONFIGURATIONS.values() if not c.in_process):
        assert name in text
    assert "commits before the library" in text and "10,000" in text
    # every cap the suite skips by is named (a light DAG over this size runs sequentially only)
    assert f"only sequential beyond {bench_scaling.MAX_TASKS_BUT_SEQUENTIAL:,} light tasks" in text


# --------------------------------------------------------------------------------------
# the standalone runner


def test_runner_tables_line_up():
    rows = [{"scenario": s, "configuration": c, "n_tasks": 15, "median_s": 0.5 + i, "ideal_s": 0.4}
            for s in ("io_tree", "heavy_cpu") for i, c in enumerate(configuration.NAMES[:-1])]
    light = [{"shape": "fan_in", "n_tasks": 10_000, "storage": "memory", "configuration": c,
              "floor_us": 3.0, "overhead_us": 12345.6} for c in configuration.NAMES[:2]]
    for table in (run_benchmark.format_table(rows), run_benchmark.format_light(light)):
        lines = table.splitlines()
        bars = {tuple(m.start() for m in re.finditer(r"\|", line)) for line in lines}
        assert len(bars) == 1, table  # every | in the same column on every line
        assert len(next(iter(bars))) == len(configuration.NAMES) + 3
    assert "n/a" in run_benchmark.format_table(rows)  # the configuration that did not run


def test_runner_times_keep_three_digits_from_microseconds_to_minutes():
    assert [run_benchmark.seconds(x) for x in (47.754, 1.0, 0.7734, 0.00077, 0.0000031)] == [
        "47.75 s", "1.00 s", "773 ms", "770 µs", "3.1 µs"]
    row = {"scenario": "light_tree", "configuration": "sequential", "n_tasks": 15,
           "median_s": 0.00077, "ideal_s": 0.00031}
    assert "770 µs (ideal 310 µs)" in run_benchmark.format_table([row])


def test_runner_help_lists_scenarios_and_configurations():
    out = subprocess.run([sys.executable, "-m", "benchmarks.run_benchmark", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    for name in [*SCENARIOS, *configuration.NAMES]:
        assert re.search(rf"^\s+{name}\b", out, re.M), name
