"""End to end: the nightly job on a temporary repository with a tiny asv project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asv.results import Results

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib
from nightly_project import BASE_N, MACHINE, PYTHON, ROOT, SLOWDOWN, TinyProject, check_run  # noqa: E402

BENCH = "bench_tiny.TimeTiny.time_work"
BUSY = "another nightly run holds"


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("asv-env")


@pytest.fixture
def project(tmp_path, env_dir):
    return TinyProject(tmp_path, env_dir)


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

    out = check_run(project.run())
    assert_store_complete(project, commits)
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


def test_run_killed_midway_then_a_normal_run_completes(project):
    commits = [project.commit(f"c{i}") for i in range(4)]
    proc = project.start(delay=1.5)
    deadline = time.monotonic() + 120
    # Kill once the first commit is committed: the second is then being benchmarked.
    while not any(MACHINE in s for s in project.store_commits()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the job only; asv dies with it (PDEATHSIG)
    proc.communicate()
    done_before = set(project.stored_results())
    assert 1 <= len(done_before) < len(commits)

    for _attempt in range(40):  # an asv child may outlive the job by a moment
        rerun = project.run()
        if BUSY not in rerun.stderr:
            break
        time.sleep(0.25)
    check_run(rerun)
    assert_store_complete(project, commits)
    redone = {r["commit"] for r in project.summary()["benchmarked"]}
    assert redone == set(commits) - done_before  # finished, nothing benchmarked twice


def test_corrupt_result_and_stale_git_lock_are_repaired(project):
    commits = [project.commit(f"c{i}") for i in range(2)]
    check_run(project.run())
    victim = next((project.store / MACHINE).glob(f"{commits[0][:8]}-*.json"))
    victim.write_text(victim.read_text()[:100])  # as if cut off by a crash
    (project.store / ".git" / "index.lock").write_text("")

    out = check_run(project.run(), code=1)  # reported...
    assert "quarantined" in out and victim.name in out
    quarantined = list((project.state / "quarantine").rglob(victim.name))
    assert len(quarantined) == 1
    assert_store_complete(project, commits)  # ...and benchmarked again
    assert [r["commit"] for r in project.summary()["benchmarked"]] == [commits[0]]
    check_run(project.run())


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


def test_regression_report_flags_the_slowed_commit_and_nothing_else(project):
    # Same code (empty commits) benchmarked in three separate runs: identical
    # code measured at different times must not look like a regression.
    same = [project.commit("c0"), project.commit("c1", n=BASE_N)]
    check_run(project.run())
    for i in (2, 3):
        same.append(project.commit(f"c{i}", n=BASE_N))
        check_run(project.run("--fail-on-regression"))
        assert "No regressions." in (project.site / "regressions.txt").read_text()
        assert json.loads((project.site / "regressions.json").read_text()) == {"regressions": []}

    slow = project.commit(f"{SLOWDOWN}x slower", n=SLOWDOWN * BASE_N)
    after = project.commit("after, same speed", n=SLOWDOWN * BASE_N)
    out = check_run(project.run("--fail-on-regression"), code=3)
    report = (project.site / "regressions.txt").read_text()
    rows = json.loads((project.site / "nightly-regressions.json").read_text())["regressions"]
    flagged = [(r["benchmark"], r["commit_after"], r["new"]) for r in rows]
    assert flagged == [(BENCH, slow, True)], report
    assert SLOWDOWN / 3 < rows[0]["ratio"] < SLOWDOWN * 3, rows
    assert f"..{slow[:8]}" in report and "slower" in report
    assert "New regressions (1)" in out  # also in the log / stderr
    assert after[:8] not in report

    # Next night, nothing new: nothing new to alarm about.
    check_run(project.run("--fail-on-regression"))


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


def test_lock_holder_message_and_status_without_running_asv(project):
    """A held lock makes the job exit 0 at once, before touching anything."""
    project.commit("c0")
    project.state.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(project.state / 'nightly.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid 4242 since then')\n"
         "print('held', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        out = check_run(project.run())
        assert time.monotonic() - started < 10
        assert BUSY in out and "pid 4242" in out
        assert not (project.state / "logs").exists()
    finally:
        holder.kill()
        holder.wait()
    # SIGKILLed holder: the kernel dropped the flock, nothing stale remains.
    out = check_run(project.run())
    assert BUSY not in out


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
