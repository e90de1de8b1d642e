"""Edits to the pages ``asv publish`` wrote, so they work offline and show what matters.

- every script and stylesheet another host would serve points at the site's own
  copy (`vendor`), without the CDN's ``integrity`` attribute: the copy was checked
  against the registry's sha512 when published, and a browser refuses an
  integrity-checked script of a page opened from a file (no CORS there);
- ``error.html`` (where asv sends the reader when a library fails to load) and
  asv's "web server has gone down" message name the fix: publish again, or serve
  the site (asv's pages read their data with requests a page opened from a file
  may not make);
- ``index.html`` opened without a ``#`` location (the site's root) goes to the
  overview page, which asv's navigation links to;
- graphs show every configuration by default: asv draws at most 8 series and
  takes parameter values in order until it has them, so with two scenarios and
  five configurations the last configuration (``async``) was hidden;
- the summary grid marks a lone point (asv draws lines only: with one commit
  every thumbnail was empty).

Each edit replaces a snippet of asv 0.6's files; when a later asv changes one,
the edit is skipped and reported, never half applied.
"""

from __future__ import annotations

import re
from pathlib import Path

# <script src="https://..."> or <link ... href="https://..."> (stylesheets, icons): loads, not links.
_ASSET = re.compile(r"<(script|link)\b[^>]*?\b(?:src|href)=\"((?:https?:)?//[^\"]+)\"[^>]*>", re.I)
_CDN_ATTRIBUTES = re.compile(r"\s+(?:integrity|crossorigin|referrerpolicy)=\"[^\"]*\"", re.I)

OVERVIEW = "overview.html"
NOTICE_ID = "stardag-site-notice"

_LANDING = (
    "<script>if (!window.location.hash) { window.location.replace(\"" + OVERVIEW + "\"); }</script>\n"
    "<noscript><meta http-equiv=\"refresh\" content=\"0; url=" + OVERVIEW + "\"></noscript>"
)
_NAV_ANCHOR = '<li id="nav-li-" '
_NAV_ITEM = f'<li id="nav-li-overview"><a href="{OVERVIEW}">Overview</a></li>\n\t'

_GRAPH_DEFAULTS_OLD = """        /* Default plot: up to 8 lines */
        benchmark_param_selection = [[null]];
        if (params.length >= 1) {
            var count = 1;
            var max_curves = 8;

            for (var k = 0; k < params.length; ++k) {
                var param_name = param_names[k]
                var param_values = params[k]
                var item = [];
                if (state_selection['p-'+param_name] !== undefined) {
                    for (var j = 0; j < param_values.length; ++j) {
                        if (state_selection['p-'+param_name].includes(param_values[j])) {
                            item.push(j);
                        }
                    }
                } else {
                    for (var j = 0; j < param_values.length && (j+1)*count <= max_curves; ++j) {
                        item.push(j);
                    }
                }
                count = count * item.length;
                benchmark_param_selection.push(item);
            }
        }
"""
_GRAPH_DEFAULTS_NEW = """        /* Default plot (stardag): every configuration, and as many values of the
           other parameters as fit in max_curves lines beside them */
        benchmark_param_selection = [[null]];
        if (params.length >= 1) {
            var count = 1;
            var max_curves = 10;
            var n_config = 1;
            for (var k = 0; k < params.length; ++k) {
                if (param_names[k] == 'configuration' &&
                        state_selection['p-configuration'] === undefined) {
                    n_config = params[k].length;
                }
            }

            for (var k = 0; k < params.length; ++k) {
                var param_name = param_names[k]
                var param_values = params[k]
                var item = [];
                if (state_selection['p-'+param_name] !== undefined) {
                    for (var j = 0; j < param_values.length; ++j) {
                        if (state_selection['p-'+param_name].includes(param_values[j])) {
                            item.push(j);
                        }
                    }
                    count = count * item.length;
                } else if (param_name == 'configuration') {
                    for (var j = 0; j < param_values.length; ++j) {
                        item.push(j);
                    }
                } else {
                    for (var j = 0; j < param_values.length &&
                            (j == 0 || (j+1)*count*n_config <= max_curves); ++j) {
                        item.push(j);
                    }
                    count = count * item.length;
                }
                benchmark_param_selection.push(item);
            }
        }
"""
_NETWORK_ERROR_OLD = """        $("#error-message").text(
            "Error fetching content. " +
            "Perhaps web server has gone down.");"""
_NETWORK_ERROR_NEW = """        /* stardag: a page opened from a file may not request its data: say what to do */
        $("#error-message").text(window.location.protocol == "file:" ?
            "These pages read their data with requests a browser refuses to a page opened " +
            "from a file. Serve the site: python tools/bench.py asv preview (then open " +
            "http://127.0.0.1:8080/), or read overview.html, which works from a file." :
            "Error fetching content. " +
            "Perhaps web server has gone down.");"""
