"""Each benchmark's noise band on this machine, read from its own stored history.

Identical code benchmarked twice on this project's shared 2-core machine moved
by a factor of 1.04 (hybrid IO builds) to 4.9 (per-task overhead of light
builds) at the 90th percentile, and by more on a busier night (README). No one
threshold fits every benchmark, and the right one depends on the machine. Most
commits change most benchmarks not at all, so the ratio between a benchmark's
consecutive results (larger / smaller) mostly measures noise: its 90th
percentile over the last ``WINDOW`` benchmarked ancestors of a commit is that
benchmark's noise band there. A candidate regression inside its band is not
reported, nor measured again: on this machine that step is what the benchmark
does on identical code. An instruction count has no band: it is exact.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from asv.results import Results

from _nightly.git import GitError, ancestors

WINDOW = 30  # benchmarked ancestors read
MIN_RATIOS = 6  # fewer consecutive pairs than this: no band yet
QUANTILE = 0.9


@dataclass(frozen=True)
class Band:
    """How much a benchmark moves between consecutive results on this machine."""

    factor: float  # the QUANTILE of larger / smaller over consecutive results
    n_ratios: int

    def describe(self) -> str:
        return (f"inside its noise band on this machine: {self.factor:.2f}x, the "
                f"{QUANTILE:.0%} quantile of {self.n_ratios} ratios between consecutive results "
                "of the commits before")


def band_of(values: list[float]) -> Band | None:
    """The band of a series of values in commit order (missing ones left out)."""
    usable = [v for v in values if v is not None and not math.isnan(v) and v > 0]
    ratios = sorted(max(a, b) / min(a, b) for a, b in zip(usable, usable[1:]))
    if len(ratios) < MIN_RATIOS:
        return None
    return Band(ratios[min(len(ratios) - 1, math.ceil(QUANTILE * len(ratios)) - 1)], len(ratios))


class History:
    """Reads benchmark values of stored results, each file once."""

    def __init__(self, repo: str, results: list, machine: str) -> None:
        self.repo = repo
        self.machine = machine
        self.paths = {(r.commit_hash, r.python): r.path for r in results}
        self._values: dict[str, dict[str, float]] = {}

    def band(self, benchmark: str, commit: str, python: str) -> Band | None:
        """``benchmark``'s band over the results before ``commit`` (same Python), or None."""
        try:
            parents = ancestors(self.repo, commit, limit=WINDOW * 10)
        except GitError:
            return None
        paths = [self.paths[(p, python)] for p in parents if (p, python) in self.paths][:WINDOW]
        return band_of([self._read(path).get(benchmark) for path in reversed(paths)])

    def _read(self, path: str) -> dict[str, float]:
        if path not in self._values:
            res = Results.load(path, self.machine)
            values: dict[str, float] = {}
            for key in res.get_all_result_keys():
                params = res.get_result_params(key)
                names = ([key] if not params else
                         [f"{key}({', '.join(c)})" for c in itertools.product(*params)])
                values.update(zip(names, res.get_result_value(key, params)))
            self._values[path] = values
        return self._values[path]
