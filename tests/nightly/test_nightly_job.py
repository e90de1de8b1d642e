"""End to end: the nightly job on a temporary repository with a tiny asv project."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asv.results import Results

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib
from nightly_project import (  # noqa: E402
    MACHINE, PYTHON, ROOT, TinyProject, check_run, env_dir, log_of_last_run,
    project, published_text,
)

sys.path.insert(0, str(ROOT / "tools"))
from _nightly import reaper  # noqa: E402

BENCH = "bench_tiny.TimeTiny.time_work"
BUSY = "another nightly run holds"
__all__ = ["env_dir", "project"]  # fixtures


def result_value(project: TinyProject, commit: str) -> float | None:
    path = next((project.store / MACHINE).glob(f"{commit[:8]}-*.json"))
    return Results.load(str(path), machine_name=MACHINE).get_result_value(BENCH, [])[0]


def assert_store_complete(project: TinyProject, commits: list[str]) -> None:
    """Every commit has one loadable, successful result; nothing is uncommitted."""
    results = project.stored_results()
    assert set(results) == set(commits)
    for commit in commits:
        value = result_value(project, commit)
        assert value is not None and value > 0, (commit, value)
    status = project.git("status", "--porcelain", cwd=project.store)
    assert status == "", status


def test_first_run_all_commits_then_nothing_then_the_new_commit_alone(project):
    commits = [project.commit(f"c{i}") for i in range(3)]
    index = project.repo / ".git" / "index"
    index_before = (index.read_bytes(), index.stat().st_mtime_ns)

    out = check_run(project.run())
    assert_store_complete(project, commits)
    # The checkout is read, not written: nothing to fetch, so its files and index are as they were.
    assert (index.read_bytes(), index.stat().st_mtime_ns) == index_before
    # Every result says how it was measured, under the declared machine name and no other.
    for result in project.stored_results().values():
        label = result["stardag_nightly"]
        assert label["machine"] == MACHINE and label["quick"] is False
        assert f'"{socket.gethostname()}"' not in json.dumps(label)
    assert sorted(r["commit"] for r in project.summary()["benchmarked"]) == sorted(commits)
    assert (project.site / "index.html").exists() and project.site.is_symlink()
    assert (project.site / "regressions.json").exists()
    assert (project.site / "regressions.xml").exists()
    assert "No regressions." in (project.site / "regressions.txt").read_text()
    assert "machine load (1-min average) around the benchmarks" in (
        project.site / "regressions.txt").read_text()
    assert len(project.summary()["load_1min"]) == 2
    logs = list((project.state / "logs").glob("nightly-*.log"))
    assert len(logs) == 1 and "recorded and committed" in logs[0].read_text()
    n_store_commits = len(project.store_commits())
    # Private: state, logs and lock are this user's only; the site is for everyone.
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((project.state / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((project.state / "nightly.lock").stat().st_mode) == 0o600
    assert stat.S_IMODE((project.site / "index.html").stat().st_mode) == 0o644
    assert stat.S_IMODE(project.site.resolve().stat().st_mode) == 0o755
    # Published files name no local path: not the state dir, the checkout, the home.
    for name, text in published_text(project.site).items():
        assert str(project.root) not in text, name

    out = check_run(project.run())
    assert "nothing new to benchmark" in out
    assert len(project.store_commits()) == n_store_commits
    assert project.summary()["benchmarked"] == []

    new = project.commit("c3")
    check_run(project.run())
    assert [r["commit"] for r in project.summary()["benchmarked"]] == [new]
    assert_store_complete(project, commits + [new])
    assert len(list((project.state / "logs").glob("nightly-*.log"))) == 3


def test_backlog_is_bounded_to_the_newest_commits(project):
    commits = [project.commit(f"c{i}") for i in range(5)]
    out = check_run(project.run("--max-commits", "2"))
    assert "2 newest commit(s) considered" in out
    assert set(project.stored_results()) == set(commits[-2:])

    new = project.commit("c5")
    out = check_run(project.run("--max-commits", "2", "--max-hours", "0"))
    assert "time budget of 0 h used up: 1 commit(s) left for the next run" in out
    assert new not in project.stored_results()
    check_run(project.run("--max-commits", "2"))
    assert set(project.stored_results()) == set(commits[-2:] + [new])


def test_two_runs_started_together_one_runs_one_exits_0(project):
    commits = [project.commit(f"c{i}") for i in range(2)]
    first = project.start(delay=1.5)
    second = project.start(delay=1.5)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    busy = [BUSY in err for _out, err in outs]
    assert sorted(busy) == [False, True], outs
    assert_store_complete(project, commits)


def _leftovers(where: Path, kind: str) -> list[int]:
    return [int(p.name.split("-")[1]) for p in where.glob(f"{kind}-*")]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_until(condition, seconds: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc is None or proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _stamp(proc: subprocess.Popen, project: TinyProject) -> str:
    """The run stamp of the job ``proc``: its log is named after it."""
    log = next((project.state / "logs").glob(f"nightly-*-{proc.pid}.log"))
    return log.name[len("nightly-"):-len(".log")]


def test_run_killed_midway_leaves_nothing_running_then_a_normal_run_completes(project, tmp_path):
    """SIGKILL of the job: asv, the benchmarks' processes, the suite's Dask cluster all go.

    So do their temporary files (asv's setup_cache directory, the cluster's files, Dask's
    scratch space): nothing of the killed run stays in $TMPDIR after the next run.
    """
    commits = [project.commit(f"c{i}") for i in range(3)]
    spawned = tmp_path / "spawned"
    spawned.mkdir()
    tmp = tmp_path / "tmp"  # the operator's $TMPDIR (under cron: /tmp, shared, never cleaned)
    tmp.mkdir()
    proc = project.start(NIGHTLY_TEST_SPAWN=str(spawned), NIGHTLY_TEST_SPAWN_AFTER="1",
                         NIGHTLY_TEST_DASK=str(ROOT / "benchmarks" / "dask_cluster.py"),
                         TMPDIR=str(tmp))
    # Kill once the first commit is committed and the second's processes run.
    _wait_until(lambda: _leftovers(spawned, "dask"), 180, proc)
    assert any(MACHINE in s for s in project.store_commits())
    stamp = _stamp(proc, project)
    assert reaper.find(stamp)  # asv and its processes carry the run's stamp
    semaphores = {name for pid in reaper.find(stamp) for name in _named_semaphores(pid)}
    assert semaphores  # the cluster's workers (spawned) share multiprocessing locks by name
    os.kill(proc.pid, signal.SIGKILL)  # the job only
    proc.communicate()
    started = _leftovers(spawned, "sleeper") + _leftovers(spawned, "dask")
    _wait_until(lambda: not any(_running(pid) for pid in started) and not reaper.find(stamp), 20)
    assert not [name for name in semaphores if Path(name).exists()]  # none left in /dev/shm
    done_before = set(project.stored_results())
    assert 1 <= len(done_before) < len(commits)
    left = [p for p in tmp.rglob("*") if p.name in ("dask-scratch-space", "dask-cluster")]
    assert left  # the killed run's temporary files, which it had no chance to remove

    out = check_run(project.run(TMPDIR=str(tmp)))  # at once: no leftover holds the lock
    assert f"removed the temporary files of run {stamp}" in out
    assert sorted(tmp.iterdir()) == []
    assert_store_complete(project, commits)
    redone = {r["commit"] for r in project.summary()["benchmarked"]}
    assert redone == set(commits) - done_before  # finished, nothing benchmarked twice


def test_leftovers_of_a_run_whose_watchdog_died_too_are_stopped_by_the_next(project, tmp_path):
    project.commit("c0")
    spawned = tmp_path / "spawned"
    spawned.mkdir()
    proc = project.start(NIGHTLY_TEST_SPAWN=str(spawned))
    _wait_until(lambda: _leftovers(spawned, "sleeper"), 120, proc)
    stamp = _stamp(proc, project)
    watchdogs = [p for p in map(int, filter(str.isdigit, os.listdir("/proc")))
                 if _cmdline(p)[-2:] == [str(ROOT / "tools" / "_nightly" / "reaper.py"), stamp]]
    assert len(watchdogs) == 1
    os.kill(watchdogs[0], signal.SIGKILL)  # as when the whole process group is killed
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    [sleeper] = _leftovers(spawned, "sleeper")
    time.sleep(0.5)
    assert _running(sleeper)  # nothing stopped it...

    out = check_run(project.run())  # ...until the next run started
    assert re.search(rf"stopped \d+ process\(es\) still running from run {stamp}", out), out
    assert not _running(sleeper)
    assert not reaper.find(stamp)


def _named_semaphores(pid: int) -> set[str]:
    """The /dev/shm semaphores (multiprocessing's ``sem.mp-*``) process ``pid`` has mapped."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return set(re.findall(r"(/dev/shm/sem\.mp-\S+)", f.read()))
    except OSError:
        return set()


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def test_broken_commits_are_reported_without_stopping_or_losing_others(project):
    good = [project.commit("c0"), project.commit("c1")]
    check_run(project.run())
    kept = {c: (project.store / MACHINE).glob(f"{c[:8]}-*.json") for c in good}
    kept = {c: next(paths).read_bytes() for c, paths in kept.items()}

    raises = project.commit("benchmark raises", raises=True)
    no_build = project.commit("does not build", n=None)
    fixed = project.commit("fixed")
    out = check_run(project.run(), code=1)
    assert f"{raises[:8]} python" in out and f"{no_build[:8]} python" in out
    assert result_value(project, raises) is None
    assert result_value(project, no_build) is None
    assert result_value(project, fixed) > 0
    for commit, data in kept.items():  # results recorded earlier are untouched
        assert next((project.store / MACHINE).glob(f"{commit[:8]}-*.json")).read_bytes() == data
    problems = project.summary()["problems"]
    assert len(problems) == 2, problems
    # Failures are recorded results: the next night does not retry them.
    out = check_run(project.run())
    assert "nothing new to benchmark" in out


def test_fetches_from_origin_and_publishes_to_gh_pages(project, tmp_path):
    project.commit("c0")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(project.repo), str(origin)],
                   check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    nightly = TinyProject.__new__(TinyProject)
    nightly.__dict__.update(project.__dict__, repo=clone)

    pushed = project.commit("c1")  # lands on origin after the clone was made
    project.git("push", "--quiet", str(origin), "main")
    out = check_run(nightly.run("--gh-pages"))
    assert "fast-forwarded" in out
    assert pushed in nightly.stored_results()
    assert nightly.git("rev-parse", "HEAD").strip() == pushed
    files = nightly.git("ls-tree", "-r", "--name-only", "gh-pages").split()
    for name in ("index.html", "regressions.json", "regressions.xml", "regressions.txt",
                 ".nojekyll"):
        assert name in files
    assert nightly.git("status", "--porcelain") == ""  # working tree untouched

    out = check_run(nightly.run("--gh-pages", push=True))  # origin gets the branch
    assert "pushed to origin/gh-pages" in out
    assert nightly.git("rev-parse", "gh-pages").strip() == subprocess.run(
        ["git", "rev-parse", "gh-pages"], cwd=origin, capture_output=True, text=True,
        check=True).stdout.strip()


