"""The git calls the nightly job makes, and listing commits."""

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
    return git_bytes(cwd, *args, env=env, check=check).decode(errors="replace")


def git_bytes(cwd: str, *args: str, env: dict[str, str] | None = None,
              check: bool = True) -> bytes:
    """``git`` returning stdout as bytes (file contents, archives)."""
    # GIT_OPTIONAL_LOCKS=0: "git status" only reads; it does not refresh the index of the
    # checkout (the job changes nothing there but by fast-forwarding main).
    full_env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", **(env or {}))
    proc = subprocess.run(
        ["git", *_IDENTITY, *args],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args)} failed in {cwd!r} (exit {proc.returncode}): {err}")
    return proc.stdout


def has_remote(repo: str, name: str) -> bool:
    return name in git(repo, "remote").split()


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
