"""finish_site on asv's own pages and made-up results: libraries from the registry, the overview's content.

The libraries: fetched from a registry, checked against the pinned checksums,
cached; served from the cache when the registry is down; a registry that is
unreachable with nothing cached, or serves other bytes, costs the site its
offline copies (with a notice and a message saying how to fix it), never its
publication. The overview: scenarios and configurations come from the data
(a new one shows up), the newest commit per Python is shown, skips read n/a
and failures "failed", the upstream recommendations get a verdict with the
numbers, and the page has its tables (and says why) without matplotlib.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import itertools
import json
import math
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import _site  # noqa: E402
from _site import pages, plot, vendor  # noqa: E402

ASV_WWW = Path(__import__("asv").__file__).parent / "www"
CONFIGS = ["sequential", "thread_pool", "process_pool", "async", "trebuchet"]  # the last one is new
SCENARIOS = ["io_flat", "cpu_flat", "heavy_cpu", "catapult_run"]  # so is the last one


# --------------------------------------------------------------------------------------
# made-up results in asv's format


def _q(values):
    return [repr(v) if isinstance(v, str) else str(v) for v in values]


BENCHMARKS = {
    "bench_build.Family.time_build": ("time", "seconds", ["scenario", "configuration"], [SCENARIOS, CONFIGS],
                                      "Seconds for one whole build of the scenario."),
    "bench_build.Family.track_efficiency": ("track", "ideal / measured", ["scenario", "configuration"],
                                            [SCENARIOS, CONFIGS], "The ideal schedule's time over the build's."),
    "bench_scaling.LightScaling.track_overhead_us": (
        "track", "us per task", ["shape", "n_tasks", "storage", "configuration"],
        [["fan_in"], [100, 1000], ["memory"], CONFIGS], "Build time minus the floor, per task."),
    "bench_scaling.LightFloor.track_floor_us": (
        "track", "us per task", ["shape", "n_tasks", "storage"], [["fan_in"], [100, 1000], ["memory"]], ""),
    "bench_cost.Cost.track_instructions_per_build": ("track", "instructions", ["configuration"], [CONFIGS],
                                           "Instructions of one build, counted by cachegrind."),
}


def write_benchmarks(results: Path) -> None:
    meta = {"version": 2}
    for name, (kind, unit, names, params, doc) in BENCHMARKS.items():
        code = f"def {name.rsplit('.', 1)[1]}(self):\n    \"\"\"{doc}\"\"\"\n" if doc else "def f(): pass\n"
        meta[name] = {"name": name, "type": kind, "unit": unit, "param_names": names,
                      "params": [_q(p) for p in params], "code": code, "version": "1"}
    results.mkdir(parents=True, exist_ok=True)
    (results / "benchmarks.json").write_text(json.dumps(meta))


def write_run(results: Path, commit: str, python: str, values, machine: str = "box", date: int = 0,
              label: dict | None = None) -> None:
    """``values(name, case dict) -> float | None`` gives each case's value."""
    rows = {}
    for name, (_, _, names, params, _) in BENCHMARKS.items():
        flat = [values(name, dict(zip(names, case))) for case in itertools.product(*params)]
        rows[name] = [flat, [_q(p) for p in params], "1", 0, 1.0]
    data = {"commit_hash": commit, "env_name": f"env-py{python}", "date": date, "python": python,
            "params": {"machine": machine, "python": python}, "requirements": {}, "env_vars": {},
            "result_columns": ["result", "params", "version", "started_at", "duration"],
            "results": rows, "durations": {}, "version": 2}
    if label is not None:
        data.update(label)
    folder = results / machine
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "machine.json").write_text(json.dumps({"machine": machine, "num_cpu": "2", "version": 1}))
    (folder / f"{commit[:8]}-env-py{python}.json").write_text(json.dumps(data, allow_nan=True))