def test_a_lock_held_by_something_else_is_an_error_naming_it(project):
    """A busy lock exits 0 only for a live nightly run; anything else is named, exit 2."""
    project.commit("c0")
    project.state.mkdir(mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(project.state / 'nightly.lock')!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid 4242 start 1 run old since then')\n"
         "print('held', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        out = check_run(project.run(), code=2)
        assert time.monotonic() - started < 10
        assert "not a live nightly run" in out and f"pid {holder.pid}" in out, out
        assert not (project.state / "logs").exists()
    finally:
        holder.kill()
        holder.wait()
    # SIGKILLed holder: the kernel dropped the flock, nothing stale remains.
    out = check_run(project.run())
    assert BUSY not in out


def test_the_lock_cannot_be_opened_by_another_user(project):
    project.commit("c0")
    check_run(project.run())
    lock = project.state / "nightly.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700
    if os.geteuid() == 0:  # root can be someone else: try as nobody
        # Even with the state directory opened up by hand (and its parents),
        # the lock file itself keeps another user out.
        opened = [p for p in (project.state, *project.state.parents)
                  if not stat.S_IMODE(p.stat().st_mode) & 0o001]
        modes = {p: p.stat().st_mode for p in opened}
        try:
            for p in opened:
                p.chmod(stat.S_IMODE(modes[p]) | 0o005)
            proc = subprocess.run(["/bin/sh", "-c", f": < '{lock}' && : > '{lock}'"],
                                  preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)),
                                  capture_output=True, text=True)
        finally:
            for p in opened:
                p.chmod(stat.S_IMODE(modes[p]))
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, proc.stderr
    project.state.chmod(0o755)  # a careless hand: the next run closes it again
    out = check_run(project.run())
    assert "permissions 755 tightened to 700" in out
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700


