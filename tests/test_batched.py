"""Many tasks per launch (`batched.py`) give each task what training it alone gives: per method,
K tasks of different ways, shots, LRs and seeds trained as one batch equal `finetune.fine_tune`
task by task (same losses and accuracies, the same entries trained, weights within float noise);
entries outside a task's scheme never move; adapt.run's rows are the same either way."""
import pytest
import torch

from tinytrain_core.experiment import adapt
from tinytrain_core.training import batched, finetune
from tinytrain_core.nets import checkpoints
from tinytrain_core import methods
from tinytrain_core.data import apply_finetune, augment_batch, finetune_draws
from tinytrain_core.training.finetune import initial_state
from tinytrain_core.methods import Context

STEPS = 3


def _imagenet():
    from tinytrain_core.nets.weights import WeightsMissing
    try:        # ImageNet weights: a random net's features collapse and Adam turns ~0 gradients into noise
        return checkpoints.create("mcunet-5fps", pretrained=True).backbone.eval()
    except WeightsMissing:
        pytest.skip("ImageNet weights missing: run `make weights`")


@pytest.fixture(scope="module")
def net():
    return _imagenet()


@pytest.fixture(scope="module")
def net64():
    """float64: Adam's first step is lr * sign(gradient), so in float32 an entry whose gradient
    is rounding noise (~1e-9) may step either way; in float64 the two paths agree to ~1e-12."""
    return _imagenet().double()


def _task(g, ways, shots, queries=3, px=48, dtype=torch.float32):
    ys = torch.arange(ways).repeat_interleave(shots)
    yq = torch.arange(ways).repeat_interleave(queries)
    return ((torch.rand(len(ys), 3, px, px, generator=g) * 2 - 1).to(dtype), ys,
            (torch.rand(len(yq), 3, px, px, generator=g) * 2 - 1).to(dtype), yq)


TASKS = [(3, 2), (5, 3), (2, 1)]          # variable ways and shots: padding and absent classes
LRS, SEEDS = [1e-3, 3e-3, 1e-3], [11, 12, 13]


def _sequential(net, state, schemes, tasks):
    out = []
    for k, t in enumerate(tasks):
        net.load_state_dict(state)
        losses, _ = finetune.fine_tune(net, schemes[k], t[0], t[1], STEPS, LRS[k], SEEDS[k])
        w = {n: p.detach().clone() for n, p in net.named_parameters()}
        out.append((finetune.query_accuracy(net, *t), losses, w))
    net.load_state_dict(state)
    return out


@pytest.mark.parametrize("method", ["FullTrain", "LastLayer", "SparseUpdate", "TinyTrain"])
def test_batched_tasks_equal_one_task_at_a_time(net64, method):
    net = net64
    state = initial_state(net)
    g = torch.Generator().manual_seed(3)
    tasks = [_task(g, w, s, dtype=torch.float64) for w, s in TASKS]
    m = methods.get(method)
    schemes = []
    for t in tasks:
        net.load_state_dict(state)
        schemes.append(m.scheme(net, t[0], t[1], Context("mcunet-5fps", seed=0)))
    seq = _sequential(net, state, schemes, tasks)
    res = batched.fine_tune_many(net, state, schemes, tasks, STEPS, LRS, SEEDS)
    params, _ = batched._train(net, schemes, tasks, STEPS, LRS, SEEDS)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())      # left as found
    for k, (acc, losses, w) in enumerate(seq):
        assert res[k].accuracy == acc
        assert res[k].losses == pytest.approx(losses, abs=1e-9)
        trained = 0
        for name, p in params.items():
            assert torch.allclose(p[k], w[name], rtol=0, atol=1e-9), name
            assert torch.equal(p[k][_outside(net, schemes[k], name)], state[name][_outside(net, schemes[k], name)])
            trained += int((w[name] != state[name]).sum())
        assert trained > 0


