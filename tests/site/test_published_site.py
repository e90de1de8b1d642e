"""The published site of this repository, read in an offline headless Chromium.

The site is the session's asv run of this suite over a 3-commit clone, published
by ``tools/bench.py asv publish`` (tests/asv_history.py): asv's pages, the
libraries they load served from the site itself, and the overview page. The
browser (Debian's ``chromium`` and ``chromium-driver``) resolves no host but
127.0.0.1 and reaches nothing else; every test fails if a page asked another
host for anything. Checked: the site root lands on the overview page, which
lists every scenario and configuration of the data with its plots, also without
JavaScript; asv's summary grid lists every benchmark and draws them; a graph
page shows every configuration by default with a point per commit; the
regressions page opens at ``index.html#regressions``.

Screenshots go to ``test-artifacts/`` under the repository root, or
``$STARDAG_TEST_ARTIFACTS``. ``STARDAG_SITE_DIR`` checks another published
``html/`` (the nightly's deployed site, say) instead. Without Chromium the tests
skip locally, and fail when ``CI=true``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

import site_support

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))

from _site import pages, vendor  # noqa: E402

LOAD_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    found = site_support.find_chromium()
    missing = None
    if found is None:
        missing = "Debian's chromium or chromedriver is not on PATH"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            missing = "selenium is not installed (pip install 'selenium>=4.10')"
    if missing:
        message = f"{missing}; install them with: {site_support.INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def html_dir(request) -> Path:
    given = os.environ.get("STARDAG_SITE_DIR")
    if given:
        if not (Path(given) / "index.json").is_file():
            pytest.fail(f"STARDAG_SITE_DIR={given!r} has no index.json; point it at a published html/")
        return Path(given)
    site = request.getfixturevalue("asv_site")
    assert site.publish.returncode == 0, site.publish.stdout[-3000:] + site.publish.stderr[-3000:]
    return site.html_dir


@pytest.fixture(scope="module")
def index(html_dir) -> dict:
    return json.loads((html_dir / "index.json").read_text())


@pytest.fixture(scope="module")
def served(html_dir):
    with site_support.serve_site(html_dir) as served:
        yield served


@pytest.fixture(scope="module")
def driver(browser_paths):
    with site_support.start_chromium(*browser_paths) as driver:
        yield driver


@pytest.fixture
def page(driver, served):
    """The browser; after the test, nothing may have been asked of another host or gone wrong."""
    site_support.requests_made(driver)  # forget earlier tests' requests
    yield driver
    asked = site_support.requests_made(driver)
    assert asked, "the test made no request: the check below would prove nothing"
    assert site_support.other_hosts(asked, served.url) == []
    assert site_support.browser_errors(driver) == []
    assert served.failed_requests == []


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("STARDAG_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_for(driver, served, script: str, what: str, *args):
    """Poll *script* in the page until it returns something truthy; fail naming *what*."""
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not appear within {LOAD_TIMEOUT_S} s at {driver.current_url}; "
                f"browser errors: {site_support.browser_errors(driver)!r}; "
                f"failed requests: {served.failed_requests!r}"
            )
        time.sleep(0.1)


def full_page_screenshot(driver, path: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 900), 6000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)


def configurations(index: dict) -> list[str]:
    seen: dict[str, None] = {}
    for bm in index["benchmarks"].values():
        if "configuration" in bm["param_names"]:
            seen.update(dict.fromkeys(v.strip("'") for v in bm["params"][bm["param_names"].index("configuration")]))
    return list(seen)


def scenarios(index: dict) -> list[str]:
    return sorted({v.strip("'") for bm in index["benchmarks"].values() if "scenario" in bm["param_names"]
                   for v in bm["params"][bm["param_names"].index("scenario")]})


# --------------------------------------------------------------------------------------
# the files


def test_every_page_loads_only_files_of_the_site(html_dir):
    for path in html_dir.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert pages.external_assets(text) == [], path.name
        for src in re.findall(r"<(?:script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"#?]+)\"", text):
            if not src.startswith(("http:", "https:", "mailto:")) and "." in src.rsplit("/", 1)[-1]:
                assert (html_dir / unquote(src)).is_file(), f"{path.name} refers to missing {src}"
    css = html_dir / vendor.PACKAGES["bootstrap"].site_path / "dist/css/bootstrap.min.css"
    for font in set(re.findall(r"url\((\.\./fonts/[^?#)]+)", css.read_text())):
        assert (css.parent / font).resolve().is_file(), font


def test_each_library_keeps_its_licence_beside_it(html_dir):
    for package in vendor.PACKAGES.values():
        folder = html_dir / package.site_path
        assert json.loads((folder / "package.json").read_text())["version"] == package.version
        licence = json.loads((folder / "package.json").read_text()).get("license")
        assert licence or package.licences, package.label
        for name in package.licences:
            assert "permission" in (folder / name).read_text().lower(), (package.label, name)


# --------------------------------------------------------------------------------------
# the overview page


def _cell_value(text: str) -> tuple[float, float] | str:
    """A figure of the overview as (value in asv's unit, the rounding it was shown with), or its word."""
    match = re.fullmatch(r"([\d,.]+) (s|ms|µs)(/task)?", text)
    if match is None:
        return text
    value = float(match[1].replace(",", "")) * {"s": 1.0, "ms": 1e-3, "µs": 1.0}[match[2]]
    if match[2] == "µs":  # one decimal, or a whole number from 1,000 up
        return value, 0.05 if "." in match[1] else 0.5
    return value, 5e-3 * value  # 3 significant digits


def _agrees(shown: tuple[float, float] | str, stored) -> bool:
    """Shown as the stored value rounded, or the right word for a failure or a skip."""
    if stored is None:
        return shown == "failed"
    if isinstance(stored, float) and math.isnan(stored):
        return shown == "n/a"
    return isinstance(shown, tuple) and abs(shown[0] - stored) <= shown[1] * 1.001


def test_overview_figures_are_those_of_the_newest_result_file(html_dir, index):
    """Each build time, efficiency and overhead on the overview, against the result file it
    came from, read here independently (the newest commit of asv's order; asv-results/ beside
    html/ as tools/bench.py lays them out)."""
    import itertools

    results = html_dir.parent / "asv-results"
    assert results.is_dir(), f"no asv-results/ beside {html_dir}: the figures cannot be checked"
    order = {commit: int(rev) for rev, commit in index["revision_to_hash"].items()}
    files = [p for p in results.glob("*/*.json") if p.name != "machine.json"]
    assert len({json.loads(p.read_text())["python"] for p in files}) == 1, "one Python expected"
    data = max((json.loads(p.read_text()) for p in files), key=lambda d: order[d["commit_hash"]])
    at = {name: i for i, name in enumerate(data["result_columns"])}

    def stored(bench: str, *case: str):
        row = data["results"][bench]
        cases = [tuple(v.strip("'") for v in c) for c in itertools.product(*row[at["params"]])]
        value = row[at["result"]][cases.index(case)]
        return value

    text = (html_dir / "overview.html").read_text(encoding="utf-8")
    assert f"commit <code>{data['commit_hash'][:8]}</code>" in text
    cell = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
    plain = lambda s: re.sub(r"<[^>]+>", " ", s).replace("&#x27;", "'").split()  # noqa: E731
    matrix = text.split("<table>")[1].split("</table>")[0]
    head = [h for h in re.findall(r"<th[^>]*>(.*?)</th>", matrix)][1:-1]
    checked = 0
    for row in matrix.split("<tr>")[2:]:
        cells = cell.findall(row)
        scenario, family = cells[0], next(
            b for b, m in index["benchmarks"].items() if m["type"] == "time" and "scenario" in m["param_names"]
            and f"'{cells[0]}'" in m["params"][0])
        for config, html_cell in zip(head, cells[1:-1]):
            words = plain(html_cell)
            if words == ["–"]:
                continue
            shown = _cell_value(" ".join(words[:2]) if words[0] not in ("n/a", "failed") else words[0])
            assert _agrees(shown, stored(family, scenario, config)), (scenario, config, words)
            if "eff" in words:
                eff = stored(family.replace("time_build", "track_efficiency"), scenario, config)
                assert abs(float(words[words.index("eff") + 1].rstrip("*")) - eff) <= 0.005 + 1e-9
            checked += 1
    overheads = text.split("Build overhead per task")[1].split("<table>")[1].split("</table>")[0]
    head = re.findall(r"<th[^>]*>(.*?)</th>", overheads)[2:]
    for row in overheads.split("<tr>")[2:]:
        cells = cell.findall(row)
        shape, n_tasks, storage = plain(cells[0])
        bench = ("bench_scaling.LightScaling.track_overhead_us" if storage == "memory"
                 else "bench_scaling.LightScalingFile.track_overhead_us")
        floor = stored("bench_scaling.LightFloor.track_floor_us", shape, n_tasks, storage)
        assert _agrees(_cell_value(" ".join(plain(cells[1]))), floor), (cells[0], "floor")
        for config, html_cell in zip(head, cells[2:]):
            if plain(html_cell) != ["–"]:
                shown = _cell_value(" ".join(plain(html_cell)))
                assert _agrees(shown, stored(bench, shape, n_tasks, storage, config)), (cells[0], config)
                checked += 1
    assert checked > 50


def test_quick_results_are_labelled_and_the_overview_says_what_they_are(html_dir):
    """The session's site is a smoke run saved with --save-quick and published with --show-quick."""
    files = [p for p in (html_dir.parent / "asv-results").glob("*/*.json") if p.name != "machine.json"]
    assert files
    for path in files:
        assert json.loads(path.read_text())["stardag_bench"] == {"quick": True, "smoke": True}, path.name
    assert "they are not measurements" in (html_dir / "overview.html").read_text(encoding="utf-8")


def test_publish_leaves_quick_results_out_of_asvs_graphs_too(asv_site, tmp_path):
    """Without --show-quick, labelled files are on no page of the site; they stay in asv-results/."""
    import subprocess

    import asv_history

    repo, home = tmp_path / "repo", tmp_path / "home"
    home.mkdir()
    asv_history.git(tmp_path, "clone", "-q", str(asv_site.repo), str(repo))
    shutil.copytree(asv_site.repo / "asv-results", repo / "asv-results")
    second = asv_site.commits["second"]
    kept = sorted(p.name for p in (repo / "asv-results").glob("*/*.json"))
    for path in (repo / "asv-results").glob(f"*/{second[:8]}-*.json"):  # as a full run saves it
        data = json.loads(path.read_text())
        del data["stardag_bench"]
        path.write_text(json.dumps(data))
    run = subprocess.run([sys.executable, "tools/bench.py", "asv", "publish"], cwd=repo,
                         env=asv_history.isolated_env(home), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 result file(s) labelled quick or smoke left out of the site" in run.stdout
    index = json.loads((repo / "html" / "index.json").read_text())
    assert set(index["revision_to_hash"].values()) == {second}
    graphs = list((repo / "html" / "graphs").rglob("bench_build.CPUBound.time_build.json"))
    assert graphs and all(len(json.loads(g.read_text())) == 1 for g in graphs)  # one point: the measured commit
    assert sorted(p.name for p in (repo / "asv-results").glob("*/*.json")) == kept


def test_site_root_lands_on_the_overview(page, served):
    page.get(served.url)
    wait_for(page, served, "return location.pathname.endsWith('/overview.html')", "the overview page")


def test_overview_shows_every_scenario_and_configuration_of_the_data(page, served, index, html_dir, artifacts):
    page.get(served.url + "overview.html")
    matrix = page.execute_script(
        "const t = document.querySelector('table');"
        "return {head: Array.from(t.rows[0].cells, c => c.innerText.trim()),"
        "        rows: Array.from(t.rows).slice(1).map(r => Array.from(r.cells, c => c.innerText.trim()))};")
    assert matrix["head"] == ["scenario", *configurations(index), "winner"]
    assert sorted(r[0] for r in matrix["rows"]) == scenarios(index)
    runs = {}  # scenario -> the configurations its benchmark runs it under
    for bm in index["benchmarks"].values():
        if bm["type"] == "time" and bm["param_names"] == ["scenario", "configuration"]:
            for scenario in bm["params"][0]:
                runs[scenario.strip("'")] = [c.strip("'") for c in bm["params"][1]]
    for row in matrix["rows"]:
        winner = row[-1].split()[0]
        assert winner in runs[row[0]], row
        for config, cell in zip(matrix["head"][1:-1], row[1:-1]):
            expected = r"\d+(\.\d+)? (s|ms)" if config in runs[row[0]] else r"^–$"
            assert re.search(expected, cell), (row[0], config, cell)
    claims = page.execute_script(
        "return Array.from(document.querySelectorAll('table')[1].rows).slice(1)"
        ".map(r => r.cells[r.cells.length - 1].innerText.trim());")
    assert len(claims) == 5 and set(claims) <= {"agrees", "differs", "partly", "not measured"}, claims
    images = page.execute_script(
        "return Array.from(document.images, i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);")
    assert len(images) >= len(scenarios(index)), images
    assert all(ok for _, ok in images), images
    links = page.execute_script("return Array.from(document.links, a => a.getAttribute('href'));")
    assert "index.html#regressions" in links
    assert any(link.startswith("index.html#bench_build.") for link in links)
    full_page_screenshot(page, artifacts / "site-overview.png")

    # a cell of the matrix opens asv's graph of that scenario, every configuration in it
    page.find_element("css selector", "table td a").click()
    wait_for(page, served,
             "const p = window.jQuery && jQuery('#main-graph').data('plot');"
             "return !!p && p.getData().length === arguments[0];",
             "the graph behind the matrix's first cell", len(configurations(index)))


def test_overview_reads_without_javascript(browser_paths, served, index):
    with site_support.start_chromium(*browser_paths, javascript=False) as driver:
        driver.get(served.url)  # index.html: <noscript> sends the reader on
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while not driver.current_url.endswith("overview.html") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert driver.current_url.endswith("overview.html")
        headers = [th.text for th in driver.find_elements("css selector", "table th")]
        assert set(configurations(index)) <= set(headers)
        images = driver.find_elements("tag name", "img")
        assert images and all(i.get_property("naturalWidth") > 0 for i in images)
        assert site_support.other_hosts(site_support.requests_made(driver), served.url) == []


# --------------------------------------------------------------------------------------
# asv's pages


def test_summary_grid_lists_and_draws_every_benchmark(page, served, index, artifacts):
    names = sorted(index["benchmarks"])
    page.get(served.url + "index.html#/")
    wait_for(page, served,
             "return document.querySelectorAll('#summarygrid-display a.benchmark-container').length",
             "the summary grid of benchmarks")
    listed = page.execute_script(
        "return Array.from(document.querySelectorAll('#summarygrid-display a.benchmark-container'),"
        " a => decodeURIComponent(a.getAttribute('href')));")
    assert sorted(listed) == ["#" + name for name in names]
    assert page.execute_script("return !!document.querySelector('#nav-li-overview a[href=\"overview.html\"]')")
    first_row = min(len(names), 3)
    wait_for(page, served,
             "return document.querySelectorAll('#summarygrid-display .benchmark-plot canvas.flot-base')"
             ".length >= arguments[0]", f"{first_row} summary thumbnails", first_row)
    page.save_screenshot(str(artifacts / "site-summary.png"))


# JavaScript: count the pixels of a canvas close to each given "rgb(r,g,b)"/"#rrggbb" color.
_COUNT_COLORED_PIXELS = """
const canvas = arguments[0], colors = arguments[1];
function rgb(c) {
    const d = document.createElement('div'); d.style.color = c; document.body.appendChild(d);
    const m = getComputedStyle(d).color.match(/\\d+/g).map(Number); d.remove(); return m;
}
const targets = colors.map(rgb);
const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const counts = targets.map(() => 0);
for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] < 128) continue;
    targets.forEach((t, k) => {
        if (Math.abs(px[i] - t[0]) + Math.abs(px[i+1] - t[1]) + Math.abs(px[i+2] - t[2]) < 60) counts[k]++;
    });
}
return counts;
"""


def test_graph_shows_every_configuration_by_default(page, served, index, html_dir, artifacts):
    """The IO family's time graph opened as asv's grid links it: every configuration of every scenario."""
    name = next(n for n, bm in sorted(index["benchmarks"].items())
                if bm["type"] == "time" and bm["param_names"] == ["scenario", "configuration"]
                and len(bm["params"][0]) > 1)
    bm = index["benchmarks"][name]
    n_series = len(bm["params"][0]) * len(bm["params"][1])
    page.get(f"{served.url}index.html#{quote(name)}")
    wait_for(page, served,
             "const p = window.jQuery && jQuery('#main-graph').data('plot');"
             "return !!p && p.getData().length === arguments[0];",
             f"the plot of {name!r} with {n_series} series", n_series)
    series = page.execute_script(
        "return jQuery('#main-graph').data('plot').getData().map("
        "  s => ({label: s.label, color: s.color, points: s.data.map(p => [p[0], p[1]])}));")
    scenario_values = [v.strip("'") for v in bm["params"][0]]
    config_values = [v.strip("'") for v in bm["params"][1]]
    shown = [tuple(re.search(rf"{key}-([^;]+)", s["label"]).group(1) for key in ("scenario", "configuration"))
             for s in series]
    assert sorted(shown) == sorted((s, c) for s in scenario_values for c in config_values)

    # each series has a point at each commit the published graph file has a value for
    graph_file = page.execute_script(
        "return $.asv.graph_to_path(arguments[0], arguments[1]);", name, index["graph_param_list"][0])
    raw = json.loads((html_dir / unquote(urlsplit(graph_file).path)).read_text())
    for (scenario, config), s in zip(shown, series):
        k = scenario_values.index(scenario) * len(config_values) + config_values.index(config)
        expected = {str(revision) for revision, values in raw if values is not None
                    and values[k] is not None and not (isinstance(values[k], float) and math.isnan(values[k]))}
        plotted = {str(x) for x, y in s["points"] if isinstance(y, (int, float)) and math.isfinite(y) and y > 0}
        assert plotted == expected and len(plotted) >= 2, s["label"]

    canvas = page.find_element("css selector", "#main-graph canvas.flot-base")
    assert canvas.size["width"] > 300 and canvas.size["height"] > 200, canvas.size
    colored = page.execute_script(_COUNT_COLORED_PIXELS, canvas, [s["color"] for s in series])
    # drawn in its colour; a series lying exactly on a later one (smoke values) can be hidden
    drawn = [n > 20 for n in colored]
    assert sum(drawn) >= 0.8 * len(series), dict(zip((s["label"] for s in series), colored))
    page.save_screenshot(str(artifacts / "site-graph.png"))


def test_regressions_page_opens_at_its_link(page, served):
    page.get(served.url + "index.html#regressions")
    wait_for(page, served, "return window.jQuery && jQuery('#regressions-display').is(':visible')"
             " && jQuery('#nav-li-regressions').hasClass('active')", "the regressions page")


def test_site_opened_as_files_shows_the_overview_and_names_the_fix_on_asv_pages(driver, html_dir):
    """A reader double-clicks html/index.html: the overview reads; asv's pages say to serve the site."""
    root = html_dir.resolve().as_uri() + "/"
    site_support.browser_errors(driver)
    driver.get(root + "index.html")
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while not driver.current_url.endswith("/overview.html") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.current_url.endswith("/overview.html")
    images = driver.execute_script("return Array.from(document.images, i => i.complete && i.naturalWidth > 0);")
    assert images and all(images)
    assert site_support.browser_errors(driver) == []

    # asv's pages load their libraries from the site (no integrity check a file:// page fails),
    # then cannot request their JSON: the message names the fix instead of a server "gone down"
    driver.get(root + "index.html#/")
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    message = ""
    while "asv preview" not in message and time.monotonic() < deadline:
        time.sleep(0.1)
        message = driver.execute_script(
            "const m = document.getElementById('error-message'); return m ? m.innerText : '';")
    assert "python tools/bench.py asv preview" in message, (driver.current_url, message)
    assert driver.current_url.endswith("index.html#/")  # not sent to error.html
    assert driver.execute_script("return typeof window.jQuery.plot") == "function"
    errors = site_support.browser_errors(driver)
    assert errors and all("XMLHttpRequest" in e or "ERR_FAILED" in e for e in errors), errors


def test_the_offline_check_catches_a_request_to_another_host(driver, tmp_path):
    """The guard of every test above can fail: a page asking a CDN is caught, and gets nothing."""
    cdn = "https://cdn.jsdelivr.net/npm/jquery@3.3.1/dist/jquery.min.js"
    (tmp_path / "probe.html").write_text(f'<script src="{cdn}"></script><p>probe</p>')
    with site_support.serve_site(tmp_path) as probe:
        site_support.requests_made(driver)
        driver.get(probe.url + "probe.html")
        assert site_support.other_hosts(site_support.requests_made(driver), probe.url) == [cdn]
        assert driver.execute_script("return typeof window.jQuery") == "undefined"
        site_support.browser_errors(driver)  # the failed load: expected here
