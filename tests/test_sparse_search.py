"""SparseUpdate's offline search: the default space, the evolutionary search against brute force,
its determinism, recovery of a released scheme from gains that favour it, the contribution
table on a tiny random backbone, and scheme overlap. Synthetic gains on real shapes."""
import numpy as np
import pytest
import torch

from tinytrain_core.nets import models
from tinytrain_core.methods import sparse_search as ss
from tinytrain_core.training.costs import scheme_costs
from tinytrain_core.training.finetune import initial_state
from tinytrain_core.training.schemes import UpdateScheme, released_sparse_update, sparse_update

MODEL = "mcunet-5fps"
FAST = dict(population=48, generations=25)


@pytest.fixture(scope="module")
def shapes():
    return models.create(MODEL).backbone.conv_shapes()


def random_gains(space, seed=0):
    """Accuracy-like gains: rising with the bias depth, concave in the ratio, some negative."""
    rng = np.random.default_rng(seed)
    bias = {n: 10 * np.sqrt(n / space.bias_grid[-1]) + rng.normal() for n in space.bias_grid if n}
    weight = {}
    for c in space.candidates:
        scale = 3 * rng.random()
        weight |= {(c, r): scale * np.sqrt(r) - rng.random() for r in space.ratios if r}
    return ss.gain_table({0: 0.0} | bias, weight)


def favouring(model, label, shapes):
    """Gains for which the released scheme `label` is the unique optimum at its own memory."""
    cfg = released_sparse_update(model)[label]
    sp = ss.space(shapes, bias_grid=list(ss.space(shapes).bias_grid) + [cfg["n_bias_update"]])
    chosen = {(c, r) for c, r in zip(cfg["manual_weight_idx"], cfg["weight_update_ratio"]) if r}
    bias = {n: 1 - 0.05 * abs(n - cfg["n_bias_update"]) for n in sp.bias_grid}
    weight = {(c, r): 1.0 if (c, r) in chosen else -0.1 for c in sp.candidates for r in sp.ratios if r}
    return ss.gain_table(bias, weight)


def test_the_default_space_covers_every_released_weight_index():
    for model in models.MODEL_NAMES:
        sh = models.create(model).backbone.conv_shapes()
        sp = ss.space(sh)
        assert sp.bias_grid[0] == 0 and sp.bias_grid[-1] == len(sh) and 6 <= len(sp.bias_grid) <= 10
        assert sp.ratios == (0.0, 0.125, 0.25, 0.5, 1.0)
        for cfg in released_sparse_update(model).values():
            assert set(cfg["manual_weight_idx"]) <= set(sp.candidates)


@pytest.mark.parametrize("budget", [20, 45, 80])
def test_the_search_stays_in_budget_and_matches_brute_force_on_a_small_space(shapes, budget):
    sp = ss.space(shapes, candidates=[33, 36, 39, 41], bias_grid=[0, 6, 12, 21])
    gains = random_gains(sp, seed=budget)
    found = ss.evolve(shapes, gains, budget, **FAST)
    best = ss.exact_best(shapes, gains, budget)
    assert scheme_costs(shapes, found).memory_kib <= budget
    assert scheme_costs(shapes, best).memory_kib <= budget
    assert ss.summed_gain(found, gains, shapes) == pytest.approx(ss.summed_gain(best, gains, shapes))


@pytest.mark.parametrize("budget", [30, 100, 200])
def test_the_search_never_exceeds_the_budget_on_the_full_space(shapes, budget):
    gains = random_gains(ss.space(shapes))
    assert scheme_costs(shapes, ss.evolve(shapes, gains, budget, **FAST)).memory_kib <= budget


def test_the_search_prices_a_genome_as_the_cost_model_prices_its_scheme(shapes):
    problem = ss._Problem(shapes, random_gains(ss.space(shapes)), 100, ss.PRESET)
    rng = np.random.default_rng(0)
    for g in rng.integers(0, problem.highs, (20, len(problem.highs))) * (rng.random((20, len(problem.highs))) < 0.3):
        assert problem.memory(g) == scheme_costs(shapes, problem.scheme(g)).memory_kib


def test_the_search_is_deterministic_given_the_seed(shapes):
    gains = random_gains(ss.space(shapes), seed=3)
    assert ss.evolve(shapes, gains, 100, seed=7, **FAST) == ss.evolve(shapes, gains, 100, seed=7, **FAST)


@pytest.mark.parametrize("label", ["49kb", "99kb", "148kb"])
def test_the_search_recovers_a_released_scheme_from_gains_that_favour_it(shapes, label):
    released = sparse_update(MODEL, label, shapes)
    found = ss.evolve(shapes, favouring(MODEL, label, shapes), scheme_costs(shapes, released).memory_kib)
    o = ss.overlap(found, released, shapes)
    assert o["item_jaccard"] >= 0.9 and o["conv_jaccard"] >= 0.8 and o["n_bias_diff"] == 0


def test_the_released_budget_search_reports_every_label_within_its_budget(shapes):
    table = ss.search_released_budgets(MODEL, shapes, random_gains(ss.space(shapes)), **FAST)
    assert list(table.label) == list(released_sparse_update(MODEL))
    assert (table.memory_found_kib <= table.budget_kib).all()
    assert np.allclose(table.memory_released_kib, table.budget_kib)
    assert np.isfinite(table.gain_found).all() and np.isfinite(table.gain_released).all()


def test_contributions_have_the_columns_and_no_gain_without_learning():
    torch.manual_seed(0)
    net = models.create(MODEL).backbone.eval()
    state = initial_state(net)
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 0, 1])
    tasks = [(torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, y, torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, y)
             for _ in range(2)]
    sp = ss.space(net.conv_shapes(), candidates=[40, 41], bias_grid=[0, 3], ratios=[0, 0.5, 1])
    frozen = ss.contributions(net, state, tasks, sp, steps=1, lr=0.0)
    assert list(frozen.columns) == ss.COLUMNS
    assert len(frozen) == 2 + 2 * 2 and set(frozen.kind) == {"bias", "weight"}
    assert (frozen.gain == 0).all() and (frozen.n_tasks == 2).all()
    learning = ss.contributions(net, state, tasks, sp, steps=1, lr=1e-2)
    assert learning.equals(ss.contributions(net, state, tasks, sp, steps=1, lr=1e-2))
    assert np.isfinite(learning.gain).all()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_overlap_of_a_scheme_with_itself_is_one_and_matches_a_hand_count(shapes):
    s = sparse_update(MODEL, "99kb", shapes, [u.conv.weight for u in models.create(MODEL).backbone.convs()])
    o = ss.overlap(s, s, shapes)
    assert o["conv_jaccard"] == o["item_jaccard"] == 1.0 and o["n_bias_diff"] == 0
    assert o["memory_found_kib"] == o["memory_released_kib"]
    a = UpdateScheme("a", {40: (0, 1, 2), 41: (0,)}, frozenset({39, 40, 41}))
    b = UpdateScheme("b", {41: (0, 1), 38: (5,)}, frozenset({41}))
    o = ss.overlap(a, b, shapes)
    # convs {40, 41} vs {38, 41}: 1/3; items 1 shared of 6; bias counts 3 vs 1
    assert o["conv_jaccard"] == pytest.approx(1 / 3) and o["item_jaccard"] == pytest.approx(1 / 6)
    assert o["n_bias_diff"] == 2
