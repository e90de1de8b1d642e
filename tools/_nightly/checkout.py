"""The checkout the job benchmarks: ``main`` as committed, from the configured remote only.

Before anything is benchmarked:

- the checkout must have ``main`` checked out, with no local change and no
  untracked file anywhere in it (ignored files aside): the checkout is the
  job's alone, and the job's own code runs from it;
- ``main`` is fast-forwarded from ``--remote`` (default ``origin``) and from no
  other: a checkout that has remotes but not that one is an error; one with no
  remote at all is benchmarked as committed locally, and the log says so;
- main's tip is exported with ``git archive`` (so nothing ignored or untracked
  comes along) into ``STATE/code/<commit>``: asv takes the benchmark suite and
  its config from there, never from the working tree.
"""

from __future__ import annotations

import io
import os
import tarfile

from _nightly.git import GitError, git, git_bytes
from _nightly.scratch import own_dir, remove


class CheckoutError(Exception):
    """The checkout is not what the job benchmarks; the message says how to fix it."""


def recover(repo: str, branch: str, remote: str) -> list[str]:
    """Undo what a killed run's git left in the checkout; lines for the log (empty: nothing).

    Called under the nightly lock, once the last run's processes are stopped, so
    a git lock file in the checkout (the job's alone) is stale: git refuses to
    work while it is there, night after night. A fast-forward cut short leaves
    the branch behind files already updated; when every changed file is already
    ``remote``'s version of it, the fast-forward is finished (nothing of anyone's
    is lost); anything else is left for ``verify`` to refuse.
    """
    top = git(repo, "rev-parse", "--show-toplevel", check=False).strip()
    if not top or os.path.realpath(top) != os.path.realpath(repo):
        return []  # not a checkout of its own: verify() says so, and nothing is touched
    git_dir = git(repo, "rev-parse", "--absolute-git-dir").strip()
    notes = []
    for path in _stale_locks(git_dir):
        os.remove(path)
        notes.append(f"removed {path}, left by a git command that was interrupted (a killed run)")
    upstream = f"refs/remotes/{remote}/{branch}"
    current = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if not notes or current != branch or not git(
            repo, "rev-parse", "--verify", "--quiet", upstream, check=False).strip():
        return notes
    status = git_bytes(repo, "status", "--porcelain", "-z", "--no-renames",
                       "--untracked-files=all")
    paths = [entry[3:].decode() for entry in status.split(b"\0") if entry]
    if paths and _is_ancestor(repo, "HEAD", upstream) and all(
            _is_version_of(repo, upstream, path) for path in paths):
        git(repo, "reset", "--quiet", "--hard", upstream)
        notes.append(f"finished the fast-forward of {branch} to {remote}/{branch} that was "
                     f"interrupted ({len(paths)} file(s) were already {remote}'s version)")
    return notes


def _stale_locks(git_dir: str) -> list[str]:
    found = [os.path.join(git_dir, n) for n in os.listdir(git_dir) if n.endswith(".lock")]
    for root, _dirs, files in os.walk(os.path.join(git_dir, "refs")):
        found += [os.path.join(root, n) for n in files if n.endswith(".lock")]
    return sorted(found)


def _is_ancestor(repo: str, older: str, newer: str) -> bool:
    try:
        git(repo, "merge-base", "--is-ancestor", older, newer)
    except GitError:
        return False
    return True


def _is_version_of(repo: str, rev: str, path: str) -> bool:
    """Whether the checkout's ``path`` is exactly ``rev``'s (both absent counts)."""
    full = os.path.join(repo, path)
    if os.path.islink(full):
        mine = os.readlink(full).encode()
    elif os.path.isfile(full):
        with open(full, "rb") as f:
            mine = f.read()
    else:
        mine = None
    theirs = git_bytes(repo, "show", f"{rev}:{path}") if _exists(repo, rev, path) else None
    return mine == theirs


