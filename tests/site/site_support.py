"""Helpers for the browser check of the published site: a local server and an offline Chromium.

`serve_site` serves a published ``html/`` as it is, on 127.0.0.1, and records
every request. `start_chromium` starts Debian's headless Chromium through
Debian's chromedriver, cut off from every other host: host names resolve to
nothing but 127.0.0.1, and everything else goes through a proxy address that
refuses connections. `requests_made` lists every address the browser asked
for (Chrome's performance log), so a test can fail on any request to another
host, whether or not it would have succeeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.server
import json
import shutil
import socket
import tempfile
import threading
from urllib.parse import urlsplit

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
    # Offline: no name resolves except 127.0.0.1, and no connection leaves except to it.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@dataclasses.dataclass
class ServedSite:
    url: str  # base address, ends with "/"
    failed_requests: list[str]  # "404 /path" for every request that was not answered 200/304


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    failed: list[str]  # set per server by serve_site

    def log_request(self, code="-", size="-") -> None:
        if str(getattr(code, "value", code)) not in ("200", "304"):
            self.failed.append(f"{getattr(code, 'value', code)} {self.path}")

    def log_message(self, format, *args) -> None:  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve_site(html_dir):
    """Serve *html_dir* untouched on a free port of 127.0.0.1 in a thread; yield a `ServedSite`."""
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


def find_chromium() -> tuple[str, str] | None:
    """Return (chromium, chromedriver) paths from Debian's packages, or None if either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    return None


@contextlib.contextmanager
def refusing_proxy():
    """A 127.0.0.1 address bound but never listening: every connection to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextlib.contextmanager
def start_chromium(chromium: str, chromedriver: str, javascript: bool = True):
    """Yield a headless, offline Chromium WebDriver; Selenium Manager never runs (paths are given)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="stardag-chromium-") as profile, refusing_proxy() as proxy:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        # Loopback bypasses the proxy (Chromium's default); any other host goes to a dead end.
        options.add_argument(f"--proxy-server=http://{proxy}")
        options.add_argument(f"--user-data-dir={profile}")
        if not javascript:
            options.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


def browser_errors(driver) -> list[str]:
    """Return the SEVERE entries of the browser console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requests_made(driver) -> list[str]:
    """Every address the browser requested since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def other_hosts(urls: list[str], base: str) -> list[str]:
    """The addresses in *urls* not served by *base*'s host (data: and the like are local)."""
    host = urlsplit(base).netloc
    return [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")
            and urlsplit(u).netloc != host]
