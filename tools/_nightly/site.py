"""Putting a freshly published site where people read it, touching nothing else.

``asv publish`` deletes and rewrites its ``html_dir``; served directly, readers
would see a half-empty site for a moment every night, or for good if the job
dies mid-publish. So the job publishes into a new directory and switches over
in one step.

The deploy directory ``DIR`` is the job's own, and everything happens inside it::

    DIR/.stardag-nightly-site      marker: the job created or adopted DIR
    DIR/current -> versions/<run>  what the web server serves (rename(2): atomic)
    DIR/versions/<run>/            one published site per run; live + previous kept

The job only ever writes inside ``DIR``, so a service sandbox needs just
``DIR`` writable, never its parent. It takes ``DIR`` only if it does not exist
yet, is empty, or carries the marker: a directory with anything else in it (a
web root given by mistake) is refused before any work, and nothing in it is
moved or deleted. Inside ``DIR`` it deletes only old ``versions/<run>``
directories named as it names them.

gh-pages: the site becomes one commit on the branch, built with a temporary
index so the checkout's working tree and index are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

from _nightly.git import git

MARKER = ".stardag-nightly-site"
_MARKER_TEXT = ("This directory is the stardag nightly job's deploy directory: it serves\n"
                "current/ and replaces versions/ every night. Keep no files of yours here.\n")
# What the job names a version: its run stamp (20250101T023000Z-1234), maybe with
# a mkdtemp suffix. Nothing else in versions/ is ever deleted.
_VERSION_NAME = re.compile(r"\d{8}T\d{6}Z-\d+(-[A-Za-z0-9_]+)?")


class DeployError(Exception):
    """The deploy directory is not the job's to write; the message says what to do."""


def claim(deploy_dir: str) -> str:
    """Make sure ``deploy_dir`` is the job's (create or adopt it); a line for the log.

    Raises DeployError, having changed nothing, when it holds anything the job did not create.
    """
    hint = (f"give --deploy-dir a directory that does not exist yet or is empty (the site is "
            f"served from DIR/current), e.g. {os.path.join(deploy_dir, 'stardag-bench')}")
    if os.path.islink(deploy_dir):
        raise DeployError(f"--deploy-dir {deploy_dir!r} is a symlink; the job does not write "
                          f"through links it did not make; {hint}")
    if os.path.isdir(deploy_dir):
        if os.path.isfile(os.path.join(deploy_dir, MARKER)):
            _check_layout(deploy_dir)
            return f"deploy directory {deploy_dir} (the job's: {MARKER})"
        if os.listdir(deploy_dir):
            raise DeployError(
                f"--deploy-dir {deploy_dir!r} is not empty and was not created by the nightly "
                f"job (it has no {MARKER}); nothing in it is touched. Give --deploy-dir a "
                "directory that does not exist yet or is empty; the web server then serves "
                "DIR/current"
            )
        _write_marker(deploy_dir)
        return f"deploy directory {deploy_dir}: was empty, now the job's"
    if os.path.lexists(deploy_dir):
        raise DeployError(f"--deploy-dir {deploy_dir!r} exists and is not a directory; {hint}")
    try:
        os.mkdir(deploy_dir)
    except FileNotFoundError:
        raise DeployError(f"the parent of --deploy-dir {deploy_dir!r} does not exist; "
                          "create it first (the job makes only DIR itself)") from None
    os.chmod(deploy_dir, 0o755)  # a web server reads it; the job's umask is 077
    _write_marker(deploy_dir)
    return f"deploy directory {deploy_dir}: created"


def _check_layout(deploy_dir: str) -> None:
    """Refuse a ``versions`` or ``current`` the job did not make: it writes and deletes there."""
    versions = os.path.join(deploy_dir, "versions")
    if os.path.islink(versions) or (os.path.lexists(versions) and not os.path.isdir(versions)):
        raise DeployError(f"{versions!r} is not a directory the job made (a symlink or a file); "
                          "the job writes and deletes old versions there and follows no link: "
                          "move it away, the job makes its own")
    current = os.path.join(deploy_dir, "current")
    if os.path.lexists(current) and not os.path.islink(current):
        raise DeployError(f"{current!r} is not a symlink the job made; the job replaces it "
                          "every night: move it away")


def _write_marker(deploy_dir: str) -> None:
    tmp = os.path.join(deploy_dir, MARKER + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_MARKER_TEXT)
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(deploy_dir, MARKER))


def new_version_dir(deploy_dir: str, stamp: str) -> str:
    """A path for the next version, not existing yet (asv publish creates it)."""
    _check_layout(deploy_dir)  # never chmod or write through a link planted since claim()
    root = os.path.join(deploy_dir, "versions")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    path = os.path.join(root, stamp)
    if os.path.lexists(path):
        path = tempfile.mkdtemp(prefix=f"{stamp}-", dir=root)
        os.rmdir(path)
    return path


def switch(deploy_dir: str, version: str) -> str:
    """Point ``DIR/current`` at ``version`` atomically; prune versions but the previous."""
    _check_layout(deploy_dir)
    current = os.path.join(deploy_dir, "current")
    _readable(version)
    keep = {os.path.basename(version)}
    if os.path.islink(current):  # the previous version, kept for rollback
        keep.add(os.path.basename(os.readlink(current)))
    target = os.path.join("versions", os.path.basename(version))
    tmp_link = os.path.join(deploy_dir, ".current.nightly-tmp")
    if os.path.islink(tmp_link):
        os.remove(tmp_link)
    os.symlink(target, tmp_link)
    os.replace(tmp_link, current)
    versions = os.path.join(deploy_dir, "versions")
    for entry in os.scandir(versions):  # older ones, and any a killed publish left
        if entry.name not in keep and _VERSION_NAME.fullmatch(entry.name) and entry.is_dir(
                follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
    return f"deployed {current} -> {target}"


def _readable(top: str) -> None:
    """World-readable site files (0644, dirs 0755) whatever the job's umask."""
    os.chmod(top, 0o755)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:  # chmod follows links: a link's target is not the site's
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if name in dirs else 0o644)


def commit_gh_pages(repo: str, site: str, branch: str, message: str, remote: str | None) -> str:
    """Commit ``site`` as the whole tree of ``branch`` in ``repo``; push to ``remote`` if given."""
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
    if remote:
        git(repo, "push", "--quiet", remote, f"{ref}:{ref}")
        line += f", pushed to {remote}/{branch}"
    return line
