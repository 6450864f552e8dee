"""Checks on the real embedded domains; skipped unless `make data` has built them. CI builds
them and sets TINYTRAIN_REQUIRE_REAL_DATA=1: then all ten must be there, with the counts of
the committed `tinytrain_core/data/expected_counts.json`."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tinytrain_core import data as D
from tinytrain_core.data.domains import domains_dir

BUILT = [n for n in D.BUILTIN if (domains_dir() / n / "manifest.json").is_file()]
REQUIRED = os.environ.get("TINYTRAIN_REQUIRE_REAL_DATA") == "1"
EXPECTED = json.loads((Path(D.__file__).with_name("expected_counts.json")).read_text())["default"]
# Sources that cannot reach the minima, and why (see the domain modules).
FEWER_CLASSES = {"fashion": "Fashion-MNIST has 10 classes"}

pytestmark = pytest.mark.skipif(not BUILT and not REQUIRED, reason="real domains not built: run `make data`")


def test_all_ten_domains_built_when_required():
    if not REQUIRED:
        pytest.skip("set TINYTRAIN_REQUIRE_REAL_DATA=1 (CI does) to require every domain")
    assert BUILT == list(D.BUILTIN), f"not built: {sorted(set(D.BUILTIN) - set(BUILT))}"


@pytest.mark.parametrize("name", BUILT)
def test_counts_equal_the_committed_expected_counts(name):
    r = D.summary_row(D.load_domain(name, "default"))
    got = {k: r[k] for k in EXPECTED[name]}
    assert got == EXPECTED[name], f"{name}: built {got}, expected {EXPECTED[name]}"


@pytest.mark.parametrize("name", BUILT)
def test_manifest_and_minima(name):
    d = D.load_domain(name, "default")
    m = d.manifest
    assert m["role"] == D.BUILTIN[name][0] and m["sources"] and m["licences"]
    if d.role == "base":
        assert sum(m["n_classes"].values()) >= 600 and m["min_images_per_class"] >= 10
        assert len(d.classes("train")) >= 300
    else:
        assert m["min_images_per_class"] >= 6
        if name not in FEWER_CLASSES:
            assert len(d.classes("test")) >= 50
    c = d.classes("test")[0]
    assert d.images(c) and d.images(c)[0].is_file()


def test_base_has_no_target_class_names():
    if "icons" not in BUILT:
        pytest.skip("icons not built: run `make data`")
    base = set(D.load_domain("icons").manifest["files"])
    for n in BUILT:
        if n != "icons":
            m = D.load_domain(n).manifest
            assert not base & set(m["splits"]["test"]), n


@pytest.mark.parametrize("name", BUILT)
def test_variable_episode_loads(name):
    ep = D.sample_episode(name, "test", 0, D.episode_config("default"), seed=0)
    assert 5 <= ep.n_way <= 20 and max(ep.shots()) <= 20
    small = D.sample_episode(name, "test", 0, D.EpisodeConfig(mode="fixed", ways=5, shots=1, queries=1))
    xs, ys, xq, yq = D.episode_tensors(small)
    assert xs.shape == (5, 3, 128, 128) and ys.tolist() == [0, 1, 2, 3, 4]
