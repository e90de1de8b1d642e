"""Putting a freshly published site where people read it.

``asv publish`` deletes and rewrites its ``html_dir``; served directly, readers
would see a half-empty site for a moment every night, or for good if the job
dies mid-publish. So the job publishes into a new directory and switches over
in one step:

- deploy directory: ``DIR`` is a symlink to ``.DIR.versions/<stamp>``; the new
  version is written beside the old one and the link is replaced with
  ``os.replace`` (rename(2), atomic). The previous version is kept for rollback.
- gh-pages: the site becomes one commit on the branch, built with a temporary
  index so the checkout's working tree and index are never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from _nightly.git import git


def versions_dir(deploy_dir: str) -> str:
    """Where the versions behind the ``deploy_dir`` symlink live."""
    parent, name = os.path.split(os.path.abspath(deploy_dir))
    return os.path.join(parent, f".{name}.versions")


def new_version_dir(deploy_dir: str, stamp: str) -> str:
    """A fresh, empty directory for the next version (asv publish fills it)."""
    root = versions_dir(deploy_dir)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, stamp)
    if os.path.exists(path):
        path = tempfile.mkdtemp(prefix=f"{stamp}-", dir=root)
    return path


def switch_deploy_dir(deploy_dir: str, version: str) -> str:
    """Point ``deploy_dir`` at ``version`` atomically; prune old versions."""
    deploy_dir = os.path.abspath(deploy_dir)
    keep = {os.path.basename(version)}
    if os.path.islink(deploy_dir):
        keep.add(os.path.basename(os.readlink(deploy_dir)))  # the previous, for rollback
    elif os.path.isdir(deploy_dir):
        # A plain directory from before the job managed it: keep it as a version.
        os.replace(deploy_dir, os.path.join(versions_dir(deploy_dir), "before-nightly"))
        keep.add("before-nightly")
    target = os.path.relpath(version, os.path.dirname(deploy_dir))
    tmp_link = f"{deploy_dir}.nightly-link"
    if os.path.lexists(tmp_link):
        os.remove(tmp_link)
    os.symlink(target, tmp_link)
    os.replace(tmp_link, deploy_dir)
    # Older versions and any left half-written by a killed publish go.
    for entry in os.scandir(versions_dir(deploy_dir)):
        if entry.name not in keep:
            shutil.rmtree(entry.path, ignore_errors=True)
    return f"deployed {deploy_dir} -> {target}"


def commit_gh_pages(repo: str, site: str, branch: str, message: str, push: bool) -> str:
    """Commit ``site`` as the whole tree of ``branch`` in ``repo``; push if asked."""
    with open(os.path.join(site, ".nojekyll"), "w"):
        pass  # GitHub Pages must serve asv's files as they are
    git_dir = git(repo, "rev-parse", "--absolute-git-dir").strip()
    with tempfile.TemporaryDirectory(prefix="nightly-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index"), "GIT_WORK_TREE": site,
               "GIT_DIR": git_dir}
        git(site, "add", "--all", "--force", ".", env=env)
        tree = git(site, "write-tree", env=env).strip()
    ref = f"refs/heads/{branch}"
    parent = git(repo, "rev-parse", "--verify", "--quiet", ref, check=False).strip()
    if parent and git(repo, "rev-parse", f"{parent}^{{tree}}").strip() == tree:
        line = f"{branch} already holds this site ({parent[:8]})"
    else:
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        new = git(repo, *args).strip()
        git(repo, "update-ref", ref, new, *([parent] if parent else []))
        line = f"committed site to {branch} as {new[:8]}"
    if push:
        git(repo, "push", "--quiet", "origin", f"{ref}:{ref}")
        line += f", pushed to origin/{branch}"
    return line
