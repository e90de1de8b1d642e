"""End to end: the results store repairs itself, reports truthfully, and shares a remote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib
from nightly_project import (  # noqa: E402
    BASE_N, MACHINE, SLOWDOWN, check_run, env_dir, project,
)

__all__ = ["env_dir", "project"]  # fixtures
BENCH = "bench_tiny.TimeTiny.time_work"


def result_file(project, commit: str) -> Path:
    return next((project.store / MACHINE).glob(f"{commit[:8]}-*.json"))


def test_damaged_store_files_are_restored_from_the_stores_history(project):
    commits = [project.commit("c0"), project.commit("c1")]
    check_run(project.run())
    victims = {
        "truncated": result_file(project, commits[0]),
        "deleted": result_file(project, commits[1]),
        "benchmarks": project.store / "benchmarks.json",
        "machine": project.store / MACHINE / "machine.json",
    }
    good = {name: path.read_bytes() for name, path in victims.items()}
    victims["truncated"].write_bytes(good["truncated"][:100])  # as if cut off by a crash
    victims["deleted"].unlink()
    victims["benchmarks"].write_text("{")
    victims["machine"].write_text('{"version": 1, "machine": 3}')
    (project.store / ".git" / "index.lock").write_text("")  # a git killed mid-write

    out = check_run(project.run(), code=1)  # repaired, and reported
    problems = project.summary()["problems"]
    assert len(problems) == 4, problems
    assert all("restored from the store's commit" in p for p in problems), problems
    assert project.summary()["benchmarked"] == []  # nothing had to be benchmarked again
    for name, path in victims.items():
        assert path.read_bytes() == good[name], name
    assert project.git("status", "--porcelain", cwd=project.store) == ""
    kept = {p.name for p in (project.state / "quarantine").rglob("*.json")}
    assert kept == {victims[n].name for n in ("truncated", "benchmarks", "machine")}
    assert "removed stale git lock" in out

    out = check_run(project.run())  # fixed: the next night has nothing to report
    assert "0 problem(s)" in out


def test_a_lost_result_is_reported_every_night_until_it_is_benchmarked_again(project):
    commits = [project.commit("c0"), project.commit("c1")]
    check_run(project.run())
    lost = result_file(project, commits[0])
    # The store's history holds only damaged copies: nothing to restore from.
    project.git("checkout", "--quiet", "--orphan", "rewritten", cwd=project.store)
    lost.write_text(lost.read_text()[:100])
    (project.store / "benchmarks.json").write_text("[")
    project.git("add", "--all", cwd=project.store)
    project.git("commit", "--quiet", "-m", "history without a good copy", cwd=project.store)
    for branch in project.git("branch", "--format=%(refname:short)", cwd=project.store).split():
        if branch != "rewritten":
            project.git("branch", "--quiet", "-D", branch, cwd=project.store)

    for night in range(2):  # no time to benchmark it again (--max-hours 0): still lost
        out = check_run(project.run("--max-hours", "0"), code=1)
        problems = project.summary()["problems"]
        assert any(f"{MACHINE}/{lost.name} was lost" in p for p in problems), problems
        if night == 0:
            assert sum("no good version is in the store's history" in p for p in problems) == 2
        assert "0 problem(s)" not in out
        # The site is still published: benchmarks.json came back from asv's discovery.
        assert (project.site / "index.html").is_file()
        assert BENCH in json.loads((project.store / "benchmarks.json").read_text())

    out = check_run(project.run())  # benchmarked again: only what could not be restored
    assert [r["commit"] for r in project.summary()["benchmarked"]] == [commits[0]]
    assert "0 problem(s)" in out
    assert project.git("status", "--porcelain", cwd=project.store) == ""


def test_an_ignore_all_gitignore_and_a_merge_left_in_progress(project):
    project.commit("c0")
    check_run(project.run())
    (project.store / ".gitignore").write_text("*\n")  # ignores everything, itself too
    new = project.commit("c1")
    out = check_run(project.run())
    assert f"{new[:8]} python" in out and "recorded and committed" in out
    assert "ignore rules (.gitignore, .git/info/exclude) cover" in out
    tracked = project.git("ls-files", cwd=project.store).split()
    assert str(result_file(project, new).relative_to(project.store)) in tracked

    # A merge with conflicts, left as it stopped: markers in a file of the store.
    machine_json = project.store / MACHINE / "machine.json"
    info = json.loads(machine_json.read_text())
    git = lambda *args: project.git(*args, cwd=project.store)  # noqa: E731
    git("switch", "--quiet", "-c", "other")
    machine_json.write_text(json.dumps(dict(info, note="other"), indent=4))
    git("commit", "--quiet", "-am", "other")
    git("switch", "--quiet", "-")
    machine_json.write_text(json.dumps(dict(info, note="this"), indent=4))
    git("commit", "--quiet", "-am", "this")
    subprocess.run(["git", "merge", "other"], cwd=project.store, capture_output=True)
    assert "<<<<<<<" in machine_json.read_text()

    out = check_run(project.run(), code=1)
    assert "a merge was left in progress; aborted it" in out
    assert git("status", "--porcelain") == ""
    assert json.loads(machine_json.read_text())["note"] == "this"
    markers = subprocess.run(["git", "grep", "-q", "<<<<<<<", "HEAD"], cwd=project.store)
    assert markers.returncode == 1  # none committed
    check_run(project.run())  # the next night is clean


@pytest.mark.parametrize("moment", ["publish", "store commit"])
def test_an_interrupted_report_is_redone_the_next_night(project, moment):
    """Killed while asv publishes, or while the result is committed to the store."""
    project.commit("c0")
    check_run(project.run())
    slow = project.commit(f"{SLOWDOWN}x slower", n=SLOWDOWN * BASE_N)
    hook = project.store / ".git" / "hooks" / "reference-transaction"
    in_commit = project.root / "in-store-commit"
    if moment == "store commit":  # holds the store's commit between its two steps
        hook.write_text(f"#!/bin/sh\n[ \"$1\" = prepared ] && touch {in_commit} && sleep 120\n"
                        "exit 0\n")
        hook.chmod(0o755)
    proc = project.start()
    deadline = time.monotonic() + 120
    while not (in_commit.exists() if moment == "store commit"
               else " publish --no-pull " in _log_of(project, proc.pid)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # no report yet; maybe no store commit either
    proc.communicate()
    hook.unlink(missing_ok=True)
    assert slow in project.stored_results()
    assert slow not in {r["commit"] for r in project.summary()["benchmarked"]}

    out = check_run(project.run("--fail-on-regression"), code=3)
    assert "the report of 1 result(s) was interrupted in an earlier run" in out
    assert project.git("status", "--porcelain", cwd=project.store) == ""
    rows = json.loads((project.site / "nightly-regressions.json").read_text())["regressions"]
    assert [(r["benchmark"], r["commit_after"], r["new"]) for r in rows] == [(BENCH, slow, True)]
    assert "asv compare" in rows[0]["found_by"]
    check_run(project.run("--fail-on-regression"))  # reported once: not new again


def _log_of(project, pid: int) -> str:
    logs = list((project.state / "logs").glob(f"nightly-*-{pid}.log"))
    return logs[0].read_text() if logs else ""


def test_machines_sharing_a_results_remote_push_their_own_branches(project, tmp_path):
    remote = tmp_path / "results.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    first = project.commit("c0")
    states = {}
    for machine in ("box-a", "box-b"):
        states[machine] = tmp_path / f"state-{machine}"
        store = states[machine] / "results"
        store.mkdir(parents=True)
        project.git("init", "--quiet", cwd=store)
        project.git("remote", "add", "origin", str(remote), cwd=store)
        out = check_run(project.run(push=True, machine=machine, state=states[machine]))
        assert f"pushed results store to origin/results/{machine}" in out

    second = project.commit("c1")
    check_run(project.run(push=True, machine="box-a", state=states["box-a"]))
    for machine, commits in (("box-a", {first, second}), ("box-b", {first})):
        files = subprocess.run(["git", "ls-tree", "-r", "--name-only", f"results/{machine}"],
                               cwd=remote, capture_output=True, text=True, check=True).stdout
        dirs = {name.split("/")[0] for name in files.split() if "/" in name}
        assert dirs == {machine}, files
        hashes = {name.split("/")[1][:8] for name in files.split()
                  if name.startswith(machine) and not name.endswith("machine.json")}
        assert hashes == {c[:8] for c in commits}
