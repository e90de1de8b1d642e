"""The nightly job's parts that need no asv run: deploy switch, logs, report parsing, units."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from _nightly import checkout, scratch, site  # noqa: E402
from _nightly.runlog import prune_logs  # noqa: E402
from _nightly.lock import LockBusy, RunLock  # noqa: E402
from _nightly.regression import CONFIRMED, format_report, read_regressions  # noqa: E402
from nightly import _cpus  # noqa: E402


def test_cpu_list_parsing():
    assert _cpus("1") == {1}
    assert _cpus("0,2-3") == {0, 2, 3}
    with pytest.raises(argparse.ArgumentTypeError, match="bad cpu list 'x'"):
        _cpus("x")


def test_lock_is_exclusive_and_released_on_close(tmp_path):
    path = str(tmp_path / "nightly.lock")
    with RunLock(path, "run-1"):
        with pytest.raises(LockBusy, match=rf"holds .*nightly.lock.*pid {os.getpid()}, run run-1"):
            with RunLock(path, "run-2"):
                pass
    with RunLock(path, "run-3") as lock:  # released: a new holder gets it, and learns the last
        assert lock.previous.stamp == "run-1" and lock.previous.pid == os.getpid()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_run_that_just_took_the_lock_is_busy_not_a_stranger(tmp_path):
    """Two runs started together: the loser may read the file before the winner names itself."""
    import fcntl
    import threading

    from _nightly.lock import Holder, process_start

    path = str(tmp_path / "nightly.lock")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    Path(path).write_text(f"pid {gone} start 1 run run-0 since x\n")  # the last run, gone
    os.chmod(path, 0o600)
    winner = os.open(path, os.O_RDWR)
    fcntl.flock(winner, fcntl.LOCK_EX | fcntl.LOCK_NB)  # has the lock, has not written yet
    me = Holder(os.getpid(), process_start(os.getpid()), "run-1", "now").line().encode()
    namer = threading.Timer(0.3, lambda: (os.pwrite(winner, me, 0), os.ftruncate(winner, len(me))))
    namer.start()
    try:
        with pytest.raises(LockBusy, match="run run-1"):
            with RunLock(path, "run-2"):
                pass
    finally:
        namer.join()
        os.close(winner)


def _version(deploy: Path, stamp: str, text: str) -> str:
    path = site.new_version_dir(str(deploy), stamp)
    os.makedirs(path)
    Path(path, "index.html").write_text(text)
    return path


def test_deploy_dir_switches_by_symlink_and_keeps_one_previous(tmp_path):
    deploy = tmp_path / "bench"
    site.claim(str(deploy))
    site.switch(str(deploy), _version(deploy, "20250101T000000Z-1", "one"))
    current = deploy / "current"
    assert current.is_symlink() and not os.path.isabs(os.readlink(current))
    assert (current / "index.html").read_text() == "one"

    _version(deploy, "20250102T000000Z-2", "half written")  # a publish that never switched
    for i, stamp in enumerate(("20250103T000000Z-3", "20250104T000000Z-4")):
        site.switch(str(deploy), _version(deploy, stamp, str(i)))
    assert (current / "index.html").read_text() == "1"
    assert sorted(p.name for p in (deploy / "versions").iterdir()) == [
        "20250103T000000Z-3", "20250104T000000Z-4"]  # live + previous
    assert not (deploy / ".current.nightly-tmp").exists()
    assert stat.S_IMODE((current / "index.html").stat().st_mode) == 0o644


def _operators_dir(tmp_path: Path) -> tuple[Path, dict]:
    """A directory of someone else's files, and how it looks (content, modes)."""
    theirs = tmp_path / "operator"
    (theirs / "project" / "src").mkdir(parents=True)
    (theirs / "project" / "src" / "main.py").write_text("the operator's work")
    (theirs / "20250101T000000Z-1").mkdir()  # named like a version of the job's, even
    (theirs / "20250101T000000Z-1" / "notes.txt").write_text("kept")
    os.chmod(theirs, 0o700)
    return theirs, _look(theirs)


def _look(top: Path) -> dict:
    return {str(p.relative_to(top)): (p.read_text() if p.is_file() else "dir",
                                      stat.S_IMODE(p.lstat().st_mode))
            for p in [top, *top.rglob("*")]}


def test_links_planted_in_the_deploy_dir_are_never_followed(tmp_path):
    theirs, before = _operators_dir(tmp_path)
    deploy = tmp_path / "bench"
    site.claim(str(deploy))
    (deploy / "versions").symlink_to(theirs)  # "versions on another disk"
    with pytest.raises(site.DeployError, match="versions.* symlink"):
        site.claim(str(deploy))
    with pytest.raises(site.DeployError, match="versions.* symlink"):
        site.new_version_dir(str(deploy), "20250102T000000Z-2")
    assert _look(theirs) == before  # not chmodded to 0755, nothing written or pruned

    (deploy / "versions").unlink()
    (deploy / "current").symlink_to(theirs)  # a live link to someone's directory
    site.switch(str(deploy), _version(deploy, "20250102T000000Z-2", "site"))
    (deploy / "versions" / "20250101T000000Z-9").symlink_to(theirs)  # named like an old version
    for stamp in ("20250103T000000Z-3", "20250104T000000Z-4"):
        site.switch(str(deploy), _version(deploy, stamp, stamp))
    assert (deploy / "current" / "index.html").read_text() == "20250104T000000Z-4"
    assert _look(theirs) == before  # links replaced or left, their target never touched
    assert (deploy / "versions" / "20250101T000000Z-9").is_symlink()


