"""One log file per run, and pruning the old ones."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("nightly")


def open_log(log_dir: str, stamp: str, quiet: bool) -> str:
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, f"nightly-{stamp}.log")
    log.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    to_stderr = logging.StreamHandler()
    to_stderr.setLevel(logging.WARNING if quiet else logging.INFO)
    for handler in (logging.FileHandler(path, encoding="utf-8"), to_stderr):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    log.propagate = False
    return path


def prune_logs(log_dir: str, keep_n: int, keep: str) -> None:
    logs = sorted(
        (e for e in os.scandir(log_dir)
         if e.name.startswith("nightly-") and e.name.endswith(".log")),
        key=lambda e: e.stat().st_mtime,
        reverse=True,
    )
    for entry in logs[keep_n:]:
        if entry.path != keep:
            os.remove(entry.path)


def close_log() -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)
