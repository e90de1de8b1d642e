"""The job's scratch places: emptied and remade without ever following a link out of them.

Scratch directories in the state directory (``staging/``, ``code/``,
``pythons/``, ``confirm/``) are the job's by name, and it deletes inside them.
A symlink planted at such a name (say ``code -> ~/work``, to put exports on
another disk) must never lead it into deleting what the link points at: the
link itself is removed, never followed.

Temporary files: asv, pip and the benchmarks write into ``$TMPDIR`` (a
setup_cache directory, the suite's Dask cluster files, Dask's scratch space).
A run killed by SIGKILL cannot clean them, and under cron ``/tmp`` is not
private. So every process of a run gets ``TMPDIR`` pointing at a directory of
its own, ``stardag-nightly-<run>-XXXXXX`` in the temp directory the job was
started with (short, so that Unix socket paths under it stay short); the run
removes it when it ends, and the next run removes it if the run was killed.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

_TMP_PREFIX = "stardag-nightly-"


def own_dir(path: str) -> str:
    """Make ``path`` a real directory (a symlink or file there is removed, not followed)."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.remove(path)
    os.makedirs(path, exist_ok=True)
    return path


def remove(path: str) -> None:
    """Delete ``path`` if it exists: a directory with its contents, a symlink itself only."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def fresh_dir(path: str) -> str:
    """An empty real directory at ``path``: what was there is deleted, a symlink is only unlinked."""
    remove(path)
    os.makedirs(path)
    return path


def private_tmp(stamp: str) -> tuple[str, str]:
    """Give run ``stamp`` (this process and all it starts) a temp directory of its own.

    Returns (the temp directory the job was started with, the run's own).
    """
    base = tempfile.gettempdir()
    mine = tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{stamp}-", dir=base)
    os.environ["TMPDIR"] = mine
    tempfile.tempdir = mine
    return base, mine


def remove_tmp(base: str, stamp: str) -> int:
    """Delete run ``stamp``'s temp directories in ``base`` (real directories of this user only)."""
    prefix = f"{_TMP_PREFIX}{stamp}-"
    n = 0
    try:
        entries = list(os.scandir(base))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            shutil.rmtree(entry.path, ignore_errors=True)
            n += 1
    return n
