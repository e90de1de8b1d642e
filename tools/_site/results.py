"""asv's results directory, read generically: benchmarks, runs, values per parameter case.

Nothing here knows the suite's scenarios or configurations: they are the values
of the ``scenario`` and ``configuration`` parameters found in the data. A run is
one result file (one commit, machine and environment). Values follow asv: a
float, ``None`` for a failure, NaN for a skip (``NotImplementedError`` in
``setup``: the commit lacks the feature, or the case is outside the suite's
budget), and `NOT_MEASURED` (a NaN too) where the run has no value at all
(``asv run --bench``, a suite without that benchmark yet). A run labelled quick
or smoke (`QUICK_LABELS`: tools/bench.py and the nightly job label what they
save) says so in ``quick``. Commits are ordered as the published ``index.json`` orders them
(asv's revisions along the configured branches), else by commit date.
"""

from __future__ import annotations

import ast
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

# Entries asv ignores that tools/bench.py and the nightly job add to the result files they
# save: {"quick": bool, "smoke": bool, ...}. Either true: one sample, or a hundredth of the work.
QUICK_LABELS = ("stardag_bench", "stardag_nightly")


class _NotMeasured(float):
    """NaN that says the run has no value at all (benchmark or case not run), not a skip."""

    def __repr__(self) -> str:
        return "NOT_MEASURED"


NOT_MEASURED = _NotMeasured("nan")  # math.isnan() holds: every NaN rule (no winner, no point) applies


def unquote(value: str) -> str:
    """asv's repr of a string parameter ("'io_tree'") as it reads ("io_tree")."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: str  # time, track, peakmem, mem
    unit: str
    param_names: tuple[str, ...]
    params: tuple[tuple[str, ...], ...]
    doc: str  # first sentence of the benchmark's docstring ("" when it has none)

    def values_of(self, param: str) -> list[str]:
        """The unquoted values of ``param`` ([] when the benchmark has no such parameter)."""
        if param not in self.param_names:
            return []
        return [unquote(v) for v in self.params[self.param_names.index(param)]]


@dataclass
class Run:
    machine: str
    python: str
    commit: str
    date: int  # ms since the epoch, asv's commit date
    order: tuple[int, int]  # sorts runs oldest first: (1, revision) on a branch, else (0, date)
    quick: bool = False  # a --quick or smoke run: its values are not measurements
    # benchmark name -> [(its parameters, unquoted, by name), value] for each case
    values: dict[str, list[tuple[dict[str, str], float | None]]] = field(default_factory=dict)

    def value(self, name: str, **params: str) -> float | None:
        """The value where the named parameters have these (unquoted) values.

        NaN when the run skipped it, None when it failed, `NOT_MEASURED` when this
        run has no such benchmark or case.
        """
        for case, value in self.values.get(name, ()):
            if all(case.get(k) == v for k, v in params.items()):
                return value
        return NOT_MEASURED


@dataclass
class Results:
    benchmarks: dict[str, Benchmark]
    runs: list[Run]  # oldest first
    problems: list[str]  # files that could not be read, named

    def groups(self) -> dict[tuple[str, str], list[Run]]:
        """(python, machine) -> its runs, oldest first; pythons in version order."""
        out: dict[tuple[str, str], list[Run]] = {}
        for run in self.runs:
            out.setdefault((run.python, run.machine), []).append(run)
        return dict(sorted(out.items(), key=lambda kv: (_version_key(kv[0][0]), kv[0][1])))


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


def first_sentence(code: str, name: str) -> str:
    """The first sentence of the docstring of function ``name`` in asv's ``code`` text."""
    method = name.rsplit(".", 1)[-1]
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == method:
            doc = " ".join((ast.get_docstring(node) or "").split())
            end = doc.find(". ")
            return doc if end < 0 else doc[: end + 1]
    return ""


def load_benchmarks(results_dir: Path) -> dict[str, Benchmark]:
    data = json.loads((results_dir / "benchmarks.json").read_text(encoding="utf-8"))
    out = {}
    for name, meta in data.items():
        if not isinstance(meta, dict):
            continue  # "version"
        out[name] = Benchmark(
            name=name,
            kind=meta.get("type", ""),
            unit=meta.get("unit", ""),
            param_names=tuple(meta.get("param_names", ())),
            params=tuple(tuple(v) for v in meta.get("params", ())),
            doc=first_sentence(meta.get("code", ""), name),
        )
    return out


def _commit_order(html_dir: Path | None) -> dict[str, int]:
    if html_dir is None:
        return {}
    try:
        index = json.loads((html_dir / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {commit: int(rev) for rev, commit in index.get("revision_to_hash", {}).items()}


def _result_files(results_dir: Path) -> Iterator[tuple[str, Path]]:
    for machine_dir in sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(machine_dir.glob("*.json")):
            if path.name != "machine.json":
                yield machine_dir.name, path


def is_quick(data: dict) -> bool:
    """Whether a result file's data carries a quick or smoke label (``QUICK_LABELS``)."""
    return any(isinstance(data.get(k), dict) and bool(data[k].get("quick") or data[k].get("smoke"))
               for k in QUICK_LABELS)


def quick_files(results_dir: Path) -> list[Path]:
    """The result files under ``results_dir`` labelled quick or smoke (unreadable ones are not)."""
    if not results_dir.is_dir():
        return []
    found = []
    for _machine, path in _result_files(results_dir):
        try:
            if is_quick(json.loads(path.read_text(encoding="utf-8"))):
                found.append(path)
        except (OSError, ValueError):
            pass
    return found


def _read_run(machine: str, path: Path, order: dict[str, int],
              benchmarks: dict[str, Benchmark]) -> Run:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != 2:
        raise ValueError(f"result format version {data.get('version')!r}, expected asv's 2")
    columns = data["result_columns"]
    at_result, at_params = columns.index("result"), columns.index("params")
    commit = data["commit_hash"]
    date = int(data.get("date") or 0)
    run = Run(machine=machine, python=str(data.get("python") or data["params"].get("python", "?")),
              commit=commit, date=date, order=(1, order[commit]) if commit in order else (0, date),
              quick=is_quick(data))
    for name, row in data["results"].items():
        bench = benchmarks.get(name)
        row = list(row) + [None] * (len(columns) - len(row))
        values, params = row[at_result], row[at_params] or []
        if not isinstance(values, list):
            values = [values]
        # A result names its parameter values, not their names: those come from
        # benchmarks.json, and only while the number of parameters still agrees.
        names = bench.param_names if bench is not None else ()
        if len(names) != len(params):
            continue
        cases = [dict(zip(names, map(unquote, case))) for case in itertools.product(*params)]
        run.values[name] = list(zip(cases, values))
    return run


def load(results_dir: Path, html_dir: Path | None = None) -> Results:
    """Every run under ``results_dir`` with ``benchmarks.json``; unreadable files become problems."""
    results_dir = Path(results_dir)
    benchmarks = load_benchmarks(results_dir)
    order = _commit_order(html_dir)
    runs, problems = [], []
    for machine, path in _result_files(results_dir):
        try:
            runs.append(_read_run(machine, path, order, benchmarks))
        except (OSError, ValueError, KeyError, TypeError) as err:  # relative: the page is public
            problems.append(f"{path.relative_to(results_dir)}: {err}")
    runs.sort(key=lambda r: r.order)
    return Results(benchmarks=benchmarks, runs=runs, problems=problems)
