"""The JavaScript and CSS libraries asv's pages load, fetched from the npm registry and cached.

asv 0.6's ``index.html`` loads jQuery, flot, Bootstrap and three plugins from
public CDNs, so a site read without internet draws nothing. Each CDN address
maps here to the same release's npm package; the package tarball is fetched
once from the registry, checked against the sha512 the registry published for
it (pinned below), kept in the cache, and the files the pages need are copied
into the site with the package's licence and ``package.json`` beside them.

stupidtable 1.0.1 (cdnjs) was never published to npm: its successor
``stupid-table-plugin@1.1.3`` (same author, same ``$.fn.stupidtable`` API) is
used. flot 0.8.3's npm package has the unminified sources of that release.
The checksum is checked here, at publish: the pages load the copies without the
CDN's ``integrity`` attribute (see pages.py).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
REGISTRY_VAR = "STARDAG_NPM_REGISTRY"
CACHE_VAR = "STARDAG_BENCH_CACHE"
SITE_DIR = "vendor"  # inside the published site
FETCH_TIMEOUT_S = 30


@dataclass(frozen=True)
class Package:
    """One npm package release: what to take from its tarball."""

    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball
    files: tuple[str, ...]  # paths inside the package the pages use
    licences: tuple[str, ...]  # licence files kept beside them

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def site_path(self) -> str:
        """Where the package's files go in the site (relative, POSIX)."""
        return f"{SITE_DIR}/{self.name}-{self.version}"


PACKAGES = {
    p.name: p
    for p in (
        Package("jquery", "3.3.1",
                "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==",
                ("dist/jquery.min.js",), ("LICENSE.txt",)),
        Package("flot", "0.8.3",
                "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==",
                ("jquery.flot.js", "jquery.flot.time.js", "jquery.flot.selection.js",
                 "jquery.flot.categories.js"), ("LICENSE.txt",)),
        Package("flot-orderbars", "1.0.0",
                "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==",
                ("js/jquery.flot.orderBars.js",), ()),  # MIT: stated in package.json and the file
        Package("stupid-table-plugin", "1.1.3",
                "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==",
                ("stupidtable.min.js",), ("LICENSE",)),
        Package("blueimp-md5", "2.19.0",
                "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==",
                ("js/md5.min.js",), ("LICENSE.txt",)),
        Package("bootstrap", "3.1.1",
                "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==",
                ("dist/js/bootstrap.min.js", "dist/css/bootstrap.min.css",
                 # the fonts bootstrap.min.css refers to (../fonts/)
                 "dist/fonts/glyphicons-halflings-regular.eot",
                 "dist/fonts/glyphicons-halflings-regular.svg",
                 "dist/fonts/glyphicons-halflings-regular.ttf",
                 "dist/fonts/glyphicons-halflings-regular.woff"), ("LICENSE",)),
    )
}

# Every address asv 0.6's pages load from another host -> (package, path inside it).
CDN_FILES = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": ("flot", "jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": ("flot", "jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        ("flot", "jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        ("flot", "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        ("flot-orderbars", "js/jquery.flot.orderBars.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        ("stupid-table-plugin", "stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap", "dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        ("bootstrap", "dist/css/bootstrap.min.css"),
}


class FetchError(Exception):
    """A package could not be had from the cache or the registry; the message says how to fix it."""


def cache_dir() -> Path:
    """``$STARDAG_BENCH_CACHE``, else ``$XDG_CACHE_HOME/stardag-bench``, else ``~/.cache/stardag-bench``."""
    given = os.environ.get(CACHE_VAR)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stardag-bench"


def registry() -> str:
    url = os.environ.get(REGISTRY_VAR) or os.environ.get("npm_config_registry") or DEFAULT_REGISTRY
    return url if url.endswith("/") else url + "/"


def tarball_url(package: Package) -> str:
    return f"{registry()}{package.name}/-/{package.name}-{package.version}.tgz"


def _matches(data: bytes, integrity: str) -> bool:
    algorithm, _, expected = integrity.partition("-")
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == expected


def fetch(package: Package) -> bytes:
    """The package's tarball: from the cache when its checksum holds, else from the registry.

    Raises:
        FetchError: the registry cannot be reached, or serves other bytes than the pinned ones.
    """
    folder = cache_dir() / "npm"
    path = folder / f"{package.name}-{package.version}.tgz"
    if path.is_file():
        data = path.read_bytes()
        if _matches(data, package.integrity):
            return data
        path.unlink()  # corrupt or tampered with: fetch it again
    url = tarball_url(package)
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise FetchError(
            f"could not fetch {package.label} from {url} ({reason}). Publish again with access "
            f"to the npm registry, set ${REGISTRY_VAR} to a registry mirror you can reach, "
            f"or copy the tarball to {path}"
        ) from None
    if not _matches(data, package.integrity):
        raise FetchError(
            f"{url} served a {package.label} tarball whose checksum is not the registry's "
            f"({package.integrity[:20]}...); not used. Check ${REGISTRY_VAR} / your proxy"
        )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".part", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # never a half-written tarball in the cache
    return data


def install(package: Package, site: Path) -> Path:
    """Copy the package's page files, licences and package.json into ``site``; return the folder.

    Raises:
        FetchError: as `fetch`, or the tarball lacks a file it should have.
    """
    data = fetch(package)
    dest = site / package.site_path
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    wanted = (*package.files, *package.licences, "package.json")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile() and "/" in m.name}
        for name in wanted:
            member = members.get(name)
            if member is None:
                raise FetchError(f"{package.label}'s tarball has no {name!r}")
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest
