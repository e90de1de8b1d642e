"""`finish_site`: what runs after every ``asv publish``, for tools/bench.py and the nightly job.

It makes the site self-contained (the libraries asv's pages load from CDNs are
fetched from the npm registry, cached and served from the site itself), edits
asv's pages (`pages`), and writes the overview page (`overview`). A registry
that cannot be reached with nothing cached is not an error that stops
publishing: the pages keep their CDN addresses, say so in a notice, and the
report says what failed and how to fix it.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from _site import overview, pages, plot, recommendation, results, summary, vendor

REPO = Path(__file__).resolve().parents[2]
TITLE = "stardag build benchmarks"


@dataclass
class SiteReport:
    """What `finish_site` did (``lines``) and what went wrong (``problems``, each with its fix)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _scenarios() -> tuple[dict[str, str], list[str]]:
    """The suite's scenarios (benchmarks/scenario.py): each one's use case, and their order."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    try:
        module = importlib.import_module("benchmarks.scenario")
    except Exception:  # an old or broken checkout: the page just checks no recommendation
        return {}, []
    use_cases = {
        name: getattr(s, "use_case", None) or recommendation.USE_CASE_OF_WORKLOAD.get(s.workload, "")
        for name, s in module.SCENARIOS.items()
    }
    return use_cases, list(module.SCENARIOS)


def vendor_libraries(site: Path, report: SiteReport) -> tuple[list[str], str]:
    """Serve every CDN asset of the site's pages from the site.

    Returns the libraries served (HTML links to them) and a notice for readers
    when some asset still comes from another host ("" when none does).
    """
    html_files = sorted(site.glob("*.html"))
    wanted = {url for path in html_files for url in pages.external_assets(path.read_text(encoding="utf-8"))}
    unknown = sorted(url for url in wanted if url not in vendor.CDN_FILES)
    needed = {vendor.CDN_FILES[url][0] for url in wanted if url in vendor.CDN_FILES}
    installed = set()
    for name in sorted(needed):
        package = vendor.PACKAGES[name]
        try:
            vendor.install(package, site)
        except vendor.FetchError as err:
            report.problems.append(str(err))
            continue
        installed.add(name)
    local = {url: f"{vendor.PACKAGES[name].site_path}/{path}"
             for url, (name, path) in vendor.CDN_FILES.items() if name in installed}
    left = sorted(url for url in wanted if url not in local)
    notice = ""
    if left:
        notice = (f"This site has no copy of {len(left)} of the scripts and stylesheets asv's graph "
                  "pages use: they load them from the internet and draw nothing without it. "
                  "Publish again with access to the npm registry "
                  "(python tools/bench.py asv publish).")
    for path in html_files:
        text = pages.localize(path.read_text(encoding="utf-8"), local)
        if path.name == "index.html" and notice:
            text = pages.add_notice(text, notice)
        if path.name == "error.html":
            text, found = pages.fix_error_page(text, notice)
            if not found:
                report.problems.append("not applied: the fix named on error.html: "
                                       "this asv's error.html differs from asv 0.6's")
        path.write_text(text, encoding="utf-8")
    for url in unknown:
        report.problems.append(
            f"asv's pages load {url}, which has no registry source in tools/_site/vendor.py "
            "(CDN_FILES): add its npm package there")
    libraries = [f'<a href="{p.site_path}/">{p.label}</a>'  # this run's, or an earlier one's
                 for p in vendor.PACKAGES.values() if (site / p.site_path).is_dir()]
    if installed:
        report.lines.append(f"{len(installed)} libraries served from {site / vendor.SITE_DIR} "
                            f"(npm, cached in {vendor.cache_dir() / 'npm'})")
    return libraries, notice


def finish_site(site: Path, results_dir: Path, title: str = TITLE, show_quick: bool = False) -> SiteReport:
    """Make the site ``asv publish`` wrote to ``site`` self-contained and add its overview page.

    ``results_dir``: the asv results directory it was published from. The overview
    leaves out runs labelled quick or smoke unless ``show_quick``. Never raises for a
    registry, a result file or a plot: those land in the report's problems.
    """
    site, results_dir = Path(site), Path(results_dir)
    report = SiteReport()
    libraries, notice = vendor_libraries(site, report)
    notices = [notice] if notice else []

    index = site / "index.html"
    text = pages.add_landing(index.read_text(encoding="utf-8"))
    text, found = pages.add_nav_item(text)
    if not found:
        report.problems.append("asv's navigation bar was not found in index.html: no link to the overview")
    index.write_text(text, encoding="utf-8")
    for skipped in pages.edit_scripts(site):
        report.problems.append(f"not applied: {skipped}")

    try:
        data = results.load(results_dir, site)
        use_cases, order = _scenarios()
        found_sections = summary.sections(data, use_cases, order, show_quick)
        path = overview.write(site, data, found_sections, title, notices, libraries)
    except Exception as err:  # the graphs are published; the overview must not take them down
        report.problems.append(f"the overview page could not be written: {err!r}\n"
                               + traceback.format_exc(limit=3))
        try:  # the site's root lands on overview.html: it must exist and say what happened
            overview.write_failure(site, title, f"{type(err).__name__}: {err}")
        except OSError as write_err:
            report.problems.append(f"nor could a page saying so be written: {write_err}")
        return report
    report.problems.extend(data.problems)
    n_plots = len(list((site / overview.PLOT_DIR).glob("*.svg")))
    plots = f"{n_plots} trend plots" if plot.available() else "no plots: matplotlib is not installed"
    report.lines.append(f"overview page {path} ({len(found_sections)} Python(s), {plots})")
    left_out = sum(s.n_quick_left_out for s in found_sections)
    if left_out:
        report.lines.append(f"{left_out} quick or smoke run(s) left out of the overview: not "
                            "measurements (--show-quick shows them)")
    return report
