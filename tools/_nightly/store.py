"""The results store: asv's ``results_dir`` kept as a git repository.

asv writes a result file in place and a kill mid-write leaves it truncated. So
asv never writes into the store: each ``asv run`` writes into an empty staging
directory, and only when it has finished are its files checked (parsed the way
``asv publish`` parses them) and moved in with ``os.replace``, then committed.
A file is therefore either absent from the store or whole; a kill between the
move and the commit leaves valid uncommitted files that the next run commits.

The job owns ``benchmarks.json`` and ``<machine>/*.json`` (asv's layout); it
adds them even where a ``.gitignore`` says otherwise, and commits nothing else.
Each run starts by repairing the store: an unfinished merge, rebase or
cherry-pick is aborted; a file that does not parse (a disk fault, a hand edit,
conflict markers) is restored from the store's own history, and only when no
good version exists is it moved to the quarantine directory (kept for good),
its commit benchmarked again. A quarantined file without a good copy in the
store is reported every night until it has one again (``lost``).
"""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import re
import shutil
from dataclasses import dataclass, field

from asv import util as asv_util
from asv.benchmarks import Benchmarks
from asv.machine import Machine
from asv.results import Results

from _nightly.git import GitError, git, git_bytes, has_remote

_TMP_SUFFIX = ".nightly-tmp"
OWNED = ("benchmarks.json", ":(glob)*/*.json")  # git pathspecs of what the job commits
_HISTORY_DEPTH = 50  # versions of a damaged file tried, newest first

log = logging.getLogger("nightly")


class StoreError(Exception):
    """The store is in a state the job must not touch; the message says what to do."""


@dataclass(frozen=True)
class StoredResult:
    """One asv result file: a commit benchmarked in one environment."""

    path: str
    commit_hash: str
    python: str
    env_name: str
    failed: tuple[str, ...]  # benchmarks (with params) that have no value


