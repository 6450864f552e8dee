"""Install the pinned sources of the embedded domains: the npm packages of `npm/package.json`
(exact versions, with `npm/package-lock.json`) into `data/raw/npm/`, and the Debian packages of
`sources.toml` with apt-get (as root, on Debian/Ubuntu). Already-installed sources cost one check.

All npm sources install together in one `npm ci` from the committed lock: installing them one
domain at a time with `npm install --no-save` made each call remove what the previous one had
installed. Builders reach an npm package only through `npm_package(name)`, which refuses a
package that the domain being built does not declare in `sources.toml` ([needs_npm]), so a
missing declaration fails loudly instead of working only on a machine that happens to have it.

Elsewhere (no apt-get, or not root) the Debian-sourced domains are skipped with a message; a
user can install the same packages by hand (they are plain font/image packages) or point
`TINYTRAIN_SYSTEM_SHARE` at a folder laid out like /usr/share holding their files.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from .domains import data_root

SOURCES = tomllib.loads((Path(__file__).with_name("sources.toml")).read_text())
NPM_MANIFEST = Path(__file__).with_name("npm")    # package.json + package-lock.json, committed
_building: str | None = None                      # the domain whose builder is running


class UndeclaredSource(RuntimeError):
    pass


def npm_pins() -> dict[str, str]:
    """{package: exact version} of every npm source (the one place versions are pinned)."""
    return json.loads((NPM_MANIFEST / "package.json").read_text())["dependencies"]


def npm_dir() -> Path:
    return data_root() / "raw" / "npm"


def npm_version(pkg: str) -> str | None:
    f = npm_dir() / "node_modules" / pkg / "package.json"
    return json.loads(f.read_text()).get("version") if f.is_file() else None


@contextlib.contextmanager
def building(domain: str):
    """Mark `domain` as the one being built, so `npm_package` can check its declarations."""
    global _building
    old, _building = _building, domain
    try:
        yield
    finally:
        _building = old


def npm_package(pkg: str) -> Path:
    """The installed folder of npm package `pkg`; the builder of the current domain must
    declare it in sources.toml, and it must be installed at its pinned version."""
    if _building is not None and pkg not in SOURCES["needs_npm"].get(_building, []):
        raise UndeclaredSource(f"the {_building} builder reads npm:{pkg} but sources.toml does "
                               f"not declare it under [needs_npm] {_building}")
    if npm_version(pkg) != npm_pins().get(pkg):
        raise FileNotFoundError(f"npm:{pkg} {npm_pins().get(pkg)} is not installed in "
                                f"{npm_dir()}; run `make data` (it installs the npm sources)")
    return npm_dir() / "node_modules" / pkg


def install_npm(pkgs: list[str]) -> list[str]:
    """Make sure `pkgs` are installed at their pins; returns those still missing. Installs the
    whole pinned set at once (`npm ci`), so no install ever removes another source."""
    pins = npm_pins()
    unknown = [p for p in pkgs if p not in pins]
    if unknown:
        raise ValueError(f"npm sources {unknown} are not pinned in {NPM_MANIFEST}/package.json")
    if all(npm_version(p) == v for p, v in pins.items()):
        return []
    if not shutil.which("npm"):
        print(f"npm not found: cannot install {sorted(pins)}; install Node.js/npm, then rerun")
        return [p for p in pkgs if npm_version(p) != pins[p]]
    d = npm_dir()
    d.mkdir(parents=True, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copyfile(NPM_MANIFEST / f, d / f)
    print(f"npm ci {' '.join(f'{p}@{v}' for p, v in pins.items())} -> {d} "
          "(large: @iconify/json is ~465 MB)", flush=True)
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=d)
    if r.returncode != 0:
        print(f"npm ci failed (exit {r.returncode})")
    return [p for p in pkgs if npm_version(p) != pins[p]]


def apt_version(pkg: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Version}", pkg],
                       capture_output=True, text=True)
    status, _, version = r.stdout.partition("|")
    return version if r.returncode == 0 and status.endswith("installed") and \
        "not-installed" not in status else None


_apt_updated = False


def install_apt(pkgs: list[str]) -> list[str]:
    """apt-get install the missing Debian packages (root only); returns those still missing."""
    global _apt_updated
    missing = [p for p in dict.fromkeys(pkgs) if apt_version(p) is None]
    if not missing:
        return []
    if not shutil.which("apt-get") or os.geteuid() != 0:
        print(f"cannot install Debian packages {missing}: needs apt-get as root (see README, "
              "'data on a non-Debian machine')")
        return missing
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env)
        _apt_updated = True
    print(f"apt-get install {' '.join(missing)}", flush=True)
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       env=env)
    if r.returncode != 0:  # one unavailable package must not block the others
        for p in missing:
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", p],
                           env=env, capture_output=True)
    return [p for p in missing if apt_version(p) is None]


def install_all(domains: list[str]) -> None:
    """Install the sources of all `domains` up front, each package manager called once (the
    per-domain `ensure` then only checks)."""
    npm = sorted({p for d in domains for p in SOURCES["needs_npm"].get(d, [])})
    apt = [p for d in domains for p in SOURCES["apt"].get(d, [])]
    if npm:
        install_npm(npm)
    if apt:
        install_apt(apt)


def ensure(domain: str) -> tuple[bool, str]:
    """Install what `domain` needs. (ok, message); ok is False when a required source is
    missing. Fonts are partly optional: glyphs/cjk proceed with whatever faces installed."""
    apt = SOURCES["apt"].get(domain, [])
    npm = SOURCES["needs_npm"].get(domain, [])
    miss_npm = install_npm(npm) if npm else []
    miss_apt = install_apt(apt) if apt else []
    if miss_npm:
        return False, f"npm packages not installed: {', '.join(miss_npm)}"
    optional = domain in ("glyphs", "cjk", "signs")
    if miss_apt and (not optional or len(miss_apt) == len(apt)):
        return False, f"Debian packages not installed: {', '.join(miss_apt)}"
    msg = f"(missing, continuing without: {', '.join(miss_apt)})" if miss_apt else ""
    return True, msg


def source_record(kind: str, pkg: str, licence: str) -> dict:
    version = npm_version(pkg) if kind == "npm" else apt_version(pkg)
    return {"name": f"{kind}:{pkg}", "version": version or "missing", "licence": licence}
