"""Run stardag's asv benchmark suite with the Python interpreters this machine has.

    python tools/bench.py                 this commit on this Python, then publish to html/
    python tools/bench.py quick           check every benchmark runs (~15 s): smoke workloads,
                                          `asv run --quick --dry-run`, nothing saved
    python tools/bench.py sweep           this commit on every configured Python found, publish
    python tools/bench.py run [ARGS]      `asv run ARGS` on every configured Python found
                                          (e.g. `run ALL --steps 10`, `run main~5..main`);
                                          with --quick (or a smoke run) nothing is saved unless
                                          --save-quick: one sample each must not enter the history
    python tools/bench.py pythons         which configured Pythons exist here, which are missing
    python tools/bench.py asv ARGS        any asv command (publish, preview, continuous, compare);
                                          preview serves on 127.0.0.1 only; quick or smoke results
                                          saved by run are labelled, and the overview page leaves
                                          them out unless `asv publish --show-quick`

asv is run from the repository root with a directory of ``pythonX.Y`` links to
real interpreters first on PATH (see tools/interpreter.py), so pyenv shims that
do not resolve never reach asv's virtualenv plugin.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import importlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import interpreter  # noqa: E402
import machine as asv_machine  # noqa: E402
import progress  # noqa: E402


class BenchError(Exception):
    """A problem the user can fix; printed without a traceback."""


def asv_conf(path: Path | None = None) -> dict:
    """asv.conf.json, or the config at ``path`` (which allows // comment lines)."""
    text = (path or REPO / "asv.conf.json").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return json.loads(text)


def configured_pythons() -> list[str]:
    """The "pythons" list of asv.conf.json."""
    return list(asv_conf()["pythons"])


def results_dir() -> Path:
    return REPO / asv_conf().get("results_dir", "results")


def html_dir(args: list[str] = ()) -> Path:
    """Where ``asv publish ARGS`` writes the site: ``--html-dir`` or asv.conf.json's html_dir."""
    for i, arg in enumerate(args):
        if arg.startswith("--html-dir="):
            return REPO / arg.split("=", 1)[1]
        if arg == "--html-dir" and i + 1 < len(args):
            return REPO / args[i + 1]
    return REPO / asv_conf().get("html_dir", "html")


def machine_name(args: list[str] = ()) -> str:
    """The machine asv files results under: ``--machine`` in ``args``, else this host's name."""
    for i, arg in enumerate(args):
        if arg.startswith("--machine="):
            return arg.split("=", 1)[1]
        if arg == "--machine" and i + 1 < len(args):
            return args[i + 1]
    return asv_machine.host_name()


def _importable(*modules: str) -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import " + ", ".join(modules)],
        capture_output=True, stdin=subprocess.DEVNULL,
    )
    return probe.returncode == 0


def ensure_asv() -> None:
    """Install asv and virtualenv (and matplotlib, for the site's plots) when they are missing."""
    if not _importable("asv", "virtualenv"):
        print(f"bench: installing asv, virtualenv and matplotlib into {sys.executable} (pip)", flush=True)
        rc = subprocess.call(
            [sys.executable, "-m", "pip", "install", "asv>=0.6.4", "virtualenv", "matplotlib"],
            stdin=subprocess.DEVNULL,
        )
        if rc != 0 or not _importable("asv", "virtualenv"):
            raise BenchError(
                "could not install asv and virtualenv; "
                f"run `{sys.executable} -m pip install asv virtualenv` and retry"
            )
    elif not _importable("matplotlib"):
        print(f"bench: installing matplotlib into {sys.executable} for the site's plots (pip)", flush=True)
        if subprocess.call([sys.executable, "-m", "pip", "install", "-q", "matplotlib"],
                           stdin=subprocess.DEVNULL) != 0:
            print("bench: warning: matplotlib did not install: the overview page will have its "
                  "tables but no plots", flush=True)


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


