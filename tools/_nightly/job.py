"""One nightly run, start to end; ``tools/nightly.py`` is its command line.

Order of work, each step safe to interrupt at any point:
private state dir -> lock -> watchdog, leftovers of the last run stopped -> log
-> noise control -> checkout verified -> deploy dir claimed -> main fast-forwarded
from --remote, main's tip exported -> interpreters -> asv machine entry ->
results store repaired -> for each new commit (newest first) and Python:
``asv run`` into an empty staging dir, move the finished files into the store,
git commit -> push the store -> ``asv publish`` into a new directory -> report
and summary beside index.html -> switch the deploy dir (or commit gh-pages) ->
prune logs -> stop whatever the run left running.
"""

from __future__ import annotations

import ctypes
import datetime
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import machine as asv_machine
from _nightly import (checkout, confirm, environment, provenance, reaper, report, runlog, scratch,
                     site)
from _nightly.checkout import CheckoutError
from _nightly.git import GitError, first_parent_commits, git, has_remote
from _nightly.lock import LockError, RunLock, prepare_private_dir
from _nightly.site import DeployError
from _nightly.store import ResultStore, StoredResult, StoreError, lost_result, validate
from _site import finish_site

EXIT_OK = 0
EXIT_FAILURES = 1  # some commit did not build or some benchmark failed; site published
EXIT_ERROR = 2  # the job itself could not finish (config, checkout, deploy dir, publish)
EXIT_REGRESSION = 3  # only with --fail-on-regression: a new regression, nothing else wrong

log = logging.getLogger("nightly")


@dataclass
class Options:
    """Everything the command line sets; paths are absolute (``config``: inside the repo)."""

    repo: str
    config: str
    machine: str
    state_dir: str
    results_dir: str
    log_dir: str
    deploy_dir: str | None = None
    gh_pages: bool = False
    gh_pages_branch: str = "gh-pages"
    push: bool = True
    pythons: list[str] | None = None
    max_commits: int = 20
    max_hours: float | None = None
    keep_logs: int = 30
    cpu_affinity: set[int] | None = None
    threads: int = 1
    regression_threshold: float | None = None
    compare_factor: float = 1.2
    max_confirm: int = 10  # candidate regressions measured again per run (confirm.py)
    confirm_rounds: int = 6
    confirm_minutes: float | None = 60.0
    fetch: bool = True
    branch: str = "main"
    remote: str = "origin"
    fail_on_regression: bool = False
    quiet: bool = False


@dataclass
class _Run:
    """What one run has done so far, for the summary and the exit status."""

    stamp: str
    problems: list[str] = field(default_factory=list)
    benchmarked: list[StoredResult] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-min load average around asv runs
    settings: dict = field(default_factory=dict)  # what every stored result is labelled with

    def sample_load(self) -> None:
        self.loads.append(os.getloadavg()[0])

    def problem(self, message: str) -> None:
        log.error(message)
        self.problems.append(message)


def run(opts: Options) -> int:
    """Run the nightly job; raises LockBusy when a live run holds the lock, LockError when unsafe."""
    os.umask(0o077)  # state, logs, lock, results: this user's only; the site is made readable
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stamp = f"{stamp}-{os.getpid()}"
    # The job's: it holds the lock file, or only a results store made ready for a first run.
    notes = [prepare_private_dir(opts.state_dir,
                                 lambda names: "nightly.lock" in names or names == ["results"])]
    with RunLock(os.path.join(opts.state_dir, "nightly.lock"), stamp) as lock:
        notes.append(prepare_private_dir(opts.log_dir, lambda names: all(
            n.startswith("nightly-") and n.endswith(".log") for n in names)))
        reaper.mark(stamp)  # everything started from here on carries the run's stamp
        watchdog = reaper.start_watchdog(stamp)
        log_path = runlog.open_log(opts.log_dir, stamp, opts.quiet)
        started = time.monotonic()
        state = _Run(stamp=stamp)
        for note in notes + lock.notes:
            if note:
                log.warning("%s", note)
        if lock.previous is not None and (n := reaper.kill(lock.previous.stamp)):
            log.warning("stopped %d process(es) still running from run %s", n,
                        lock.previous.stamp)
        tmp_base, tmp = scratch.private_tmp(stamp)
        if lock.previous is not None and scratch.remove_tmp(tmp_base, lock.previous.stamp):
            log.warning("removed the temporary files of run %s, which did not end normally",
                        lock.previous.stamp)
        log.info("temporary files of this run: %s (removed at its end)", tmp)
        try:
            code = _run(opts, state, lock.fd, log_path)
        except (CheckoutError, DeployError, StoreError, LockError,
                provenance.UncleanEnvironment) as exc:
            log.error("nightly run refused: %s", exc)
            code = EXIT_ERROR
        except Exception as exc:  # the log must say why the job stopped
            log.exception("nightly run stopped: %s", exc)
            code = EXIT_ERROR
        finally:
            if n := reaper.kill(stamp):
                log.info("stopped %d process(es) this run left running", n)
            scratch.remove_tmp(tmp_base, stamp)
            os.close(watchdog)
            runlog.prune_logs(opts.log_dir, opts.keep_logs, keep=log_path)
        (log.info if code == EXIT_OK else log.warning)(
            "finished in %.0f s: %d result file(s) added, %d problem(s), exit status %d; log %s",
            time.monotonic() - started, len(state.benchmarked), len(state.problems), code, log_path,
        )
        runlog.close_log()
        return code