TIMES = {  # scenario -> configuration -> seconds at the newest commit
    "io_flat": {"sequential": 3.3, "thread_pool": 0.91, "process_pool": 0.93, "async": 0.2, "trebuchet": 0.5},
    "cpu_flat": {"sequential": 0.77, "thread_pool": 1.2, "process_pool": 0.9, "async": 0.78, "trebuchet": 2.0},
    "heavy_cpu": {"sequential": 5.9, "thread_pool": 5.7, "process_pool": 3.6, "async": 5.8, "trebuchet": None},
    "catapult_run": {"sequential": 1.0, "thread_pool": 0.8, "process_pool": 0.7, "async": 0.9,
                     "trebuchet": 0.25},
}
OVERHEAD = {"sequential": 4.0, "thread_pool": 12.0, "process_pool": math.nan, "async": 7.0, "trebuchet": 30.0}


def newest_values(name: str, case: dict):
    config = case.get("configuration")
    if name.endswith("time_build"):
        return TIMES[case["scenario"]][config]
    if name.endswith("track_efficiency"):
        t = TIMES[case["scenario"]][config]
        return None if t is None else min(1.0, 0.2 / t)
    if name.endswith("track_overhead_us"):
        return OVERHEAD[config]
    if name.endswith("track_floor_us"):
        return 3.0
    return 1_000_000 + 1000 * CONFIGS.index(config)


def old_values(name: str, case: dict):
    value = newest_values(name, case)
    return value * 2 if isinstance(value, float) and not math.isnan(value) else value


@pytest.fixture
def site(tmp_path) -> Path:
    """asv's own pages as ``asv publish`` copies them, with an index.json ordering three commits."""
    html = tmp_path / "html"
    shutil.copytree(ASV_WWW, html)
    index = {"project": "stardag", "revision_to_hash": {"1": "a" * 40, "2": "b" * 40, "3": "c" * 40},
             "params": {}, "benchmarks": {}}
    (html / "index.json").write_text(json.dumps(index))
    return html


@pytest.fixture
def results(tmp_path) -> Path:
    results = tmp_path / "results"
    write_benchmarks(results)
    write_run(results, "a" * 40, "3.11", old_values, date=3)  # dates disagree with the order on purpose
    write_run(results, "b" * 40, "3.11", newest_values, date=1)
    write_run(results, "c" * 40, "3.12", newest_values, date=2)
    return results


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache of our own, and a registry nobody answers at (and no plots: the slow part)."""
    monkeypatch.setattr(plot, "available", lambda: False)
    folder = tmp_path / "cache"
    monkeypatch.setenv(vendor.CACHE_VAR, str(folder))
    monkeypatch.setenv(vendor.REGISTRY_VAR, "http://127.0.0.1:9/")
    return folder


@pytest.fixture(scope="session")
def tarballs() -> dict[str, bytes]:
    """The real tarballs, from the user's cache or the npm registry (fetched once, then cached)."""
    return {name: vendor.fetch(package) for name, package in vendor.PACKAGES.items()}


def fill(cache: Path, tarballs: dict[str, bytes]) -> None:
    (cache / "npm").mkdir(parents=True, exist_ok=True)
    for name, data in tarballs.items():
        package = vendor.PACKAGES[name]
        (cache / "npm" / f"{name}-{package.version}.tgz").write_bytes(data)


