"""Guards of the data room against damaged or hostile input (issue 22): the writer's hidden
leftovers are never domains and are cleaned by the next run; episode configs refuse counts no
episode can have. Every test builds its own tiny class folders in a temporary data folder."""
from __future__ import annotations

import json
import shutil

import pytest

from test_byo import make_folder
from tinytrain_core import data as D
from tinytrain_core.data.domains import domains_dir


@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root))
    return root


def class_folders(root, n_classes, n_images=3, seed=0):
    """`root/class <k>/<i>.png`: test_byo's folder of small random images, classes numbered."""
    return make_folder(root, [f"class {k}" for k in range(n_classes)], n_images, seed)


def on_disk():
    return sorted(p.name for p in domains_dir().iterdir())


def manifest(name):
    return json.loads((domains_dir() / name / "manifest.json").read_text())


# ---------------------------------------------------------------- the writer's leftovers (item 3)

def test_hidden_leftover_folders_are_neither_listed_nor_loaded(tmp_path):
    D.import_folder(class_folders(tmp_path / "src", 10), "mine")
    for leftover in (".mine.old", ".mine.tmp", ".hidden"):        # what a kill mid-swap leaves
        shutil.copytree(domains_dir() / "mine", domains_dir() / leftover)
    assert D.list_domains("default") == ["mine"] and D.target_domains("default") == ["mine"]
    with pytest.raises(ValueError, match="unknown domain '.mine.old'"):
        D.load_domain(".mine.old")


def test_a_rerun_removes_stale_leftovers_of_its_own_name_and_says_so(tmp_path, capsys):
    src = class_folders(tmp_path / "src", 10)
    D.import_folder(src, "mine")
    for leftover in (".mine.old", ".mine.tmp"):
        shutil.copytree(domains_dir() / "mine", domains_dir() / leftover)
    capsys.readouterr()
    D.import_folder(src, "mine", force=True)
    assert on_disk() == ["mine"]
    out = capsys.readouterr().out
    assert f"removed {domains_dir() / '.mine.tmp'}" in out and f"removed {domains_dir() / '.mine.old'}" in out


def test_a_domain_lost_between_the_swaps_renames_is_restored_even_if_the_rerun_fails(tmp_path, capsys):
    D.import_folder(class_folders(tmp_path / "src", 10), "mine")
    before = manifest("mine")
    shutil.copytree(domains_dir() / "mine", domains_dir() / ".mine.tmp")
    (domains_dir() / "mine").rename(domains_dir() / ".mine.old")   # killed between the renames
    with pytest.raises(ValueError, match="test classes"):
        D.import_folder(class_folders(tmp_path / "few", 3), "mine")
    assert on_disk() == ["mine"] and manifest("mine") == before
    assert "restored domain 'mine'" in capsys.readouterr().out


# ---------------------------------------------------------------- episode specs (item 5)

@pytest.mark.parametrize("setting", [dict(max_ways=30_000_000), dict(max_ways=3e7), dict(ways=10**12),
                                     dict(shots=-1), dict(queries=-5), dict(max_support=2.5),
                                     dict(min_ways=True)],
                         ids=["3e7-ways", "float-ways", "1e12-ways", "negative-shots", "negative-queries",
                              "fraction", "bool"])
def test_an_episode_config_refuses_counts_no_episode_can_have_naming_the_setting(setting):
    (name, value), = setting.items()
    with pytest.raises(ValueError, match=rf"EpisodeConfig.{name} is {value!r}, but it must be a whole "
                                         r"number from 0 to 100,000; fix the episode settings"):
        D.EpisodeConfig(mode="fixed", **setting)

