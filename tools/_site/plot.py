"""Small static trend plots (SVG) drawn with matplotlib at publish time.

matplotlib is optional: without it `available()` is False and the overview
page says the plots need it. Only ``matplotlib.figure.Figure`` is used (no
pyplot): no global state, no display, nothing left open.
"""

from __future__ import annotations

import math
from pathlib import Path

# One colour per configuration, in the order the data lists them (matplotlib's tab10).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MAX_LABELS = 6  # commit labels on the x axis
LOG_RATIO = 30  # a y range wider than this goes on a log scale


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def trend(path: Path, title: str, ylabel: str, commits: list[str],
          series: dict[str, list[float | None]], colours: dict[str, str], log: bool = True) -> None:
    """Write an SVG of one line per series over ``commits`` (oldest first) to ``path``.

    Missing values (None, NaN) leave a gap; a lone point is drawn as a marker.
    With ``log``, a y range wider than `LOG_RATIO` goes on a log scale.
    """
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small files
    matplotlib.rcParams["svg.hashsalt"] = "stardag"  # the same data gives the same file
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 2.3), dpi=100)
    ax = fig.add_subplot()
    x = list(range(len(commits)))
    for label, values in series.items():
        y = [math.nan if v is None else v for v in values]
        ax.plot(x, y, marker="o", markersize=3, linewidth=1.2, label=label,
                color=colours.get(label, "#333333"))
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    step = max(1, math.ceil(len(commits) / MAX_LABELS))
    ticks = x[::-1][::step][::-1]
    ax.set_xticks(ticks, [commits[i][:8] for i in ticks], rotation=30, ha="right")
    if len(commits) == 1:
        ax.set_xlim(-1, 1)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    values = [v for ys in series.values() for v in ys if v is not None and not math.isnan(v)]
    if log and values and min(values) > 0 and max(values) / min(values) > LOG_RATIO:
        ax.set_yscale("log")  # one configuration 100x the others would flatten them to zero
        ax.set_ylabel(f"{ylabel} (log)", fontsize=8)
    else:
        ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
    ax.margins(x=0.05)
    fig.tight_layout(pad=0.4)
    fig.savefig(path, format="svg", metadata={"Date": None})
