"""Standalone runner: every scenario under every configuration, once over, in about 2 minutes on 2 cores.

    python -m benchmarks.run_benchmark [--output results.json] [--only io_tree,heavy_cpu]

Prints a table (seconds, lower is better; the ideal makespan beside each time)
and the light-task overhead per task beside its floor, then saves everything to
``results.json``. Builds that take under a second run three times, under 50 ms nine
times (median shown); light-task builds and their floors run three times, interleaved (best of each).
The asv suite measures the same scenarios over git history and Python versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

from benchmarks import configuration, dags
from benchmarks.bench_scaling import run_floor
from benchmarks.common import RootPool, describe_target_root, import_stardag, timed_build
from benchmarks.scenario import SCENARIOS

LIGHT_CASES = [("fan_in", 10_000, "memory"), ("chain", 10_000, "memory"),
               ("fan_in", 10_000, "file"), ("chain", 10_000, "file")]


def n_runs(first: float) -> int:
    """How many builds a case gets, from the first one's seconds: short ones need more for a steady median."""
    return 1 if first >= 1.0 else 3 if first >= 0.05 else 9


def measure_builds(config: configuration.Configuration, dag: dags.Dag, roots: RootPool) -> list[float]:
    """Seconds of each build from a fresh root: 1 run, 3 if the first took < 1 s, 9 if < 50 ms."""
    runs = [timed_build(config.make_builder(), dag, roots)]
    while len(runs) < n_runs(runs[0]):
        runs.append(timed_build(config.make_builder(), dag, roots))
    return runs


def run_scenarios(names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        scenario = SCENARIOS[name]
        for config in configuration.CONFIGURATIONS.values():
            if not scenario.runs_under(config.name):
                continue
            dag = scenario.dag_for(config)
            roots = RootPool("file")
            try:
                runs = measure_builds(config, dag, roots)
            finally:
                roots.clear()
            ideal = scenario.ideal_seconds(config, dag)
            median = statistics.median(runs)
            rows.append({"scenario": name, "configuration": config.name, "n_tasks": dag.n_tasks,
                         "seconds": runs, "median_s": median, "ideal_s": ideal,
                         "efficiency": ideal / median})
            print(f"  {name:<18} {config.name:<13} {seconds(median):>9}   ideal {seconds(ideal):>9}   "
                  f"efficiency {ideal / median:.2f}",
                  flush=True)
    return rows


def run_light() -> list[dict]:
    rows = []
    for shape, n_tasks, storage in LIGHT_CASES:
        for config in configuration.CONFIGURATIONS.values():
            if storage == "memory" and not config.in_process:
                continue
            if (config.max_light_tasks is not None and n_tasks > config.max_light_tasks) or (
                    shape == "chain" and config.max_light_chain is not None and n_tasks > config.max_light_chain):
                continue  # as in the suite: too slow for its budget (dask)
            dag = dags.light_family(shape, n_tasks, config.async_tasks)
            roots = RootPool(storage)
            floors, runs = [], []
            try:
                for _ in range(3):  # interleaved, best of 3 each: load spikes only add
                    floors.append(run_floor(dag, roots.fresh()))
                    runs.append(timed_build(config.make_builder(), dag, roots))
            finally:
                roots.clear()
            floor, best = min(floors), min(runs)
            rows.append({"shape": shape, "n_tasks": n_tasks, "storage": storage,
                         "configuration": config.name, "seconds": runs, "floor_s": floors,
                         "overhead_us": (best - floor) / n_tasks * 1e6,
                         "floor_us": floor / n_tasks * 1e6})
            print(f"  {shape:<6} {n_tasks:>6} {storage:<6} {config.name:<13} "
                  f"overhead {rows[-1]['overhead_us']:7.1f} µs/task   floor {rows[-1]['floor_us']:6.1f} µs",
                  flush=True)
    return rows


def seconds(value: float) -> str:
    """A duration with 3 significant digits in s, ms or µs: builds take from 0.5 ms to 50 s."""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def aligned(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table whose columns line up: the first left-aligned, the others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 1)) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def format_table(rows: list[dict]) -> str:
    names = configuration.NAMES
    lines = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        cells = {r["configuration"]: r for r in rows if r["scenario"] == scenario}
        n_tasks = next(iter(cells.values()))["n_tasks"]
        lines.append([scenario, str(n_tasks)] + [
            f"{seconds(cells[n]['median_s'])} (ideal {seconds(cells[n]['ideal_s'])})" if n in cells else "n/a"
            for n in names])
    return aligned(["scenario", "tasks", *names], lines)


