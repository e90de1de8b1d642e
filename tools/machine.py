"""The asv machine results are filed under, and its entry in ``~/.asv-machine.json``.

Without ``--machine``, asv files results under the host's name, except that a
``~/.asv-machine.json`` with a single entry of another name (a file copied from
another machine) silently files them under that name. And ``asv machine --yes
--machine NAME`` for a name other than the host's records the name alone, no
CPU, OS or memory. So ``tools/bench.py`` and the nightly job always pass
``--machine`` and make sure its entry exists and describes this machine.
"""

from __future__ import annotations

import os
import platform
import stat


def host_name() -> str:
    """The name asv gives this machine by default: the host name."""
    return platform.uname().node


def ensure_entry(name: str) -> tuple[dict, bool]:
    """The entry ``name`` of ``~/.asv-machine.json``, created for this host if missing.

    Returns the entry and whether it was created now.
    """
    from asv import util
    from asv.machine import Machine, MachineCollection

    path = MachineCollection.get_machine_file_path()
    entries = util.load_json(path, MachineCollection.api_version) if os.path.isfile(path) else {}
    if isinstance(entries.get(name), dict) and len(entries[name]) > 1:
        return entries[name], False
    info = dict(Machine.get_defaults(), machine=name)  # this host's CPU, OS, memory
    entries = {k: v for k, v in entries.items() if k != "version"}
    entries[name] = info
    # asv rewrites the file in place: a kill mid-write would leave a truncated file that
    # every later run fails to read. Written beside it and renamed over it instead (over
    # the file a dotfiles symlink points at, not the link).
    target = os.path.realpath(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        util.write_json(tmp, entries, MachineCollection.api_version)
        if os.path.exists(target):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return info, True
