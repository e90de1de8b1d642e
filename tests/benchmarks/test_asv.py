"""asv itself on this suite: `asv check`, and a real run over a temporary clone's history.

The history tests read the session's run of ``tools/bench.py run ALL --quick``
over a three-commit clone (the suite without the library, then with it, then a
small change) and its published site: see tests/asv_history.py.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import configuration  # noqa: E402


def test_asv_check_passes():
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "-E", f"existing:{sys.executable}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def _results(results_dir: Path, commit: str) -> dict:
    files = [f for f in results_dir.glob(f"*/{commit[:8]}-*.json")]
    assert len(files) == 1, (commit, list(results_dir.glob("*/*")))
    data = json.loads(files[0].read_text())
    return {name: dict(zip(data["result_columns"], row)) for name, row in data["results"].items()}


def _values(entry: dict) -> list:
    result = entry["result"]
    return result if isinstance(result, list) else [result]


def test_asv_run_over_history_succeeds(asv_site):
    assert asv_site.run.returncode == 0, asv_site.log[-5000:]
    assert "Traceback" not in asv_site.log, asv_site.log[-5000:]
    assert asv_site.publish.returncode == 0, asv_site.publish.stdout[-3000:] + asv_site.publish.stderr[-3000:]


def test_bench_run_names_the_machine_where_results_went_and_prints_values_with_units(asv_site):
    log = asv_site.log
    assert "bench: machine " in log and "bench: results of machine " in log, log[-3000:]
    assert not re.search(r"\d\.\d{8,}", log), "a value printed with all its digits"
    assert "bench: n/a = skipped, not failed" in log  # the commit without the library
    published = asv_site.publish.stdout
    assert "bench: overview page " in published and "libraries served from" in published, published


def test_commit_without_library_is_skipped_not_failed(asv_site):
    results = _results(asv_site.repo / "asv-results", asv_site.commits["no_library"])
    assert results
    for name, entry in results.items():
        values = _values(entry)
        # asv stores a skip (NotImplementedError in setup) as NaN, a failure as null
        assert all(v is not None and math.isnan(v) for v in values), (name, values)


def test_site_lists_every_benchmark_and_configuration_with_both_commits(asv_site):
    repo, commits = asv_site.repo, asv_site.commits
    index = json.loads((repo / "html" / "index.json").read_text())
    discovered = json.loads((repo / "asv-results" / "benchmarks.json").read_text())
    names = {n for n in discovered if n != "version"}
    assert names and set(index["benchmarks"]) == names
    seen: set[str] = set()
    for name in names:
        meta = index["benchmarks"][name]
        if "configuration" in meta["param_names"]:
            values = [v.strip("'") for v in meta["params"][meta["param_names"].index("configuration")]]
            # A family may leave configurations out (bench_build.HybridIO, HeavyCPU), in the usual order.
            assert values == [c for c in configuration.NAMES if c in values], (name, values)
            seen.update(values)
    assert seen == set(configuration.NAMES)

    revisions = {h: r for r, h in index["revision_to_hash"].items()}
    for key in ("first", "second"):
        assert commits[key] in revisions, (key, index["revision_to_hash"])
        results = _results(repo / "asv-results", commits[key])
        assert set(results) == names
        # A smoke run skips the instruction counts (bench_cost): they need a real run.
        for name in (n for n in names if not n.startswith("bench_cost.")):
            values = _values(results[name])
            assert any(v is not None and not math.isnan(v) for v in values), (key, name, values)

    # the graphs the site draws hold a point for each commit
    graph_dir = repo / "html" / "graphs"
    for name in (n for n in names if not n.startswith("bench_cost.")):
        graphs = [g for g in graph_dir.rglob(f"{name}.json") if "summary" not in g.parts]
        assert graphs, name
        points = json.loads(graphs[0].read_text())
        revs = {p[0] for p in points if any(x is not None for x in (p[1] if isinstance(p[1], list) else [p[1]]))}
        assert {int(revisions[commits["first"]]), int(revisions[commits["second"]])} <= revs, name
