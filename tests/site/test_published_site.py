"""Browser check of an asv-published benchmark site.

The module serves a published asv ``html/`` directory on 127.0.0.1, opens it in Debian's
headless Chromium (packages ``chromium`` and ``chromium-driver``; browsers that test tools
download do not work on these machines) and checks that

- the summary page lists every benchmark of ``index.json``, and
- a benchmark's graph page draws a flot plot with one series per configuration
  (``sequential``, ``thread_pool``, ``process_pool``, ``async``) and a point per commit.

Screenshots go to ``test-artifacts/site-summary.png`` and ``test-artifacts/site-graph.png``
under the repository root, or under ``$STARDAG_TEST_ARTIFACTS`` when set.

Which site: by default the module builds its own, a throwaway git repository with two commits
of a tiny asv project (one parametrised ``time_`` and one ``track_`` benchmark), run through
``asv run`` and ``asv publish`` with the current interpreter (about 5 s), so the check does
not depend on how the real suite's site is made. Set ``STARDAG_SITE_DIR`` to an existing
published ``html/`` (for instance the real suite's) to check that one instead; its graph
check then uses the first ``time_`` benchmark with a ``configuration`` parameter, and
expects the points its published graph file holds.

Without Chromium the tests skip locally, and fail when ``CI=true``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

import site_support

REPO_ROOT = Path(__file__).resolve().parents[2]
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
def site(tmp_path_factory) -> dict:
    """The site under test: its html dir and, for the built one, what it must show."""
    given = os.environ.get("STARDAG_SITE_DIR")
    if given:
        html_dir = Path(given)
        if not (html_dir / "index.json").is_file():
            pytest.fail(
                f"STARDAG_SITE_DIR={given!r} has no index.json; "
                "point it at the html/ directory written by 'asv publish'"
            )
        return {"html_dir": html_dir, "demo": None}
    demo = site_support.build_demo_site(tmp_path_factory.mktemp("asv-site"))
    return {"html_dir": demo.html_dir, "demo": demo}


@pytest.fixture(scope="module")
def index(site) -> dict:
    return json.loads((site["html_dir"] / "index.json").read_text())


@pytest.fixture(scope="module")
def served(site):
    with site_support.serve_site(site["html_dir"]) as served:
        yield served


@pytest.fixture(scope="module")
def driver(browser_paths):
    with site_support.start_chromium(*browser_paths) as driver:
        yield driver


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


# JavaScript: count the pixels of a canvas close to each given "rgb(r,g,b)"/"#rrggbb" color.
_COUNT_COLORED_PIXELS = """
const [canvas, colors] = arguments;
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


def test_every_cdn_asset_of_index_html_has_a_local_copy(site):
    html = (site["html_dir"] / "index.html").read_text(encoding="utf-8")
    assert site_support.external_assets(html), "expected asv's index.html to load CDN assets"
    localized = site_support.localize_cdn_assets(html)
    assert site_support.external_assets(localized) == []
    for copy in site_support.CDN_COPIES.values():
        assert (site_support.VENDOR_DIR / copy).is_file(), copy


def test_summary_page_lists_every_benchmark(driver, served, site, index, artifacts):
    names = sorted(index["benchmarks"])
    if site["demo"] is not None:
        assert names == sorted(site["demo"].benchmarks)
    driver.get(served.url + "index.html")
    wait_for(
        driver,
        served,
        "return document.querySelectorAll('#summarygrid-display a.benchmark-container').length",
        "the summary grid of benchmarks",
    )
    listed = driver.execute_script(
        "return Array.from(document.querySelectorAll('#summarygrid-display a.benchmark-container'),"
        " a => [decodeURIComponent(a.getAttribute('href')), a.innerText.trim()]);"
    )
    assert sorted(href for href, _ in listed) == ["#" + name for name in names]
    for href, text in listed:
        short_name = href[1:].split(".", 1)[1]
        assert short_name in text, f"summary entry {href!r} shows {text!r}"
    # Thumbnails are drawn lazily as they scroll into view: those of the first row must be.
    first_row = min(len(names), 3)
    wait_for(
        driver,
        served,
        "return document.querySelectorAll('#summarygrid-display .benchmark-plot canvas.flot-base')"
        ".length >= arguments[0]",
        f"{first_row} summary thumbnails",
        first_row,
    )
    driver.save_screenshot(str(artifacts / "site-summary.png"))
    assert site_support.browser_errors(driver) == []
    assert served.failed_requests == []


