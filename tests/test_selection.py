"""Budgeted selection: the score formula, budgets respected, the walk is maximal, channel modes,
and an impossible budget names the smallest feasible one. Synthetic potentials on real shapes."""
import pytest
import torch

from tinytrain_core.nets import models
from tinytrain_core.training.fisher import FisherPotential
from tinytrain_core.training.schemes import conv_weights_of, l2_channels
from tinytrain_core.training.costs import scheme_costs
from tinytrain_core.training.selection import RATIOS, layer_scores, n_channels, select_scheme


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return models.create("mcunet-5fps", pretrained=False).backbone


def _potential(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return FisherPotential("input", {s.index: torch.rand(s.in_channels, generator=g) ** 4
                                     for s in shapes}, n_samples=10)


def test_score_formula(net):
    shapes = net.conv_shapes()
    fp = _potential(shapes)
    s = layer_scores(fp, shapes)
    max_w = max(x.params for x in shapes)
    max_m = max(x.macs for x in shapes)
    for i in (0, 7, 41):
        want = float(fp.per_channel[i].sum()) / ((shapes[i].params / max_w) * (shapes[i].macs / max_m))
        assert s[i] == pytest.approx(want)


@pytest.mark.parametrize("mem,macs", [(60, 2e6), (320, 6.5e6), (320, 2e7), (1000, 4e7)])
@pytest.mark.parametrize("channels", ["fisher", "l2", "random"])
def test_budgets_hold_and_walk_is_maximal(net, mem, macs, channels):
    shapes = net.conv_shapes()
    fp = _potential(shapes)
    sch = select_scheme(fp, shapes, mem, macs, channels=channels, conv_weights=conv_weights_of(net))
    cost = scheme_costs(shapes, sch)
    assert cost.memory_kib <= mem and cost.backward_macs <= macs
    assert sch.biases == frozenset(sch.weights)
    for i, chans in sch.weights.items():
        assert len(chans) in {n_channels(shapes[i], r) for r in RATIOS}
    # costs only grow as layers are added, so a skipped conv cannot fit even at the smallest ratio
    for i in set(range(len(shapes))) - set(sch.weights):
        k = n_channels(shapes[i], RATIOS[-1])
        grown = type(sch)("x", {**sch.weights, i: tuple(range(k))}, sch.biases | {i})
        c = scheme_costs(shapes, grown)
        assert c.memory_kib > mem or c.backward_macs > macs


def test_top_ranked_conv_gets_the_largest_ratio_that_fits(net):
    shapes = net.conv_shapes()
    fp = _potential(shapes)
    s = layer_scores(fp, shapes)
    top = max(s, key=s.get)
    sch = select_scheme(fp, shapes, 1e9, 1e12)   # unbounded: every conv, all channels
    assert sch.weights == {x.index: tuple(range(x.in_channels)) for x in shapes}
    alone = select_scheme(fp, shapes, 1e9, scheme_costs(shapes, type(sch)(
        "x", {top: tuple(range(n_channels(shapes[top], 0.5)))}, {top})).backward_macs, layers=[top])
    assert len(alone.weights[top]) == n_channels(shapes[top], 0.5)


def test_channel_modes(net):
    shapes = net.conv_shapes()
    fp = _potential(shapes)
    w = conv_weights_of(net)
    kw = dict(memory_kib=320, compute_macs=6.5e6, conv_weights=w)
    by_fisher = select_scheme(fp, shapes, channels="fisher", **kw)
    by_l2 = select_scheme(fp, shapes, channels="l2", **kw)
    rand_a = select_scheme(fp, shapes, channels="random", seed=3, **kw)
    rand_b = select_scheme(fp, shapes, channels="random", seed=3, **kw)
    assert rand_a == rand_b
    partial = [i for i, c in by_fisher.weights.items() if len(c) < shapes[i].in_channels]
    assert partial, "expected at least one conv with a partial channel ratio at these budgets"
    for i in partial:
        k = len(by_fisher.weights[i])
        assert by_fisher.weights[i] == tuple(sorted(torch.topk(fp.per_channel[i], k).indices.tolist()))
    for i, c in by_l2.weights.items():
        assert c == l2_channels(w[i], len(c), shapes[i].depthwise)
    assert sorted(by_fisher.weights) == sorted(by_l2.weights)   # layers ranked by s_i in every mode
    none = select_scheme(fp, shapes, biases="none", **kw)
    assert none.biases == frozenset()


def test_impossible_budget_names_the_smallest_feasible(net):
    shapes = net.conv_shapes()
    fp = _potential(shapes)
    with pytest.raises(ValueError, match="Smallest feasible") as e:
        select_scheme(fp, shapes, memory_kib=0.5, compute_macs=1e12)
    msg = str(e.value)
    mem = float(msg.split("memory_kib >= ")[1].split()[0])
    macs = float(msg.split("with compute_macs >= ")[1].split(";")[0].replace(",", ""))
    sch = select_scheme(fp, shapes, memory_kib=mem + 0.05, compute_macs=macs)
    assert sch.trained_layers
    with pytest.raises(ValueError, match="channels must be"):
        select_scheme(fp, shapes, channels="magnitude")