def format_light(rows: list[dict]) -> str:
    names = configuration.NAMES
    lines = []
    for key in dict.fromkeys((r["shape"], r["n_tasks"], r["storage"]) for r in rows):
        cells = {r["configuration"]: r for r in rows if (r["shape"], r["n_tasks"], r["storage"]) == key}
        floor = next(iter(cells.values()))["floor_us"]
        lines.append([f"{key[0]} {key[1]} {key[2]}", f"{floor:.1f}"]
                     + [f"{cells[n]['overhead_us']:.1f}" if n in cells else "n/a" for n in names])
    return aligned(["light DAG", "floor", *names], lines)


def light_skips() -> str:
    """Why a light-DAG cell is n/a: the cases `run_light` leaves out, as the asv suite does."""
    remote = [c.name for c in configuration.CONFIGURATIONS.values() if not c.in_process]
    caps = [f"{c.name} stops at {c.max_light_tasks:,} tasks" + (
        f" ({c.max_light_chain:,} in a chain)" if c.max_light_chain else "")
        for c in configuration.CONFIGURATIONS.values() if c.max_light_tasks]
    return (f"n/a: not run; {' and '.join(remote)} cannot use in-memory targets (tasks run in "
            f"other processes); budget: {'; '.join(caps)}")


def _n_tasks(scenario) -> str:
    try:
        return f" ({scenario.make_dag(False).n_tasks} tasks)"
    except Exception:  # the library is missing: the help still lists the scenarios
        return ""


def _only(scenario) -> str:
    names = getattr(scenario, "configurations", None)
    return f"; {', '.join(names)} only" if names and list(names) != configuration.NAMES else ""


def epilog() -> str:
    width = max(map(len, SCENARIOS))
    scenarios = "\n".join(f"  {name:<{width}}  {s.workload} work on the {s.shape} DAG{_n_tasks(s)}{_only(s)}"
                          for name, s in SCENARIOS.items())
    configs = "\n".join(f"  {name}" for name in configuration.NAMES)
    return (f"scenarios (--only):\n{scenarios}\n\nconfigurations (every scenario runs under each, "
            f"unless it says otherwise):\n{configs}\n\nwithout --only, the light-task overhead "
            "cases run too: " + ", ".join(f"{shape} {n:,} {storage}" for shape, n, storage in LIGHT_CASES))


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent)
    return proc.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="results.json", help="where to save the results")
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    args = parser.parse_args(argv)
    try:
        import_stardag()
    except NotImplementedError as err:
        print(f"run_benchmark: {err}; install it with `pip install -e .`", file=sys.stderr)
        return 1
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"run_benchmark: unknown scenario {unknown[0]!r}; use {', '.join(SCENARIOS)}",
              file=sys.stderr)
        return 2

    print(describe_target_root())
    print(f"python {platform.python_version()}, {configuration.n_cores()} cores, "
          f"{configuration.WORKERS} pool workers, commit {_commit()}", flush=True)
    start = timeit.default_timer()
    rows = run_scenarios(names)
    light = run_light() if not args.only else []
    total = timeit.default_timer() - start

    print("\nBuild time in seconds, lower is better (ideal: zero-overhead schedule on the "
          "configuration's workers and cores)")
    table = format_table(rows)
    print(table)
    if "n/a" in table:
        print("n/a: not run; the scenario lists fewer configurations (its --help line says which)")
    if light:
        print("\nLight tasks: build overhead in µs per task (build time minus floor); "
              "floor = run() + one write per task, no scheduler")
        print(format_light(light))
        print(light_skips())
    print(f"\ntotal {total:.0f} s on {configuration.n_cores()} cores")

    result = {"python": platform.python_version(), "cores": configuration.n_cores(),
              "workers": configuration.WORKERS, "commit": _commit(),
              "target_root": describe_target_root(), "total_s": total,
              "scenarios": rows, "light": light}
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {os.path.abspath(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