_GRID_OLD = """                    series: {
                        lines: {
                            show: true,
                            lineWidth: 2
                        },
                        shadowSize: 0
                    },"""
_GRID_NEW = """                    series: {
                        lines: {
                            show: true,
                            lineWidth: 2
                        },
                        /* stardag: a lone commit is a point, not an empty box */
                        points: {
                            show: data.filter(function (p) { return p[1] !== null; }).length < 2,
                            radius: 3
                        },
                        shadowSize: 0
                    },"""

JS_EDITS = (
    ("graphdisplay.js", _GRAPH_DEFAULTS_OLD, _GRAPH_DEFAULTS_NEW, "every configuration shown by default"),
    ("summarygrid.js", _GRID_OLD, _GRID_NEW, "a lone commit drawn as a point in the summary grid"),
    ("asv_ui.js", _NETWORK_ERROR_OLD, _NETWORK_ERROR_NEW, "the fix named for a site opened from a file"),
)

_ERROR_PAGE_OLD = """    <p>
      Make sure you have an active internet connection and enable 3rd-party scripts
      in your browser the first time you load airspeed velocity.
    </p>"""
_ERROR_PAGE_SERVED = ("These pages load them from this site (<code>vendor/</code>): one is missing. "
                      "Publish the site again: <code>python tools/bench.py asv publish</code>.")


def external_assets(text: str) -> list[str]:
    """Addresses of the scripts and stylesheets ``text`` (HTML) loads from other hosts."""
    return [m.group(2) for m in _ASSET.finditer(text) if not _is_link_only(m.group(0))]


def _is_link_only(tag: str) -> bool:
    rel = re.search(r"\brel=\"([^\"]*)\"", tag, re.I)
    return tag.lower().startswith("<link") and (rel is None or not re.search(
        r"stylesheet|icon|preload|modulepreload", rel.group(1), re.I))


def localize(text: str, local: dict[str, str]) -> str:
    """Point each asset of ``text`` found in ``local`` (address -> site-relative path) at it."""

    def swap(match: re.Match) -> str:
        tag, url = match.group(0), match.group(2)
        if url not in local or _is_link_only(tag):
            return tag
        return _CDN_ATTRIBUTES.sub("", tag.replace(url, local[url]))

    return _ASSET.sub(swap, text)


def fix_error_page(text: str, notice: str) -> tuple[str, bool]:
    """asv's error page naming the fix: ``notice`` when the site has no copy of some library.

    False when asv's text was not found (a later asv).
    """
    import html

    if f'id="{NOTICE_ID}"' in text:
        return text, True
    if _ERROR_PAGE_OLD not in text:
        return text, False
    fix = html.escape(notice) if notice else _ERROR_PAGE_SERVED
    new = (f'    <p id="{NOTICE_ID}">{fix}</p>\n'
           f'    <p>The <a href="{OVERVIEW}">overview page</a> needs none of them.</p>')
    return text.replace(_ERROR_PAGE_OLD, new, 1), True


def add_landing(text: str) -> str:
    """``index.html`` without a ``#`` location goes to the overview (also without JavaScript)."""
    if OVERVIEW in text.split("</head>", 1)[0]:
        return text
    return re.sub(r"<head>", lambda m: m.group(0) + "\n" + _LANDING, text, count=1, flags=re.I)


def add_nav_item(text: str) -> tuple[str, bool]:
    """asv's navigation bar with an Overview item first; False when asv's bar was not found."""
    if 'id="nav-li-overview"' in text:
        return text, True
    if _NAV_ANCHOR not in text:
        return text, False
    return text.replace(_NAV_ANCHOR, _NAV_ITEM + _NAV_ANCHOR, 1), True


def add_notice(text: str, message: str) -> str:
    """A bar at the bottom of the page that no layout of asv's covers."""
    import html

    bar = (f'<div id="{NOTICE_ID}" style="position: fixed; left: 0; right: 0; bottom: 0; '
           'z-index: 3000; background: #fcf8e3; border-top: 2px solid #c09853; padding: 6px 12px; '
           f'font: 14px sans-serif;">{html.escape(message)}</div>')
    return re.sub(r"<body[^>]*>", lambda m: m.group(0) + "\n" + bar, text, count=1, flags=re.I)


def edit_scripts(site: Path) -> list[str]:
    """Apply `JS_EDITS` to the published copies; return what could not be applied."""
    skipped = []
    for name, old, new, what in JS_EDITS:
        path = site / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            skipped.append(f"{what}: {name} is missing")
            continue
        if new in text:
            continue
        if old not in text:
            skipped.append(f"{what}: this asv's {name} differs from asv 0.6's")
            continue
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return skipped
