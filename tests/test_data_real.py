"""Checks on the real embedded domains; skipped unless `make data` has built them."""
from __future__ import annotations

import pytest

from tinytrain_core import data as D
from tinytrain_core.data.domains import domains_dir

BUILT = [n for n in D.BUILTIN if (domains_dir() / n / "manifest.json").is_file()]
# Sources that cannot reach the minima, and why (see the domain modules).
FEWER_CLASSES = {"fashion": "Fashion-MNIST has 10 classes"}

pytestmark = pytest.mark.skipif(not BUILT, reason="real domains not built: run `make data`")


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
