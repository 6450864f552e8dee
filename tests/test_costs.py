"""The cost model against the oracles of ../shared/reference/ACCOUNTING.md (0.1 KiB) and the paper's
Table 2 compute figures (2%), and a sparse scheme priced by hand.
Measured-vs-analytic checks live in test_measure.py."""
import pytest

from tinytrain_core.training import costs, schemes
from tinytrain_core.nets import models

# ACCOUNTING.md, tiny-training int8 rule, batch 1, KiB
RELEASED_KIB = {
    "mcunet-5fps": {"49kb": 49.8, "74kb": 74.8, "99kb": 99.8, "124kb": 125.0, "148kb": 148.4},
    "mbv2-w0.35": {"49kb": 49.8, "73kb": 73.9, "99kb": 99.4, "123kb": 123.6, "138kb": 138.2},
    "proxyless-w0.3": {"49kb": 49.7, "74kb": 74.9, "98kb": 98.5, "120kb": 120.2, "148kb": 148.2},
}
FULL_KIB = {"mcunet-5fps": 1400.4, "mbv2-w0.35": 1306.4, "proxyless-w0.3": 1210.7}
BIAS_KIB = {"mcunet-5fps": 121.3, "mbv2-w0.35": 134.2, "proxyless-w0.3": 113.4}
# ../shared/paper/table2_backward_costs.csv, M MACs, paper (feature-mix) variant
PAPER_FULL = {"mcunet-5fps": 44.9, "mbv2-w0.35": 34.9, "proxyless-w0.3": 38.4}
PAPER_LAST = {"mbv2-w0.35": 0.80, "proxyless-w0.3": 0.59}


def shapes(name, mix=False):
    return models.Backbone(name, feature_mix=mix).conv_shapes()


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_released_sparse_update_schemes_match_oracle(name):
    sh = shapes(name)
    for label, kib in RELEASED_KIB[name].items():
        got = costs.scheme_costs(sh, schemes.sparse_update(name, label, sh)).memory_kib
        assert got == pytest.approx(kib, abs=0.051), label


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_full_and_bias_only_match_oracle(name):
    sh = shapes(name)
    full, bias = (costs.scheme_costs(sh, f(sh)).memory_kib for f in (schemes.full_train, schemes.bias_only))
    assert full == pytest.approx(FULL_KIB[name], abs=0.051)
    assert bias == pytest.approx(BIAS_KIB[name], abs=0.051)


def test_last_12_convs_match_oracle():
    sh = shapes("mcunet-5fps")
    last = range(len(sh) - 12, len(sh))
    s = schemes.UpdateScheme("last12", {i: tuple(range(sh[i].in_channels)) for i in last}, frozenset(last))
    assert costs.scheme_costs(sh, s).memory_kib == pytest.approx(448.0, abs=0.05)


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_full_train_backward_is_twice_forward_in_paper_convention(name):
    sh = shapes(name, mix=True)
    paper = costs.scheme_costs(sh, schemes.full_train(sh), count_input_grad_of_first=True)
    assert paper.backward_macs == 2 * paper.forward_macs
    assert paper.backward_macs / 1e6 == pytest.approx(PAPER_FULL[name], rel=0.02)
    real = costs.scheme_costs(sh, schemes.full_train(sh))
    assert paper.backward_macs - real.backward_macs == sh[0].macs  # only the image's gradient differs


@pytest.mark.parametrize("name", sorted(PAPER_LAST))
def test_last_layer_is_the_mix_convs_weight_gradient(name):
    sh = shapes(name, mix=True)
    c = costs.scheme_costs(sh, schemes.last_layer(sh))
    assert c.input_grad_macs == 0
    assert c.backward_macs / 1e6 == pytest.approx(PAPER_LAST[name], rel=0.02)


def test_no_update_costs_nothing_but_the_forward():
    sh = shapes("mbv2-w0.35")
    c = costs.scheme_costs(sh, schemes.no_update(), preset="fp32", batch=8)
    assert c.backward_macs == 0 and c.saved_bytes == 0 and c.trainable_params == 0
    assert c.forward_macs == sum(s.macs for s in sh)


def test_sparse_slice_costs_by_hand():
    """One regular and one depthwise conv, priced by hand, fp32 preset at batch 3."""
    sh = shapes("mbv2-w0.35")
    pw, dw = sh[39], sh[40]   # a 1x1 pointwise-expand (ReLU6) and the depthwise after it
    assert not pw.depthwise and dw.depthwise and pw.relu6 and dw.relu6
    s = schemes.UpdateScheme("x", {39: (0, 5, 7), 40: (1, 2)}, frozenset({40}))
    c = costs.scheme_costs(sh, s, preset="fp32", batch=3)
    wg = pw.out_channels * 3 * pw.out_hw ** 2 + 2 * dw.kernel ** 2 * dw.out_hw ** 2
    ig = sum(x.macs for x in sh[40:])
    assert (c.weight_grad_macs, c.input_grad_macs) == (wg, ig)
    acts = 3 * 4 * (3 * pw.in_hw ** 2 + 2 * dw.in_hw ** 2)
    masks = sum(-(-3 * x.out_channels * x.out_hw ** 2 // 8) for x in sh[39:] if x.relu6)
    assert c.saved_bytes == acts + masks and c.mask_bytes == masks
    n_train = pw.out_channels * 3 + 2 * dw.kernel ** 2 + dw.out_channels
    assert c.trainable_params == n_train
    assert c.grad_bytes == 4 * n_train and c.optimizer_bytes == 8 * n_train


def test_bad_input_is_named():
    sh = shapes("mbv2-w0.35")
    with pytest.raises(ValueError, match="preset"):
        costs.scheme_costs(sh, schemes.full_train(sh), preset="fp16")
    with pytest.raises(ValueError, match="keeps"):
        costs.scheme_costs(sh, schemes.UpdateScheme("bad", {0: tuple(range(9))}), preset="fp32")