def _run(opts: Options, state: _Run, lock_fd: int, log_path: str) -> int:
    environment.control_noise(opts)
    for note in checkout.recover(opts.repo, opts.branch, opts.remote):
        state.problem(f"checkout: {note}")
    remote = checkout.verify(opts.repo, opts.branch, opts.remote, opts.fetch)
    if opts.deploy_dir:
        log.info("%s", site.claim(opts.deploy_dir))  # before any work: a wrong one stops here
    if remote is not None:
        try:
            log.info("%s: %s", opts.repo, checkout.update(opts.repo, opts.branch, remote))
        except GitError as exc:
            state.problem(f"could not update the checkout, benchmarking it as it is: {exc}")
    elif opts.fetch:
        log.info("%s has no remote: benchmarking %s as committed locally, nothing fetched",
                    opts.repo, opts.branch)
    tip = git(opts.repo, "rev-parse", f"refs/heads/{opts.branch}").strip()
    code = checkout.export(opts.repo, tip, os.path.join(opts.state_dir, "code"))
    log.info("suite and asv config: %s as committed at %s (exported to %s)",
             opts.branch, tip[:8], code)

    raw = environment.load_config(code, opts.config, opts.repo, opts.state_dir)
    provenance.refuse_unclean(raw)  # smoke results never enter the store
    state.settings = provenance.settings(opts, state.stamp, tip)
    bench_repo = raw["repo"]
    branches = raw.get("branches") or [opts.branch]
    for branch in branches:
        if branch != opts.branch and remote is not None:
            try:
                log.info("%s", checkout.update(bench_repo, branch, remote))
            except GitError as exc:
                state.problem(f"could not update branch {branch!r}: {exc}")
    env_type = raw.get("environment_type") or "virtualenv"
    if env_type == "existing":
        raise ValueError(
            f"{opts.config!r} sets environment_type 'existing', which cannot build "
            "other commits; use 'virtualenv' for the nightly job"
        )
    versions = opts.pythons or list(raw.get("pythons") or [])
    pythons = environment.discover_pythons(versions, opts, state)

    staging = os.path.join(opts.state_dir, "staging")
    run_conf = os.path.join(opts.state_dir, "asv-run.conf.json")
    environment.write_config(raw, run_conf, results_dir=staging, opts=opts)
    publish_conf = os.path.join(opts.state_dir, "asv-publish.conf.json")
    environment.write_config(raw, publish_conf, results_dir=opts.results_dir, opts=opts)
    asv = _Asv(lock_fd, log_path)
    machine_info, created = asv_machine.ensure_entry(opts.machine)
    log.info("results are filed under machine %r%s", opts.machine,
             " (entry created in ~/.asv-machine.json)" if created else "")

    store = ResultStore(opts.results_dir, os.path.join(opts.state_dir, "quarantine"))
    log.info("results store: %s (a git repository)", store.path)
    repairs = store.open()
    for note in repairs.notes:
        log.warning("results store: %s", note)
    for problem in repairs.problems:
        state.problem(problem)

    stored = store.results(opts.machine)
    todo, tips = _select_commits(stored, opts, bench_repo, branches, pythons, store.lost())
    deadline = None if opts.max_hours is None else time.monotonic() + opts.max_hours * 3600
    unreported = report.Unreported(opts.state_dir)
    for i, (commit, missing) in enumerate(todo):
        if deadline is not None and time.monotonic() > deadline:
            log.warning("time budget of %g h used up: %d commit(s) left for the next run",
                        opts.max_hours, len(todo) - i)
            break
        for python in missing:
            _benchmark(asv, run_conf, store, staging, commit, python, env_type,
                       commit in tips, opts, state, unreported)
    _complete_store(asv, run_conf, store, staging, tip, pythons, env_type, machine_info, opts)
    for rel in store.lost():
        state.problem(f"results store: {rel} was lost (see quarantine/ in the state directory) "
                      "and is not benchmarked again yet; it is benchmarked again when its "
                      "commit is among the ones benchmarked; delete its quarantined copy to "
                      "accept the loss")
    if opts.push:
        try:
            line = store.push(opts.machine)
            if line:
                log.info("%s", line)
        except GitError as exc:
            state.problem(f"results are committed locally but the push failed: {exc}")

    if not store.has_results():
        state.problem("no results stored yet, so there is no site to publish")
        return EXIT_FAILURES

    out = _publish(asv, publish_conf, opts, state, log_path)
    regressions = report.write(out, opts, bench_repo, store, stored, unreported, state,
                               confirm.Job(asv.call, raw, env_type))
    _deploy(out, opts, bench_repo, remote, state)
    unreported.clear()  # tonight's report is out: these results are no longer new

    if state.problems:
        return EXIT_FAILURES
    if opts.fail_on_regression and any(r.alarm for r in regressions):
        return EXIT_REGRESSION
    return EXIT_OK


