"""Run stardag's asv benchmark suite with the Python interpreters this machine has.

    python tools/bench.py                 this commit on this Python, then publish to html/
    python tools/bench.py quick           check every benchmark runs (~15 s): smoke workloads,
                                          `asv run --quick --dry-run`, nothing saved
    python tools/bench.py sweep           this commit on every configured Python found, publish
    python tools/bench.py run [ARGS]      `asv run ARGS` on every configured Python found
                                          (e.g. `run ALL --steps 10`, `run main~5..main`)
    python tools/bench.py pythons         which configured Pythons exist here, which are missing
    python tools/bench.py asv ARGS        any asv command (publish, preview, continuous, compare)

asv is run from the repository root with a directory of ``pythonX.Y`` links to
real interpreters first on PATH (see tools/interpreter.py), so pyenv shims that
do not resolve never reach asv's virtualenv plugin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import interpreter  # noqa: E402


class BenchError(Exception):
    """A problem the user can fix; printed without a traceback."""


def configured_pythons() -> list[str]:
    """The "pythons" list of asv.conf.json (which allows // comment lines)."""
    text = (REPO / "asv.conf.json").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return list(json.loads(text)["pythons"])


def _asv_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import asv, virtualenv"],
        capture_output=True, stdin=subprocess.DEVNULL,
    )
    return probe.returncode == 0


def ensure_asv() -> None:
    """Install asv and virtualenv into this interpreter when they are missing."""
    if _asv_available():
        return
    print(f"bench: installing asv and virtualenv into {sys.executable} (pip)", flush=True)
    rc = subprocess.call(
        [sys.executable, "-m", "pip", "install", "asv>=0.6.4", "virtualenv"],
        stdin=subprocess.DEVNULL,
    )
    if rc != 0 or not _asv_available():
        raise BenchError(
            "could not install asv and virtualenv; "
            f"run `{sys.executable} -m pip install asv virtualenv` and retry"
        )


def find_pythons(versions: list[str]) -> dict[str, interpreter.Interpreter]:
    """Discover interpreters for ``versions``, print the table, fail if none exist."""
    found = interpreter.discover(versions)
    print("bench: Python interpreters for asv.conf.json's pythons:")
    print(interpreter.describe(versions, found))
    missing = [v for v in versions if v not in found]
    if missing:
        print(f"bench: missing {', '.join(missing)}: these versions are not benchmarked "
              f"(install them, or add their directory to ${interpreter.EXTRA_PATH_VAR})")
    if not found:
        raise BenchError(
            f"no interpreter found for any of {', '.join(versions)}; nothing to benchmark. "
            f"Install one (e.g. `pyenv install 3.12`) or point ${interpreter.EXTRA_PATH_VAR} at it"
        )
    return found


def current_version(versions: list[str]) -> str:
    """This interpreter's X.Y when it is configured, else the newest configured one."""
    here = "%d.%d" % sys.version_info[:2]
    return here if here in versions else versions[-1]


def target_root_note() -> str:
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.common import describe_target_root
    except ImportError:
        return "benchmark target root: (benchmarks/common.py not found)"
    return describe_target_root()


def asv(args: list[str], found: dict[str, interpreter.Interpreter]) -> int:
    """Run ``asv ARGS`` from the repo root with the found interpreters first on PATH."""
    link_dir = interpreter.link_dir(found)
    try:
        cmd = [sys.executable, "-m", "asv", *args]
        print("bench: $ asv " + " ".join(args), flush=True)
        env = dict(os.environ, PATH=link_dir + os.pathsep + os.environ.get("PATH", ""))
        return subprocess.call(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)


