"""The sparse engine against plain autograd: one step of the engine gives the same updated weights
as dense training whose gradients are masked to the scheme's slices (Adam and SGD, atol 1e-6)."""
import copy

import pytest
import torch

from tinytrain_core.nets import checkpoints, models
from tinytrain_core.training import costs, schemes
from tinytrain_core.training.sparse import SparseEngine, pack_bits, unpack_bits
from tinytrain_core.nets.weights import WeightsMissing


def backbone(name):
    """Real weights when present; the equivalence holds for any weights, so no skip is needed."""
    try:
        return checkpoints.create(name).backbone
    except WeightsMissing:
        torch.manual_seed(0)
        return models.create(name, pretrained=False).backbone


def random_scheme(shapes, seed=0):
    """Channel-sparse slices in residual blocks of mcunet-5fps (a depthwise and a projection conv of
    block 4, the depthwise of block 6), a fully trained conv, and biases of scattered convs, so
    frozen convs sit between trained ones. The earliest trained conv trains only its bias."""
    g = torch.Generator().manual_seed(seed)

    def pick(i, k):
        return tuple(torch.randperm(shapes[i].in_channels, generator=g)[:k].tolist())
    return schemes.UpdateScheme("random", {13: pick(13, 30), 14: pick(14, 6), 19: pick(19, 40),
                                           24: tuple(range(shapes[24].in_channels))},
                                frozenset({12, 20, 33})).validate(shapes)


def loss_fn(feats, head):
    """Cross-entropy of a fixed random 5-way linear head: moderate gradients, so one step moves
    weights by ~lr and float rounding stays far below the 1e-6 tolerance."""
    return torch.nn.functional.cross_entropy(feats @ head, torch.arange(len(feats)) % head.shape[1])


def dense_masked_step(bb, scheme, x, proj, make_opt):
    """Reference: plain autograd over every parameter, gradients zeroed outside the scheme."""
    bb = copy.deepcopy(bb).requires_grad_(True)
    loss_fn(bb(x), proj).backward()
    params = []
    for u in bb.convs():
        i, w, b = u.shape.index, u.conv.weight, u.conv.bias
        if i in scheme.weights:
            keep = torch.zeros_like(w, dtype=torch.bool)
            idx = list(scheme.weights[i])
            if u.shape.depthwise:
                keep[idx] = True
            else:
                keep[:, idx] = True
            w.grad = w.grad * keep
            params.append(w)
        if i in scheme.biases:
            params.append(b)
    opt = make_opt(params)
    opt.step()
    return bb


def sparse_step(bb, scheme, x, proj, make_opt):
    bb = copy.deepcopy(bb)
    engine = SparseEngine(bb, scheme)
    opt = make_opt(engine.parameters())
    loss_fn(engine(x), proj).backward()
    opt.step()
    engine.write_back()
    return bb


OPTIMISERS = {"adam": lambda p: torch.optim.Adam(p, lr=1e-3),
              "sgd": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)}


def scheme_list(name, bb):
    """Every kind of scheme on mcunet-5fps; FullTrain and a released SparseUpdate scheme elsewhere."""
    sh = bb.conv_shapes()
    label = next(iter(schemes.released_sparse_update(name)))
    sparse = schemes.sparse_update(name, label, sh, [u.conv.weight for u in bb.convs()])
    if name != "mcunet-5fps":
        return [schemes.full_train(sh), sparse]
    return [schemes.full_train(sh), schemes.last_layer(sh), schemes.bias_only(sh), sparse, random_scheme(sh)]


@pytest.mark.parametrize("name,opt", [("mcunet-5fps", "adam"), ("mcunet-5fps", "sgd"),
                                      ("mbv2-w0.35", "adam")])
def test_one_sparse_step_equals_masked_dense_step(name, opt):
    bb = backbone(name)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 3, 64, 64, generator=g) * 2 - 1)  # any size works; 64 px keeps it fast
    x = x.contiguous(memory_format=torch.channels_last)
    proj = torch.randn(bb.feature_dim, 5, generator=g) / bb.feature_dim ** 0.5
    for scheme in scheme_list(name, bb):
        ref = dense_masked_step(bb, scheme, x, proj, OPTIMISERS[opt])
        got = sparse_step(bb, scheme, x, proj, OPTIMISERS[opt])
        moved = 0
        for u0, ur, ug in zip(bb.convs(), ref.convs(), got.convs()):
            for p0, pr, pg in ((u0.conv.weight, ur.conv.weight, ug.conv.weight),
                               (u0.conv.bias, ur.conv.bias, ug.conv.bias)):
                where = f"{scheme.name} conv {u0.shape.index}: max diff {(pg - pr).abs().max():.2e}"
                torch.testing.assert_close(pg, pr, atol=1e-6, rtol=0, msg=where)
                moved += int((pr != p0).sum())
        assert moved > 0, scheme.name   # the step did something


def test_engine_trains_only_the_scheme():
    bb = backbone("mcunet-5fps")
    sh = bb.conv_shapes()
    scheme = random_scheme(sh)
    engine = SparseEngine(copy.deepcopy(bb), scheme)
    n = sum(p.numel() for p in engine.parameters())
    assert n == costs.scheme_costs(sh, scheme, preset="fp32").trainable_params
    assert not any(p.requires_grad for p in engine.backbone.parameters())


def test_no_update_is_a_plain_forward():
    bb = backbone("proxyless-w0.3")
    engine = SparseEngine(copy.deepcopy(bb), schemes.no_update())
    x = torch.rand(2, 3, 128, 128)
    f = engine(x)
    assert engine.parameters() == [] and not f.requires_grad
    torch.testing.assert_close(f, bb(x).detach())


@pytest.mark.parametrize("shape", [(2, 5, 3, 3), (1, 8, 4, 4), (3, 7, 1, 5), (4, 16, 8, 8)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bit_packing_round_trips(shape, channels_last):
    g = torch.Generator().manual_seed(0)
    m = torch.rand(shape, generator=g) > 0.5
    if channels_last:
        m = m.contiguous(memory_format=torch.channels_last)
    packed = pack_bits(m)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-m.numel() // 8)
    assert torch.equal(unpack_bits(packed, m.shape, channels_last).bool(), m)


def test_backbone_tracks_training_and_no_grad_forward_is_current():
    """Whole weights and biases train in place; slices reach the backbone at the next forward or
    write_back; a no_grad engine forward equals the backbone with the current values."""
    bb = copy.deepcopy(backbone("mcunet-5fps"))
    scheme = random_scheme(bb.conv_shapes())
    engine = SparseEngine(bb, scheme)
    opt = torch.optim.SGD(engine.parameters(), lr=0.1)
    x = torch.rand(2, 3, 64, 64)
    head = torch.randn(bb.feature_dim, 5)
    loss_fn(engine(x), head).backward()
    opt.step()
    assert torch.equal(bb.convs()[24].conv.weight, engine.weights[24])     # whole weight, in place
    assert torch.equal(bb.convs()[12].conv.bias, engine.biases[12])
    with torch.no_grad():
        f = engine(x)
    s = bb.convs()[13]
    assert torch.equal(s.conv.weight[list(scheme.weights[13])], engine.weights[13])   # slice synced
    torch.testing.assert_close(f, bb(x))
