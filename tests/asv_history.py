"""A real asv run of this repository's suite over a temporary 3-commit clone, published.

The clone holds the suite without the library, then with it, then a small
change. ``tools/bench.py run ALL --quick --save-quick`` benchmarks the three commits
on the current Python as a smoke run (``STARDAG_BENCH_SMOKE``) and keeps the results
(a throwaway clone: elsewhere quick and smoke results are never saved; these are labelled
so), and ``tools/bench.py asv publish --show-quick`` writes the site as users get it: asv's pages, the libraries they load
served from the site itself (fetched from the npm registry into the shared
cache), and the overview page. The asv tests and the browser tests read the
same run (the session fixture ``asv_site`` in conftest.py): it takes 2-4 minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = "%d.%d" % sys.version_info[:2]
# tools/ whole: bench.py imports its neighbours (interpreter, machine, progress, _site)
SUITE_FILES = ["pyproject.toml", "README.md", "asv.conf.json", "benchmarks", "tools"]


@dataclass
class AsvSite:
    repo: Path
    html_dir: Path
    run: subprocess.CompletedProcess
    log: str  # the run's stdout and stderr
    publish: subprocess.CompletedProcess
    commits: dict[str, str]  # "no_library", "first", "second" -> full hash


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def copy(names: list[str], dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results.json")
    for name in names:
        src, dst = REPO / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def isolated_env(home: Path) -> dict[str, str]:
    """A HOME of our own (asv's machine file), reusing pip's, virtualenv's and the site's caches."""
    env = dict(os.environ)
    real_home = Path.home()
    env.setdefault("PIP_CACHE_DIR", str(real_home / ".cache" / "pip"))
    env.setdefault("VIRTUALENV_OVERRIDE_APP_DATA", str(real_home / ".local" / "share" / "virtualenv"))
    env.setdefault("STARDAG_BENCH_CACHE", str(real_home / ".cache" / "stardag-bench"))
    env["HOME"] = str(home)
    env["STARDAG_BENCH_SMOKE"] = "1"
    env.pop("STARDAG_BENCH_ROOT", None)
    return env


def build(root: Path) -> AsvSite:
    """Make the clone under ``root``, run asv over it, publish; failures are in the result."""
    repo, home = root / "repo", root / "home"
    repo.mkdir()
    home.mkdir()
    git(repo, "init", "-q", "-b", "main")
    copy(SUITE_FILES, repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "suite without the library")
    no_library = git(repo, "rev-parse", "HEAD")
    copy(["stardag"], repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the library")
    first = git(repo, "rev-parse", "HEAD")
    with open(repo / "README.md", "a") as f:
        f.write("\nA second commit.\n")
    git(repo, "commit", "-q", "-am", "second commit")
    second = git(repo, "rev-parse", "HEAD")

    env = isolated_env(home)
    run = subprocess.run(
        [sys.executable, "tools/bench.py", "run", f"--python={PYTHON}", "--quick", "--save-quick", "ALL"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900,
    )
    # --show-quick: the overview shows this smoke run (labelled so), as the browser tests read it
    publish = subprocess.run([sys.executable, "tools/bench.py", "asv", "publish", "--show-quick"],
                             cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    return AsvSite(repo=repo, html_dir=repo / "html", run=run, log=run.stdout + run.stderr,
                   publish=publish,
                   commits={"no_library": no_library, "first": first, "second": second})
