"""Install the pinned sources of `sources.toml`: npm packages into `data/raw/npm/`, Debian
packages with apt-get (as root, on Debian/Ubuntu). Already-installed sources cost one check.

Elsewhere (no apt-get, or not root) the Debian-sourced domains are skipped with a message; a
user can install the same packages by hand (they are plain font/image packages) or point
`TINYTRAIN_SYSTEM_SHARE` at a folder laid out like /usr/share holding their files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from .domains import data_root

SOURCES = tomllib.loads((Path(__file__).with_name("sources.toml")).read_text())


def npm_dir() -> Path:
    return data_root() / "raw" / "npm"


def npm_version(pkg: str) -> str | None:
    f = npm_dir() / "node_modules" / pkg / "package.json"
    return json.loads(f.read_text()).get("version") if f.is_file() else None


def apt_version(pkg: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Version}", pkg],
                       capture_output=True, text=True)
    status, _, version = r.stdout.partition("|")
    return version if r.returncode == 0 and status.endswith("installed") and \
        "not-installed" not in status else None


def install_npm(pkgs: list[str]) -> list[str]:
    """Install the pinned npm packages that are missing; returns those still missing."""
    want = {p: SOURCES["npm"][p] for p in pkgs}
    missing = [p for p, v in want.items() if npm_version(p) != v]
    if not missing:
        return []
    if not shutil.which("npm"):
        print(f"npm not found: cannot install {missing}; install Node.js/npm, then rerun")
        return missing
    d = npm_dir()
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "package.json").exists():
        (d / "package.json").write_text('{"name": "tinytrain-data-sources", "private": true}\n')
    specs = [f"{p}@{want[p]}" for p in missing]
    print(f"npm install {' '.join(specs)} -> {d} (large: @iconify/json is ~465 MB)", flush=True)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                        "--no-save", *specs], cwd=d)
    if r.returncode != 0:
        print(f"npm install failed (exit {r.returncode})")
    return [p for p in missing if npm_version(p) != want[p]]


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