def _select_commits(stored, opts, bench_repo, branches, pythons, lost):
    """Commits of the newest ``max_commits`` per branch lacking a result, newest first.

    Newest first: the morning site shows the branch tip even when the time
    budget ends the run before older gaps are filled. Then the commits of
    lost (quarantined) results, wherever they are.
    """
    done = {(r.commit_hash, r.python) for r in stored}
    todo: dict[str, list[str]] = {}
    tips = set()
    for branch in branches:
        commits = first_parent_commits(bench_repo, branch, opts.max_commits)
        tips.update(commits[:1])
        for commit in commits:
            missing = [p for p in pythons if (commit, p) not in done]
            if missing:
                todo.setdefault(commit, missing)
        log.info(
            "%s: %d newest commit(s) considered (--max-commits %d), %d need benchmarks",
            branch, len(commits), opts.max_commits, sum(c in todo for c in commits),
        )
    for rel in lost:
        found = lost_result(rel, opts.machine)
        if found is None or found[1] not in pythons:
            continue
        commit = git(bench_repo, "rev-parse", "--verify", "--quiet", f"{found[0]}^{{commit}}",
                     check=False).strip()
        if commit and (commit, found[1]) not in done:
            todo.setdefault(commit, [])
            if found[1] not in todo[commit]:
                todo[commit].append(found[1])
            log.info("%s: benchmarked again, its result was lost", rel)
    if not todo:
        log.info("nothing new to benchmark")
    return list(todo.items()), tips


def _benchmark(asv, run_conf, store, staging, commit, python, env_type, is_tip, opts, state,
               unreported):
    """Benchmark one commit in one Python and commit what asv recorded."""
    scratch.fresh_dir(staging)  # a killed run's half-written files go
    hashfile = os.path.join(opts.state_dir, "commit.txt")
    with open(hashfile, "w") as f:
        f.write(commit + "\n")
    log.info("benchmarking %s with python %s", commit[:8], python)
    # --record-samples: asv compare then tests with Mann-Whitney U, not CIs.
    state.sample_load()
    code = asv.call(run_conf, "run", "--show-stderr", "--record-samples",
                    "--machine", opts.machine, "-E", f"{env_type}:{python}",
                    f"HASHFILE:{hashfile}")
    state.sample_load()
    provenance.label(staging, opts.machine, state.settings, state.loads[-2:])
    # Listed as unreported before they enter the store: killed from here on (installed,
    # not committed yet), the next run commits them and still compares them as new.
    src = os.path.join(staging, opts.machine)
    rels = sorted(f"{opts.machine}/{name}" for name in os.listdir(src)
                  if name.endswith(".json") and name != "machine.json") if os.path.isdir(src) else []
    unreported.add(rels)
    try:
        # With no benchmarks.json yet, any discovery beats none; later only the
        # branch tip's list is taken, so an older commit cannot hide newer benchmarks.
        first = not os.path.exists(os.path.join(store.path, "benchmarks.json"))
        stored = store.install(staging, opts.machine, with_benchmarks_json=is_tip or first)
    except ValueError as exc:
        unreported.discard(rels)
        state.problem(f"{commit[:8]} python {python}: {exc}")
        return
    if not stored:
        unreported.discard(rels)
        state.problem(f"{commit[:8]} python {python}: asv exited {code} and recorded no "
                      "result (it is retried next run); see the log")
        return
    failed = sorted({name for r in stored for name in r.failed})
    status = "ok" if not failed else f"{len(failed)} failed"
    store.commit(f"{opts.machine} {commit[:8]} python {python}: {status}")
    uncommitted = [r.path for r in stored if not store.is_committed(r.path)]
    if uncommitted:
        state.problem(f"{commit[:8]} python {python}: recorded but not committed to the "
                      f"results store: {', '.join(uncommitted)}")
        return
    state.benchmarked.extend(stored)
    if failed:
        state.problem(f"{commit[:8]} python {python}: {len(failed)} benchmark(s) failed or "
                      f"the commit did not build: {', '.join(failed[:10])}")
    else:
        log.info("%s python %s: recorded and committed", commit[:8], python)