def test_cron_wrapper_with_env_file_is_silent_when_all_is_well(project, tmp_path):
    commit = project.commit("c0")
    env_file = tmp_path / "nightly.env"
    env_file.write_text(
        f'NIGHTLY_PYTHON="{sys.executable}"\n'
        f'NIGHTLY_REPO="{project.repo}"\n'
        f'NIGHTLY_JOB="{ROOT / "tools" / "nightly.py"}"\n'
        f'NIGHTLY_ARGS="--machine {MACHINE} --pythons {PYTHON} --no-push --quiet"\n'
        f'XDG_STATE_HOME="{tmp_path / "xdg"}"\n'
    )
    proc = subprocess.run([str(ROOT / "deploy" / "run-nightly.sh"), str(env_file)],
                          env=project.env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")  # cron mails nothing
    project.state = tmp_path / "xdg" / "stardag-nightly"  # the default state dir
    assert set(project.stored_results()) == {commit}
    assert (project.site / "index.html").exists()


def test_a_missing_python_is_reported_and_the_others_run(project):
    commit = project.commit("c0")
    args = project.args()
    args[args.index("--pythons") + 1] = f"{PYTHON},3.99"
    proc = subprocess.run(args, env=project.env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)
    out = check_run(proc, code=1)
    assert "python 3.99 not found" in out and "python3.99: MISSING" in out
    assert set(project.stored_results()) == {commit}
    assert (project.site / "index.html").exists()