@contextlib.contextmanager
def registry(root: Path):
    """A registry on 127.0.0.1 serving ``root/NAME/-/NAME-VERSION.tgz``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def publish_tree(root: Path, tarballs: dict[str, bytes], tamper: str = "") -> None:
    for name, data in tarballs.items():
        path = root / name / "-" / f"{name}-{vendor.PACKAGES[name].version}.tgz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data + b"x" if name == tamper else data)


def overview(site: Path) -> str:
    return (site / "overview.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# the libraries


def test_unreachable_registry_and_empty_cache_still_publish_with_a_notice(site, results, cache):
    report = _site.finish_site(site, results)
    assert len(report.problems) == len(vendor.PACKAGES)
    for problem in report.problems:
        assert "could not fetch" in problem and "http://127.0.0.1:9/" in problem
        assert vendor.REGISTRY_VAR in problem and "publish again" in problem.lower()
    index = (site / "index.html").read_text()
    assert pages.NOTICE_ID in index and "npm registry" in index
    assert pages.external_assets(index) == pages.external_assets((ASV_WWW / "index.html").read_text())
    assert "This site has no copy" in overview(site)
    assert not list(cache.rglob("*.tgz"))
    # offline, asv's pages send the reader to error.html: it names the fix, not "get online"
    error = (site / "error.html").read_text()
    assert "active internet connection" not in error
    assert "npm registry" in error and "tools/bench.py asv publish" in error
    assert 'href="overview.html"' in error


def test_cached_tarballs_serve_the_site_when_the_registry_is_down(site, results, cache, tarballs):
    fill(cache, tarballs)
    report = _site.finish_site(site, results)
    assert report.problems == []
    index = (site / "index.html").read_text()
    assert pages.external_assets(index) == [] and pages.NOTICE_ID not in index
    # no integrity attribute on the site's own copies (checked against the registry's sha512
    # at publish): a browser refuses an integrity-checked script opened from file://
    assert re.search(r'vendor/jquery-3.3.1/dist/jquery.min.js"\s+onerror', index)
    assert re.search(r'vendor/flot-0.8.3/jquery.flot.js"\s+onerror', index)
    assert "integrity=" not in index
    error = (site / "error.html").read_text()
    assert "active internet connection" not in error and "tools/bench.py asv publish" in error


def test_a_registry_is_used_once_then_the_cache(site, results, cache, tarballs, tmp_path, monkeypatch):
    publish_tree(tmp_path / "registry", tarballs)
    with registry(tmp_path / "registry") as url:
        monkeypatch.setenv(vendor.REGISTRY_VAR, url)
        assert _site.finish_site(site, results).problems == []
    assert sorted(p.name for p in (cache / "npm").iterdir()) == sorted(
        f"{name}-{p.version}.tgz" for name, p in vendor.PACKAGES.items())
    # a damaged cache entry is fetched again, not served
    damaged = cache / "npm" / "jquery-3.3.1.tgz"
    damaged.write_bytes(b"not a tarball")
    with registry(tmp_path / "registry") as url:
        monkeypatch.setenv(vendor.REGISTRY_VAR, url)
        assert vendor.fetch(vendor.PACKAGES["jquery"]) == tarballs["jquery"]
    assert damaged.read_bytes() == tarballs["jquery"]


def test_a_registry_serving_other_bytes_is_refused(cache, tarballs, tmp_path, monkeypatch):
    publish_tree(tmp_path / "registry", tarballs, tamper="bootstrap")
    with registry(tmp_path / "registry") as url:
        monkeypatch.setenv(vendor.REGISTRY_VAR, url)
        with pytest.raises(vendor.FetchError, match="checksum"):
            vendor.fetch(vendor.PACKAGES["bootstrap"])
    assert not (cache / "npm" / "bootstrap-3.1.1.tgz").exists()


def test_asv_pages_are_edited_once_and_the_edits_apply_to_this_asv(site, results, cache, tarballs):
    fill(cache, tarballs)
    assert _site.finish_site(site, results).problems == []
    first = {p: (site / p).read_text()
             for p in ("index.html", "graphdisplay.js", "summarygrid.js", "asv_ui.js", "error.html")}
    assert "'configuration'" in first["graphdisplay.js"]  # every configuration by default
    assert "points:" in first["summarygrid.js"]
    assert "tools/bench.py asv preview" in first["asv_ui.js"]  # opened as a file: says to serve it
    assert first["index.html"].count('href="overview.html"') == 1
    assert _site.finish_site(site, results).problems == []  # again: nothing doubled
    assert {p: (site / p).read_text() for p in first} == first


# --------------------------------------------------------------------------------------
# the overview page


def test_overview_takes_scenarios_and_configurations_from_the_data(site, results, cache):
    _site.finish_site(site, results)
    text = overview(site)
    for name in [*SCENARIOS, *CONFIGS]:
        assert f">{name}<" in text, name
    # the new configuration wins the new scenario; a failure reads "failed", a skip "n/a"
    row = text[text.index(">catapult_run<"):].split("</tr>")[0]
    assert "trebuchet <span" in row and 'class="win"' in row
    heavy = text[text.index(">heavy_cpu<"):].split("</tr>")[0]
    assert "failed" in heavy
    assert "n/a" in text[text.index("Build overhead per task"):]
    # every table lists the configurations in one order, the matrix's
    for table in text.split("<table>")[1:]:
        head = re.findall(r"<th[^>]*>([^<]*)</th>", table.split("</tr>")[0])
        shown = [h for h in head if h in CONFIGS]
        assert shown == [c for c in CONFIGS if c in shown], head


def test_overview_shows_the_newest_commit_of_each_python(site, results, cache):
    _site.finish_site(site, results)
    text = overview(site)
    assert "Python 3.11: commit <code>bbbbbbbb</code>" in text  # b is newer than a by the branch
    assert "Python 3.12: commit <code>cccccccc</code>" in text
    assert "3.3 s" in text and "6.6 s" not in text  # io_flat sequential now, not at the old commit
    assert "1,000,000" in text  # instruction counts, and what one count is of
    instructions = text[text.index("Instruction counts"):].split("</table>")[0]
    assert "Cost per build</a>" in instructions


def test_overview_checks_each_upstream_recommendation_with_numbers(site, results, cache):
    _site.finish_site(site, results)
    text = overview(site)
    table = text[text.index("upstream recommendations"):].split("</table>")[0]
    rows = {r.split("</td>")[0].split(">")[-1]: r for r in table.split("<tr>")[2:]}
    assert "agrees" in rows["IO-bound tasks (API calls, file I/O)"]
    assert "io_flat: async 200 ms best" in rows["IO-bound tasks (API calls, file I/O)"]
    cpu = rows["CPU-bound tasks &lt; 100 ms"]
    assert "differs" in cpu and "cpu_flat: sequential 770 ms best; thread_pool 1.2 s (1.56x)" in cpu
    assert "agrees" in rows["CPU-bound tasks &gt; 100 ms"]
    assert "agrees" in rows["Light/fast tasks"] and "sequential 4.0 µs/task best" in rows["Light/fast tasks"]
    assert "not measured" in rows["Debugging"]


def test_overview_links_each_benchmark_to_its_asv_graph_and_says_what_it_measures(site, results, cache):
    _site.finish_site(site, results)
    text = overview(site)
    for name, (*_, doc) in BENCHMARKS.items():
        assert f'href="index.html#{name}"' in text
        if doc:
            assert html.escape(doc) in text
    assert "index.html#bench_build.Family.time_build?machine=box&amp;python=3.11&amp;p-scenario=%27io_flat%27" in text


def test_overview_plots_trends_as_svg(site, results, cache, monkeypatch):
    monkeypatch.undo()  # plots on; the registry too: a cold cache fetches once, into the real cache
    if not plot.available():
        pytest.fail("matplotlib is part of the test extra: pip install -e '.[test]'")
    report = _site.finish_site(site, results)
    svgs = sorted((site / "overview").glob("*.svg"))
    # per Python: efficiency per scenario, overhead per light case, instructions
    assert len(svgs) == 2 * (len(SCENARIOS) + 1 + 1), [p.name for p in svgs]
    assert all(p.read_text().lstrip().startswith("<?xml") for p in svgs)
    assert all(f'src="overview/{p.name}"' in overview(site) for p in svgs)
    assert any("trend plots" in line for line in report.lines)


def test_overview_without_matplotlib_has_its_tables_and_says_why(site, results, cache, monkeypatch):
    monkeypatch.setattr(plot, "available", lambda: False)
    report = _site.finish_site(site, results)
    text = overview(site)
    assert "need matplotlib" in text and "<table>" in text
    assert not list((site / "overview").glob("*.svg"))
    assert any("matplotlib is not installed" in line for line in report.lines)


def test_what_the_newest_commit_did_not_measure_says_so_not_an_older_value(site, results, cache):
    """A newest run of some benchmarks only (``asv run --bench ...``): the others read "not measured"."""
    index = json.loads((site / "index.json").read_text())
    index["revision_to_hash"]["4"] = "d" * 40
    (site / "index.json").write_text(json.dumps(index))
    partial = dict(BENCHMARKS)
    BENCHMARKS.clear()
    BENCHMARKS.update({k: v for k, v in partial.items() if k == "bench_build.Family.time_build"})
    try:
        write_run(results, "d" * 40, "3.11", old_values, date=4)
    finally:
        BENCHMARKS.clear()
        BENCHMARKS.update(partial)
    _site.finish_site(site, results)
    text = overview(site)
    section = text[text.index("Python 3.11: commit <code>dddddddd</code>"):text.index("Python 3.12")]
    assert "eff " not in section  # no efficiency of the older commits
    overheads = section[section.index("Build overhead per task"):].split("</table>")[0].split("<table>")[1]
    assert "not measured" in overheads and "4.0 µs" not in overheads and "n/a" not in overheads
    instructions = section[section.index("Instruction counts"):].split("</table>")[0]
    assert "not measured" in instructions and "1,000,000" not in instructions
    assert "not measured:" in section  # and the page says what it means


QUICK = {"stardag_bench": {"quick": True, "smoke": False}}
SMOKE = {"stardag_bench": {"quick": True, "smoke": True}}


def test_quick_and_smoke_runs_never_show_as_measurements(site, results, cache):
    """A --quick or smoke run saved anyway (bench.py labels it) stays off the overview."""
    index = json.loads((site / "index.json").read_text())
    index["revision_to_hash"].update({"4": "d" * 40, "5": "e" * 40})
    (site / "index.json").write_text(json.dumps(index))
    tiny = lambda name, case: 1e-4 if name.endswith("time_build") else newest_values(name, case)  # noqa: E731
    write_run(results, "d" * 40, "3.11", tiny, date=4, label=SMOKE)  # newer than b on 3.11
    write_run(results, "e" * 40, "3.13", tiny, date=5, label=QUICK)  # the only run on 3.13
    report = _site.finish_site(site, results)
    text = overview(site)
    py311 = text[text.index("Python 3.11"):text.index("Python 3.12")]
    assert "commit <code>bbbbbbbb</code>" in py311 and "dddddddd" not in py311
    assert "0.1 ms" not in text and "100 µs" not in text
    assert "1 quick or smoke run left out" in py311
    py313 = text[text.index('id="py3.13"'):]
    assert "only quick or smoke runs" in py313 and "<table>" not in py313.split("<h2")[0]
    assert any("quick or smoke" in line for line in report.lines)

    # a throwaway clone may show them (bench.py asv publish --show-quick), saying what they are
    _site.finish_site(site, results, show_quick=True)
    py311 = overview(site)[overview(site).index("Python 3.11"):]
    assert "commit <code>dddddddd</code>" in py311 and "not measurements" in py311


def test_an_overview_that_fails_leaves_a_page_saying_so_not_a_dead_landing_link(site, results, cache,
                                                                                 monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a result the overview cannot read")

    monkeypatch.setattr(_site.publish.summary, "sections", broken)
    report = _site.finish_site(site, results)
    assert any("a result the overview cannot read" in p for p in report.problems)
    assert 'url=overview.html' in (site / "index.html").read_text()  # the root still lands there
    text = overview(site)
    assert "could not be drawn" in text and "a result the overview cannot read" in text
    assert 'href="index.html#/"' in text  # asv's pages are a click away


def test_unreadable_result_file_is_reported_and_the_rest_published(site, results, cache):
    (results / "box" / "deadbeef-env-py3.11.json").write_text("{ truncated")
    report = _site.finish_site(site, results)
    assert any("deadbeef-env-py3.11.json" in p for p in report.problems)
    assert "Python 3.11: commit <code>bbbbbbbb</code>" in overview(site)