def _outside(net, scheme, name):
    """True where parameter `name` is outside `scheme` (what the task must never change)."""
    units = net.convs()
    conv = {n + ".weight": u.shape.index for n, m in net.named_modules() for u in units if m is u.conv}
    bias = {n + ".bias": u.shape.index for n, m in net.named_modules() for u in units if m is u.conv}
    p = net.get_parameter(name)
    inside = torch.zeros_like(p, dtype=torch.bool)
    if name in conv and conv[name] in scheme.weights:
        kept = list(scheme.weights[conv[name]])
        if units[conv[name]].shape.depthwise:
            inside[kept] = True
        else:
            inside[:, kept] = True
    if name in bias and bias[name] in scheme.biases:
        inside[:] = True
    return ~inside


def test_untrained_tasks_in_a_batch_are_evaluated_untrained(net):
    state = initial_state(net)
    g = torch.Generator().manual_seed(4)
    tasks = [_task(g, 3, 2), _task(g, 4, 2)]
    full = methods.get("FullTrain").scheme(net, tasks[0][0], tasks[0][1], Context("mcunet-5fps"))
    res = batched.fine_tune_many(net, state, [full, full], tasks, STEPS, [0.0, 1e-3], [1, 2])
    assert res[0].accuracy == finetune.query_accuracy(net, *tasks[0]) and res[0].train_s == 0.0
    assert res[1].train_s > 0 and len(res[1].losses) == STEPS


def test_side_branch_schemes_are_not_batched(net):
    g = torch.Generator().manual_seed(5)
    t = _task(g, 3, 2)
    tl = methods.get("TinyTL")
    scheme = tl.scheme(net, t[0], t[1], Context("mcunet-5fps"))
    assert not batched.batchable(tl, scheme)
    full = methods.get("FullTrain").scheme(net, t[0], t[1], Context("mcunet-5fps"))
    assert not batched.batchable(methods.get("Transductive"), full)
    with pytest.raises(ValueError, match="side branches"):
        batched.fine_tune_many(net, initial_state(net), [scheme], [t], STEPS, [1e-3], [0])


def test_augmentation_draws_then_ops_equal_augment_batch():
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for seed in range(6):         # both branches: augmented (p 0.9) and left as is
        a = augment_batch(x, "finetune", torch.Generator().manual_seed(seed))
        d = finetune_draws(6, 32, 32, torch.Generator().manual_seed(seed))
        assert torch.equal(a, x if d is None else apply_finetune(x, d))


@pytest.mark.filterwarnings("ignore:no 'meta' checkpoint:UserWarning")
def test_adapt_run_with_batched_tasks_writes_the_same_accuracies(adapt_on_fixture, monkeypatch, net):
    state = initial_state(net)
    monkeypatch.setattr(adapt.Backbones, "get", lambda self, ckpt: (net, state))
    base = dict(profile="smoke", domains=["fixture_a"], methods=["None", "FullTrain", "TinyTrain", "TinyTL"],
                checkpoints=("imagenet",), episodes=3, steps=2, lrs=(1e-3,), workers=1)
    one = adapt.run(adapt.AdaptConfig(**base, variant="one"), progress=False)
    many = adapt.run(adapt.AdaptConfig(**base, variant="many", batch_tasks=3), progress=False)
    cols = ["domain", "episode", "method", "checkpoint", "lr", "scheme"]
    one, many = (r.sort_values(cols).reset_index(drop=True) for r in (one, many))
    assert len(one) == 12 and one[cols].equals(many[cols])
    assert one.accuracy.tolist() == pytest.approx(many.accuracy.tolist(), abs=1e-9)
    k1 = adapt.AdaptConfig(**base).resolved().key("FullTrain", "imagenet")
    k3 = adapt.AdaptConfig(**base, batch_tasks=3).resolved().key("FullTrain", "imagenet")
    assert k1 != k3        # batched rows are not the sequential path's: never served for each other
