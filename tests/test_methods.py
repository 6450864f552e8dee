"""Each of Table 1's methods trains what it claims and nothing else, its costs are what one real
step measures, and its side branches start as exact no-ops."""

import pytest
import torch

from tinytrain_core.nets import branches, checkpoints, models
from tinytrain_core.training import measure, schemes
from tinytrain_core import methods
from tinytrain_core.training.finetune import fine_tune, initial_state, run_task
from tinytrain_core.runtime import CL
from tinytrain_core.nets.weights import WeightsMissing, find

TRAINABLE = [m for m in methods.names() if methods.get(m).trains]


def tiny_task(n=4, q=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = (torch.rand(n, 3, 128, 128, generator=g) * 2 - 1).contiguous(memory_format=CL)
    xq = (torch.rand(q, 3, 128, 128, generator=g) * 2 - 1).contiguous(memory_format=CL)
    return xs, torch.arange(n) % 2, xq, torch.arange(q) % 2


def net():
    """The ImageNet weights: on a random net the early gradients are too small (~1e-9) for Adam
    to move a zero-initialised branch measurably in a few steps."""
    try:
        find("mcunet-5fps")
    except WeightsMissing as e:
        pytest.skip(f"{e}")
    return checkpoints.create("mcunet-5fps").backbone.to(memory_format=CL).eval()


def test_table1_has_ten_methods_in_its_order():
    assert methods.names() == ["None", "FullTrain", "LastLayer", "TinyTL", "AdapterDrop-25%", "AdapterDrop-50%",
                               "AdapterDrop-75%", "SparseUpdate", "Transductive", "TinyTrain"]


@pytest.mark.parametrize("name", TRAINABLE)
def test_only_the_claimed_parameters_change(name):
    bb = net()
    xs, ys, xq, _ = tiny_task()
    method = methods.get(name)
    scheme = method.scheme(bb, xs, ys, methods.Context("mcunet-5fps"))
    before = initial_state(bb)
    _, model = fine_tune(bb, scheme, xs, ys, steps=3, lr=1e-2, query_x=xq,
                         entropy_weight=method.entropy_weight)
    for u in bb.convs():
        i, s, w = u.shape.index, u.shape, u.conv.weight
        w0, b0 = before[f"{_key(bb, u)}.weight"], before[f"{_key(bb, u)}.bias"]
        kept = list(scheme.weights.get(i, ()))
        dim = 0 if s.depthwise else 1
        frozen = [c for c in range(s.in_channels) if c not in kept]
        assert torch.equal(w.index_select(dim, torch.tensor(frozen, dtype=torch.long)),
                           w0.index_select(dim, torch.tensor(frozen, dtype=torch.long))), (name, i)
        if kept:
            assert not torch.equal(w.index_select(dim, torch.tensor(kept)), w0.index_select(dim, torch.tensor(kept))), (name, i)
        assert torch.equal(u.conv.bias, b0) == (i not in scheme.biases), (name, i)
    if scheme.branches:
        assert isinstance(model, branches.WithBranches)
        assert sorted(int(b) for b in model.branches) == sorted(scheme.branches)
        for b, m in model.branches.items():
            fresh = branches.Branch(m.shape)
            for p, p0 in zip(m.parameters(), fresh.parameters()):
                assert not torch.equal(p, p0), (name, b)
    else:
        assert model is bb


def _key(bb, unit):
    return next(n for n, m in bb.named_modules() if m is unit) + ".conv"


def test_transductive_never_reads_query_labels_and_differs_from_fulltrain():
    xs, ys, xq, yq = tiny_task()
    accs, weights = [], []
    for labels in (yq, 1 - yq):
        bb = net()
        start = initial_state(bb)
        scheme = methods.get("Transductive").scheme(bb, xs, ys, None)
        res = run_task(bb, start, scheme, xs, ys, xq, labels, steps=2, lr=1e-3, entropy_weight=1.0)
        fine_tune(bb, scheme, xs, ys, steps=2, lr=1e-3, query_x=xq, entropy_weight=1.0)
        weights.append(bb.first_conv.conv.weight.clone())
        accs.append(res.accuracy)
    assert torch.equal(weights[0], weights[1])
    assert accs[0] + accs[1] == pytest.approx(100.0)       # the same predictions, scored on flipped labels
    bb = net()
    fine_tune(bb, schemes.full_train(bb.conv_shapes()), xs, ys, steps=2, lr=1e-3)
    assert not torch.equal(bb.first_conv.conv.weight, weights[0])


@pytest.mark.parametrize("kind", branches.KINDS)
def test_a_new_branch_adds_exactly_zero(kind):
    bb = net()
    shapes = bb.conv_shapes()
    side = branches.build(shapes, {b: kind for b in range(branches.n_blocks(shapes))})
    x = tiny_task()[0]
    with torch.no_grad():
        assert torch.equal(branches.WithBranches(bb, side)(x), bb(x))


@pytest.mark.parametrize("make", [schemes.tinytl, lambda s: schemes.adapter_drop(s, 0.25),
                                  lambda s: schemes.adapter_drop(s, 0.75)])
@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_branch_schemes_measure_what_the_cost_model_charges(name, make):
    bb = models.create(name).backbone
    r = measure.measure_step(bb, make(bb.conv_shapes()), batch=2)
    for what in ("backward_macs", "saved_bytes", "forward_macs"):
        assert r[f"measured_{what}"] == r[f"analytic_{what}"], (r["scheme"], what)


def test_a_branch_above_a_trained_conv_is_measured_as_charged():
    bb = models.create("mcunet-5fps").backbone
    scheme = schemes.UpdateScheme("mix", {30: (1, 2, 3)}, frozenset({30, 31}),
                                  branches={5: "adapter", 12: "lite_residual"})
    r = measure.measure_step(bb, scheme, batch=2)
    assert (r["measured_backward_macs"], r["measured_saved_bytes"]) == (r["analytic_backward_macs"],
                                                                        r["analytic_saved_bytes"])


def test_lite_residual_kernel_shrinks_below_the_pooled_resolution():
    shapes = models.create("mcunet-5fps").backbone.conv_shapes()
    ks = [branches.branch_shape(shapes, b, "lite_residual").convs[0].kernel for b in range(14)]
    hws = [branches.branch_shape(shapes, b, "lite_residual").pool_hw for b in range(14)]
    assert all(k <= max(1, hw) and k % 2 == 1 for k, hw in zip(ks, hws))
    assert ks[0] == 5 and min(hws) < 5 and ks[hws.index(min(hws))] < 5


def test_adapterdrop_drops_the_lowest_blocks():
    shapes = models.create("mcunet-5fps").backbone.conv_shapes()
    assert [min(schemes.adapter_drop(shapes, d).branches) for d in (0.25, 0.5, 0.75)] == [3, 7, 10]
    assert all(max(schemes.adapter_drop(shapes, d).branches) == 13 for d in (0.25, 0.5, 0.75))


def test_sparse_update_search_needs_its_gains_then_gives_one_static_scheme_within_the_memory_budget():
    from tinytrain_core.methods import sparse_search
    from tinytrain_core.training.costs import scheme_costs
    bb = models.create("mcunet-5fps").backbone
    shapes = bb.conv_shapes()
    xs, ys, _, _ = tiny_task(n=2, q=2)
    method = methods.get("SparseUpdate")
    with pytest.raises(ValueError, match="contribution analysis"):
        method.scheme(bb, xs, ys, methods.Context("mcunet-5fps", sparse_update_label="search"))
    gains = sparse_search.gain_table({0: 0.0, 12: 2.0, 42: 3.0},
                                     {(c, r): r * (c - 20) / 10 for c in (21, 24, 27, 30) for r in (0.125, 0.5, 1.0)},
                                     reference_bias=12, n_tasks=1)
    ctx = methods.Context("mcunet-5fps", memory_kib=100.0, sparse_update_label="search", sparse_gains=gains)
    a, b = method.scheme(bb, xs, ys, ctx), method.scheme(bb, xs[:1], ys[:1], ctx)
    assert a is b and a.trains
    assert scheme_costs(shapes, a).memory_kib <= 100.0


def test_sparse_update_nearest_runs_the_released_scheme_whose_memory_is_nearest_the_budget():
    """sparse_update="nearest": the matched-memory SparseUpdate without a search; the released
    label it picks is the one our cost model puts nearest the budget (mcunet-5fps: 99kb = 99.8 KiB
    for 100 KiB, 49kb for 60 KiB, 148kb for 160 KiB)."""
    from tinytrain_core.methods.sparseupdate import nearest_released
    from tinytrain_core.nets import models
    from tinytrain_core.training import schemes
    from tinytrain_core.training.costs import scheme_costs
    shapes = models.create("mcunet-5fps").backbone.conv_shapes()
    for budget, label in ((100.0, "99kb"), (60.0, "49kb"), (160.0, "148kb")):
        got = nearest_released("mcunet-5fps", shapes, budget)
        want = schemes.sparse_update("mcunet-5fps", label, shapes)
        assert got.weights == want.weights and got.biases == want.biases
    assert abs(scheme_costs(shapes, nearest_released("mcunet-5fps", shapes, 100.0)).memory_kib - 100.0) < 1.0
