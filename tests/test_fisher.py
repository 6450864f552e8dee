"""Fisher potential vs a brute-force per-sample reference on the real topology (random weights,
small images so it runs in about a second)."""
import pytest
import torch
import torch.nn.functional as F

from tinytrain_core.nets import models
from tinytrain_core.training.fisher import fisher_potential
from tinytrain_core.training.heads import CosineHead, prototypes


def _net():
    torch.manual_seed(0)
    return models.create("mcunet-5fps", pretrained=False).backbone


def _data(n=6, ways=3, hw=32):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, hw, hw, generator=g), torch.arange(n) % ways


def brute_force(net, x, y, activation):
    """One sample at a time: loss of that sample against fixed prototypes, activation gradients
    via module hooks + retain_grad, Delta_o = 1/(2N) sum_n (sum_d a g)^2."""
    head = CosineHead(learnable=False)
    with torch.no_grad():
        protos = prototypes(net(x), y)
    units = net.convs()
    sums = [0.0] * len(units)
    for n in range(len(x)):
        saved = {}

        def hook(mod, inp, out, i, saved=saved):
            t = inp[0] if activation == "input" else out
            t.retain_grad()
            saved[i] = t

        handles = [u.register_forward_hook(lambda m, a, o, i=i: hook(m, a, o, i))
                   for i, u in enumerate(units)]
        xn = x[n:n + 1].clone().requires_grad_(True)
        loss = F.cross_entropy(head(net(xn), protos), y[n:n + 1], reduction="sum")
        loss.backward()
        for h in handles:
            h.remove()
        for i, t in saved.items():
            sums[i] = sums[i] + (t.detach() * t.grad).sum((2, 3))[0].pow(2)
        net.zero_grad()
    return {i: s / (2 * len(x)) for i, s in enumerate(sums)}


@pytest.mark.parametrize("activation", ["input", "output"])
def test_matches_per_sample_reference(activation):
    net = _net()
    x, y = _data()
    ref = brute_force(net, x, y, activation)
    fp = fisher_potential(net, x, y, activation=activation, chunk=4)
    assert set(fp.per_channel) == set(ref)
    for i, want in ref.items():
        torch.testing.assert_close(fp.per_channel[i], want.float(), rtol=1e-3, atol=1e-9)
    assert all(not p.requires_grad or p.grad is None for p in net.parameters())


def test_chunking_is_exact_and_subset_consistent():
    net = _net()
    x, y = _data(n=7)
    whole = fisher_potential(net, x, y, chunk=7)
    ones = fisher_potential(net, x, y, chunk=1)
    late = fisher_potential(net, x, y, layers=[30, 41], chunk=3)
    for i in whole.per_channel:
        torch.testing.assert_close(ones.per_channel[i], whole.per_channel[i], rtol=1e-4, atol=1e-10)
    for i in (30, 41):
        torch.testing.assert_close(late.per_channel[i], whole.per_channel[i], rtol=1e-4, atol=1e-10)
    assert whole.layer(41) == pytest.approx(float(whole.per_channel[41].sum()))


def test_output_mode_ranks_input_channels_by_the_producing_conv():
    net = _net()
    x, y = _data()
    fp = fisher_potential(net, x, y, activation="output", layers=[9, 10])
    assert fp.channel_scores(0) is None
    assert torch.equal(fp.channel_scores(10), fp.per_channel[9])
    assert len(fp.channel_scores(10)) == net.conv_shapes()[10].in_channels


def test_params_keep_their_flags_and_bad_input_is_named():
    net = _net()
    x, y = _data()
    net.convs()[5].conv.weight.requires_grad_(False)
    fisher_potential(net, x, y, layers=[40])
    flags = [p.requires_grad for p in net.parameters()]
    assert flags.count(False) == 1
    with pytest.raises(ValueError, match="activation"):
        fisher_potential(net, x, y, activation="middle")
