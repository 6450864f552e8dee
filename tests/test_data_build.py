"""`make data` on a fresh machine: sources install together and never remove one another, every
builder declares what it reads, a failed or undersized domain is never written and makes the
build exit non-zero, and the base domain does not depend on what else is on disk. Runs in a
temporary data folder with a stand-in `npm`, in seconds."""
from __future__ import annotations

import json
import os
import stat

import pytest
from PIL import Image

from tinytrain_core.data import __main__ as cli
from tinytrain_core.data import install
from tinytrain_core.data.domains import BUILTIN, BelowMinima, domains_dir
from tinytrain_core.data.sources import common


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture()
def fake_npm(tmp_path, monkeypatch):
    """An `npm` on PATH that behaves like `npm ci`: wipes node_modules, then installs exactly
    the root dependencies of the package.json in its working directory; logs each call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "npm.log"
    script = bin_dir / "npm"
    script.write_text(f"""#!/usr/bin/env python3
import json, os, shutil, sys
open({str(log)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
assert os.path.isfile("package-lock.json"), "npm ci needs the lock"
shutil.rmtree("node_modules", ignore_errors=True)
for name, version in json.load(open("package.json"))["dependencies"].items():
    os.makedirs(os.path.join("node_modules", name), exist_ok=True)
    json.dump({{"name": name, "version": version}}, open(os.path.join("node_modules", name, "package.json"), "w"))
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_npm_pins_and_lock_agree():
    lock = json.loads((install.NPM_MANIFEST / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == install.npm_pins()
    for pkg, version in install.npm_pins().items():
        assert lock["packages"][f"node_modules/{pkg}"]["version"] == version
    declared = {p for pkgs in install.SOURCES["needs_npm"].values() for p in pkgs}
    assert declared <= set(install.npm_pins())


def test_npm_sources_install_once_together_and_never_remove_each_other(data_root, fake_npm):
    assert install.install_npm(["@iconify/json"]) == []
    assert install.install_npm(["openmoji"]) == []           # already there: no second call
    assert install.install_npm(["emoji-datasource-apple", "@iconify/json"]) == []
    assert fake_npm.read_text().splitlines() == ["ci --no-audit --no-fund --ignore-scripts"]
    assert all(install.npm_version(p) == v for p, v in install.npm_pins().items())


def test_a_builder_reading_an_undeclared_npm_source_fails(data_root, fake_npm):
    install.install_npm(["@iconify/json"])
    with install.building("signs"):
        assert install.npm_package("emoji-datasource-apple").is_dir()   # declared since the fix
        with pytest.raises(install.UndeclaredSource, match="openmoji"):
            install.npm_package("openmoji")
    with install.building("icons"), pytest.raises(install.UndeclaredSource):
        install.npm_package("emoji-datasource-facebook")


def test_a_missing_npm_source_names_the_fix(data_root):
    with pytest.raises(FileNotFoundError, match="make data"):
        install.npm_package("openmoji")


def _writer_with(name, n_classes, images=8):
    w = common.DomainWriter(name)
    for c in range(n_classes):
        for i in range(images):
            im = Image.new("RGB", (128, 128), (255, 255, 255))
            im.putpixel((c, i), (0, 0, 0))
            w.add(f"c{c:03d}", im, dedup=False, drop_blank=False)
    return w


def test_an_empty_domain_is_never_written(data_root):
    w = _writer_with("emoji", 0)
    with pytest.raises(BelowMinima, match="0 classes"):
        w.finish("target", "x", [], min_images=6)
    assert not (domains_dir() / "emoji").exists() and not w.tmp.exists()


def test_a_builtin_domain_below_its_minima_is_not_written(data_root):
    w = _writer_with("signs", 12)
    with pytest.raises(BelowMinima, match="test 7 < 50"):
        w.finish("target", "x", [], min_images=6)
    assert not (domains_dir() / "signs").exists()


def test_failed_domains_make_the_build_exit_nonzero_and_are_listed(data_root, monkeypatch, capsys):
    from tinytrain_core.data.sources import cards, fashion

    def broken(profile):
        raise RuntimeError("source damaged")

    monkeypatch.setattr(cards, "build", broken)
    monkeypatch.setattr(fashion, "build", lambda profile: _writer_with("fashion", 3).finish(
        "target", "x", [], min_images=6))
    assert cli.build("default", ["cards", "fashion"], force=False, install=False) == 1
    out = capsys.readouterr().out
    assert "FAILED for 2 domain(s): cards, fashion" in out.splitlines()[-1]
    assert not (domains_dir() / "cards").exists() and not (domains_dir() / "fashion").exists()


def test_base_domain_build_pulls_in_every_target_first(data_root):
    targets = [n for n, (role, _) in BUILTIN.items() if role == "target"]
    assert cli.build_order(["icons"]) == targets + ["icons"]
    assert cli.build_order(["cards", "glyphs"]) == ["cards", "glyphs"]


def test_base_collision_list_ignores_other_domains_on_disk_and_needs_every_target(data_root):
    for name in ("cards", "mine"):      # a built-in target and a bring-your-own domain
        d = domains_dir() / name
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps(
            {"splits": {"train": [], "val": [], "test": [f"{name}_class"]}, "labels": {}}))
    assert common.class_names_of(["cards"]) == {"cards_class"}
    with pytest.raises(FileNotFoundError, match="glyphs is not built"):
        common.class_names_of(["cards", "glyphs"])


def test_icons_skipped_when_a_target_failed(data_root, monkeypatch, capsys):
    from tinytrain_core.data.sources import cards, icons
    monkeypatch.setattr(cards, "build", lambda profile: (_ for _ in ()).throw(RuntimeError("x")))
    called = []
    monkeypatch.setattr(icons, "build", lambda profile: called.append(1))
    # the other eight targets look built and sufficient
    monkeypatch.setattr(cli, "_usable", lambda name: name not in ("cards", "icons"))
    assert cli.build("default", ["cards", "icons"], force=False, install=False) == 1
    assert not called
    assert "[icons] SKIPPED: needs every target domain; not built: cards" in capsys.readouterr().out
