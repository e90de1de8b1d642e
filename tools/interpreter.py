"""Find the real CPython interpreters installed on this machine.

asv's virtualenv plugin takes the first ``pythonX.Y`` on PATH. Where that is a
pyenv shim for a version pyenv does not currently select, the shim exits with
an error and asv crashes. So we look for candidates generically (PATH, pyenv's
versions, common install directories), run each one to learn what it really is,
and hand asv a directory of ``pythonX.Y`` links to interpreters that work.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Extra directories (or interpreter paths) to search first, os.pathsep-separated.
EXTRA_PATH_VAR = "STARDAG_BENCH_PYTHON_PATH"

_PROBE = (
    "import os, sys, platform; "
    "print('%d.%d' % sys.version_info[:2], platform.python_implementation(), "
    "os.path.realpath(sys.executable))"
)
_COMMON_DIRS = (
    "/usr/local/bin",
    "/usr/bin",
    "/opt/homebrew/bin",
    "/opt/python*/bin",
    "/opt/python/*/bin",
    "/usr/local/opt/python@*/bin",
    "~/.local/bin",
    "~/.local/share/uv/python/*/bin",
    "/Library/Frameworks/Python.framework/Versions/*/bin",
)


@dataclass(frozen=True)
class Interpreter:
    """A CPython interpreter that ran and reported its version."""

    version: str  # "3.11"
    executable: str  # real path, symlinks and shims resolved
    found_via: str  # the candidate path that led to it


def probe(candidate: str, timeout: float = 15.0) -> Interpreter | None:
    """Run ``candidate`` and return what it is, or None if it does not run."""
    try:
        proc = subprocess.run(
            [candidate, "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    parts = proc.stdout.strip().split(" ", 2)
    if len(parts) != 3 or parts[1] != "CPython" or not os.path.isfile(parts[2]):
        return None
    return Interpreter(version=parts[0], executable=parts[2], found_via=candidate)


def _pyenv_version_dirs() -> list[str]:
    pyenv = shutil.which("pyenv")
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(os.environ["PYENV_ROOT"])
    if pyenv:
        try:
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=15,
                stdin=subprocess.DEVNULL,
            )
            if out.returncode == 0 and out.stdout.strip():
                roots.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    roots.append(os.path.expanduser("~/.pyenv"))
    dirs = []
    for root in dict.fromkeys(roots):
        dirs.extend(sorted(glob.glob(os.path.join(root, "versions", "*", "bin")), reverse=True))
    return dirs


def candidate_paths(versions: list[str]) -> list[str]:
    """Paths worth probing for the given "X.Y" versions, most preferred first."""
    dirs: list[str] = []
    extra = os.environ.get(EXTRA_PATH_VAR, "")
    explicit = [p for p in extra.split(os.pathsep) if p]
    dirs.extend(p for p in explicit if os.path.isdir(p))
    dirs.extend(p for p in os.environ.get("PATH", "").split(os.pathsep) if p)
    dirs.extend(_pyenv_version_dirs())
    for pattern in _COMMON_DIRS:
        dirs.extend(sorted(glob.glob(os.path.expanduser(pattern)), reverse=True))

    names = [f"python{v}" for v in versions] + ["python3", "python"]
    paths = [p for p in explicit if os.path.isfile(p)]
    paths.append(sys.executable)
    for d in dict.fromkeys(dirs):
        for name in names:
            path = os.path.join(d, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                paths.append(path)
    return list(dict.fromkeys(paths))


def discover(versions: list[str]) -> dict[str, Interpreter]:
    """Map each requested "X.Y" to the first working interpreter found for it."""
    wanted = set(versions)
    found: dict[str, Interpreter] = {}
    seen_real: set[str] = set()
    for path in candidate_paths(versions):
        if wanted <= found.keys():
            break
        name = os.path.basename(path)
        # A "pythonX.Y" that is not a wanted version cannot help; skip the run.
        if name.startswith("python3.") and name[len("python"):] not in wanted:
            continue
        interp = probe(path)
        if interp is None or interp.executable in seen_real:
            continue
        seen_real.add(interp.executable)
        if interp.version in wanted and interp.version not in found:
            found[interp.version] = interp
    return found


def link_dir(found: dict[str, Interpreter], directory: str | None = None) -> str:
    """Make a directory holding ``pythonX.Y`` links to the found interpreters."""
    directory = directory or tempfile.mkdtemp(prefix="stardag-bench-pythons-")
    for version, interp in found.items():
        link = Path(directory, f"python{version}")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(interp.executable)
    return directory


def describe(versions: list[str], found: dict[str, Interpreter]) -> str:
    """A short table: each requested version, the interpreter found, or MISSING."""
    lines = []
    for v in versions:
        interp = found.get(v)
        if interp is None:
            lines.append(f"  python{v}: MISSING (not on PATH, in pyenv or a common install dir)")
        else:
            via = "" if interp.found_via == interp.executable else f"  (via {interp.found_via})"
            lines.append(f"  python{v}: {interp.executable}{via}")
    return "\n".join(lines)
