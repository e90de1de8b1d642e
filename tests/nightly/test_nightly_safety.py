"""End to end: the job writes only what it owns and benchmarks only main as committed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # also under --import-mode=importlib
from nightly_project import MACHINE, TinyProject, check_run, env_dir, project  # noqa: E402

__all__ = ["env_dir", "project"]  # fixtures


def snapshot(top: Path) -> dict[str, str]:
    """Every entry under ``top``: files by content, links by target, directories."""
    found = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(top))
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = path.read_text()
    return found


def test_a_deploy_dir_the_job_does_not_own_is_refused_and_left_untouched(project, tmp_path):
    """A web root given by mistake: exit 2 before any work, nothing in or beside it changed."""
    project.commit("c0")
    www = tmp_path / "www"
    webroot = www / "html"
    (webroot / "sub").mkdir(parents=True)
    (webroot / "index.html").write_text("the operator's own site")
    (webroot / "sub" / "page.html").write_text("a page")
    (www / "link").symlink_to(webroot)
    before = snapshot(www)

    out = check_run(project.run("--deploy-dir", str(webroot)), code=2)
    assert "is not empty and was not created by the nightly job" in out
    out = check_run(project.run("--deploy-dir", str(www / "link")), code=2)
    assert "is a symlink" in out
    out = check_run(project.run("--deploy-dir", str(webroot / "index.html")), code=2)
    assert "is not a directory" in out
    assert snapshot(www) == before
    assert project.stored_results() == {}  # refused before benchmarking anything


def test_an_empty_deploy_dir_is_adopted_and_only_the_jobs_own_versions_are_pruned(project,
                                                                                   tmp_path):
    project.commit("c0")
    deploy = tmp_path / "www" / "bench"
    deploy.mkdir(parents=True)
    check_run(project.run("--deploy-dir", str(deploy)))
    assert (deploy / "current" / "index.html").is_file()
    assert (deploy / ".stardag-nightly-site").is_file()
    assert os.readlink(deploy / "current").startswith("versions/")  # relative: movable

    (deploy / "notes.txt").write_text("the operator's")  # files the job did not make
    (deploy / "versions" / "keep-me").mkdir()
    (deploy / "versions" / "keep-me" / "old.html").write_text("kept")
    for _night in range(2):
        check_run(project.run("--deploy-dir", str(deploy)))
    assert (deploy / "notes.txt").read_text() == "the operator's"
    assert (deploy / "versions" / "keep-me" / "old.html").read_text() == "kept"
    versions = sorted(p.name for p in (deploy / "versions").iterdir() if p.name != "keep-me")
    assert len(versions) == 2  # the live one and the previous one, for rollback
    assert os.readlink(deploy / "current") == f"versions/{versions[-1]}"
    assert json.loads((deploy / "current" / "nightly.json").read_text())["machine"] == MACHINE


def test_only_main_as_committed_is_benchmarked(project):
    project.commit("c0")
    suite = project.repo / "benchmarks"

    project.git("switch", "--quiet", "-c", "feature")
    out = check_run(project.run(), code=2)
    assert "is on 'feature'" in out and "git -C" in out and "switch main" in out
    project.git("switch", "--quiet", "main")

    (suite / "bench_tiny.py").write_text((suite / "bench_tiny.py").read_text() + "# edited\n")
    out = check_run(project.run(), code=2)
    assert "has local changes or untracked files" in out and "bench_tiny.py" in out
    project.git("checkout", "--", "benchmarks/bench_tiny.py")

    (suite / "bench_extra.py").write_text("def time_extra():\n    pass\n")
    out = check_run(project.run(), code=2)
    assert "?? benchmarks/bench_extra.py" in out
    (suite / "bench_extra.py").unlink()
    assert project.stored_results() == {} and not project.site.exists()

    # Ignored files are not the job's business, and they never reach asv: the
    # suite comes from main's committed tree, not from the working tree.
    (project.repo / ".gitignore").write_text(".asv/\nbenchmarks/local_*.py\n")
    commit = project.commit("ignore local benchmarks")
    (suite / "local_bench.py").write_text("def time_local():\n    pass\n")
    out = check_run(project.run())
    assert f"suite and asv config: main as committed at {commit[:8]}" in out
    benchmarks = json.loads((project.store / "benchmarks.json").read_text())
    assert "bench_tiny.TimeTiny.time_work" in benchmarks
    assert not any("local" in name for name in benchmarks)
    assert not any("local" in name for r in project.stored_results().values()
                   for name in r["result_columns"] + list(r["results"]))


def test_main_is_fetched_from_the_configured_remote_only(project, tmp_path):
    first = project.commit("c0")
    fork = tmp_path / "fork.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(project.repo), str(fork)], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "-o", "fork", str(fork), str(clone)], check=True)
    job = TinyProject.__new__(TinyProject)
    job.__dict__.update(project.__dict__, repo=clone)
    newer = project.commit("c1")
    project.git("push", "--quiet", str(fork), "main")

    out = check_run(job.run(), code=2)  # --remote defaults to origin: never guessed
    assert "has no remote 'origin' (it has fork)" in out and "--remote" in out
    assert job.git("rev-parse", "HEAD").strip() == first  # not moved
    assert job.stored_results() == {}

    out = check_run(job.run("--remote", "fork"))
    assert "fast-forwarded" in out and "from fork" in out
    assert set(job.stored_results()) == {first, newer}


def test_state_results_and_log_dirs_the_job_does_not_own_are_refused_untouched(project, tmp_path):
    """The job deletes and chmods in its state dir (staging/, code/...): never in someone's."""
    project.commit("c0")
    mine = tmp_path / "mine"
    (mine / "code").mkdir(parents=True)
    (mine / "code" / "work.py").write_text("the operator's")
    (mine / "staging").mkdir()
    mine.chmod(0o755)
    before = snapshot(mine)

    out = check_run(project.run(state=mine), code=2)
    assert "holds files the nightly job did not make" in out and "left untouched" in out
    out = check_run(project.run("--log-dir", str(mine)), code=2)
    assert "holds files the nightly job did not make" in out
    out = check_run(project.run("--results-dir", str(project.repo)), code=2)  # the checkout
    assert "not a results store" in out
    out = check_run(project.run("--results-dir", str(mine)), code=2)
    assert "not a results store" in out
    assert snapshot(mine) == before and stat.S_IMODE(mine.stat().st_mode) == 0o755
    # A git repository with nothing committed yet: its files are all untracked. The job
    # would take config/settings.json for a damaged result and move it to quarantine/.
    fresh = tmp_path / "fresh-repo"
    (fresh / "config").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(fresh)], check=True)
    (fresh / "config" / "settings.json").write_text('{"theme": "dark"}')
    (fresh / "notes.txt").write_text("the operator's")
    before = snapshot(fresh)
    out = check_run(project.run("--results-dir", str(fresh)), code=2)
    assert "not a results store" in out and "config/settings.json" in out
    assert snapshot(fresh) == before
    assert project.git("status", "--porcelain") == ""  # the checkout: nothing added
    assert not (project.repo / ".git" / "index.lock").exists()
