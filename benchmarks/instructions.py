"""Instructions per task, counted by Valgrind: a cost that does not move with the machine's load.

A wall-clock time of identical code moves by 1.1-4x on a busy shared machine;
the number of instructions a process executes does not (two runs of one build,
with both cores busy elsewhere, agree to 0.001%). So the CPU work that lives
in one process (building, making tasks, saving and loading outputs, the
scheduler) is also counted: ``valgrind --tool=cachegrind --cache-sim=no`` runs
``_cost_probe.py``, which does each kind of work for two sizes in forked
children, and the count per item is the slope ``(I(n2) - I(n1)) / (n2 - n1)``:
the start of Python and every import cancel out.

What it cannot see: the kernel (a file write's system calls count only their
user-space side), waiting, other processes (a process pool's workers), and
how fast each instruction runs (cache misses). Those stay with the timed
benchmarks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable

from benchmarks.common import base_root

SIZES = (100, 500)
# Seconds for one Valgrind run of every kind: ~20 s of CPU, several times that
# on a machine shared with other work.
TIMEOUT = 600
INSTALL_HINT = ("Valgrind is not installed: instruction counts need it "
                "(Debian/Ubuntu: `apt-get install valgrind`; Fedora: `dnf install valgrind`)")
_PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cost_probe.py")
_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


@dataclass(frozen=True)
class Count:
    """One kind's outcome: instructions per item, or why there is no number."""

    per_item: float | None = None
    skip: str | None = None  # the commit lacks it, or no Valgrind: the benchmark skips
    error: str | None = None  # it failed: the benchmark fails with this message


def valgrind() -> str | None:
    return shutil.which("valgrind")


def count(kinds: list[str], sizes: tuple[int, int] = SIZES) -> dict[str, Count]:
    """Instructions per item of each kind (see _cost_probe.py), from one Valgrind run."""
    tool = valgrind()
    if tool is None:
        return {kind: Count(skip=INSTALL_HINT) for kind in kinds}
    with _workspace() as (tmp, env):
        # A plain run first: it writes any missing bytecode (the counted run
        # writes none, -B) and fails fast if the probe itself is broken.
        _probe(env, os.path.join(tmp, "warm.json"), (2, 3), kinds, [])
        manifest_path = os.path.join(tmp, "manifest.json")
        manifest = _probe(env, manifest_path, sizes, kinds, [
            tool, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            f"--log-file={os.path.join(tmp, 'valgrind.%p')}",
        ])

        def per_item(entry: dict) -> Count:
            first, second, repeat = (_instructions(tmp, pid) for pid in entry["pids"])
            loop = (repeat - first) / 2  # the parent's own work between two forks
            n1, n2 = entry["sizes"]  # a kind's span may be wider (_cost_probe.sizes_for)
            return Count(per_item=(second - first - loop) / (n2 - n1))

        return _outcomes(manifest, kinds, per_item)


def check(kinds: list[str]) -> dict[str, Count]:
    """Run every kind once at a tiny size without Valgrind: does it work on this commit?"""
    with _workspace() as (tmp, env):
        manifest = _probe(env, os.path.join(tmp, "check.json"), (2, 3), kinds, [])
    return _outcomes(manifest, kinds, lambda entry: Count())


def _outcomes(manifest: dict, kinds: list[str], ran: Callable[[dict], Count]) -> dict[str, Count]:
    """Each kind's Count from the probe's manifest: skipped, failed, or ``ran(entry)``."""
    found = {}
    for kind in kinds:
        entry = manifest["kinds"].get(kind, {"error": "not in the probe's manifest"})
        if "missing" in entry:
            found[kind] = Count(skip=entry["missing"])
        elif "error" in entry:
            found[kind] = Count(error=f"{kind}: {entry['error']}")
        else:
            found[kind] = ran(entry)
    return found


class _workspace:
    """A temporary directory for logs, one on tmpfs for file targets, and the probe's environment."""

    def __enter__(self) -> tuple[str, dict[str, str]]:
        self.tmp = tempfile.mkdtemp(prefix="stardag-cost-")
        self.files = tempfile.mkdtemp(prefix="stardag-cost-", dir=base_root()[0])
        from benchmarks._cost_probe import FILE_ROOT_VAR

        return self.tmp, _environment({FILE_ROOT_VAR: self.files})

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.files, ignore_errors=True)


# Passed on to the probe as they are: where Python finds the library (the tests
# put a checkout first), where Valgrind finds its tools.
_KEPT_VARS = ("PYTHONPATH", "VALGRIND_LIB")


def _environment(extra: dict[str, str]) -> dict[str, str]:
    """The probe's whole environment: the same for every run on this machine.

    Not the caller's: the environment's size moves where the interpreter's
    first objects land, and with it the alignment of later copies and
    compares; an extra variable of 60 bytes moved a load's count by 0.2%.
    """
    env = {"PATH": os.defpath, "LC_ALL": "C", "PYTHONHASHSEED": "0", **extra}
    env.update((k, os.environ[k]) for k in _KEPT_VARS if k in os.environ)
    return env


def _probe(env: dict[str, str], manifest_path: str, sizes: tuple[int, int], kinds: list[str],
           wrapper: list[str]) -> dict:
    cmd = [*wrapper, sys.executable, "-B", _PROBE, manifest_path, *map(str, sizes), *kinds]
    # Output to a file, not a pipe: a process-pool worker still exiting would
    # hold a pipe open and keep a reader waiting. A session of its own: once
    # the probe is done (or on a timeout, or any error here) whatever it forked
    # goes at once, nothing is left running.
    with open(manifest_path + ".out", "w+") as out:
        proc = subprocess.Popen(cmd, env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:  # cwd: a path of its own length too, as the environment
            proc.wait(timeout=TIMEOUT)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        out.seek(0)
        text = out.read()
    if proc.returncode != 0 or not os.path.exists(manifest_path):
        raise RuntimeError(f"the cost probe exited {proc.returncode} ({' '.join(cmd[:2])} ...):\n"
                           f"{text[-3000:]}")
    with open(manifest_path) as f:
        return json.load(f)


def _instructions(log_dir: str, pid: int) -> int:
    path = os.path.join(log_dir, f"valgrind.{pid}")
    with open(path) as f:
        text = f.read()
    match = _I_REFS.search(text)
    if match is None:
        raise RuntimeError(f"no 'I refs' total in Valgrind's log of process {pid}:\n{text[-2000:]}")
    return int(match.group(1).replace(",", ""))
