"""``python tools/bench.py asv publish`` on clones whose history is not asv.conf.json's ``main``.

asv orders the site's commits along the configured branches: a result of a
commit on none of them is left out of every graph (and the overview showed an
older commit of ``main`` as the newest), and a clone without a ``main`` branch
(``git clone -b feature``, a CI checkout) made ``asv publish`` fail after the
whole benchmark run. The commit just benchmarked must be on the site.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import test_site_build as made_up  # the made-up results in asv's format
from test_site_build import tarballs  # noqa: F401  (a fixture: the real npm tarballs)

REPO = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def publish(repo: Path, home: Path, cache: Path) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, HOME=str(home), STARDAG_BENCH_CACHE=str(cache),
               STARDAG_NPM_REGISTRY="http://127.0.0.1:9/")
    return subprocess.run([sys.executable, "tools/bench.py", "asv", "publish"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def graphed(html: Path) -> set[str]:
    """The commits asv's graph pages draw a point at (any branch, machine, Python)."""
    index = json.loads((html / "index.json").read_text())
    commits = set()
    for path in (html / "graphs").glob("branch-*/**/bench_build.Family.time_build.json"):
        for revision, values in json.loads(path.read_text()):
            if values is not None:
                commits.add(index["revision_to_hash"][str(revision)])
    return commits


def test_publish_shows_the_checked_out_commit_off_main_and_works_without_main(tmp_path, tarballs):
    repo, home, cache = tmp_path / "repo", tmp_path / "home", tmp_path / "cache"
    repo.mkdir()
    home.mkdir()
    made_up.fill(cache, tarballs)
    git(repo, "init", "-q", "-b", "main")
    shutil.copy2(REPO / "asv.conf.json", repo)
    shutil.copytree(REPO / "tools", repo / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "benchmarks", repo / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "on main")
    on_main = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    git(repo, "commit", "-q", "--allow-empty", "-m", "on a feature branch")
    feature = git(repo, "rev-parse", "HEAD")
    results = repo / "asv-results"
    made_up.write_benchmarks(results)
    made_up.write_run(results, on_main, "3.11", made_up.old_values, date=1)
    made_up.write_run(results, feature, "3.11", made_up.newest_values, date=2)

    done = publish(repo, home, cache)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert graphed(repo / "html") >= {on_main, feature}
    # asv's graph pages draw the first branch unless told otherwise: the commit's, here
    assert json.loads((repo / "html" / "index.json").read_text())["params"]["branch"][0] == "feature"
    assert f"commit <code>{feature[:8]}</code>" in (repo / "html" / "overview.html").read_text()
    assert "'feature'" in done.stdout  # it says along which branch

    git(repo, "branch", "-D", "main")  # a clone of the feature branch alone
    done = publish(repo, home, cache)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "main" in done.stdout and "not in this clone" in done.stdout
    assert feature in graphed(repo / "html")
    assert f"commit <code>{feature[:8]}</code>" in (repo / "html" / "overview.html").read_text()