def ensure_machine() -> None:
    """Record this machine's description once, non-interactively (asv asks otherwise)."""
    if Path("~/.asv-machine.json").expanduser().exists():
        return
    print("bench: $ asv machine --yes  (describes this machine in ~/.asv-machine.json)", flush=True)
    proc = subprocess.run([sys.executable, "-m", "asv", "machine", "--yes"], cwd=REPO,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise BenchError(f"`asv machine --yes` failed:\n{proc.stdout}{proc.stderr}")


def head_range() -> str:
    """An asv range naming only the checked-out commit (``SHA^!``)."""
    proc = subprocess.run(["git", "rev-parse", "HEAD", "HEAD^@"], cwd=REPO, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    shas = proc.stdout.split()
    if not shas:
        raise BenchError(f"not a git checkout with a commit: {REPO} ({proc.stderr.strip()})")
    if len(shas) == 1:  # a root commit has no parent for ^! to exclude
        hashfile = REPO / ".asv" / "head-commit.txt"
        hashfile.parent.mkdir(exist_ok=True)
        hashfile.write_text(shas[0] + "\n")
        return f"HASHFILE:{hashfile}"
    return f"{shas[0]}^!"


def _python_args(args: list[str]) -> list[str]:
    """Versions named by --python/-E in user args ([] if none)."""
    named = []
    for i, a in enumerate(args):
        value = None
        if a.startswith(("--python=", "--environment=")):
            value = a.split("=", 1)[1]
        elif a in ("--python", "-E", "--environment") and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith("-E") and len(a) > 2:
            value = a[2:]
        if value is not None:
            named.append(value.rsplit(":", 1)[-1])
    return named


def run_job(versions: list[str], run_args: list[str], publish: bool) -> int:
    """asv run on ``versions`` (already discovered), then optionally asv publish."""
    ensure_asv()
    found = find_pythons(versions)
    print("bench: " + target_root_note(), flush=True)
    ensure_machine()
    py_args = [f"--python={v}" for v in versions if v in found]
    start = time.monotonic()
    rc = asv(["run", *py_args, *run_args], found)
    print(f"bench: asv run took {time.monotonic() - start:.0f} s", flush=True)
    if rc != 0:
        print(f"bench: asv run exited with {rc}: a benchmark failed or asv refused the "
              "arguments (see above)", flush=True)
    if publish:
        if asv(["publish"], found) != 0:
            raise BenchError("asv publish failed")
        print(f"bench: site written to {REPO / 'html'} "
              "(view: `python tools/bench.py asv preview`)")
    return rc


def main(argv: list[str]) -> int:
    versions = configured_pythons()
    command, rest = (argv[0], argv[1:]) if argv else ("default", [])
    if command in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if command == "pythons":
        found = find_pythons(versions)
        return 0 if len(found) == len(versions) else 3
    if command == "default":
        return run_job([current_version(versions)], [head_range()], publish=True)
    if command == "quick":
        # A check that every benchmark runs under every configuration, in seconds:
        # smoke workloads (benchmarks/common.py), each once, nothing saved.
        os.environ["STARDAG_BENCH_SMOKE"] = "1"
        return run_job([current_version(versions)], ["--quick", "--dry-run", head_range(), *rest],
                       publish=False)
    if command == "sweep":
        return run_job(versions, [head_range(), *rest], publish=True)
    if command == "run":
        # X.Y versions are looked up; anything else (existing:same, a path) goes to asv as is.
        py = _python_args(rest)
        named = [v for v in py if re.fullmatch(r"\d+\.\d+", v)]
        if named:
            found = find_pythons(named)
            missing = [v for v in named if v not in found]
            if missing:
                raise BenchError(f"python{missing[0]} was asked for and is not installed")
            ensure_asv()
            print("bench: " + target_root_note(), flush=True)
            ensure_machine()
            return asv(["run", *rest], found)
        if py:
            ensure_asv()
            ensure_machine()
            return asv(["run", *rest], {})
        return run_job(versions, rest, publish=False)
    if command == "asv":
        ensure_asv()
        found = interpreter.discover(versions)
        return asv(rest, found)
    raise BenchError(f"unknown command {command!r}; see `python tools/bench.py --help`")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
