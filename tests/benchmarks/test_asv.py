"""asv itself on this suite: `asv check`, and a real run over a temporary clone's history.

The history test builds a three-commit repository (the suite without the
library, then with it, then a small change), runs ``tools/bench.py run ALL
--quick`` on the current Python as a smoke run, publishes, and reads the site.
It takes 2-4 minutes; asv installs pydantic from PyPI into its environment.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import configuration  # noqa: E402

PYTHON = "%d.%d" % sys.version_info[:2]
SUITE_FILES = ["pyproject.toml", "README.md", "asv.conf.json", "benchmarks", "tools/bench.py",
               "tools/interpreter.py"]


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
    """A HOME of our own (asv's machine file), reusing pip's and virtualenv's caches."""
    env = dict(os.environ)
    real_home = Path.home()
    env.setdefault("PIP_CACHE_DIR", str(real_home / ".cache" / "pip"))
    env.setdefault("VIRTUALENV_OVERRIDE_APP_DATA", str(real_home / ".local" / "share" / "virtualenv"))
    env["HOME"] = str(home)
    env["STARDAG_BENCH_SMOKE"] = "1"
    env.pop("STARDAG_BENCH_ROOT", None)
    return env


def test_asv_check_passes():
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "-E", f"existing:{sys.executable}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def _results(results_dir: Path, commit: str) -> dict:
    files = [f for f in results_dir.glob(f"*/{commit[:8]}-*.json")]
    assert len(files) == 1, (commit, list(results_dir.glob("*/*")))
    data = json.loads(files[0].read_text())
    return {name: dict(zip(data["result_columns"], row)) for name, row in data["results"].items()}


def _values(entry: dict) -> list:
    result = entry["result"]
    return result if isinstance(result, list) else [result]


@pytest.fixture(scope="module")
def asv_site(tmp_path_factory) -> dict:
    """Run asv over a 3-commit clone; return paths and the commits."""
    root = tmp_path_factory.mktemp("asv-history")
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
        [sys.executable, "tools/bench.py", "run", f"--python={PYTHON}", "--quick", "ALL"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900,
    )
    log = run.stdout + run.stderr
    publish = subprocess.run([sys.executable, "tools/bench.py", "asv", "publish"],
                             cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    return {"repo": repo, "run": run, "log": log, "publish": publish,
            "commits": {"no_library": no_library, "first": first, "second": second}}


def test_asv_run_over_history_succeeds(asv_site):
    assert asv_site["run"].returncode == 0, asv_site["log"][-5000:]
    assert "Traceback" not in asv_site["log"], asv_site["log"][-5000:]
    assert asv_site["publish"].returncode == 0, asv_site["publish"].stderr[-3000:]


def test_commit_without_library_is_skipped_not_failed(asv_site):
    results = _results(asv_site["repo"] / "asv-results", asv_site["commits"]["no_library"])
    assert results
    for name, entry in results.items():
        values = _values(entry)
        # asv stores a skip (NotImplementedError in setup) as NaN, a failure as null
        assert all(v is not None and math.isnan(v) for v in values), (name, values)


def test_site_lists_every_benchmark_and_configuration_with_both_commits(asv_site):
    repo, commits = asv_site["repo"], asv_site["commits"]
    index = json.loads((repo / "html" / "index.json").read_text())
    discovered = json.loads((repo / "asv-results" / "benchmarks.json").read_text())
    names = {n for n in discovered if n != "version"}
    assert names and set(index["benchmarks"]) == names
    for name in names:
        meta = index["benchmarks"][name]
        if "configuration" in meta["param_names"]:
            values = meta["params"][meta["param_names"].index("configuration")]
            assert [v.strip("'") for v in values] == configuration.NAMES, (name, values)

    revisions = {h: r for r, h in index["revision_to_hash"].items()}
    for key in ("first", "second"):
        assert commits[key] in revisions, (key, index["revision_to_hash"])
        results = _results(repo / "asv-results", commits[key])
        assert set(results) == names
        for name in names:
            values = _values(results[name])
            assert any(v is not None and not math.isnan(v) for v in values), (key, name, values)

    # the graphs the site draws hold a point for each commit
    graph_dir = repo / "html" / "graphs"
    for name in names:
        graphs = [g for g in graph_dir.rglob(f"{name}.json") if "summary" not in g.parts]
        assert graphs, name
        points = json.loads(graphs[0].read_text())
        revs = {p[0] for p in points if any(x is not None for x in (p[1] if isinstance(p[1], list) else [p[1]]))}
        assert {int(revisions[commits["first"]]), int(revisions[commits["second"]])} <= revs, name
