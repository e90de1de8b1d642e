"""The results store: asv's ``results_dir`` kept as a git repository.

asv writes a result file in place and a kill mid-write leaves it truncated. So
asv never writes into the store: each ``asv run`` writes into an empty staging
directory, and only when it has finished are its files checked (parsed the way
``asv publish`` parses them) and moved in with ``os.replace``, then committed.
A file is therefore either absent from the store or whole; a kill between the
move and the commit leaves valid uncommitted files that the next run commits.
Anything that still does not parse (a disk fault, a hand edit) is moved out to
a quarantine directory before publishing, so one bad file never breaks a site.
"""

from __future__ import annotations

import datetime
import itertools
import os
import shutil
from dataclasses import dataclass

from asv import util as asv_util
from asv.benchmarks import Benchmarks
from asv.machine import Machine
from asv.results import Results

from _nightly.git import git, has_remote

_TMP_SUFFIX = ".nightly-tmp"


@dataclass(frozen=True)
class StoredResult:
    """One asv result file: a commit benchmarked in one environment."""

    path: str
    commit_hash: str
    python: str
    env_name: str
    failed: tuple[str, ...]  # benchmarks (with params) that have no value


class ResultStore:
    """A git repository holding asv results, committed by the job."""

    def __init__(self, path: str, quarantine_dir: str) -> None:
        self.path = os.path.abspath(path)
        self.quarantine_dir = os.path.abspath(quarantine_dir)

    def open(self) -> list[str]:
        """Create the repository if needed and repair what a killed run left.

        Call ``quarantine_invalid`` next: unreadable files are a separate report.

        Safe only while holding the nightly lock: every ``*.lock`` under
        ``.git`` is then stale and removed.
        """
        notes = []
        if not os.path.isdir(os.path.join(self.path, ".git")):
            os.makedirs(self.path, exist_ok=True)
            git(self.path, "init", "--quiet")
        for root, _dirs, files in os.walk(os.path.join(self.path, ".git")):
            for name in files:
                if name.endswith(".lock"):
                    os.remove(os.path.join(root, name))
                    notes.append(f"removed stale git lock {os.path.join(root, name)}")
        for path in self._files():
            if path.endswith(_TMP_SUFFIX):
                os.remove(path)
                notes.append(f"removed partial copy {path}")
        if self.commit("recover results left uncommitted by an interrupted run"):
            notes.append("committed results left uncommitted by an interrupted run")
        return notes

    def quarantine_invalid(self) -> list[str]:
        """Move every JSON file asv could not load out of the store."""
        notes = []
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for path in sorted(self._files()):
            if not path.endswith(".json"):
                continue
            error = validate(path)
            if error is None:
                continue
            rel = os.path.relpath(path, self.path)
            dest = os.path.join(self.quarantine_dir, stamp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.move(path, dest)
            notes.append(f"quarantined {rel} to {dest}: {error}")
        return notes

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

    def commit(self, message: str) -> bool:
        """Commit everything in the store; False when there was nothing to commit."""
        git(self.path, "add", "--all", ".")
        if not git(self.path, "status", "--porcelain").strip():
            return False
        git(self.path, "commit", "--quiet", "--no-verify", "-m", message)
        return True

    def push(self) -> str | None:
        """Push to ``origin`` if the store has one; return a line for the log."""
        if not has_remote(self.path, "origin"):
            return None
        branch = git(self.path, "symbolic-ref", "--short", "HEAD").strip()
        git(self.path, "push", "--quiet", "origin", f"HEAD:{branch}")
        return f"pushed results store to origin/{branch}"


def validate(path: str) -> str | None:
    """None if asv loads ``path`` as the kind of file its name says; else why not."""
    name = os.path.basename(path)
    try:
        if name == "machine.json":
            data = asv_util.load_json(path, api_version=Machine.api_version)
            if not isinstance(data.get("machine"), str):
                return "no machine name"
        elif name == "benchmarks.json":
            asv_util.load_json(path, api_version=Benchmarks.api_version)
        else:
            machine = os.path.basename(os.path.dirname(path))
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