@dataclass
class Repairs:
    """What opening the store found: ``notes`` for the log, ``problems`` for the report."""

    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class ResultStore:
    """A git repository holding asv results, committed by the job."""

    def __init__(self, path: str, quarantine_dir: str) -> None:
        self.path = os.path.abspath(path)
        self.quarantine_dir = os.path.abspath(quarantine_dir)

    # -- repair -------------------------------------------------------------
    def open(self) -> Repairs:
        """Create the repository if needed and repair whatever a killed run or a hand left.

        Safe only while holding the nightly lock: every ``*.lock`` under
        ``.git`` is then stale and removed.
        """
        found = Repairs()
        self._check_is_store()
        if not os.path.isdir(os.path.join(self.path, ".git")):
            os.makedirs(self.path, exist_ok=True)
            git(self.path, "init", "--quiet")
        for root, _dirs, files in os.walk(os.path.join(self.path, ".git")):
            for name in files:
                if name.endswith(".lock"):
                    os.remove(os.path.join(root, name))
                    found.notes.append(f"removed stale git lock {os.path.join(root, name)}")
        found.problems += self._abort_unfinished()
        for path in self._files():
            if path.endswith(_TMP_SUFFIX):
                os.remove(path)
                found.notes.append(f"removed partial copy {path}")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for rel in self._owned_deleted():
            found.problems.append(self._repair(rel, "deleted from the store's files", stamp))
        for path in sorted(self._files()):
            rel = os.path.relpath(path, self.path)
            if _is_owned(rel) and (error := validate(path)) is not None:
                found.problems.append(self._repair(rel, error, stamp))
        if self.commit("recover results left uncommitted by an interrupted run or a repair"):
            found.notes.append("committed what an interrupted run or a repair left uncommitted")
        return found

    def _check_is_store(self) -> None:
        """Refuse a directory that is not a results store: the job moves and commits in there.

        A store is new, empty, or a git repository that tracks asv results only
        (``benchmarks.json``, ``<machine>/*.json``; ``.git*`` and ``README*`` files aside).
        """
        if not os.path.isdir(self.path) or not os.listdir(self.path):
            return
        if not os.path.isdir(os.path.join(self.path, ".git")):
            raise StoreError(f"--results-dir {self.path!r} holds files and is no git repository: "
                             "not a results store; give it a new or empty directory")
        tracked = git(self.path, "ls-files").splitlines()
        other = [rel for rel in tracked if not _is_owned(rel)
                 and not os.path.basename(rel).startswith((".git", "README"))]
        if other:
            raise StoreError(
                f"--results-dir {self.path!r} is a git repository tracking files other than asv "
                f"results ({', '.join(other[:3])}...): not a results store; nothing in it is "
                "touched. Give it a new or empty directory, or a clone of a results repository"
            )
        # Untracked files named like results that asv cannot read were not put there by the
        # job (it moves in only whole files it has checked): the repair would move them away.
        untracked = git(self.path, "ls-files", "--others", "--", *OWNED).splitlines()
        foreign = [rel for rel in untracked
                   if validate(os.path.join(self.path, rel)) is not None]
        if foreign:
            raise StoreError(
                f"--results-dir {self.path!r} holds files that are neither committed nor asv "
                f"results ({', '.join(foreign[:3])}): not a results store, or not only one; "
                "nothing in it is touched. Give it a new or empty directory, or move them away"
            )

    def _abort_unfinished(self) -> list[str]:
        """Abort a merge, rebase, cherry-pick or revert left in progress; never commit its markers."""
        git_dir = os.path.join(self.path, ".git")
        states = (("MERGE_HEAD", "merge"), ("rebase-merge", "rebase"), ("rebase-apply", "rebase"),
                  ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert"))
        problems = []
        for marker, command in states:
            if not os.path.exists(os.path.join(git_dir, marker)):
                continue
            if marker == "rebase-apply" and os.path.exists(os.path.join(git_dir, marker, "applying")):
                command = "am"
            try:
                git(self.path, command, "--abort")
            except GitError as exc:
                raise StoreError(
                    f"the results store {self.path!r} is in the middle of a {command} that "
                    f"'git {command} --abort' could not undo ({exc}); finish or undo it by hand "
                    "(git status says how), then run again"
                ) from None
            problems.append(f"results store: a {command} was left in progress; aborted it "
                            f"(git {command} --abort), nothing of it committed")
        return problems

    def _repair(self, rel: str, error: str, stamp: str) -> str:
        """Restore ``rel`` from the store's history, else quarantine it; a line for the report."""
        path = os.path.join(self.path, rel)
        kept = ""
        if os.path.lexists(path):
            dest = os.path.join(self.quarantine_dir, stamp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.move(path, dest)
            kept = f"; the damaged copy is kept in {dest}"
        restored_from = self._restore(rel)
        if restored_from is not None:
            return (f"results store: {rel} was damaged ({error}); restored from the store's "
                    f"commit {restored_from[:8]}{kept}")
        if not kept:  # nothing to keep and nothing to restore: remember it was lost
            dest = os.path.join(self.quarantine_dir, stamp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            open(dest, "wb").close()
        return (f"results store: {rel} was damaged ({error}) and no good version is in the "
                f"store's history{kept}; it is benchmarked again")

    def _restore(self, rel: str) -> str | None:
        """Write the newest version of ``rel`` in the history that parses; its commit, or None."""
        revs = git(self.path, "log", f"--max-count={_HISTORY_DEPTH}", "--format=%H", "--",
                   rel, check=False).split()
        path = os.path.join(self.path, rel)
        tmp = path + _TMP_SUFFIX
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for rev in revs:
            try:
                data = git_bytes(self.path, "show", f"{rev}:{rel}")
            except GitError:  # the commit that deleted it
                continue
            with open(tmp, "wb") as f:
                f.write(data)
            if validate(tmp, rel) is None:
                os.replace(tmp, path)
                return rev
        if os.path.exists(tmp):
            os.remove(tmp)
        return None

    def _owned_deleted(self) -> list[str]:
        if not git(self.path, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip():
            return []
        return git(self.path, "ls-files", "--deleted", "--", *OWNED).splitlines()

    def _ignored(self) -> list[str]:
        return git(self.path, "ls-files", "--others", "--ignored", "--exclude-standard",
                   "--", *OWNED).splitlines()

    def lost(self) -> list[str]:
        """Store paths moved to quarantine that still have no good copy in the store."""
        if not os.path.isdir(self.quarantine_dir):
            return []
        rels = set()
        for entry in os.scandir(self.quarantine_dir):
            for root, _dirs, files in os.walk(entry.path):
                rels.update(os.path.relpath(os.path.join(root, n), entry.path) for n in files)
        return sorted(rel for rel in rels
                      if not os.path.isfile(os.path.join(self.path, rel))
                      or validate(os.path.join(self.path, rel)) is not None)

    # -- contents -----------------------------------------------------------
    def has_results(self) -> bool:
        """Whether the store holds any result file, of any machine."""
        return any(p.endswith(".json") and _is_result_file(p) for p in self._files())

    def _files(self):
        """Every file of the store, outside git's own directory."""
        for root, dirs, files in os.walk(self.path):
            dirs[:] = [d for d in dirs if d != ".git"]
            for name in files:
                yield os.path.join(root, name)

    def results(self, machine: str) -> list[StoredResult]:
        """Every result file stored for ``machine``."""
        directory = os.path.join(self.path, machine)
        if not os.path.isdir(directory):
            return []
        return [
            read_result(os.path.join(directory, name), machine)
            for name in sorted(os.listdir(directory))
            if name.endswith(".json") and name != "machine.json"
        ]

    def install(self, staging: str, machine: str, with_benchmarks_json: bool) -> list[StoredResult]:
        """Move the finished, valid files of one ``asv run`` from ``staging`` in.

        Raises ValueError naming the file if any result file does not load;
        then nothing is installed.
        """
        src_dir = os.path.join(staging, machine)
        names = sorted(os.listdir(src_dir)) if os.path.isdir(src_dir) else []
        names = [n for n in names if n.endswith(".json")]
        for name in names:
            error = validate(os.path.join(src_dir, name))
            if error is not None:
                raise ValueError(f"asv wrote an unreadable file {name!r}: {error}")
        moves = [(os.path.join(src_dir, n), os.path.join(self.path, machine, n)) for n in names]
        bench_json = os.path.join(staging, "benchmarks.json")
        if with_benchmarks_json and os.path.exists(bench_json) and validate(bench_json) is None:
            moves.append((bench_json, os.path.join(self.path, "benchmarks.json")))
        for src, dest in moves:
            _atomic_copy(src, dest)
        return [read_result(dest, machine) for _src, dest in moves if _is_result_file(dest)]

    def write_machine_json(self, machine: str, info: dict) -> None:
        """Write ``<machine>/machine.json`` as asv run would (from ~/.asv-machine.json's entry)."""
        path = os.path.join(self.path, machine, "machine.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        asv_util.write_json(path + _TMP_SUFFIX, info, Machine.api_version)
        os.replace(path + _TMP_SUFFIX, path)

    # -- git ------------------------------------------------------------------
    def commit(self, message: str) -> bool:
        """Commit the job's files (only those); False when there was nothing to commit.

        Raises StoreError when a file of the job's is still not committed after it.
        """
        hidden = self._ignored()
        if hidden:
            log.warning("results store: its ignore rules (.gitignore, .git/info/exclude) cover "
                        "%d file(s) the job keeps there (%s); committing them anyway",
                        len(hidden), ", ".join(hidden[:3]))
        paths = [rel for rel in (os.path.relpath(p, self.path) for p in self._files())
                 if _is_owned(rel)] + self._owned_deleted()
        if paths:  # named one by one: git refuses a pathspec that matches nothing
            git(self.path, "add", "--all", "--force", "--", *paths)
        staged = git(self.path, "diff", "--cached", "--name-only", "--no-renames", "--",
                     *OWNED).splitlines()
        if not staged:
            return False
        git(self.path, "commit", "--quiet", "--no-verify", "-m", message, "--", *staged)
        left = git(self.path, "status", "--porcelain", "--ignored", "--untracked-files=all",
                   "--", *OWNED).strip()
        if left:
            raise StoreError(f"files of the results store {self.path!r} are still not "
                             f"committed after 'git commit': {left.splitlines()[:5]}")
        return True

    def is_committed(self, path: str) -> bool:
        """Whether HEAD holds ``path`` exactly as it is on disk."""
        rel = os.path.relpath(path, self.path)
        if not git(self.path, "ls-files", "--", rel).strip():
            return False
        return not git(self.path, "status", "--porcelain", "--", rel).strip()

    def push(self, machine: str) -> str | None:
        """Push to ``origin``'s ``results/<machine>`` if the store has an origin; a line for the log.

        One branch per machine: machines sharing a results remote never push to
        the same branch, so no push is ever rejected for another machine's commits.
        """
        if not has_remote(self.path, "origin"):
            return None
        branch = f"results/{machine}"
        try:
            git(self.path, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        except GitError as exc:
            raise GitError(
                f"{exc}; origin's {branch} has commits this store lacks (a second store "
                f"filing under machine {machine!r}, or a store made anew?): compare them with "
                f"git -C {self.path} fetch origin {branch} && git -C {self.path} log "
                f"--oneline HEAD...FETCH_HEAD; give each machine its own --machine name"
            ) from None
        return f"pushed results store to origin/{branch}"


def validate(path: str, rel: str | None = None) -> str | None:
    """None if asv loads ``path`` as the kind of file its name says; else why not.

    ``rel``: the store path the file stands for (its name and machine), if not ``path``'s own.
    """
    rel = rel or path
    name = os.path.basename(rel)
    try:
        if name == "machine.json":
            data = asv_util.load_json(path, api_version=Machine.api_version)
            if not isinstance(data.get("machine"), str):
                return "no machine name"
        elif name == "benchmarks.json":
            asv_util.load_json(path, api_version=Benchmarks.api_version)
        else:
            machine = os.path.basename(os.path.dirname(rel))
            Results.load(path, machine_name=machine)
    except Exception as exc:  # any way asv can fail to read it disqualifies it
        return f"{type(exc).__name__}: {exc}"
    return None


def read_result(path: str, machine: str) -> StoredResult:
    """Summarise one asv result file."""
    res = Results.load(path, machine_name=machine)
    failed = []
    for key in res.get_all_result_keys():
        values = res.get_result_value(key, res.get_result_params(key))
        params = res.get_result_params(key)
        if not params:
            if values[0] is None:
                failed.append(key)
            continue
        for combo, value in zip(itertools.product(*params), values):
            if value is None:
                failed.append(f"{key}({', '.join(combo)})")
    return StoredResult(
        path=path,
        commit_hash=res.commit_hash,
        python=str(res.params.get("python", "")),
        env_name=res.env_name,
        failed=tuple(failed),
    )


def lost_result(rel: str, machine: str) -> tuple[str, str] | None:
    """(short commit hash, python X.Y) of a lost result file of ``machine``, else None."""
    match = re.fullmatch(rf"{re.escape(machine)}/([0-9a-f]{{8}})-.*py(\d+\.\d+).*\.json", rel)
    return (match[1], match[2]) if match else None


def _is_owned(rel: str) -> bool:
    parts = rel.split(os.sep)
    return rel.endswith(".json") and (parts == ["benchmarks.json"] or len(parts) == 2)


def _is_result_file(path: str) -> bool:
    return os.path.basename(path) not in ("machine.json", "benchmarks.json")


def _atomic_copy(src: str, dest: str) -> None:
    """Copy ``src`` to ``dest`` so that ``dest`` is never seen half written."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + _TMP_SUFFIX
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout)
        fout.flush()
        os.fsync(fout.fileno())
    os.replace(tmp, dest)
    dir_fd = os.open(os.path.dirname(dest), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
