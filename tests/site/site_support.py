"""Helpers for the browser check of an asv-published site.

Three jobs, each small: build a tiny asv project with two commits and publish it
(`build_demo_site`), serve a published ``html/`` over http on 127.0.0.1 (`serve_site`), and
start Debian's headless Chromium through Debian's chromedriver (`start_chromium`).

asv 0.6.6's ``index.html`` loads jQuery, flot, Bootstrap, stupidtable and md5 from public
CDNs, which these machines (and CI) cannot reach. The server therefore hands the browser a
copy of ``index.html`` whose CDN ``src``/``href`` point at the same library versions kept in
``vendor/`` (see ``vendor/README.md``). Where the copy is byte-identical to the CDN file its
``integrity`` attribute stays, so the browser itself proves the bytes match; the rest of the
site is served untouched.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

VENDOR_DIR = Path(__file__).with_name("vendor")
VENDOR_PREFIX = "/_cdn_copies/"

# CDN address in asv 0.6.6's index.html -> local copy under vendor/.
CDN_COPIES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "flot-0.8.3/jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": "flot-0.8.3/jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": "flot-0.8.3/jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": "flot-0.8.3/jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "flot-orderbars-1.0.0/jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "stupid-table-plugin-1.1.3/stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "blueimp-md5-2.19.0/md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap-3.1.1/js/bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "bootstrap-3.1.1/css/bootstrap.min.css",
}

# A <script src=...> or <link href=...> tag that loads from another host.
_EXTERNAL_ASSET = re.compile(
    r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]+)\"[^>]*>", re.IGNORECASE
)
_INTEGRITY = re.compile(r"\s+integrity=\"([a-z0-9]+)-([^\"]+)\"", re.IGNORECASE)

INSTALL_HINT = "apt-get install -y chromium chromium-driver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


# --------------------------------------------------------------------------------------
# index.html with local copies of the CDN libraries


def external_assets(html: str) -> list[str]:
    """Return the addresses of scripts and stylesheets that *html* loads from other hosts."""
    return [m.group(1) for m in _EXTERNAL_ASSET.finditer(html) if "rel=\"alternate\"" not in m.group(0)]


def localize_cdn_assets(html: str) -> str:
    """Point every CDN script and stylesheet in *html* at its copy under `VENDOR_PREFIX`.

    Raises:
        LookupError: *html* loads an asset that has no entry in `CDN_COPIES`.
    """
    missing = [url for url in external_assets(html) if url not in CDN_COPIES]
    if missing:
        raise LookupError(
            f"index.html loads {missing!r} from the network, which tests cannot reach; "
            f"add a copy under {VENDOR_DIR} and an entry in CDN_COPIES in {__file__}"
        )

    def localize(match: re.Match) -> str:
        tag, url = match.group(0), match.group(1)
        copy = CDN_COPIES[url]
        tag = tag.replace(url, VENDOR_PREFIX + copy)
        integrity = _INTEGRITY.search(tag)
        if integrity and not _digest_matches(copy, integrity.group(1), integrity.group(2)):
            tag = tag.replace(integrity.group(0), "")
        return tag

    return _EXTERNAL_ASSET.sub(localize, html)


@functools.cache
def _digest_matches(copy: str, algorithm: str, expected: str) -> bool:
    data = (VENDOR_DIR / copy).read_bytes()
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == expected


# --------------------------------------------------------------------------------------
# http server


@dataclasses.dataclass
class ServedSite:
    url: str  # base address, ends with "/"
    failed_requests: list[str]  # "404 /path" for every request that was not answered 200/304


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    failed: list[str]  # set per server by serve_site

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            html = (Path(self.directory) / "index.html").read_text(encoding="utf-8")
            body = localize_cdn_assets(html).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:
        local = urlsplit(path).path
        if local.startswith(VENDOR_PREFIX):
            return str(VENDOR_DIR / local[len(VENDOR_PREFIX):])
        return super().translate_path(path)

    def log_request(self, code="-", size="-") -> None:
        if str(getattr(code, "value", code)) not in ("200", "304"):
            self.failed.append(f"{getattr(code, 'value', code)} {self.path}")

    def log_message(self, format, *args) -> None:  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve_site(html_dir: Path):
    """Serve *html_dir* on a free port of 127.0.0.1 in a thread; yield a `ServedSite`."""
    failed: list[str] = []
    handler = functools.partial(
        type("Handler", (_SiteHandler,), {"failed": failed}), directory=str(html_dir)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield ServedSite(url=f"http://127.0.0.1:{server.server_address[1]}/", failed_requests=failed)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------
# browser


def find_chromium() -> tuple[str, str] | None:
    """Return (chromium, chromedriver) paths from Debian's packages, or None if either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    return None