def asv(args: list[str], found: dict[str, interpreter.Interpreter],
        console: progress.AsvConsole | None = None) -> int:
    """Run ``asv ARGS`` from the repo root with the found interpreters first on PATH.

    With a ``console``, asv's output goes through it (progress, units, n/a).
    """
    link_dir = interpreter.link_dir(found)
    try:
        cmd = [sys.executable, "-m", "asv", *args]
        print("bench: $ asv " + " ".join(args), flush=True)
        env = dict(os.environ, PATH=link_dir + os.pathsep + os.environ.get("PATH", ""))
        if console is None:
            return _wait(subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL))
        return _talking(cmd, env, console)
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)


def _talking(cmd: list[str], env: dict[str, str], console: progress.AsvConsole) -> int:
    env = dict(env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def read() -> None:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            console.feed(chunk)

    reader = threading.Thread(target=read, name="asv-output", daemon=True)
    reader.start()
    try:
        return _wait(proc, console.tick)
    finally:
        reader.join(timeout=10)
        console.close()
        proc.stdout.close()


def _wait(proc: subprocess.Popen, tick: Callable[[], None] = lambda: None) -> int:
    """Wait for asv (``tick`` every second); it stops with us.

    On Ctrl-C asv gets the signal too (same process group): let it stop, keep
    its output. On SIGTERM (``_terminated``) only we got it: pass it on.
    """
    try:
        while True:
            try:
                return proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                tick()
    except SystemExit:
        proc.terminate()
        raise
    finally:
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt:
                continue


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM: unwind like Ctrl-C (asv stopped, temporary directories removed), exit 128 + 15."""
    raise SystemExit(128 + signum)


def na_explanation() -> str:
    """Why a benchmark shows n/a (asv: skipped), from the suite's own limits."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks import bench_scaling, common, configuration
    except Exception:  # an old checkout: say it in general
        return "the commit or the configuration cannot run that case"
    finally:
        sys.path.remove(str(REPO))
    sequential_only = getattr(bench_scaling, "MAX_TASKS_BUT_SEQUENTIAL", None)
    remote = [c.name for c in configuration.CONFIGURATIONS.values() if not c.in_process]
    caps = [f"{c.name} beyond {c.max_light_tasks:,} light tasks"
            + (f" or chains of {c.max_light_chain:,}" if c.max_light_chain else "")
            for c in configuration.CONFIGURATIONS.values() if c.max_light_tasks]
    text = ("commits before the library (or before a configuration) skip every case; "
            f"{' and '.join(remote)} cannot use in-memory targets (tasks run in other processes); "
            f"budget caps: {', '.join(caps)}, "
            + (f"only sequential beyond {sequential_only:,} light tasks, " if sequential_only else "")
            + f"file targets beyond {bench_scaling.MAX_FILE_TASKS:,} tasks")
    if common.SMOKE:
        text += f"; smoke run: DAGs over {common.SMOKE_MAX_TASKS} tasks"
    return text


def _git_out(*args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    return proc.stdout.strip() if proc.returncode == 0 else None


def publish_branches() -> list[str]:
    """The branches the site orders commits along: asv.conf.json's, and the checked-out one.

    asv leaves a result out of every graph when its commit is on none of the
    configured branches' first-parent lines, and stops when a branch is missing
    (a clone of another branch, a CI checkout): the commit just benchmarked must
    be on the site, so its branch (``HEAD`` when detached) is added, first: asv's
    graph pages draw the first branch unless the reader picks another.
    """
    configured = list(asv_conf().get("branches") or ["main"])
    present = [b for b in configured if _git_out("rev-parse", "--verify", "--quiet", f"{b}^{{commit}}")]
    for branch in configured:
        if branch not in present:
            print(f"bench: branch {branch!r} of asv.conf.json is not in this clone (get it with "
                  f"`git fetch origin {branch}:{branch}`); the site leaves it out", flush=True)
    head = _git_out("rev-parse", "HEAD")
    if head is None:
        return present
    if any(head in (_git_out("rev-list", "--first-parent", b) or "").split() for b in present):
        return present
    current = _git_out("symbolic-ref", "--short", "-q", "HEAD") or "HEAD"
    print(f"bench: the checked-out commit {head[:8]} is on none of asv.conf.json's branches "
          f"({', '.join(configured)}): the site also shows the commits along {current!r}, "
          "and its graphs open on that branch", flush=True)
    return [current, *present]


def publish(found: dict[str, interpreter.Interpreter], args: list[str] = ()) -> int:
    """``asv publish ARGS``, then make the site self-contained and add its overview page."""
    show_quick = SHOW_QUICK in args
    args = [a for a in args if a != SHOW_QUICK]
    given = _parsed("publish", list(args)).get("html_dir")
    site = REPO / given if given else html_dir(args)
    refuse_foreign_dir(site)  # asv publish deletes it first
    branches = publish_branches()
    from _site.results import quick_files

    quick = set() if show_quick else set(quick_files(results_dir()))
    if quick:
        print(f"bench: {len(quick)} result file(s) labelled quick or smoke left out of the site "
              f"(not measurements; {SHOW_QUICK} shows them)", flush=True)
    if any(a.startswith("--config") for a in args) or (branches == asv_conf().get("branches") and not quick):
        rc = asv(["publish", *args], found)
    else:  # asv.conf.json with these branches; asv reads its paths relative to the file
        conf_data = {**asv_conf(), "branches": branches}
        for key in ("repo", "env_dir", "results_dir", "html_dir", "benchmark_dir"):
            if key in conf_data:
                conf_data[key] = str(REPO / conf_data[key])
        with tempfile.TemporaryDirectory(prefix="stardag-publish-") as tmp:
            if quick:  # asv publishes every file of its results_dir: a copy without them
                conf_data["results_dir"] = os.path.join(tmp, "results")
                shutil.copytree(results_dir(), conf_data["results_dir"],
                                ignore=lambda folder, names: [n for n in names if Path(folder, n) in quick])
            conf = Path(tmp) / "asv.conf.json"
            conf.write_text(json.dumps(conf_data, indent=1))
            rc = asv(["publish", "--config", str(conf), *args], found)
    if rc != 0:
        return rc
    import _site

    print("bench: serving the libraries from the site, drawing the overview page", flush=True)
    report = _site.finish_site(site, results_dir(), show_quick=show_quick)
    for line in report.lines:
        print(f"bench: {line}", flush=True)
    for problem in report.problems:
        print(f"bench: warning: {problem}", flush=True)
    print(f"bench: site written to {site} (landing page overview.html; "
          "view: `python tools/bench.py asv preview`)", flush=True)
    return 0


def refuse_foreign_dir(site: Path) -> None:
    """asv publish deletes the directory it writes: refuse one that holds anything but a site."""
    if site.is_symlink() or (site.exists() and not site.is_dir()):
        raise BenchError(f"{site} is not a directory (a symlink or a file); asv publish would "
                         "replace it: give --html-dir a new or empty directory")
    if site.is_dir() and any(site.iterdir()) and not (site / "asv.js").is_file():
        raise BenchError(f"{site} holds files and is not a site asv published; asv publish "
                         "deletes the directory it writes, so nothing is published there: give "
                         "--html-dir a new or empty directory")


def preview(args: list[str]) -> int:
    """Serve the published site on 127.0.0.1 only; ``asv preview`` listens on every interface."""
    parser = argparse.ArgumentParser(prog="bench.py asv preview",
                                     description="Serve the site to this machine only.")
    parser.add_argument("--port", "-p", type=int, default=0, help="port (default 8080, else any)")
    parser.add_argument("--browser", "-b", action="store_true", help="open it in a browser")
    parser.add_argument("--html-dir", "-o", help="the site (default: html_dir of asv.conf.json)")
    parser.add_argument("--config", help="the asv config whose html_dir is served")
    parser.add_argument("--verbose", "-v", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(args)
    if opts.html_dir:
        site = REPO / opts.html_dir
    elif opts.config:
        config = REPO / opts.config
        site = config.parent / asv_conf(config).get("html_dir", "html")
    else:
        site = html_dir()
    if not (site / "index.html").is_file():
        raise BenchError(f"no site in {site}: publish one first (python tools/bench.py)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    ports = [opts.port] if opts.port else [8080, 0]  # 0: any free port
    for port in ports:
        try:
            httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
            break
        except OSError as exc:
            if port == ports[-1]:
                raise BenchError(f"cannot serve on 127.0.0.1:{port}: {exc}") from None
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    print(f"bench: serving {site} at {url} (this machine only; Ctrl-C stops)", flush=True)
    if opts.browser:
        import webbrowser

        webbrowser.open(url)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


def asv_subcommand(args: list[str]) -> int | None:
    """Where in ``asv ARGS`` the command is, after asv's own options (``--config X``, ``-v``)."""
    i = 0
    while i < len(args):
        if len(args[i]) > 3 and "--config".startswith(args[i]):  # asv takes --conf X too
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def ensure_machine(args: list[str] = ()) -> None:
    """Make sure ~/.asv-machine.json describes the machine results are filed under.

    asv would file them under another name when the file holds a single entry
    of another machine (a copied file); bench.py always names the machine.
    """
    importlib.invalidate_caches()  # asv may have been installed by this process
    name = machine_name(args)
    try:
        _entry, created = asv_machine.ensure_entry(name)
    except Exception as exc:  # an unreadable file: say which, do not guess
        raise BenchError(f"cannot read ~/.asv-machine.json ({exc}); fix or remove it") from None
    if created:
        print(f"bench: described this machine as {name!r} in ~/.asv-machine.json", flush=True)


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


def new_results(machine: str, since: float) -> list[Path]:
    """Result files of ``machine`` written since ``since`` (a time.time())."""
    folder = results_dir() / machine
    return sorted(p for p in folder.glob("*.json")
                  if p.name != "machine.json" and p.stat().st_mtime >= since)


SAVE_QUICK = "--save-quick"
SHOW_QUICK = "--show-quick"  # asv publish: the overview shows quick and smoke runs too
QUICK_LABEL = "stardag_bench"  # the entry (asv ignores it) that marks a saved quick or smoke result


def quick_or_smoke(args: list[str]) -> dict[str, bool]:
    """Whether ``asv run ARGS`` (in this environment) measures with one sample or tiny work."""
    return {"quick": _asks_quick(args),
            "smoke": os.environ.get("STARDAG_BENCH_SMOKE", "") not in ("", "0")}


def label_quick(args: list[str], since: float) -> None:
    """Mark the result files an ``asv run ARGS`` saved since ``since`` when they are quick or smoke.

    The overview leaves them out: they are not measurements. (asv drops the entry
    when it later rewrites the file, i.e. when a full run of that commit replaces them.)
    """
    how = quick_or_smoke(args)
    if not any(how.values()) or _parsed_run(args).get("dry_run"):
        return
    folder = results_dir()
    written = [p for p in folder.glob("*/*.json")
               if p.name != "machine.json" and p.stat().st_mtime >= since] if folder.is_dir() else []
    for path in written:
        data = json.loads(path.read_text(encoding="utf-8"))
        data[QUICK_LABEL] = how
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    if written:
        print(f"bench: {len(written)} result file(s) labelled {' and '.join(k for k, v in how.items() if v)}: "
              "the overview page leaves them out", flush=True)


def unsaved_if_quick(args: list[str]) -> list[str]:
    """``args`` with ``--dry-run`` added to a ``--quick`` or smoke run, unless ``--save-quick``.

    One sample per benchmark (``--quick``), or work x0.01 (smoke), would enter
    ``asv-results/`` and the site as if measured properly: the history stays
    clean unless the caller says the results are wanted (a throwaway clone).
    """
    how = quick_or_smoke(args)
    quick, smoke = how["quick"], how["smoke"]
    if SAVE_QUICK in args:
        args = [a for a in args if a != SAVE_QUICK]
        if quick or smoke:
            print(f"bench: {SAVE_QUICK}: these results are saved to {results_dir()}, labelled: asv's "
                  f"graphs show them, the overview only after `asv publish {SHOW_QUICK}`", flush=True)
        return args
    if (quick or smoke) and not _parsed_run(args).get("dry_run"):
        what = "--quick (one sample each)" if quick else "a smoke run ($STARDAG_BENCH_SMOKE)"
        print(f"bench: {what}: results are shown, not saved, so they never enter the history; "
              f"drop --quick to record, or add {SAVE_QUICK} for a throwaway checkout", flush=True)
        args = [*args, "--dry-run"]
    return args


def _parsed(command: str, args: list[str]) -> dict:
    """``asv COMMAND ARGS`` as asv itself reads them (abbreviations such as ``--qu``, ``-qe``
    included); {} when asv is not installed yet or would refuse them anyway."""
    try:
        from asv.commands import make_argparser
    except ImportError:
        return {}
    parser, _subparsers = make_argparser()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parsed, _rest = parser.parse_known_args([command, *args])
    except SystemExit:
        return {}
    return vars(parsed)


def _parsed_run(args: list[str]) -> dict:
    return _parsed("run", args) or {"quick": any(a in ("--quick", "-q") for a in args),
                                    "dry_run": any(a in ("--dry-run", "-n") for a in args)}


def _asks_quick(args: list[str]) -> bool:
    return bool(_parsed_run(args).get("quick")) or any(a in ("--quick", "-q") for a in args)


def run_asv(args: list[str], found: dict[str, interpreter.Interpreter]) -> int:
    """``asv run ARGS`` with a console that talks; then where the results went."""
    args = unsaved_if_quick(args)
    machine = machine_name(args)
    if not any(a == "--machine" or a.startswith("--machine=") for a in args):
        args = ["--machine", machine, *args]  # never the name of another machine's entry
    print(f"bench: machine {machine!r} (asv's description in ~/.asv-machine.json)", flush=True)
    start, wall = time.monotonic(), time.time()
    console = progress.AsvConsole(results_dir(), machine, na_explanation())
    rc = asv(["run", *args], found, console)
    print(f"bench: asv run took {progress.duration(time.monotonic() - start)}", flush=True)
    label_quick(args, wall)
    written = new_results(machine, wall)
    if written:
        print(f"bench: results of machine {machine!r} in {written[0].parent}:", flush=True)
        for path in written:
            print(f"  {path.name}", flush=True)
    elif not any(a in ("--dry-run", "-n") for a in args):
        print(f"bench: no result saved under {results_dir() / machine}", flush=True)
    if rc != 0:
        print(f"bench: asv run exited with {rc}: a benchmark failed or asv refused the "
              "arguments (see above)", flush=True)
    return rc


def run_job(versions: list[str], run_args: list[str], publish_site: bool) -> int:
    """asv run on ``versions`` (already discovered), then optionally asv publish."""
    ensure_asv()
    found = find_pythons(versions)
    print("bench: " + target_root_note(), flush=True)
    ensure_machine(run_args)
    py_args = [f"--python={v}" for v in versions if v in found]
    rc = run_asv([*py_args, *run_args], found)
    if publish_site and publish(found) != 0:
        raise BenchError("asv publish failed")
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
        return run_job([current_version(versions)], [head_range()], publish_site=True)
    if command == "quick":
        # A check that every benchmark runs under every configuration, in seconds:
        # smoke workloads (benchmarks/common.py), each once, nothing saved.
        os.environ["STARDAG_BENCH_SMOKE"] = "1"
        return run_job([current_version(versions)], ["--quick", "--dry-run", head_range(), *rest],
                       publish_site=False)
    if command == "sweep":
        return run_job(versions, [head_range(), *rest], publish_site=True)
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
            ensure_machine(rest)
            return run_asv(rest, found)
        if py:
            ensure_asv()
            ensure_machine(rest)
            return run_asv(rest, {})
        return run_job(versions, rest, publish_site=False)
    if command == "asv":
        at = asv_subcommand(rest)
        if at is not None and rest[at] == "preview":  # `asv --config X preview` too: never asv's
            return preview(rest[:at] + rest[at + 1:])
        ensure_asv()
        found = interpreter.discover(versions)
        if rest[:1] == ["publish"]:
            return publish(found, rest[1:])
        wall = time.time()
        rc = asv(rest, found)
        if rest[:1] in (["run"], ["continuous"]):
            label_quick(rest, wall)
        return rc
    raise BenchError(f"unknown command {command!r}; see `python tools/bench.py --help`")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
