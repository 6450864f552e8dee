"""budgets.py: scheme items, Jaccard, diversity, and budget sweeps on synthetic Fisher potentials."""
import math

import pytest
import torch

from tinytrain_core.training import budgets
from tinytrain_core.nets import checkpoints
from tinytrain_core.training.fisher import FisherPotential
from tinytrain_core.training.schemes import UpdateScheme

A = UpdateScheme("A", {1: (0, 1, 2)}, frozenset({1}))
B = UpdateScheme("B", {1: (1, 2), 2: (0,)}, frozenset({1, 2}))


@pytest.fixture(scope="module")
def shapes():
    return checkpoints.create("mcunet-5fps", pretrained=False).backbone.conv_shapes()


def potentials(shapes, n, seed=0, identical=False):
    """n synthetic FisherPotentials (input mode): random per-channel values, each conv scaled by
    a random factor over six decades so the layer ranking differs between tasks."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _t in range(n):
        if identical and out:
            out.append(FisherPotential("input", dict(out[0].per_channel), 10))
            continue
        per = {s.index: torch.rand(s.in_channels, generator=gen) * 10 ** (6 * torch.rand(1, generator=gen).item())
               for s in shapes}
        out.append(FisherPotential("input", per, 10))
    return out


def test_scheme_items_are_the_kept_layer_channel_pairs_without_biases():
    assert budgets.scheme_items(A) == {(1, 0), (1, 1), (1, 2)}
    assert budgets.scheme_items(UpdateScheme("bias", {}, frozenset({3}))) == frozenset()


def test_jaccard_matches_a_hand_count():
    # A & B = {(1,1), (1,2)}; A | B = {(1,0), (1,1), (1,2), (2,0)}
    assert budgets.jaccard(A, B) == 0.5
    assert budgets.jaccard(A, A) == 1.0
    assert budgets.jaccard(A, UpdateScheme("empty")) == 0.0
    assert budgets.jaccard(UpdateScheme("x"), UpdateScheme("y")) == 1.0


def test_diversity_counts_item_sets_not_names_and_averages_all_pairs():
    a_renamed = UpdateScheme("other name", {1: (2, 1, 0)})
    d = budgets.diversity([A, a_renamed, B])
    # pairs: (A, A') = 1, (A, B) = 0.5, (A', B) = 0.5
    assert d["tasks"] == 3 and d["distinct"] == 2
    assert d["mean_jaccard"] == pytest.approx(2 / 3)
    assert d["distinct_layouts"] == 2                   # {1: 3} vs {1: 2, 2: 1}
    assert d["mean_layer_jaccard"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_layouts_ignore_which_channels_are_kept():
    d = budgets.diversity([UpdateScheme("p", {4: (0, 1)}), UpdateScheme("q", {4: (5, 7)})])
    assert d["distinct"] == 2 and d["distinct_layouts"] == 1 and d["mean_jaccard"] == 0.0


def test_sweep_finds_more_distinct_schemes_when_potentials_differ(shapes):
    grid = dict(memory_kib_grid=[100.0], compute_macs_grid=[10e6])
    same = budgets.sweep(potentials(shapes, 6, identical=True), shapes, **grid).iloc[0]
    differ = budgets.sweep(potentials(shapes, 6, seed=1), shapes, **grid).iloc[0]
    assert same["tasks"] == 6 and same["distinct"] == 1 and same["mean_jaccard"] == 1.0
    assert differ["distinct"] > 1 and differ["mean_jaccard"] < 1.0
    assert differ["distinct_layouts"] > 1


def test_sweep_schemes_stay_within_both_budgets(shapes):
    df = budgets.sweep(potentials(shapes, 4), shapes, [60.0, 200.0], [4e6, 25e6])
    assert len(df) == 4
    assert (df.max_memory_kib <= df.memory_kib).all() and (df.max_macs <= df.compute_macs).all()
    shares = df[[f"binds_{k}" for k in budgets.BIND_LABELS]].sum(axis=1)
    assert shares.tolist() == pytest.approx([1.0] * 4)


def test_the_tight_budget_is_the_one_reported_as_binding(shapes):
    fps = potentials(shapes, 4, seed=2)
    mem_tight = budgets.sweep(fps, shapes, [40.0], [1e12]).iloc[0]
    mac_tight = budgets.sweep(fps, shapes, [1e6], [3e6]).iloc[0]
    assert mem_tight["binds_memory"] == 1.0 and mem_tight["binds"] == "memory"
    assert mac_tight["binds_compute"] == 1.0 and mac_tight["binds"] == "compute"
    # counterfactual: loosening the slack budget never changes a scheme
    assert mem_tight["compute_sensitive"] == 0.0 and mac_tight["memory_sensitive"] == 0.0
    assert mem_tight["memory_sensitive"] > 0.0 and mac_tight["compute_sensitive"] > 0.0


def test_an_infeasible_budget_gives_a_note_row_instead_of_raising(shapes):
    df = budgets.sweep(potentials(shapes, 3), shapes, [0.01, 100.0], [10e6])
    bad, good = df.iloc[0], df.iloc[1]
    assert math.isnan(bad["distinct"]) and math.isnan(bad["mean_memory_kib"])
    assert "3 of 3 tasks infeasible" in bad["note"] and "no conv fits" in bad["note"]
    assert good["tasks"] == 3 and good["note"] == ""


def test_diversity_by_domain_separates_within_and_between_domains():
    rows = {("d1", 0): A, ("d1", 1): A, ("d2", 0): B, ("d2", 1): UpdateScheme("C", {1: (1, 2)})}
    df = budgets.diversity_by_domain(rows).set_index("domain")
    assert df.loc["d1", "distinct"] == 1 and df.loc["d1", "mean_jaccard"] == 1.0
    # d2: B vs C = |{(1,1),(1,2)}| / |{(1,1),(1,2),(2,0)}| = 2/3
    assert df.loc["d2", "mean_jaccard"] == pytest.approx(2 / 3)
    # between: A-B = 0.5 (twice), A-C = 2/3 (twice)
    assert df.loc["(between)", "mean_jaccard"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert df.loc["(all)", "tasks"] == 4 and df.loc["(all)", "distinct"] == 3
