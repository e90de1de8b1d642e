"""An upstream-style task module, with its root set as upstream users set it: ``STARDAG_TARGET_ROOTS`` only.

Upstream stardag reads its target roots from ``STARDAG_TARGET_ROOTS`` (a JSON
object of named roots), set in the environment or in ``os.environ`` before a
build, as its own benchmark runner does. Here a fresh interpreter, whose only
root setting is that variable, builds ``upstream_tasks`` (auto_namespace,
``task_id`` labels, ``SubClass`` dependencies, ``TaskStruct``, open/open_aio
for writing and reading) under every configuration; worker processes (process
pool, Dask) must write where the variable says.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import subprocess_env
from stardag.target import ENV_TARGET_ROOT, ENV_TARGET_ROOTS

HAS_DASK = importlib.util.find_spec("distributed") is not None
CONFIGS = ["sequential", "thread", "process", "async"] + ["dask"] * HAS_DASK

_SCRIPT = r"""
import asyncio, json, os, sys
import upstream_tasks as up
from stardag.build import (DefaultExecutionModeSelector, HybridConcurrentTaskRunner, build, build_aio,
                           build_sequential)

roots, dask_address = json.loads(sys.argv[1]), sys.argv[2]
out = {}
for i, (config, root) in enumerate(roots.items()):
    if i:  # the first build reads the variable the interpreter started with; the others set it here
        os.environ["STARDAG_TARGET_ROOTS"] = json.dumps({"default": root})
    report = up.Report(task_id="report", source=up.dag())
    if config == "sequential":
        summary = build_sequential([report])
    else:
        mode = "thread" if config == "async" else config
        extra = {"dask_address": dask_address} if config == "dask" else {}
        runner = HybridConcurrentTaskRunner(execution_mode_selector=DefaultExecutionModeSelector(mode),
                                            max_thread_workers=2, max_process_workers=2, **extra)
        summary = (asyncio.run(build_aio([report], task_runner=runner)) if config == "async"
                   else build([report], task_runner=runner))
    out[config] = {"status": summary.status.name, "n_succeeded": summary.n_succeeded,
                   "failures": [repr(f.error) for f in summary.failures],
                   "report": report.load(), "root": report.source.load(),
                   "paths": [report.output().path, report.source.output().path]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    base = tmp_path_factory.mktemp("roots")
    roots = {config: str(base / config) for config in CONFIGS}
    address = request.getfixturevalue("dask_cluster") if HAS_DASK else ""
    env = subprocess_env(**{ENV_TARGET_ROOTS: json.dumps({"default": roots[CONFIGS[0]]})})
    env.pop(ENV_TARGET_ROOT, None)
    home = base / "home"  # the default root (~/.stardag/targets) must stay unused
    home.mkdir()
    env["HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(roots), address], env=env,
                          cwd=base, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"roots": roots, "home": home, "base": base, "out": json.loads(proc.stdout.splitlines()[-1])}


@pytest.mark.parametrize("config", CONFIGS)
def test_an_upstream_module_builds_into_the_root_stardag_target_roots_names(built: dict, config: str) -> None:
    result, root = built["out"][config], built["roots"][config]
    assert result["status"] == "SUCCESS", result["failures"]
    assert result["n_succeeded"] == 9  # dag()'s 8 tasks and the report reading its root
    assert result["report"] == "root=7"
    assert result["root"]["value"] == 7
    for path in result["paths"]:
        assert Path(path).is_relative_to(Path(root) / "upstream_tasks"), path  # auto_namespace's directory
    written = [p for p in Path(root).rglob("*.json")]
    assert len(written) == 9, written  # every task's output, in this root and nowhere else


def test_nothing_is_written_outside_the_named_roots(built: dict) -> None:
    assert not any(built["home"].iterdir())
    outside = {p.name for p in built["base"].iterdir()} - set(CONFIGS) - {"home"}
    assert not outside, outside