def graph_benchmark(index: dict) -> str:
    candidates = sorted(
        name
        for name, bm in index["benchmarks"].items()
        if bm["type"] == "time" and "configuration" in bm.get("param_names", [])
    )
    if not candidates:
        pytest.fail("the site has no time_ benchmark with a 'configuration' parameter to plot")
    return candidates[0]


def graph_url(served, index: dict, name: str) -> str:
    """The graph page of *name*: the first machine/environment, every configuration."""
    bm = index["benchmarks"][name]
    state = index["graph_param_list"][0]
    parts = [
        f"{quote(key)}={quote('[none]' if value is None else str(value))}"
        for key, value in state.items()
        if len(index["params"].get(key, [])) > 1
    ]
    for param_name, values in zip(bm["param_names"], bm["params"]):
        chosen = values if param_name == "configuration" else values[:1]
        parts += [f"p-{quote(param_name)}={quote(value)}" for value in chosen]
    return f"{served.url}index.html#{quote(name)}?{'&'.join(parts)}"


def expected_points(raw: list, bm: dict, revision_to_hash: dict) -> dict[str, set[str]]:
    """Configuration -> commits with a value in a published graph file, others at their first value."""
    sizes = [len(values) for values in bm["params"]]
    at = bm["param_names"].index("configuration")
    expected = {}
    for flat, combo in enumerate(itertools.product(*map(range, sizes))):
        if any(i != 0 for k, i in enumerate(combo) if k != at):
            continue
        config = bm["params"][at][combo[at]].strip("'")
        expected[config] = {
            revision_to_hash[str(revision)]
            for revision, values in raw
            if values is not None and values[flat] is not None
        }
    return expected


def test_graph_page_plots_each_configuration_at_each_commit(driver, served, site, index, artifacts):
    name = graph_benchmark(index)
    bm = index["benchmarks"][name]
    driver.get(graph_url(served, index, name))
    wait_for(
        driver,
        served,
        "const p = window.jQuery && jQuery('#main-graph').data('plot');"
        "return !!p && p.getData().length === arguments[0];",
        f"the plot of {name!r} with {len(bm['params'][bm['param_names'].index('configuration')])} series",
        len(bm["params"][bm["param_names"].index("configuration")]),
    )
    series = driver.execute_script(
        "return jQuery('#main-graph').data('plot').getData().map("
        "  s => ({label: s.label, color: s.color, points: s.data.map(p => [p[0], p[1]])}));"
    )

    graph_file = driver.execute_script(
        "return $.asv.graph_to_path(arguments[0], arguments[1]);", name, index["graph_param_list"][0]
    )
    raw = json.loads((site["html_dir"] / unquote(urlsplit(graph_file).path)).read_text())
    expected = expected_points(raw, bm, index["revision_to_hash"])
    if site["demo"] is not None:
        commits = set(site["demo"].commits)
        assert expected == {config: commits for config in site_support.CONFIGURATIONS}

    plotted = {}
    for s in series:
        match = re.search(r"configuration-([^;]+)", s["label"])
        assert match, f"series label {s['label']!r} names no configuration"
        plotted[match.group(1)] = {
            index["revision_to_hash"][str(x)]
            for x, y in s["points"]
            if isinstance(y, (int, float)) and math.isfinite(y) and y > 0
        }
    assert plotted == expected

    canvas = driver.find_element("css selector", "#main-graph canvas.flot-base")
    assert canvas.size["width"] > 300 and canvas.size["height"] > 200, canvas.size
    colored = driver.execute_script(_COUNT_COLORED_PIXELS, canvas, [s["color"] for s in series])
    drawn = {s["label"]: n for s, n in zip(series, colored)}
    assert all(n > 20 for n in drawn.values()), f"pixels drawn per series: {drawn}"

    driver.save_screenshot(str(artifacts / "site-graph.png"))
    assert site_support.browser_errors(driver) == []
    assert served.failed_requests == []
