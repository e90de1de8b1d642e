"""The git calls the nightly job makes: updating the checkout and listing commits."""

from __future__ import annotations

import os
import subprocess

# Identity for the commits the job itself makes (results store, gh-pages), so
# a fresh machine without a global git identity still works.
_IDENTITY = ["-c", "user.name=stardag nightly", "-c", "user.email=nightly@localhost"]


class GitError(Exception):
    """A git command failed; the message carries its stderr."""


def git(cwd: str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run ``git args`` in ``cwd`` without a terminal or prompts; return stdout."""
    full_env = dict(os.environ, GIT_TERMINAL_PROMPT="0", **(env or {}))
    proc = subprocess.run(
        ["git", *_IDENTITY, *args],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed in {cwd!r} (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def has_remote(repo: str, name: str) -> bool:
    return name in git(repo, "remote").split()


def remote_of(repo: str, branch: str) -> str | None:
    """The remote ``branch`` tracks, else ``origin`` if present, else None."""
    remotes = git(repo, "remote").split()
    if not remotes:
        return None
    configured = git(repo, "config", "--get", f"branch.{branch}.remote", check=False).strip()
    if configured in remotes:
        return configured
    return "origin" if "origin" in remotes else remotes[0]


def update_checkout(repo: str, branch: str) -> str:
    """Fast-forward ``branch`` from its remote; return a line saying what happened.

    A checkout without a remote is used as it is. A branch that has diverged
    from its remote is an error: the job never merges or resets on its own.
    """
    remote = remote_of(repo, branch)
    if remote is None:
        return f"{repo}: no remote, benchmarking local {branch!r} as it is"
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
        return f"{repo}: {branch} is up to date with {remote} at {after[:8]}"
    return f"{repo}: {branch} fast-forwarded {before[:8]}..{after[:8]} from {remote}"


def first_parent_commits(repo: str, branch: str, limit: int) -> list[str]:
    """The newest ``limit`` commits of ``branch`` along first parents, newest first.

    First parents are the commits asv draws for a branch (``rev-list --first-parent``).
    """
    if not git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False):
        raise GitError(
            f"branch {branch!r} not found in {repo!r}; check 'branches' in asv.conf.json"
        )
    out = git(repo, "rev-list", "--first-parent", f"--max-count={limit}", branch, "--")
    return out.split()


def ancestors(repo: str, commit: str, limit: int) -> list[str]:
    """Up to ``limit`` first-parent ancestors of ``commit``, nearest first."""
    out = git(repo, "rev-list", "--first-parent", f"--max-count={limit + 1}", commit, "--")
    return out.split()[1:]
