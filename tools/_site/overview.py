"""The site's landing page, ``overview.html``: static HTML and SVG plots, no JavaScript.

Per Python (and machine): the scenario x configuration matrix of the newest
commit (build time, efficiency on a colour scale, the winner), the upstream
recommendations against it, per-task overheads and instruction counts, trend
plots over the commits, and what each benchmark measures with links into asv's
graphs (``index.html#NAME?...``).
"""

from __future__ import annotations

import datetime
import html
import math
import re
import shutil
from pathlib import Path
from urllib.parse import quote

from _site import plot
from _site.unit import fmt
from _site.results import NOT_MEASURED, Benchmark, Results, Run
from _site.summary import CaseRow, Section, finite, history, largest_per_shape

PAGE = "overview.html"
PLOT_DIR = "overview"
MAX_TREND_COMMITS = 60
MAX_INSTRUCTION_PLOTS = 12
FAST_EFFICIENCY = 1.05  # above this an efficiency says more about the machine than the build

_STYLE = """
body { font: 14px/1.45 sans-serif; margin: 0 24px 40px; color: #222; max-width: 1200px; }
nav { padding: 10px 0; border-bottom: 1px solid #ccc; margin-bottom: 12px; }
nav a { margin-right: 16px; } nav b { margin-right: 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td.win { font-weight: bold; outline: 2px solid #333; outline-offset: -2px; }
.eff { font-size: 12px; color: #333; }
.notice { background: #fcf8e3; border: 1px solid #c09853; padding: 8px 12px; margin: 12px 0; }
.agrees { color: #1a7f37; font-weight: bold; } .differs { color: #b42318; font-weight: bold; }
.partly { color: #9a6700; font-weight: bold; } .muted { color: #666; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; } .plots img { border: 1px solid #ddd; }
.swatch { display: inline-block; width: 22px; height: 12px; margin: 0 4px -1px 10px; }
.small { font-size: 12px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def efficiency_colour(value: float | None) -> str:
    """Red (0) through yellow (0.5) to green (1 and above)."""
    if not finite(value):
        return "#f2f2f2"
    return f"hsl({120 * min(max(value, 0.0), 1.0):.0f}, 70%, 80%)"


def graph_link(bench: Benchmark, run: Run, **case: str) -> str:
    """asv's graph page of ``bench``, on this run's machine and Python, at ``case``."""
    parts = [f"machine={quote(run.machine)}", f"python={quote(run.python)}"]
    for name, raw_values in zip(bench.param_names, bench.params):
        for raw in raw_values:
            if name not in case or case[name] == raw.strip("'\""):
                parts.append(f"p-{quote(name)}={quote(raw, safe='')}")
    return f"index.html#{quote(bench.name)}?{'&'.join(parts)}"


def _shown(row: CaseRow) -> bool:
    """A case row is worth a line unless every configuration skipped it (n/a throughout)."""
    return any(finite(v) or v is NOT_MEASURED for v in row.values.values())


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))


class _Page:
    def __init__(self, site: Path, results: Results, colours: dict[str, str], draw: bool):
        self.site, self.results, self.colours, self.draw = site, results, colours, draw
        self.out: list[str] = []
        self.n_plots = 0

    def add(self, *lines: str) -> None:
        self.out.extend(lines)

    def plot(self, section: Section, name: str, title: str, ylabel: str, link: str,
             series: dict[str, list[float | None]], log: bool = True) -> None:
        runs = section.runs[-MAX_TREND_COMMITS:]
        series = {c: v[-len(runs):] for c, v in series.items() if any(finite(x) for x in v[-len(runs):])}
        if not self.draw or not series:
            return
        path = self.site / PLOT_DIR / f"{_slug(section.python, section.machine, name)}.svg"
        plot.trend(path, title, ylabel, [r.commit for r in runs], series, self.colours, log)
        self.n_plots += 1
        rel = f"{PLOT_DIR}/{quote(path.name)}"
        self.add(f'<a href="{_e(link)}"><img src="{rel}" alt="{_e(title)} over commits" '
                 f'width="360" height="230"></a>')

    # ----------------------------------------------------------------------------------

    def section(self, section: Section, several_machines: bool) -> None:
        where = f" on {_e(section.machine)}" if several_machines else ""
        if not section.runs:
            self.add(f'<h2 id="py{_e(section.python)}">Python {_e(section.python)}{where}</h2>',
                     f'<p class="notice">This Python has only quick or smoke runs so far '
                     f'({section.n_quick_left_out}): one sample each, or a hundredth of the work, so '
                     "their values are not measurements and are not shown. Run "
                     "<code>python tools/bench.py</code> for a measurement.</p>")
            return
        run = section.newest
        date = datetime.datetime.fromtimestamp(run.date / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
        self.add(f'<h2 id="py{_e(section.python)}">Python {_e(section.python)}{where}: '
                 f'commit <code>{_e(run.commit[:8])}</code> ({date})</h2>',
                 f'<p class="muted">{len(section.runs)} commit(s) benchmarked on machine '
                 f'<code>{_e(section.machine)}</code> with this Python; the tables show the newest.'
                 + (f" {section.n_quick_left_out} quick or smoke run{'s' if section.n_quick_left_out > 1 else ''} "
                    "left out: not measurements." if section.n_quick_left_out else "") + "</p>")
        if any(r.quick for r in section.runs):
            self.add('<p class="notice">Quick or smoke runs are shown here (published with '
                     "<code>--show-quick</code>): one sample each, or a hundredth of the work. Their "
                     "values check that the benchmarks run; they are not measurements.</p>")
        self.matrix(section)
        self.claims(section)
        self.overheads(section)
        self.instructions(section)

    def matrix(self, section: Section) -> None:
        rows = section.scenarios
        self.add("<h3>Which configuration for which workload</h3>")
        if not rows:
            self.add('<p class="muted">No scenario benchmarks in these results.</p>')
            return
        configs = [c for c in section.configurations if any(c in r.times for r in rows)]
        self.add("<p>Build time of each scenario under each configuration (lower is better) and "
                 "its efficiency: the ideal schedule's time / the measured time, 1.0 being the "
                 "physical limit. Bold and framed: the fastest. <span class='small'>Efficiency colour: "
                 + "".join(f"<span class='swatch' style='background:{efficiency_colour(v)}'></span>{v:g}"
                           for v in (0, 0.25, 0.5, 0.75, 1)) + "</span></p>",
                 "<table><tr><th>scenario</th>" + "".join(f"<th>{_e(c)}</th>" for c in configs)
                 + "<th class='text'>winner</th></tr>")
        for row in rows:
            bench = self.results.benchmarks[row.time_bench]
            cells = []
            for c in configs:
                if c not in row.times:  # the scenario's benchmark does not run it
                    cells.append('<td title="not run for this scenario" class="muted">–</td>')
                    continue
                t, eff = row.times[c], row.efficiencies.get(c, math.nan)
                link = graph_link(bench, section.newest, scenario=row.scenario)
                cls = ' class="win"' if c == row.winner else ""
                eff_text = (f"<br><span class='eff'>eff {eff:.2f}{'*' if eff > FAST_EFFICIENCY else ''}</span>"
                            if finite(eff) else "")
                cells.append(f'<td{cls} style="background:{efficiency_colour(eff)}">'
                             f'<a href="{_e(link)}">{fmt(t, "seconds")}</a>{eff_text}</td>')
            winner = row.winner
            if winner:
                others = sorted(v for c, v in row.times.items() if c != winner and finite(v))
                margin = (f" <span class='small'>(next {others[0] / row.times[winner]:.2f}x)</span>"
                          if others and row.times[winner] > 0 else "")
                winner = f"{_e(winner)}{margin}"
            self.add(f"<tr><td>{_e(row.scenario)}</td>{''.join(cells)}<td class='text'>{winner or 'n/a'}</td></tr>")
        self.add("</table>")
        if any(finite(e) and e > FAST_EFFICIENCY for r in rows for e in r.efficiencies.values()):
            self.add("<p class='small'>* Above 1: faster than the ideal, so the machine ran faster "
                     "during the build than when its speed was measured for the ideal (a shared or "
                     "throttled machine): read that number with care.</p>")
        self.add("<p class='small'>n/a: skipped, not failed (the commit lacks the configuration, or "
                 "the case is outside the suite's budget); failed: the benchmark raised; "
                 "not measured: this commit's run did not include it (it ran some benchmarks only), "
                 "and no older commit's value stands in for it; "
                 "–: the suite does not run that scenario under that configuration.</p>")

    def claims(self, section: Section) -> None:
        self.add("<h3>The upstream recommendations against this data</h3>",
                 "<p>The recommendations of the upstream stardag build-benchmark README, row by row. "
                 "A measurement agrees when the best recommended configuration is within 10% of the "
                 "best of all.</p>",
                 "<table><tr><th>use case</th><th class='text'>upstream recommends</th>"
                 "<th class='text'>this data</th><th class='text'>verdict</th></tr>")
        from _site.recommendation import verdict

        for claim, checks in section.claims:
            said = verdict(checks)
            if claim.use_case:
                data = "<br>".join(_e(c.describe()) for c in checks) or "no measurement in these results"
            else:
                data = "not a speed claim: no benchmark measures it"
            self.add(f"<tr><td class='text'>{_e(claim.label)}</td>"
                     f"<td class='text'>{_e(' or '.join(claim.recommended))}</td>"
                     f"<td class='text small'>{data}</td>"
                     f"<td class='text {said.split()[0]}'>{_e(said)}</td></tr>")
        self.add("</table>")

    def case_table(self, section: Section, rows: list[CaseRow], unit: str, floor: bool,
                   qualified: bool = False) -> None:
        present = list(dict.fromkeys(c for r in rows for c in r.values))
        # the matrix's column order, then anything else (a benchmark without configurations)
        configs = ([c for c in section.configurations if c in present]
                   + [c for c in present if c not in section.configurations])
        self.add("<table><tr><th>case</th>" + ("<th>floor</th>" if floor else "")
                 + "".join(f"<th>{_e(c or 'instructions' if unit == 'instructions' else c or 'value')}</th>"
                         for c in configs) + "</tr>")
        for row in rows:
            bench = self.results.benchmarks[row.bench]
            link = graph_link(bench, section.newest, **row.case)
            cells = "".join(f"<td>{fmt(row.values[c], unit)}</td>" if c in row.values
                            else '<td class="muted" title="not run under it">–</td>' for c in configs)
            floor_cell = f"<td>{fmt(row.floor, unit)}</td>" if floor else ""
            label = row.qualified_label if qualified else row.label
            self.add(f'<tr><td><a href="{_e(link)}">{_e(label)}</a></td>{floor_cell}{cells}</tr>')
        self.add("</table>")

    def overheads(self, section: Section) -> None:
        rows = [r for r in section.overheads if _shown(r)]
        if not rows:
            return
        self.add("<h3>Build overhead per task (µs)</h3>",
                 "<p>Light tasks: the build's time minus the floor (each task's <code>run()</code> in a "
                 "plain loop: the work plus one write), per task. n/a: skipped (the process pool and "
                 "Dask cannot use in-memory targets; a configuration's budget cap).</p>")
        self.case_table(section, rows, "us", floor=True)  # the heading says per task

    def instructions(self, section: Section) -> None:
        rows = [r for r in section.instructions if _shown(r)]
        if not rows:
            return
        self.add("<h3>Instruction counts</h3>",
                 "<p>Deterministic: instructions counted by cachegrind, unmoved by the machine's "
                 "load.</p>")
        per_config = [r for r in rows if "" not in r.values]
        for group in (per_config, [r for r in rows if "" in r.values]):
            if group:
                self.case_table(section, group, "instructions", floor=False, qualified=True)

    def trends(self, section: Section) -> None:
        start = len(self.out)
        self.add(f"<h3>Trends over commits (Python {_e(section.python)})</h3>", '<div class="plots">')
        mark = len(self.out)
        for row in section.scenarios:
            if row.efficiency_bench:
                bench = self.results.benchmarks[row.efficiency_bench]
                self.plot(section, f"efficiency-{row.scenario}", f"efficiency: {row.scenario}",
                          "ideal / measured", graph_link(bench, section.newest, scenario=row.scenario),
                          history(section.runs, bench, scenario=row.scenario), log=False)
        for row in largest_per_shape(section.overheads):
            bench = self.results.benchmarks[row.bench]
            if any(finite(v) for v in row.values.values()):
                self.plot(section, f"overhead-{row.label}", f"overhead: {row.label}", "µs per task",
                          graph_link(bench, section.newest, **row.case),
                          history(section.runs, bench, **row.case))
        for row in section.instructions[:MAX_INSTRUCTION_PLOTS]:
            bench = self.results.benchmarks[row.bench]
            self.plot(section, f"instructions-{row.bench}-{row.label}",
                      f"instructions: {row.qualified_label}", "instructions",
                      graph_link(bench, section.newest, **row.case),
                      history(section.runs, bench, **row.case))
        if len(self.out) == mark:
            del self.out[start:]
            return
        self.add("</div>")

    def benchmarks(self) -> None:
        self.add('<h2 id="benchmarks">What each benchmark measures</h2>',
                 "<table><tr><th>benchmark</th><th class='text'>unit</th><th class='text'>measures</th></tr>")
        for bench in sorted(self.results.benchmarks.values(), key=lambda b: b.name):
            link = f"index.html#{quote(bench.name)}"
            params = "; ".join(
                "every configuration" if name == "configuration" else f"{name} {', '.join(bench.values_of(name))}"
                for name in bench.param_names)
            what = bench.doc or f"asv {bench.kind} benchmark"
            self.add(f'<tr><td><a href="{_e(link)}">{_e(bench.name)}</a></td>'
                     f"<td class='text'>{_e(bench.unit)}</td>"
                     f"<td class='text'>{_e(what)}"
                     + (f" <span class='small muted'>({_e(params)})</span>" if params else "")
                     + "</td></tr>")
        self.add("</table>")


def write_failure(site: Path, title: str, error: str) -> Path:
    """An overview page that says it could not be drawn, and why (the site's root lands on it)."""
    path = site / PAGE
    path.write_text(
        "\n".join([
            "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}: overview</title>", '<link rel="icon" href="swallow.ico">',
            f"<style>{_STYLE}</style></head><body>",
            '<nav><b>Overview</b><a href="index.html#/">Benchmark grid</a>'
            '<a href="index.html#/summarylist">Benchmark list</a>'
            '<a href="index.html#regressions">Regressions</a></nav>',
            f"<h1>{_e(title)}</h1>",
            f'<p class="notice">The overview could not be drawn from these results ({_e(error)}); '
            "the publish output has the details. asv's pages have every result: "
            '<a href="index.html#/">the benchmark grid</a>.</p>', "</body></html>", ""]),
        encoding="utf-8")
    return path


def write(site: Path, results: Results, sections: list[Section], title: str,
          notices: list[str], libraries: list[str]) -> Path:
    """Write ``overview.html`` (and its plots) into ``site``; return its path."""
    draw = plot.available()
    shutil.rmtree(site / PLOT_DIR, ignore_errors=True)  # plots of an earlier publish go
    (site / PLOT_DIR).mkdir(parents=True)
    configs = list(dict.fromkeys(c for s in sections for c in s.configurations))
    colours = {c: plot.PALETTE[i % len(plot.PALETTE)] for i, c in enumerate(configs)}
    page = _Page(site, results, colours, draw)
    page.add("<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_e(title)}: overview</title>", '<link rel="icon" href="swallow.ico">',
             f"<style>{_STYLE}</style></head><body>",
             '<nav><b>Overview</b><a href="index.html#/">Benchmark grid</a>'
             '<a href="index.html#/summarylist">Benchmark list</a>'
             '<a href="index.html#regressions">Regressions</a>'
             '<a href="#benchmarks">What each benchmark measures</a></nav>',
             f"<h1>{_e(title)}</h1>")
    for notice in notices:
        page.add(f'<div class="notice">{_e(notice)}</div>')
    if not sections:
        page.add('<p>No benchmark results yet: run <code>python tools/bench.py</code>.</p>')
    several = len({s.machine for s in sections}) > 1
    if len(sections) > 1:
        page.add("<p>Pythons: " + " · ".join(
            f'<a href="#py{_e(s.python)}">{_e(s.python)}</a>' for s in sections) + "</p>")
    for section in sections:
        page.section(section, several)
        if not section.runs:
            continue
        if not draw:
            page.add('<p class="notice">The trend plots need matplotlib (<code>pip install '
                     'matplotlib</code>, or <code>pip install -e ".[bench]"</code>), then publish '
                     "again.</p>")
            continue
        page.add("<p class='small'>Colours: " + "".join(
            f"<span class='swatch' style='background:{colours[c]}'></span>{_e(c)}" for c in configs)
            + ". Each plot links to its asv graph.</p>")
        page.trends(section)
    page.benchmarks()
    if results.problems:
        page.add("<p class='notice'>Result files that could not be read: "
                 + "; ".join(_e(p) for p in results.problems) + "</p>")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page.add(f"<p class='small muted'>Published {stamp}. Libraries served from this site for "
             "asv's pages (with their licences): "
             + (", ".join(libraries) or "none") + ".</p></body></html>")
    path = site / PAGE
    path.write_text("\n".join(page.out) + "\n", encoding="utf-8")
    return path