def _exists(repo: str, rev: str, path: str) -> bool:
    try:
        git(repo, "cat-file", "-e", f"{rev}:{path}")
    except GitError:
        return False
    return True


def verify(repo: str, branch: str, remote: str, fetch: bool) -> str | None:
    """Check the checkout; return the remote to fetch from, or None (none, or not fetching)."""
    top = git(repo, "rev-parse", "--show-toplevel", check=False).strip()
    if not top or os.path.realpath(top) != os.path.realpath(repo):
        raise CheckoutError(f"{repo!r} is not the top of a git checkout; pass --repo the "
                            "checkout the job benchmarks")
    current = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if current != branch:
        where = f"on {current!r}" if current else "not on a branch (detached HEAD)"
        raise CheckoutError(
            f"the checkout {repo!r} is {where}; the nightly job benchmarks {branch!r} as "
            f"committed: git -C {repo} switch {branch}"
        )
    changes = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    if changes:
        shown = "; ".join(line.strip() for line in changes[:8])
        more = f" and {len(changes) - 8} more" if len(changes) > 8 else ""
        raise CheckoutError(
            f"the checkout {repo!r} has local changes or untracked files ({shown}{more}); "
            f"it is the job's alone and must be {branch!r} as committed: commit them "
            f"elsewhere, or put them aside with git -C {repo} stash --include-untracked"
        )
    if not fetch:
        return None
    remotes = git(repo, "remote").split()
    if remote in remotes:
        return remote
    if remotes:
        raise CheckoutError(
            f"the checkout {repo!r} has no remote {remote!r} (it has {', '.join(remotes)}); "
            f"the job fetches {branch!r} from that one remote only: name it with --remote, "
            f"or add it: git -C {repo} remote add {remote} URL"
        )
    return None


def update(repo: str, branch: str, remote: str) -> str:
    """Fast-forward ``branch`` from ``remote``; return a line saying what happened.

    A branch that has diverged from the remote is a GitError: the job never
    merges or resets on its own.
    """
    git(repo, "fetch", "--prune", "--quiet", remote)
    upstream = f"refs/remotes/{remote}/{branch}"
    if not git(repo, "rev-parse", "--verify", "--quiet", upstream, check=False).strip():
        raise GitError(f"remote {remote!r} of {repo!r} has no branch {branch!r}")
    before = git(repo, "rev-parse", branch).strip()
    current = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    try:
        if current == branch:
            git(repo, "merge", "--ff-only", "--quiet", upstream)
        else:
            git(repo, "fetch", "--quiet", ".", f"{upstream}:refs/heads/{branch}")
    except GitError as exc:
        raise GitError(
            f"{branch!r} in {repo!r} cannot fast-forward to {remote}/{branch}: {exc}; "
            f"make it match with: git -C {repo} checkout {branch} && "
            f"git -C {repo} reset --hard {remote}/{branch}"
        ) from None
    after = git(repo, "rev-parse", branch).strip()
    if before == after:
        return f"{branch} is up to date with {remote} at {after[:8]}"
    return f"{branch} fast-forwarded {before[:8]}..{after[:8]} from {remote}"


def export(repo: str, commit: str, code_dir: str) -> str:
    """``commit``'s tree, as committed, in ``code_dir/<commit>``; older exports go."""
    dest = os.path.join(code_dir, commit)
    own_dir(code_dir)  # a symlink planted there is removed, never followed
    for entry in os.scandir(code_dir):  # the job's own directory: only exports live here
        if entry.name != commit:
            remove(entry.path)
    if os.path.isdir(dest):  # complete: it only ever appears by the rename below
        return dest
    tmp = dest + ".partial"
    archive = git_bytes(repo, "archive", "--format=tar", commit)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:  # Python < 3.10.12: git archive writes no links out of the tree anyway
            tar.extractall(tmp)
    os.replace(tmp, dest)
    return dest
