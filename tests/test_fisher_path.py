"""fisher_potential(path=...): "total" is the input's whole gradient, "conv" only the share that
flows back through the conv itself (no skip connection), checked against a leaf-copy reference."""
import pytest
import torch

from tinytrain_core.nets import checkpoints
from tinytrain_core.training.fisher import _loss, fisher_potential
from tinytrain_core.training.heads import CosineHead, prototypes


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = checkpoints.create("mcunet-5fps", pretrained=False).backbone.eval()
    with torch.no_grad():   # He init: PyTorch's default leaves potentials ~1e-30, all float noise
        for u in net.convs():
            u.conv.weight.normal_(0, (2 / u.conv.weight[0].numel()) ** 0.5)
            u.conv.bias.zero_()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, 32, 32, generator=g), torch.arange(6) % 3
    index = {id(u): i for i, u in enumerate(net.convs())}
    skip_fed = [index[id(b.units()[0])] for b in net.blocks if b.residual]
    return net, x, y, skip_fed


def assert_close(got, want):
    """Float-rounding agreement, tolerance scaled to the layer (channels whose sum_d a*g
    cancels to ~0 have only absolute precision)."""
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-6 * float(want.abs().max()))


def conv_path_reference(net, x, y, i):
    """Delta of conv i's input through conv i only: the conv reads a separate leaf copy of its
    input (the skip keeps the original), autograd differentiates w.r.t. that leaf, per-sample
    sums squared, / 2N. One conv per pass: a detached copy cuts every path through it."""
    with torch.no_grad():
        protos = prototypes(net(x), y)
    conv, leaf = net.convs()[i], []

    def unit(u, t):
        if u is conv:
            leaf.append(t.detach().clone().requires_grad_(True))
            t = leaf[0]
        return u(t)

    loss = _loss(net.run(x, unit=unit), y, protos, CosineHead(learnable=False))
    (g,) = torch.autograd.grad(loss, leaf)
    return (leaf[0].detach() * g).sum((2, 3)).double().pow(2).sum(0).div(2 * len(x)).float()


def test_path_total_is_the_default_bit_for_bit(setup):
    net, x, y, _ = setup
    default, total = fisher_potential(net, x, y, chunk=4), fisher_potential(net, x, y, chunk=4, path="total")
    assert set(default.per_channel) == set(total.per_channel)
    assert all(torch.equal(default.per_channel[i], total.per_channel[i]) for i in default.per_channel)


def test_conv_path_equals_total_where_no_skip_reads_the_input(setup):
    net, x, y, skip_fed = setup
    total, conv = fisher_potential(net, x, y), fisher_potential(net, x, y, path="conv")
    others = [i for i in total.per_channel if i not in skip_fed]
    assert len(others) == len(net.convs()) - len(skip_fed) > 0
    for i in others:
        assert torch.equal(conv.per_channel[i], total.per_channel[i]), i


def test_conv_path_drops_the_skip_gradient_and_matches_the_leaf_reference(setup):
    net, x, y, skip_fed = setup
    assert skip_fed, "mcunet-5fps has residual blocks"
    total, conv = fisher_potential(net, x, y), fisher_potential(net, x, y, path="conv")
    assert conv.path == "conv"
    for i in skip_fed:
        assert not torch.allclose(conv.per_channel[i], total.per_channel[i], rtol=1e-2, atol=0), i
        assert_close(conv.per_channel[i], conv_path_reference(net, x, y, i))


def test_conv_path_chunking_is_exact(setup):
    net, x, y, _ = setup
    whole = fisher_potential(net, x, y, chunk=len(x), path="conv")
    pairs = fisher_potential(net, x, y, chunk=2, path="conv")
    for i in whole.per_channel:
        assert_close(pairs.per_channel[i], whole.per_channel[i])


def test_output_activation_ignores_the_path(setup):
    net, x, y, _ = setup
    total = fisher_potential(net, x, y, activation="output")
    conv = fisher_potential(net, x, y, activation="output", path="conv")
    assert all(torch.equal(conv.per_channel[i], total.per_channel[i]) for i in total.per_channel)


def test_unknown_path_is_a_clear_error(setup):
    net, x, y, _ = setup
    with pytest.raises(ValueError, match="path must be 'total' or 'conv'"):
        fisher_potential(net, x, y, path="skip")
