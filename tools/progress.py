"""A console for ``asv run`` that talks: progress over the whole run, units, what n/a means.

asv prints a benchmark's line only when all its parameter cases are done, and
nothing while it sets up an environment: a run of the suite was silent for
two minutes at a time. `AsvConsole` reads asv's output as it comes and

- prints it line by line, rewriting track values asv prints with 16 digits
  (``0.9620934213511217``) to their unit and a sensible precision, the unit
  beside the benchmark's name;
- says every `QUIET_S` seconds of silence what is going on: benchmarks done of
  the total, time elapsed, an estimate of what is left, what runs now;
- explains ``n/a`` the first time a table shows one.

The estimate weighs each benchmark by its duration in this machine's newest
earlier result, else by its number of parameter cases, scaled by the pace so far.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

QUIET_S = 10.0
_STEP = re.compile(r"^\[\s*(\d+(?:\.\d+)?)%\] ·+ (?P<name>[A-Za-z_][\w.]*\.(?:time|track|peakmem|mem|timeraw)_\w+)"
                   r"(?P<status>\s+\S.*)?$")
_SETUP = re.compile(r"^\[\s*\d+(?:\.\d+)?%\] ·+ Setting up (?P<key>\S+)\s*$")  # a setup_cache
_TOTAL = re.compile(r"Running (\d+) total benchmarks")
_LONG_FLOAT = re.compile(r"(?<![\w.±])-?\d+\.\d{5,}(?:e[-+]?\d+)?(?![\w.])")
_BIG_INT = re.compile(r"(?<![\w.±])\d{6,}(?![\w.])")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def value_text(value: float, unit: str) -> str:
    """A track value in ``unit`` at the precision its noise allows."""
    if unit.startswith("us"):
        return f"{value:.1f} µs" if abs(value) < 100 else f"{value:.0f} µs"
    if unit == "instructions":
        return f"{value / 1e6:.2f}M instr"
    if "ideal" in unit or abs(value) < 10:
        return f"{value:.3f}"
    return f"{value:.4g}"


class AsvConsole:
    """Turns asv's output into the console's: feed it chunks, call `tick` every second."""

    def __init__(self, results_dir: Path, machine: str, explain_na: str,
                 out: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.results_dir, self.machine, self.explain_na = results_dir, machine, explain_na
        self.out = out or sys.stdout
        self.clock = clock
        self.start = self.last_output = clock()
        self.lock = threading.Lock()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.partial = ""
        self.total = 0  # benchmarks in the whole run (asv: commits x environments x benchmarks)
        self.done: list[str] = []  # names, in the order they finished
        self.running = ""  # the benchmark asv works on now
        self.running_since = 0.0
        self.bench_start = 0.0  # when the first benchmark started
        self.last_done_at = 0.0  # when the last one finished
        self.units: dict[str, str] = {}
        self.weights: dict[str, float] = {}
        self.weights_are_seconds = False
        self.unit = ""  # of the table being printed
        self.na_explained: bool | None = False  # None: a table with n/a is being printed
        self.phase = "setting up: environments, building and installing the commit"

    # -- input ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            text = self.partial + self.decoder.decode(chunk)
            *lines, self.partial = text.split("\n")
            for line in lines:
                self._line(line.rstrip("\r"))
            self._notice_start(self.partial)

    def close(self) -> None:
        with self.lock:
            rest = self.partial + self.decoder.decode(b"", final=True)
            if rest:
                self._line(rest)
            self.partial = ""

    def _notice_start(self, partial: str) -> None:
        """asv writes a benchmark's name when it starts and the rest of the line when done."""
        partial = partial.strip("\r")
        match, setup = _STEP.match(partial), _SETUP.match(partial)
        name = (match.group("name") if match and not match.group("status")
                else f"the setup of {setup.group('key')}" if setup else "")
        if name and name != self.running:
            self.running, self.running_since = name, self.clock()
            if not self.bench_start:
                self.bench_start = self.running_since

    def _line(self, line: str) -> None:
        total = _TOTAL.search(line)
        if total:
            self.total = int(total.group(1))
            self._load_weights()
            self.phase = "benchmarking"
        elif line.lstrip("· ").startswith(("Creating", "Building", "Installing", "Uninstalling")):
            self.phase = "setting up: " + line.lstrip("· ").split(" for ")[0].split(" into ")[0]
        step = _STEP.match(line)
        if self.running.startswith("the setup of ") and "Setting up" in line:
            self.running = ""  # its line is complete: asv wrote ok or failed
        if step and step.group("status"):
            name = step.group("name")
            self.done.append(name)
            self.last_done_at = self.clock()
            self.running = ""
            self.unit = self.units.get(name, "")
            if self.unit not in ("", "seconds", "bytes"):
                line = f"{line}  [{self.unit}]"
        elif self.unit and line.startswith((" ", "[")):
            line = self._rewrite(line)
        self._print(line)
        if "n/a" in line and self.na_explained is False:
            self.na_explained = None  # once the table is done
        elif not line.strip() and self.na_explained is None:
            self.na_explained = True
            if self.explain_na:
                self._print(f"bench: n/a = skipped, not failed: {self.explain_na}\n")

    def _rewrite(self, line: str) -> str:
        def one(match: re.Match) -> str:
            text = value_text(float(match.group(0)), self.unit)
            return text.center(len(match.group(0))) if len(text) < len(match.group(0)) else text

        if self.unit in ("seconds", "bytes"):
            return line
        line = _LONG_FLOAT.sub(one, line)
        return _BIG_INT.sub(one, line) if self.unit == "instructions" else line

    def _print(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
        self.last_output = self.clock()

    # -- estimate ------------------------------------------------------------------------

    def _load_weights(self) -> None:
        """Each benchmark's expected share of the run: its last duration here, else its cases."""
        try:
            meta = json.loads((self.results_dir / "benchmarks.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for name, bench in meta.items():
            if isinstance(bench, dict):
                self.units[name] = bench.get("unit", "")
                self.weights[name] = float(math.prod(len(p) for p in bench.get("params", [])) or 1)
        durations = self._last_durations()
        if durations and set(durations) >= set(self.weights):
            self.weights, self.weights_are_seconds = durations, True

    def _last_durations(self) -> dict[str, float]:
        folder = self.results_dir / self.machine
        try:
            newest = max(folder.glob("*-*.json"), key=os.path.getmtime)
            data = json.loads(newest.read_text(encoding="utf-8"))
            at = data["result_columns"].index("duration")
            return {name: float(row[at]) for name, row in data["results"].items()
                    if len(row) > at and row[at] is not None}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def left_s(self) -> float | None:
        """Seconds the rest of the run should take, or None before there is a basis.

        The pace (seconds per unit of weight) comes from the benchmarks finished so far;
        the one running is expected to take its weight's worth, and what it has already
        taken is counted off, so the estimate falls while a long benchmark runs.
        """
        if not self.total or not self.weights:
            return None
        cycle = sum(self.weights.values())
        n_cycles = self.total / max(len(self.weights), 1)
        done_w = sum(self.weights.get(n, 0.0) for n in self.done)
        left_w = max(cycle * n_cycles - done_w, 0.0)
        if done_w > 0 and self.last_done_at > self.bench_start:
            pace = (self.last_done_at - self.bench_start) / done_w  # this machine, today
        elif self.weights_are_seconds:
            pace = 1.0
        else:
            return None
        running_w = self.weights.get(self.running, 0.0) if self.running else 0.0
        spent = self.clock() - (self.running_since if self.running else self.clock())
        return pace * max(left_w - running_w, 0.0) + max(pace * running_w - spent, 0.0)

    # -- the voice -----------------------------------------------------------------------

    def status(self) -> str:
        now = self.clock()
        parts = [f"{duration(now - self.start)} elapsed"]
        if self.total:
            parts.insert(0, f"{len(self.done)}/{self.total} benchmarks done")
            left = self.left_s()
            parts.append(f"about {duration(left)} left" if left is not None
                         else "time left known after the first benchmark")
            if self.running:
                parts.append(f"now {self.running} ({duration(now - self.running_since)})")
        else:
            parts.append(self.phase)
        return "bench: " + ", ".join(parts)

    def tick(self) -> None:
        with self.lock:
            # asv's half-written line is held back (feed), so this line never splits it
            if self.clock() - self.last_output >= QUIET_S:
                self._print(self.status())
