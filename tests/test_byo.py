"""Bring your own domain (`make domain` / `import_folder`): conversion, class ids, what is
refused and what is reported. Every test builds its own small class folders and writes into a
temporary data folder, in seconds."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from tinytrain_core import data as D
from tinytrain_core.data.__main__ import main as cli
from tinytrain_core.data.byo import class_ids
from tinytrain_core.data.domains import domains_dir


@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root))
    return root


def make_folder(root, classes, n_images=3, seed=0):
    """`root/<class>/<i>.png`: small random RGB images, one folder per class name."""
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n_images):
            Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(root / c / f"{i}.png")
    return root


def names(n, prefix="class"):
    return [f"{prefix} {k}" for k in range(n)]


def saved_manifest(name):
    return json.loads((domains_dir() / name / "manifest.json").read_text())


def nothing_left(name):
    """No domain folder and no half-built temporary folder of that name."""
    return not (domains_dir() / name).exists() and not (domains_dir() / f".{name}.tmp").exists()


def test_bring_your_own_domain_converts_any_format(tmp_path, capsys):
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    for k in range(12):
        (src / f"Class {k}").mkdir(parents=True)
        for j in range(4):  # odd sizes, modes and formats
            arr = (rng.random((30 + 7 * j, 50, 3)) * 255).astype(np.uint8)
            im = Image.fromarray(arr).convert(["RGB", "L", "RGBA", "P"][j])
            im.save(src / f"Class {k}" / f"{j}.{['png', 'jpg', 'png', 'gif'][j]}")
    (src / "Class 0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 40)
    good = src / "Class 1" / "0.png"
    (src / "Class 1" / "truncated.png").write_bytes(good.read_bytes()[:-100])
    (src / "empty class").mkdir()
    with pytest.warns(UserWarning, match="empty class"):
        m = D.import_folder(src, "mine")
    out = capsys.readouterr().out
    assert "broken.png" in out and "truncated.png" in out
    d = D.load_domain("mine", "default")
    assert d.role == "target" and "mine" in D.list_domains("default")
    assert m["min_images_per_class"] == 4
    assert len(d.classes("val")) == 5 and len(d.classes("test")) == 7
    ep = D.sample_episode("mine", "test", 0, D.EpisodeConfig(mode="fixed", ways=5, shots=2,
                                                            queries=2), profile="default")
    xs, *_ = D.episode_tensors(ep)
    assert xs.shape == (10, 3, 128, 128)


def test_non_latin_class_names_stay_distinct(tmp_path):
    folders = ["猫", "犬", "кошка", "собака", "Cat", "cat", "a b", "a-b", "Café", "кошка 2",
               "plain"]
    D.import_folder(make_folder(tmp_path / "src", folders), "scripts")
    m = saved_manifest("scripts")
    ids = [c for split in m["splits"].values() for c in split]
    assert len(ids) == len(set(ids)) == len(folders)
    assert sorted(m["labels"].values()) == sorted(folders)
    assert all(re.fullmatch(r"[a-z0-9_-]+", c) for c in ids)
    assert m["labels"]["plain"] == "plain" and m["labels"]["cafe"] == "Café"
    assert all((domains_dir() / "scripts" / c).is_dir() for c in ids)


def test_class_ids_are_stable_and_readable():
    ids = class_ids(["猫", "Class 1", "кошка 2"])
    assert ids == class_ids(["кошка 2", "Class 1", "猫"])
    assert ids["Class 1"] == "class-1"
    assert re.fullmatch(r"class-[0-9a-f]{8}", ids["猫"])
    assert re.fullmatch(r"2-[0-9a-f]{8}", ids["кошка 2"])


def test_nested_folders_are_reported_and_recorded(tmp_path):
    src = make_folder(tmp_path / "src", names(10))
    make_folder(src / "class 3", ["sub"])
    with pytest.warns(UserWarning, match=r"nested inside class folders are not imported.*class 3/sub"):
        D.import_folder(src, "nested")
    m = saved_manifest("nested")
    assert m["nested_folders"] == [str(src / "class 3" / "sub")]
    assert m["counts"]["class-3"] == 3


def test_16bit_greyscale_png_keeps_its_gradient(tmp_path):
    src = make_folder(tmp_path / "src", names(10))
    ramp = np.tile(np.linspace(0, 65535, 256), (64, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(src / "class 0" / "wide.png")
    assert Image.open(src / "class 0" / "wide.png").mode in ("I;16", "I")
    m = D.import_folder(src, "deep")
    stored = np.asarray(Image.open(domains_dir() / "deep" / "class-0" / m["files"]["class-0"][-1]).convert("L"))
    ramp_row = stored[64][stored[64] < 255].astype(int)  # the ramp, without the white padding
    assert len(np.unique(ramp_row)) > 50 and ramp_row[0] < 10 and ramp_row.max() > 240
    assert np.all(np.diff(ramp_row) >= -1)  # dark to light, as in the source


def test_folder_of_unreadable_images_is_refused_and_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    for c in names(10):
        (src / c).mkdir(parents=True)
        (src / c / "0.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no readable images"):
        D.import_folder(src, "junk")
    assert nothing_left("junk")


@pytest.mark.parametrize("role, n, need", [("target", 9, 10), ("base", 20, 27)])
def test_too_few_test_classes_is_refused_with_the_rule(tmp_path, role, n, need):
    src = make_folder(tmp_path / "src", names(n))
    with pytest.raises(ValueError, match=rf"(?s)at least 5 \(EpisodeConfig.min_ways\).*"
                                         rf"at least {need} classes.*found {n}"):
        D.import_folder(src, "small", role=role)
    assert nothing_left("small")


def test_existing_domain_is_replaced_only_with_force(tmp_path):
    D.import_folder(make_folder(tmp_path / "one", names(10)), "twice")
    with pytest.raises(FileExistsError, match="--force"):
        D.import_folder(make_folder(tmp_path / "two", names(11)), "twice")
    assert saved_manifest("twice")["n_classes"]["test"] == 5
    D.import_folder(tmp_path / "two", "twice", force=True)
    assert saved_manifest("twice")["n_classes"]["test"] == 6


def test_skipped_files_and_classes_are_saved_in_the_manifest(tmp_path):
    src = make_folder(tmp_path / "src", names(10))
    (src / "class 0" / "broken.png").write_bytes(b"garbage")
    (src / "hollow").mkdir()
    with pytest.warns(UserWarning, match="hollow"):
        D.import_folder(src, "skips")
    m = saved_manifest("skips")
    assert m["skipped_files"] == [str(src / "class 0" / "broken.png")]
    assert m["skipped_classes"] == [str(src / "hollow")]
    assert m["nested_folders"] == []


@pytest.mark.parametrize("name", ['my"domain', "a/b", "..", "../up", "a..b", "x;rm -rf ~", "$(id)",
                                  "a b", "`id`", "", "-rf", "Mine", "mine.", "a\nb", "icons", "fixture_a"])
def test_unsafe_or_taken_domain_names_are_refused(tmp_path, name):
    src = make_folder(tmp_path / "src", names(10))
    with pytest.raises(ValueError, match="domain name"):
        D.import_folder(src, name)
    assert not domains_dir().exists() or not any(domains_dir().iterdir())


def test_source_overlapping_the_data_folder_is_refused(tmp_path, data_root):
    make_folder(domains_dir() / "loop", names(10))
    with pytest.raises(ValueError, match="overlaps the domain folder"):
        D.import_folder(domains_dir() / "loop", "loop", force=True)
    with pytest.raises(ValueError, match="overlaps the domain folder"):
        D.import_folder(data_root, "other")
    with pytest.raises(ValueError, match="control characters"):
        D.import_folder(str(tmp_path / "a\nb"), "other")


@pytest.mark.parametrize("args, message", [
    (["--name", "a;b"], "domain name"),
    (["--name", "few", "--src", "FEW"], "test classes"),
    (["--name", "gone", "--src", "/nonexistent/folder"], "not a folder"),
])
def test_cli_domain_errors_exit_2_without_traceback(tmp_path, capsys, args, message):
    src = make_folder(tmp_path / "src", names(10))
    make_folder(tmp_path / "few", names(3))
    argv = ["domain", "--src", str(src)] + [str(tmp_path / "few") if a == "FEW" else a for a in args]
    assert cli(argv) == 2
    err = capsys.readouterr().err  # after any progress bar, which also goes to stderr
    assert err.strip().splitlines()[-1].startswith("error: ") and message in err
    assert "Traceback" not in err


def test_cli_domain_needs_force_to_replace(tmp_path, capsys):
    src = make_folder(tmp_path / "src", names(10))
    assert cli(["domain", "--src", str(src), "--name", "mine"]) == 0
    assert cli(["domain", "--src", str(src), "--name", "mine"]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli(["domain", "--src", str(src), "--name", "mine", "--force"]) == 0


# ---------------------------------------------------------------- links and repeated files (issue 22)

def _linked_class_folder(src, outside):
    (src / "linked").symlink_to(outside, target_is_directory=True)
    return src / "linked"


def _linked_image(src, outside):
    (src / "class 0" / "linked.png").symlink_to(outside / "0.png")
    return src / "class 0" / "linked.png"


@pytest.mark.parametrize("link", [_linked_class_folder, _linked_image], ids=["class-folder", "image"])
def test_symlinked_class_folder_or_image_is_refused_and_nothing_written(tmp_path, link):
    src = make_folder(tmp_path / "src", names(10))
    outside = make_folder(tmp_path / "elsewhere", ["etc"], seed=1) / "etc"   # readable images: followed before
    path = link(src, outside)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is a symbolic link \(to {re.escape(str(outside))}"
                                         r".*refused.*nothing written.*cp -rL"):
        D.import_folder(src, "linked")
    assert nothing_left("linked")
    assert cli(["domain", "--src", str(src), "--name", "linked"]) == 2     # a user error, no traceback


def test_one_file_under_two_names_is_imported_once_under_its_first_class_with_a_warning(tmp_path):
    src = make_folder(tmp_path / "src", names(10))
    os.link(src / "class 0" / "0.png", src / "class 0" / "again.png")    # twice in one class
    os.link(src / "class 0" / "1.png", src / "class 1" / "also.png")     # and in another class
    with pytest.warns(UserWarning, match="2 images repeat a file listed before"):
        m = D.import_folder(src, "repeats")
    assert m["counts"]["class-0"] == 3 and m["counts"]["class-1"] == 3
    assert m["duplicate_files"] == [
        {"file": str(src / "class 0" / "again.png"), "same_as": str(src / "class 0" / "0.png")},
        {"file": str(src / "class 1" / "also.png"), "same_as": str(src / "class 0" / "1.png")}]