def _complete_store(asv, run_conf, store, staging, tip, pythons, env_type, machine_info, opts):
    """Put back a ``benchmarks.json`` or ``machine.json`` that nothing restored or rewrote tonight."""
    if validate(os.path.join(store.path, "benchmarks.json")) is not None and store.has_results():
        log.info("benchmarks.json missing: asv discovers the benchmarks of %s", tip[:8])
        scratch.fresh_dir(staging)
        hashfile = os.path.join(opts.state_dir, "commit.txt")
        with open(hashfile, "w") as f:
            f.write(tip + "\n")
        asv.call(run_conf, "run", "--bench", "just-discover", "--machine", opts.machine,
                 "-E", f"{env_type}:{pythons[0]}", f"HASHFILE:{hashfile}")
        store.install(staging, opts.machine, with_benchmarks_json=True)
    machine_json = os.path.join(store.path, opts.machine, "machine.json")
    if os.path.isdir(os.path.dirname(machine_json)) and validate(machine_json) is not None:
        store.write_machine_json(opts.machine, machine_info)
    store.commit("restore benchmarks.json / machine.json")


def _publish(asv, publish_conf, opts, state, log_path) -> str:
    """``asv publish`` into a new directory; the one place the site is written before it goes live."""
    if opts.gh_pages:
        out = os.path.join(opts.state_dir, "site-for-gh-pages")
        scratch.remove(out)  # asv publish creates it
    else:
        out = site.new_version_dir(opts.deploy_dir, state.stamp)
    if asv.call(publish_conf, "publish", "--no-pull", "--html-dir", out) != 0:
        shutil.rmtree(out, ignore_errors=True)
        raise RuntimeError(f"asv publish failed; the deployed site is unchanged; see {log_path}")
    finished = finish_site(out, opts.results_dir)  # offline libraries, overview page
    for line in finished.lines:
        log.info("site: %s", line)
    for problem in finished.problems:  # the site is complete either way, with a notice
        log.warning("site: %s", problem)
    return out


def _deploy(out, opts, bench_repo, remote, state) -> None:
    if opts.gh_pages:
        push_to = remote if opts.push and remote and has_remote(bench_repo, remote) else None
        line = site.commit_gh_pages(bench_repo, out, opts.gh_pages_branch,
                                    f"nightly benchmarks {state.stamp}", push_to)
        shutil.rmtree(out, ignore_errors=True)
    else:
        line = site.switch(opts.deploy_dir, out)
    log.info("%s", line)


class _Asv:
    """Runs asv commands with their output appended to the run's log."""

    def __init__(self, lock_fd: int, log_path: str) -> None:
        self.lock_fd = lock_fd
        self.log_path = log_path

    def call(self, conf: str, *args: str) -> int:
        cmd = [sys.executable, "-m", "asv", "--config", conf, *args]
        log.info("$ %s", " ".join(cmd))
        with open(self.log_path, "a", encoding="utf-8") as out:
            # The child inherits the lock: if this process is SIGKILLed while
            # asv still runs, no second job can start on the same staging dir.
            # On Linux the child is also killed with us (PR_SET_PDEATHSIG); its
            # own children, by the watchdog (reaper).
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, pass_fds=(self.lock_fd,),
                                  preexec_fn=_die_with_parent)
        if proc.returncode != 0:
            log.warning("asv %s exited %d", args[0], proc.returncode)
        return proc.returncode


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
