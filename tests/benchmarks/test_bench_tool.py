"""tools/bench.py and tools/interpreter.py: real interpreters found, shims and missing versions reported."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import interpreter  # noqa: E402

HERE = "%d.%d" % sys.version_info[:2]
BENCH = [sys.executable, str(REPO / "tools" / "bench.py")]


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_broken_shim_first_on_path_is_passed_over(tmp_path, monkeypatch):
    """A pyenv shim for a version pyenv does not select exits non-zero: never chosen."""
    shims = tmp_path / "shims"
    shims.mkdir()
    write_script(shims / f"python{HERE}", "echo 'pyenv: python: command not found' >&2; exit 127")
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    found = interpreter.discover([HERE])
    assert HERE in found  # the interpreter running this test is always a candidate
    assert not found[HERE].executable.startswith(str(shims))
    assert os.path.realpath(found[HERE].executable) == found[HERE].executable


def test_working_wrapper_resolves_to_the_real_interpreter(tmp_path, monkeypatch):
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    real = os.path.realpath(sys.executable)
    write_script(wrappers / f"python{HERE}", f'exec "{real}" "$@"')
    monkeypatch.setenv(interpreter.EXTRA_PATH_VAR, str(wrappers))
    found = interpreter.discover([HERE])
    assert found[HERE].executable == real


def test_link_dir_holds_working_versioned_links(tmp_path):
    found = interpreter.discover([HERE])
    directory = interpreter.link_dir(found, str(tmp_path))
    out = subprocess.run([str(Path(directory) / f"python{HERE}"), "-c",
                          "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == HERE


def test_missing_version_is_reported_not_fatal():
    found = interpreter.discover([HERE, "3.99"])
    text = interpreter.describe([HERE, "3.99"], found)
    assert "python3.99: MISSING" in text
    assert f"python{HERE}: /" in text


def test_pythons_command_prints_every_configured_version():
    proc = subprocess.run([*BENCH, "pythons"], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 3), proc.stderr
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"python{version}:" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_no_interpreter_found_exits_nonzero_without_traceback():
    proc = subprocess.run([*BENCH, "run", "--python=3.99", "--quick"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert "no interpreter found for any of 3.99" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unknown_command_is_an_error_message():
    proc = subprocess.run([*BENCH, "frobnicate"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "unknown command 'frobnicate'" in proc.stderr


def test_quick_and_smoke_runs_are_not_saved_unless_asked(monkeypatch, capsys):
    """One sample per benchmark (or smoke work) must not enter asv-results/ as if measured properly."""
    import bench

    monkeypatch.delenv("STARDAG_BENCH_SMOKE", raising=False)
    assert bench.unsaved_if_quick(["--quick", "HEAD^!"]) == ["--quick", "HEAD^!", "--dry-run"]
    assert "not saved" in capsys.readouterr().out
    assert bench.unsaved_if_quick(["-q", "-n", "HEAD^!"]) == ["-q", "-n", "HEAD^!"]
    assert bench.unsaved_if_quick(["HEAD^!"]) == ["HEAD^!"]  # a full run is recorded
    for spelled in (["--qu"], ["-qe"], ["-e", "-q"]):  # as asv reads them: abbreviated, combined
        assert bench.unsaved_if_quick([*spelled, "HEAD^!"]) == [*spelled, "HEAD^!", "--dry-run"]
    assert bench.unsaved_if_quick(["--quick", "--dry-r", "HEAD^!"]) == ["--quick", "--dry-r",
                                                                         "HEAD^!"]
    assert bench.unsaved_if_quick(["--quick", "--save-quick", "ALL"]) == ["--quick", "ALL"]
    assert "--save-quick" in capsys.readouterr().out

    monkeypatch.setenv("STARDAG_BENCH_SMOKE", "1")
    assert bench.unsaved_if_quick(["HEAD^!"]) == ["HEAD^!", "--dry-run"]
    assert "smoke" in capsys.readouterr().out


_AS_BENCH_MAIN = """
import runpy, sys
sys.argv = [{bench!r}, "asv", "--version"]
runpy.run_path({bench!r}, run_name="__main__")
"""


def test_sigterm_stops_asv_and_leaves_no_temporary_directory(tmp_path):
    """``kill PID`` of bench.py while asv runs: asv goes too, the interpreter links are removed, exit 143."""
    import signal
    import time

    fake = tmp_path / "fake" / "asv"  # an asv that runs until it is stopped, saying where it is
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import os, sys, time\n"
        f"open({str(tmp_path / 'asv.pid')!r}, 'w').write(f'{{os.getpid()}} {{os.environ[\"PATH\"].split(os.pathsep)[0]}}')\n"
        "time.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "fake"), STARDAG_BENCH_ROOT=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", _AS_BENCH_MAIN.format(bench=BENCH[1])], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "asv.pid").exists() or not (tmp_path / "asv.pid").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.05)
        pid, link_dir = (tmp_path / "asv.pid").read_text().split(" ", 1)
        assert Path(link_dir).is_dir() and Path(link_dir).name.startswith("stardag-bench-pythons-")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # the fake asv got SIGTERM; give it a moment to be reaped
            os.kill(int(pid), 0)
            time.sleep(0.05)
    assert not Path(link_dir).exists()
