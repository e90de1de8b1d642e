"""Values as people read them: the unit, and no more digits than the noise allows."""

from __future__ import annotations

import math

from _site.results import NOT_MEASURED


def fmt(value: float | None, unit: str) -> str:
    """A value in asv's ``unit``; n/a for a skip (NaN), failed for a failure (None)."""
    if value is None:
        return "failed"
    if value is NOT_MEASURED:
        return "not measured"
    if math.isnan(value):
        return "n/a"
    if unit in ("seconds", "s"):
        return f"{value:.3g} s" if abs(value) >= 1 else f"{value * 1e3:.3g} ms"
    if unit == "bytes":
        return f"{value / 1e6:.1f} MB"
    if unit == "instructions":
        return f"{value:,.0f}"
    if unit.startswith(("us", "µs")):
        suffix = "/task" if "task" in unit else ""
        return f"{value:.1f} µs{suffix}" if abs(value) < 1000 else f"{value:,.0f} µs{suffix}"
    return f"{value:.2f}"