@contextlib.contextmanager
def start_chromium(chromium: str, chromedriver: str):
    """Yield a headless Chromium WebDriver; Selenium Manager never runs (both paths are given)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="stardag-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


def browser_errors(driver) -> list[str]:
    """Return the SEVERE entries of the browser console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# --------------------------------------------------------------------------------------
# a tiny asv project with two commits

CONFIGURATIONS = ["sequential", "thread_pool", "process_pool", "async"]

_BENCHMARK_SOURCE = '''\
"""Benchmarks of the site-check project: one timed, one tracked value, per configuration."""

import time

# sleep per configuration, in milliseconds; the second commit changes them
DELAY_MS = {delays!r}


class TimeBuild:
    params = {configurations!r}
    param_names = ["configuration"]
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0
    min_run_count = 1

    def time_build(self, configuration):
        time.sleep(DELAY_MS[configuration] / 1000)


class TrackTasks:
    params = {configurations!r}
    param_names = ["configuration"]

    def track_n_tasks_run(self, configuration):
        return sum(DELAY_MS.values()) + len(configuration)
'''

# milliseconds slept per configuration at each of the two commits
COMMIT_DELAYS_MS = [
    {"sequential": 8, "thread_pool": 5, "process_pool": 11, "async": 3},
    {"sequential": 8, "thread_pool": 3, "process_pool": 9, "async": 2},
]


@dataclasses.dataclass
class DemoSite:
    html_dir: Path
    commits: list[str]  # full hashes, oldest first
    benchmarks: list[str]  # names the summary page must list


def build_demo_site(root: Path) -> DemoSite:
    """Make a git repo with two commits of a tiny asv project under *root*, run it, publish it."""
    repo = root / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    home = root / "home"  # asv keeps its machine file in $HOME; keep it out of the real one
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_AUTHOR_NAME": "site check",
        "GIT_AUTHOR_EMAIL": "site-check@example.invalid",
        "GIT_COMMITTER_NAME": "site check",
        "GIT_COMMITTER_EMAIL": "site-check@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }

    def run(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)!r} exited with {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout

    conf = {
        "version": 1,
        "project": "site-check",
        "project_url": "https://example.invalid/site-check",
        "repo": ".",
        "branches": ["main"],
        "environment_type": "existing",
        "benchmark_dir": "benchmarks",
        "results_dir": "results",
        "html_dir": "html",
        "env_dir": "env",
    }
    (repo / "asv.conf.json").write_text(json.dumps(conf, indent=2))
    (repo / "benchmarks" / "__init__.py").write_text("")
    (repo / ".gitignore").write_text("results/\nhtml/\nenv/\n.asv/\n")
    run("git", "init", "-q", "-b", "main")

    asv = (sys.executable, "-m", "asv")
    run(*asv, "machine", "--yes", "--machine", "site-check")
    commits = []
    for i, delays in enumerate(COMMIT_DELAYS_MS):
        source = _BENCHMARK_SOURCE.format(delays=delays, configurations=CONFIGURATIONS)
        (repo / "benchmarks" / "bench_site.py").write_text(source)
        run("git", "add", "-A")
        run("git", "commit", "-q", "-m", f"site check commit {i + 1}")
        commit = run("git", "rev-parse", "HEAD").strip()
        commits.append(commit)
        # An "existing" environment benchmarks the working tree, which is this commit.
        run(*asv, "run", "--python=same", "--machine", "site-check", f"--set-commit-hash={commit}")
    run(*asv, "publish")
    return DemoSite(
        html_dir=repo / "html",
        commits=commits,
        benchmarks=["bench_site.TimeBuild.time_build", "bench_site.TrackTasks.track_n_tasks_run"],
    )

