"""tools/bench.py: the machine results are filed under, and a preview only this machine sees."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import bench  # noqa: E402

HOST = platform.uname().node


def test_results_are_filed_under_this_host_even_with_another_machines_file(tmp_path, monkeypatch,
                                                                            capsys):
    """A ~/.asv-machine.json copied from another machine: asv alone would file under its name."""
    monkeypatch.setenv("HOME", str(tmp_path))
    other = {"machine": "other-box", "os": "Linux", "arch": "x86_64", "cpu": "elsewhere",
             "num_cpu": "64", "ram": "1"}
    (tmp_path / ".asv-machine.json").write_text(json.dumps({"other-box": other, "version": 1}))
    calls = []
    monkeypatch.setattr(bench, "asv", lambda args, found, console=None: calls.append(args) or 0)

    bench.ensure_machine([])
    bench.run_asv(["--python=3.11", "HEAD^!"], {})
    out = capsys.readouterr().out
    assert f"described this machine as {HOST!r}" in out
    assert f"machine {HOST!r}" in out
    assert calls == [["run", "--machine", HOST, "--python=3.11", "HEAD^!"]]
    entries = json.loads((tmp_path / ".asv-machine.json").read_text())
    assert entries["other-box"] == other  # left as it was
    assert entries[HOST]["machine"] == HOST and entries[HOST]["num_cpu"]  # this host, described

    calls.clear()  # a name given by the user is kept, and its entry made
    bench.ensure_machine(["--machine", "named"])
    bench.run_asv(["--machine", "named", "HEAD^!"], {})
    assert calls == [["run", "--machine", "named", "HEAD^!"]]
    assert "named" in json.loads((tmp_path / ".asv-machine.json").read_text())


@pytest.mark.parametrize("form", ["preview", "asv options first"])
def test_preview_listens_on_loopback_only(tmp_path, form):
    """Also as ``asv --config X preview``: asv's own preview would listen on every interface."""
    (tmp_path / "index.html").write_text("<p>site</p>")
    if form == "preview":
        args = ["preview", "--port", "0", "--html-dir", str(tmp_path)]
    else:
        config = tmp_path / "conf" / "asv.conf.json"
        config.parent.mkdir()
        config.write_text(json.dumps({"version": 1, "html_dir": ".."}))
        args = ["--verbose", "--conf", str(config), "preview", "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "bench.py"), "asv", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert "this machine only" in line, line
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "index.html", timeout=10) as reply:
            assert reply.read() == b"<p>site</p>"
        listening = [c.laddr.ip for c in psutil.Process(proc.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening == ["127.0.0.1"], listening
    finally:
        proc.kill()
        proc.wait()


def test_publish_never_deletes_a_directory_that_is_not_a_site(tmp_path, monkeypatch):
    """asv publish deletes its --html-dir first: a mistyped one would take someone's files."""
    calls = []
    monkeypatch.setattr(bench, "asv", lambda args, found, console=None: calls.append(args) or 1)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("years of work")
    for args in (["--html-dir", str(docs)], ["-o", str(docs)], [f"--html={docs}"]):
        with pytest.raises(bench.BenchError, match="not a site asv published"):
            bench.publish({}, args)
    assert (docs / "thesis.tex").read_text() == "years of work" and calls == []

    site = tmp_path / "site"  # a site published before is replaced, as asv does
    site.mkdir()
    (site / "asv.js").write_text("")
    assert bench.publish({}, ["-o", str(site)]) == 1
    assert len(calls) == 1 and calls[0][0] == "publish" and calls[0][-2:] == ["-o", str(site)]


def test_a_machine_entry_write_that_fails_midway_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    """asv wrote ~/.asv-machine.json in place: a kill mid-write left a file no run could read."""
    from asv import util

    monkeypatch.setenv("HOME", str(tmp_path))
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    before = json.dumps({"other-box": {"machine": "other-box", "os": "Linux"}, "version": 1})
    (dotfiles / "asv-machine.json").write_text(before)
    (tmp_path / ".asv-machine.json").symlink_to(dotfiles / "asv-machine.json")

    def killed_midway(path, data, api_version=None, compact=False):
        Path(path).write_text(json.dumps(data)[:20])
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(util, "write_json", killed_midway)
        with pytest.raises(KeyboardInterrupt):
            bench.ensure_machine(["--machine", "named"])
    assert (dotfiles / "asv-machine.json").read_text() == before
    assert sorted(p.name for p in dotfiles.iterdir()) == ["asv-machine.json"]

    bench.ensure_machine(["--machine", "named"])  # then a whole write: the link is kept
    assert (tmp_path / ".asv-machine.json").is_symlink()
    entries = json.loads((dotfiles / "asv-machine.json").read_text())
    assert set(entries) == {"other-box", "named", "version"}