def test_links_planted_in_the_state_dir_are_removed_never_followed(tmp_path):
    theirs, before = _operators_dir(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    for name in ("code", "staging", "confirm"):
        (state / name).symlink_to(theirs)  # say, to put scratch on another disk
    scratch.fresh_dir(str(state / "staging"))
    scratch.remove(str(state / "confirm"))
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("a")
    subprocess.run(["git", "-C", str(repo), "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "c0"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    exported = checkout.export(str(repo), head, str(state / "code"))  # prunes older exports
    assert Path(exported, "a.txt").read_text() == "a"
    assert _look(theirs) == before
    assert not (state / "code").is_symlink() and not (state / "staging").is_symlink()
    assert not (state / "confirm").exists()


def test_a_run_cleans_its_own_temporary_directory_and_a_killed_runs(tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(scratch.tempfile, "tempdir", None)
    _base, killed = scratch.private_tmp("20250101T000000Z-12")
    Path(killed, "setup-cache").mkdir()
    monkeypatch.setenv("TMPDIR", str(base))  # the next run: a new process
    scratch.tempfile.tempdir = None
    _base, mine = scratch.private_tmp("20250102T000000Z-123")
    (base / "20250101T000000Z-12-theirs").mkdir()  # not named as the job names its own
    (base / "stardag-nightly-20250101T000000Z-12-link").symlink_to(tmp_path)
    assert os.environ["TMPDIR"] == mine and scratch.tempfile.gettempdir() == mine
    assert scratch.remove_tmp(str(base), "20250101T000000Z-12") == 1
    assert scratch.remove_tmp(str(base), "20250102T000000Z-123") == 1
    assert sorted(p.name for p in base.iterdir()) == [
        "20250101T000000Z-12-theirs", "stardag-nightly-20250101T000000Z-12-link"]
    assert tmp_path.is_dir()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def test_a_fast_forward_cut_short_by_a_kill_is_finished_not_stuck_every_night(tmp_path):
    """git refuses to work while its lock files are there: the job would never update again."""
    upstream, clone = tmp_path / "upstream", tmp_path / "clone"
    upstream.mkdir()
    _git(upstream, "init", "-q", "-b", "main")
    (upstream / "a.txt").write_text("old")
    _git(upstream, "add", "a.txt")
    _git(upstream, "commit", "-qm", "c0")
    _git(tmp_path, "clone", "-q", str(upstream), str(clone))
    (upstream / "a.txt").write_text("new")
    (upstream / "b.txt").write_text("added")
    _git(upstream, "add", "a.txt", "b.txt")
    _git(upstream, "commit", "-qm", "c1")
    _git(clone, "fetch", "-q", "origin")
    # Killed in the middle of `git merge --ff-only`: files updated, the branch not yet.
    (clone / "a.txt").write_text("new")
    (clone / "b.txt").write_text("added")
    for lock in (".git/index.lock", ".git/HEAD.lock", ".git/refs/heads/main.lock"):
        (clone / lock).write_text("")
    with pytest.raises(checkout.GitError, match="lock"):
        checkout.update(str(clone), "main", "origin")

    notes = checkout.recover(str(clone), "main", "origin")
    assert sum("removed" in n for n in notes) == 3 and "finished the fast-forward" in notes[-1]
    assert _git(clone, "rev-parse", "main") == _git(upstream, "rev-parse", "main")
    assert _git(clone, "status", "--porcelain") == ""
    assert checkout.recover(str(clone), "main", "origin") == []  # the next night: nothing to do

    # A change that is not upstream's version of the file is someone's: kept, and refused.
    (clone / "a.txt").write_text("the operator's edit")
    (clone / ".git" / "index.lock").write_text("")
    notes = checkout.recover(str(clone), "main", "origin")
    assert len(notes) == 1 and "index.lock" in notes[0]
    assert (clone / "a.txt").read_text() == "the operator's edit"
    with pytest.raises(checkout.CheckoutError, match="local changes"):
        checkout.verify(str(clone), "main", "origin", fetch=True)


def test_logs_are_pruned_to_the_newest(tmp_path):
    for i in range(5):
        p = tmp_path / f"nightly-{i}.log"
        p.write_text(str(i))
        os.utime(p, (1000 + i, 1000 + i))
    (tmp_path / "other.txt").write_text("not a log")
    prune_logs(str(tmp_path), 2, keep=str(tmp_path / "nightly-4.log"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nightly-3.log", "nightly-4.log", "other.txt"]


_GRAPH = "graphs/branch-main/machine-m1/python-3.11/bench.T.time_x.json"


def _published(site: Path, n_commits: int, regressions: list) -> dict[int, str]:
    """A site's index.json (commits 1..n) and regressions.json as asv publish writes them; the hashes."""
    h = {i: f"{i:x}" * 40 for i in range(1, n_commits + 1)}
    (site / "index.json").write_text(json.dumps({
        "revision_to_hash": {str(i): h[i] for i in h},
        "benchmarks": {"bench.T.time_x": {"unit": "seconds"}},
    }))
    (site / "regressions.json").write_text(json.dumps({"regressions": regressions}))
    return h


def test_report_reads_asv_regressions_with_commit_hashes(tmp_path):
    graph = _GRAPH
    h = _published(tmp_path, 5, [
        ["bench.T.time_x(10)", graph, {}, 0, 3.0, 1.0, [[2, 4, 1.0, 3.0]]],
        ["bench.T.time_x(20)", graph, {}, 1, 2.0, 1.0, [[None, 5, 1.0, 2.0]]],
        ["bench.T.track_y", graph, {}, None, 20.0, -5.0, [[1, 3, -5.0, 20.0]]],
    ])
    rows = read_regressions(str(tmp_path), new_commits={h[5]})
    rows.sort(key=lambda r: r.benchmark)
    assert [(r.benchmark, r.commit_before, r.commit_after, r.new) for r in rows] == [
        ("bench.T.time_x(10)", h[2], h[4], False),
        ("bench.T.time_x(20)", None, h[5], True),
        ("bench.T.track_y", h[1], h[3], False),
    ]
    assert rows[0].graph == {"branch": "main", "machine": "m1", "python": "3.11"}
    # Reported once the interleaved measurement confirms them (confirm.py).
    text = format_report([replace(r, verdict=CONFIRMED) for r in rows], "header")
    assert "bench.T.time_x(10) [machine=m1, python=3.11, branch=main]: 3.00x slower" in text
    assert "(1.00s -> 3.00s)" in text
    assert rows[2].ratio is None
    assert "track_y [machine=m1, python=3.11, branch=main]: up by 25 (-5 -> 20)" in text
    assert f"in commits {h[2][:8]}..{h[4][:8]}" in text and f"in commit {h[5][:8]}" in text
    assert text.index("New regressions (1)") < text.index("Still open from earlier runs (2)")


def test_a_step_is_reported_with_its_commits_value_not_asvs_best_value_after(tmp_path):
    """asv's jump holds the best value after the step; the report gives the first slow commit's own."""
    h = _published(tmp_path, 4, [["bench.T.time_x(10)", _GRAPH, {}, 0, 2.0, 1.0, [[None, 3, 1.0, 2.0]]]])
    (tmp_path / _GRAPH).parent.mkdir(parents=True)
    (tmp_path / _GRAPH).write_text(json.dumps([[1, [1.0, 5.0]], [2, [1.0, 5.0]], [3, [3.0, 5.0]],
                                               [4, [2.0, None]]]))
    (row,) = read_regressions(str(tmp_path), new_commits={h[3]})
    assert (row.value_before, row.value_after, row.ratio) == (1.0, 3.0, 3.0)
    assert "3.00x slower" in format_report([replace(row, verdict=CONFIRMED)], "header")


def _units_for_here(tmp_path: Path) -> Path:
    """The shipped units with their example paths and user replaced by real ones."""
    for name in ("stardag-nightly.service", "stardag-nightly.timer"):
        text = (ROOT / "deploy" / name).read_text()
        text = text.replace("/var/lib/stardag-nightly/stardag", str(ROOT))
        text = text.replace("User=bench", "User=root").replace("Group=bench", "Group=root")
        text = text.replace("/etc/stardag-nightly.env", str(tmp_path / "nightly.env"))
        (tmp_path / name).write_text(text)
    (tmp_path / "nightly.env").write_text((ROOT / "deploy" / "nightly.env.example").read_text())
    return tmp_path / "stardag-nightly.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path):
    """The shipped units are valid once their example paths and user exist."""
    service = _units_for_here(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(service),
         str(tmp_path / "stardag-nightly.timer")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stardag-nightly" not in proc.stderr, proc.stderr  # no warnings about our units


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_unit_is_sandboxed():
    """``systemd-analyze security``: exposure at most 4.0 (the unit before the sandbox: 9.2)."""
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager",
         str(ROOT / "deploy" / "stardag-nightly.service")],
        capture_output=True, text=True,
    )
    match = re.search(r"Overall exposure level for stardag-nightly.service: (\d+\.\d)",
                      proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match[1]) <= 4.0, proc.stdout
    text = (ROOT / "deploy" / "stardag-nightly.service").read_text()
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                    "PrivateTmp=yes", "UMask=0077", "ReadWritePaths=/var/www/stardag-bench"):
        assert setting in text.splitlines(), setting


def test_crontab_line_runs_the_wrapper_with_an_env_file():
    line = next(x for x in (ROOT / "deploy" / "crontab").read_text().splitlines()
                if x and not x.startswith("#"))
    fields = line.split()
    assert len(fields) >= 7 and fields[5].endswith("deploy/run-nightly.sh")
    assert os.access(ROOT / "deploy" / "run-nightly.sh", os.X_OK)
