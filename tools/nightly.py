#!/usr/bin/env python3
"""Nightly benchmark job: benchmark new commits, keep every result, republish, report.

Run unattended (cron, systemd timer); it never reads stdin. A second copy
started while one runs prints why and exits 0. Exit status: 0 all good or
nothing new; 1 some commit failed to build or benchmark (the site is still
published, recorded results are kept); 2 the job could not finish; 3 a new
regression, only with --fail-on-regression. See README section "nightly".
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _nightly.confirm import MIN_ROUNDS  # noqa: E402
from _nightly.job import Options, run  # noqa: E402
from _nightly.lock import LockBusy, LockError  # noqa: E402

_HERE_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "stardag-nightly")


def _cpus(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            cpus.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad cpu list {text!r}; write e.g. 1 or 2-3 or 0,2")
    return cpus


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", default=_HERE_REPO,
                   help="the checkout to update and benchmark (default: this script's repo)")
    p.add_argument("--config", default="asv.conf.json",
                   help="the asv config's path inside the repository, read from main as "
                        "committed (default: asv.conf.json)")
    p.add_argument("--branch", default="main",
                   help="the branch the checkout must have checked out; benchmarked as "
                        "committed (default: main)")
    p.add_argument("--remote", default="origin",
                   help="the one remote the branch is fast-forwarded from; a checkout with "
                        "remotes but not this one is refused (default: origin)")
    p.add_argument("--pythons", help="comma-separated X.Y versions (default: the config's)")
    p.add_argument("--machine", default=socket.gethostname().split(".")[0],
                   help="asv machine name, keep it stable (default: short hostname)")
    p.add_argument("--state-dir", default=_default_state_dir(),
                   help="lock, staging, logs, results (default: ~/.local/state/stardag-nightly)")
    p.add_argument("--results-dir", help="results store, a git repo (default: STATE/results)")
    p.add_argument("--log-dir", help="one log per run (default: STATE/logs)")
    p.add_argument("--keep-logs", type=int, default=30, help="logs kept (default 30)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--deploy-dir",
                       help="a directory the job owns: created, or empty, or made by it "
                            "before; the site is DIR/current (default: STATE/site)")
    where.add_argument("--gh-pages", action="store_true",
                       help="commit the site to the checkout's gh-pages branch instead")
    p.add_argument("--gh-pages-branch", default="gh-pages")
    p.add_argument("--no-push", action="store_true",
                   help="do not push gh-pages (to --remote) or the results store (to its origin)")
    p.add_argument("--no-fetch", action="store_true",
                   help="do not fetch: benchmark the branch as committed locally")
    p.add_argument("--max-commits", type=int, default=20,
                   help="backlog bound: only the newest N commits of each branch (default 20)")
    p.add_argument("--max-hours", type=float,
                   help="start no new commit after this many hours; the rest waits a night")
    p.add_argument("--cpu-affinity", type=_cpus, help="pin the job and benchmarks, e.g. 1 or 2-3")
    p.add_argument("--threads", type=int, default=1,
                   help="value for OMP/OPENBLAS/MKL/NUMEXPR/VECLIB thread variables (default 1)")
    p.add_argument("--regression-threshold", type=float,
                   help="relative step asv must see to report (overrides regressions_thresholds)")
    p.add_argument("--compare-factor", type=float, default=1.2,
                   help="nominate a benchmark of tonight's commits slower than its benchmarked "
                        "ancestor by more than this (or its own threshold, if larger) and "
                        "statistically different; reported only once confirmed (default 1.2, "
                        "see README 'nightly')")
    p.add_argument("--max-confirm", type=int, default=10,
                   help="candidate regressions measured again, interleaved with their baseline, "
                        "per run; the rest wait for the next run (default 10)")
    p.add_argument("--confirm-rounds", type=int, default=6,
                   help="rounds of that measurement, one process per commit each, the two "
                        "commits alternating; at least 5 (default 6)")
    p.add_argument("--confirm-minutes", type=float, default=60.0,
                   help="start no new confirmation after this many minutes (default 60)")
    p.add_argument("--quiet", action="store_true",
                   help="stderr gets warnings and errors only (the log keeps everything)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit 3 when this run found a new regression")
    a = p.parse_args(argv)
    if a.max_commits < 1:
        p.error("--max-commits must be at least 1")
    if os.path.isabs(a.config) or a.config.split(os.sep)[0] == "..":
        p.error(f"--config {a.config!r}: give the config's path inside the repository")
    if a.max_confirm < 0:
        p.error("--max-confirm must be at least 0")
    if a.confirm_rounds < MIN_ROUNDS:
        p.error(f"--confirm-rounds must be at least {MIN_ROUNDS}: the test on the rounds' "
                "medians cannot reach p < 0.01 with fewer")
    repo = os.path.abspath(a.repo)
    state = os.path.abspath(a.state_dir)
    return Options(
        repo=repo,
        config=os.path.normpath(a.config),
        machine=a.machine,
        state_dir=state,
        results_dir=os.path.abspath(a.results_dir or os.path.join(state, "results")),
        log_dir=os.path.abspath(a.log_dir or os.path.join(state, "logs")),
        deploy_dir=(None if a.gh_pages
                    else os.path.abspath(a.deploy_dir or os.path.join(state, "site"))),
        gh_pages=a.gh_pages,
        gh_pages_branch=a.gh_pages_branch,
        push=not a.no_push,
        pythons=[v.strip() for v in a.pythons.split(",") if v.strip()] if a.pythons else None,
        max_commits=a.max_commits,
        max_hours=a.max_hours,
        keep_logs=a.keep_logs,
        cpu_affinity=a.cpu_affinity,
        threads=a.threads,
        regression_threshold=a.regression_threshold,
        compare_factor=a.compare_factor,
        max_confirm=a.max_confirm,
        confirm_rounds=a.confirm_rounds,
        confirm_minutes=a.confirm_minutes,
        fetch=not a.no_fetch,
        branch=a.branch,
        remote=a.remote,
        fail_on_regression=a.fail_on_regression,
        quiet=a.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        return run(opts)
    except LockBusy as exc:
        print(f"nightly: {exc}", file=sys.stderr)
        return 0
    except LockError as exc:
        print(f"nightly: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
