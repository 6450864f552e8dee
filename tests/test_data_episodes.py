"""Data room on the font fixture: sampler invariants, tensors, augmentation, bring-your-own
domain, bad input. Everything runs in a temporary data folder, in seconds."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tinytrain_core import data as D


@pytest.fixture(scope="module", autouse=True)
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    old = os.environ.get("TINYTRAIN_DATA_DIR")
    os.environ["TINYTRAIN_DATA_DIR"] = str(root)
    D.build_fixture()
    yield root
    if old is None:
        del os.environ["TINYTRAIN_DATA_DIR"]
    else:
        os.environ["TINYTRAIN_DATA_DIR"] = old


CAPS = D.EpisodeConfig(max_ways=12, min_ways=5, max_query_per_class=4, max_support=40,
                       max_support_per_class=6)


def test_domains_listed_and_loaded():
    assert D.list_domains("smoke") == ["fixture_base", "fixture_a", "fixture_b"]
    assert D.base_domain("smoke") == "fixture_base"
    assert D.target_domains("smoke") == ["fixture_a", "fixture_b"]
    d = D.load_domain("fixture_base", "smoke")
    assert d.role == "base" and d.classes("train") and d.classes("test")
    splits = [set(d.classes(s)) for s in ("train", "val", "test")]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert all(p.is_file() for p in d.images(d.classes("test")[0]))
    assert len(D.manifest_hash("smoke")) == 12


def test_unknown_and_unbuilt_domains():
    with pytest.raises(ValueError, match="known domains"):
        D.load_domain("nope", "smoke")
    with pytest.raises(FileNotFoundError, match="make data"):
        D.load_domain("cards", "default")


@pytest.mark.parametrize("name", ["fixture_a", "fixture_b"])
def test_variable_sampler_invariants(name):
    eps = [D.sample_episode(name, "test", i, CAPS, seed=0, profile="smoke") for i in range(30)]
    d = D.load_domain(name, "smoke")
    ways = set()
    for ep in eps:
        assert CAPS.min_ways <= ep.n_way <= min(CAPS.max_ways, len(d.classes("test")))
        assert len(set(ep.classes)) == ep.n_way and set(ep.classes) <= set(d.classes("test"))
        shots = ep.shots()
        assert min(shots) >= 1 and max(shots) <= CAPS.max_support_per_class
        assert len(ep.support) <= max(CAPS.max_support, ep.n_way)
        q = np.bincount([y for _, y in ep.query], minlength=ep.n_way)
        assert q.min() >= 1 and q.max() <= CAPS.max_query_per_class and len(set(q)) == 1
        assert not {p for p, _ in ep.support} & {p for p, _ in ep.query}
        for p, y in ep.support + ep.query:  # label matches the class folder
            assert os.path.basename(os.path.dirname(p)) == ep.classes[y]
        ways.add(ep.n_way)
    assert len(ways) > 1, "variable sampler never varied the way"


def test_pure_function_and_seed_dependence():
    a = D.sample_episode("fixture_a", "test", 3, CAPS, seed=1, profile="smoke")
    b = D.sample_episode("fixture_a", "test", 3, CAPS, seed=1, profile="smoke")
    assert (a.classes, a.support, a.query) == (b.classes, b.support, b.query)
    c = D.sample_episode("fixture_a", "test", 3, CAPS, seed=2, profile="smoke")
    e = D.sample_episode("fixture_a", "test", 4, CAPS, seed=1, profile="smoke")
    assert (c.classes, c.support) != (a.classes, a.support)
    assert (e.classes, e.support) != (a.classes, a.support)


def test_cache_reused_and_prefix_stable(fixture_root):
    cfg = D.EpisodeConfig(mode="fixed", ways=5, shots=2, queries=3)
    long = D.sample_episodes("fixture_b", "test", 6, cfg, seed=0, profile="smoke")
    files = list((fixture_root / "episodes" / "smoke").glob("fixture_b_test_fixed*.json"))
    assert len(files) == 1
    short = D.sample_episodes("fixture_b", "test", 4, cfg, seed=0, profile="smoke")
    assert [e.support for e in short] == [e.support for e in long[:4]]
    fresh = D.sample_episode("fixture_b", "test", 5, cfg, seed=0, profile="smoke")
    assert fresh.query == long[5].query
    for ep in long:
        assert ep.n_way == 5 and ep.shots() == [2] * 5 and len(ep.query) == 15


def test_too_many_ways_names_domain_and_count():
    cfg = D.EpisodeConfig(mode="fixed", ways=500, shots=1, queries=1)
    with pytest.raises(ValueError, match=r"fixture_a.*\d+ classes"):
        D.sample_episode("fixture_a", "test", 0, cfg, profile="smoke")


def test_episode_tensors_and_augmentation():
    cfg = D.EpisodeConfig(mode="fixed", ways=5, shots=2, queries=2)
    ep = D.sample_episode("fixture_a", "val", 0, cfg, profile="smoke")
    xs, ys, xq, yq = D.episode_tensors(ep)
    assert xs.shape == (10, 3, 128, 128) and xq.shape == (10, 3, 128, 128)
    assert xs.dtype == torch.float32 and ys.dtype == torch.int64
    assert xs.min() >= -1 and xs.max() <= 127 / 128 and set(ys.tolist()) == set(range(5))
    for kind in ("meta", "finetune"):
        a = D.augment_batch(xs, kind, torch.Generator().manual_seed(0))
        b = D.augment_batch(xs, kind, torch.Generator().manual_seed(0))
        c = D.augment_batch(xs, kind, torch.Generator().manual_seed(1))
        assert a.shape == xs.shape and torch.equal(a, b) and not torch.equal(a, c)
    m = D.augment_batch(xs, "meta", torch.Generator().manual_seed(0))
    assert m.min() >= -1.01 and m.max() <= 1.0       # 'finetune' (DiffAugment) does not clamp


def test_diffaugment_is_the_whole_batch_recipe():
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    seeds = range(200)
    same = [D.augment_batch(x, "finetune", torch.Generator().manual_seed(s)) is x for s in seeds]
    assert 0.03 < sum(same) / len(same) < 0.2          # p = 0.9: about one batch in ten is left as is
    g = torch.Generator().manual_seed(next(s for s in seeds if not same[s]))
    a = D.augment_batch(torch.zeros(4, 3, 16, 16), "finetune", g)
    # a constant image stays constant where the shift did not bring in zeros: brightness only
    # (saturation and contrast scale deviations from means, which are zero here)
    centre = a[:, :, 2:-2, 2:-2]
    assert torch.allclose(centre, centre[:, :1, :1, :1].expand_as(centre))
    assert (centre[:, 0, 0, 0].abs() <= 0.5).all() and centre[:, 0, 0, 0].std() > 0   # per image
    spike = torch.zeros(1, 3, 16, 16)
    spike[..., 8, 8] = 100.0
    moved = set()
    for s in seeds[:60]:
        t = D.augment_batch(spike, "finetune", torch.Generator().manual_seed(s))[0, 0]
        r, c = divmod(int(t.argmax()), 16)
        moved.add((r - 8, c - 8))
    assert all(abs(dr) <= 2 and -3 <= dc <= 2 for dr, dc in moved)   # +-16/8 pixels (a flip: 8 -> 7)
    assert len(moved) > 5                                               # and it does move



def test_datasets():
    loader = D.base_loader("smoke", batch_size=8, augment="meta", seed=0)
    x, y = next(iter(loader))
    assert x.shape == (8, 3, 128, 128) and y.max() < len(D.load_domain("fixture_base", "smoke").classes("train"))
    ds = D.EpisodeDataset("fixture_base", "train", 2, D.EpisodeConfig(mode="fixed", ways=5, shots=1,
                                                                      queries=2), profile="smoke")
    assert len(ds) == 2 and ds[1][0].shape == (5, 3, 128, 128)

