"""Fine-tuning through the sparse engine equals plain dense PyTorch with masked gradients, touches
only what the scheme trains, and leaves the backbone as it found it. ImageNet weights (a random
net's features collapse: gradients ~1e-9, which Adam turns into noise), 48 px images."""
import pytest
import torch
import torch.nn.functional as F

from tinytrain_core.nets import checkpoints
from tinytrain_core.training.finetune import initial_state, query_accuracy, run_task, train_scheme
from tinytrain_core.training.heads import CosineHead, prototypes
from tinytrain_core.training.schemes import UpdateScheme, last_layer


def flip(x, g):   # a deterministic stand-in for the augmentation
    return x.flip(-1)


def _setup(n=8, ways=4):
    from tinytrain_core.nets.weights import WeightsMissing
    try:
        net = checkpoints.create("mcunet-5fps", pretrained=True).backbone
    except WeightsMissing:
        pytest.skip("ImageNet weights missing: run `make weights`")
    g = torch.Generator().manual_seed(1)
    return net, torch.rand(n, 3, 48, 48, generator=g) * 2 - 1, torch.arange(n) % ways


SCHEME = UpdateScheme("t", {33: (0, 5, 17, 40), 35: tuple(range(0, 384, 3)), 40: tuple(range(576))},
                      frozenset({33, 35, 40, 41}))


def dense_reference(net, scheme, xs, ys, steps, lr):
    """Every parameter of the trained convs requires grad; gradients outside the scheme's slices
    are zeroed before Adam (whose update is then exactly zero there)."""
    units = net.convs()
    params, masks = [], []
    for i, u in enumerate(units):
        u.conv.weight.requires_grad_(i in scheme.weights)
        u.conv.bias.requires_grad_(i in scheme.biases)
        if i in scheme.weights:
            m = torch.zeros_like(u.conv.weight)
            idx = list(scheme.weights[i])
            if u.shape.depthwise:
                m[idx] = 1
            else:
                m[:, idx] = 1
            params.append(u.conv.weight)
            masks.append(m)
        if i in scheme.biases:
            params.append(u.conv.bias)
            masks.append(torch.ones_like(u.conv.bias))
    head = CosineHead(learnable=False)           # P>M>F: the head's scale does not train
    opt = torch.optim.Adam(params, lr=lr)
    n = len(xs)
    for _ in range(steps):
        f = net(torch.cat([xs, flip(xs, None)]))
        loss = F.cross_entropy(head(f[n:], prototypes(f[:n], ys)), ys)
        opt.zero_grad()
        loss.backward()
        for p, m in zip(params, masks):
            p.grad.mul_(m)
        opt.step()
    net.requires_grad_(False)


def test_sparse_finetuning_equals_dense_masked_reference():
    net, xs, ys = _setup()
    start = initial_state(net)
    losses = train_scheme(net, SCHEME, xs, ys, steps=3, lr=1e-2, augment=flip)
    sparse = initial_state(net)
    net.load_state_dict(start)
    dense_reference(net, SCHEME, xs, ys, steps=3, lr=1e-2)
    dense = initial_state(net)
    assert len(losses) == 3
    changed = 0
    for k in start:
        torch.testing.assert_close(sparse[k], dense[k], rtol=1e-4, atol=1e-3)
        # 0.1 lr: Adam turns fp-order noise of near-zero gradients into steps of up to ~lr; a wrong
        # slice or a missed parameter would differ by ~lr on many elements
        changed += int(not torch.equal(sparse[k], start[k]))
    assert changed == 3 + 4   # the weights of 33, 35, 40 and the biases of 33, 35, 40, 41


def test_the_prefix_cache_changes_nothing():
    """cache=True computes the clean support's frozen prefix once per task; the results are
    identical, bit for bit, to recomputing it at every step (also when the augmentation leaves a
    step's batch as it is, which the cache serves too)."""
    net, xs, ys = _setup()
    start = initial_state(net)

    def sometimes(x, g):                            # like DiffAugment: x itself one step in two
        return x if int(torch.randint(2, (1,), generator=g)) else x.flip(-1)
    out = {}
    for cache in (True, False):
        net.load_state_dict(start)
        losses = train_scheme(net, SCHEME, xs, ys, steps=4, lr=1e-2, augment=sometimes, cache=cache)
        out[cache] = (losses, initial_state(net))
    assert out[True][0] == out[False][0] and len(out[True][0]) == 4
    assert all(torch.equal(out[True][1][k], out[False][1][k]) for k in start)
    assert any(not torch.equal(out[True][1][k], start[k]) for k in start)


def test_the_prefix_and_the_rest_are_the_whole_network():
    from tinytrain_core.training.sparse import SparseEngine
    net, xs, _ = _setup()
    engine = SparseEngine(net, SCHEME)
    assert engine.cut == net.stage_of(33) > 0
    with torch.no_grad():
        torch.testing.assert_close(engine.from_prefix(engine.prefix(xs)), net(xs), rtol=1e-5, atol=1e-5)
        for k in range(len(net.stages()) + 1):
            torch.testing.assert_close(net.run(net.run(xs, stop=k), start=k), net(xs), rtol=1e-5, atol=1e-5)


def test_only_the_scheme_trains_and_run_task_resets():
    net, xs, ys = _setup()
    start = initial_state(net)
    train_scheme(net, SCHEME, xs, ys, steps=2, lr=1e-2, augment=flip)
    after = initial_state(net)
    w33 = net.convs()[33].conv.weight
    kept = list(SCHEME.weights[33])
    frozen = [c for c in range(w33.shape[1]) if c not in kept]
    assert torch.equal(w33[:, frozen], start[_key(net, 33)][:, frozen])
    assert not torch.equal(w33[:, kept], start[_key(net, 33)][:, kept])
    for i in range(33):
        assert torch.equal(after[_key(net, i)], start[_key(net, i)])

    net.load_state_dict(start)
    res = run_task(net, start, SCHEME, xs, ys, xs, ys, steps=2, lr=1e-2, augment=flip)
    assert 0 <= res.accuracy <= 100 and res.train_s > 0 and len(res.losses) == 2
    assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())


def test_no_training_is_the_none_baseline():
    net, xs, ys = _setup()
    start = initial_state(net)
    base = query_accuracy(net, xs, ys, xs, ys)
    for scheme, lr in ((UpdateScheme("None"), 1e-2), (last_layer(net.conv_shapes()), 0.0)):
        res = run_task(net, start, scheme, xs, ys, xs, ys, steps=3, lr=lr, augment=flip)
        assert res.losses == [] and res.accuracy == base


def _key(net, i):
    names = {id(m): n for n, m in net.named_modules()}
    return names[id(net.convs()[i].conv)] + ".weight"
