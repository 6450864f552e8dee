"""Offline stage: the ProtoNet loop learns, model selection keeps the best state, the fast
frozen evaluator equals the reference one, checkpoints round-trip and are reused only on an
identical config, load_backbone's errors name the fix, and the scratch path trains.
Tiny inputs (synthetic 32 px tensors, the font fixture in a temporary folder): seconds."""
from __future__ import annotations

import json

import pytest
import torch

from tinytrain_core.runtime import META_THREADS

from tinytrain_core.nets import checkpoints, models
from tinytrain_core import data
from tinytrain_core.offline import evaluate
from tinytrain_core.offline import metatrain as mt
from tinytrain_core.training.heads import CosineHead
from tinytrain_core.offline.metaconfig import MetaConfig, lr_lambda
from tinytrain_core.offline.scratch import init_from_scratch, supervised_pretrain
from tinytrain_core.nets.weights import WeightsMissing, find

MODEL = "mcunet-5fps"


@pytest.fixture(scope="module")
def weights_dir():
    try:
        return find(MODEL).parent
    except WeightsMissing as e:
        pytest.skip(f"{e} (run `make weights`)")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A project root of our own (results/, checkpoints/) with the font fixture as its data."""
    from tinytrain_core import data as D
    root = tmp_path_factory.mktemp("root")
    mp = pytest.MonkeyPatch()
    try:
        weights = find(MODEL).parent
        mp.setenv("TINYTRAIN_WEIGHTS_DIR", str(weights))
    except WeightsMissing:
        pass
    mp.setenv("TINYTRAIN_ROOT", str(root))
    mp.setenv("TINYTRAIN_DATA_DIR", str(root / "data"))
    D.build_fixture()
    yield root
    mp.undo()


def synthetic_episode(seed: int, ways=5, shots=2, queries=3, size=16):
    """Each class is a fixed random colour pattern plus noise: learnable, not trivially."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(ways, 3, size, size, generator=g) * 0.5

    def draw(k):
        y = torch.arange(ways).repeat_interleave(k)
        return (patterns[y] + 0.5 * torch.randn(len(y), 3, size, size, generator=g)).clamp(-1, 1), y

    (xs, ys), (xq, yq) = draw(shots), draw(queries)
    return xs, ys, xq, yq


def small_cfg(**kw):
    base = dict(model=MODEL, episodes=6, ways=5, shots=2, queries=3, lr=1e-3, warmup=0,
                schedule="constant", augment="none", val_every=3, val_episodes=2)
    return MetaConfig(**{**base, **kw})


def episode_loss(backbone, head, ep):
    with torch.no_grad():
        return mt.protonet_loss(backbone, head, *ep, n_way=5)[0].item()


def test_meta_training_reduces_query_loss_and_changes_weights():
    torch.manual_seed(0)
    net = init_from_scratch(models.create(MODEL, pretrained=False))
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    ep = synthetic_episode(0)
    loss0 = episode_loss(net.backbone, CosineHead(), ep)
    history, head = mt.meta_train(net.backbone, [ep] * 6, small_cfg(), validate=None, progress=False)
    assert [r["episode"] for r in history] == [0, 3, 6]
    assert episode_loss(net.backbone, head, ep) < 0.5 * loss0
    changed = [k for k, v in net.backbone.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)   # every conv weight and bias moved
    assert head.scale.item() != 10.0     # the head's scale is learned too


def test_model_selection_restores_the_best_validated_state():
    torch.manual_seed(0)
    net = init_from_scratch(models.create(MODEL, pretrained=False))
    scores, seen = iter([50.0, 70.0, 60.0]), []

    def validate(bb):
        seen.append({k: v.clone() for k, v in bb.state_dict().items()})
        return next(scores), 1.0

    eps = [synthetic_episode(i) for i in range(6)]
    history, _ = mt.meta_train(net.backbone, eps, small_cfg(), validate, progress=False)
    assert [r["val_acc"] for r in history] == [50.0, 70.0, 60.0]
    final = net.backbone.state_dict()
    assert all(torch.equal(final[k], seen[1][k]) for k in final)       # state after episode 3
    assert not all(torch.equal(final[k], seen[2][k]) for k in final)


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [lr_lambda(s, 100, 10, "cosine") for s in range(101)]
    assert f[0] == pytest.approx(1 / 11) and f[9] == pytest.approx(10 / 11)
    assert f[10] == pytest.approx(1.0) and f[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert lr_lambda(50, 100, 10, "constant") == 1.0


def test_meta_augment_is_deterministic_and_in_range():
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    a = data.augment_batch(x, "meta", torch.Generator().manual_seed(3))
    b = data.augment_batch(x, "meta", torch.Generator().manual_seed(3))
    c = data.augment_batch(x, "meta", torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1.0 and a.max() <= 127 / 128 + 1e-6


def test_fast_evaluator_equals_reference(sandbox):
    torch.manual_seed(0)
    bb = init_from_scratch(models.create(MODEL, pretrained=False)).backbone
    eps = evaluate.fixed_episodes("fixture_a", "test", 2, 5, 2, 3, seed=0, profile="smoke")
    fast = evaluate.episode_accuracies_many({"x": bb}, eps)["x"]
    # reference: decode and embed every episode on its own, no sharing of images
    from tinytrain_core.data import episode_tensors
    from tinytrain_core.training.heads import prototype_accuracy
    ref = []
    for ep in eps:
        xs, ys, xq, yq = episode_tensors(ep)
        ref.append(100 * prototype_accuracy(evaluate.embed(bb, xs), ys, evaluate.embed(bb, xq), yq))
    assert fast == pytest.approx(ref, abs=1e-4)


def test_checkpoint_roundtrip_reuse_and_retrain(sandbox, weights_dir, monkeypatch):
    cfg = MetaConfig(model=MODEL, profile="smoke", episodes=1, val_every=1, val_episodes=2)
    hist = mt.train_one(cfg, progress=False)
    assert len(hist) == 2
    path = checkpoints.checkpoint_path(MODEL, "meta", "smoke")
    state, meta = checkpoints.load(path)
    assert meta["config"]["episodes"] == 1 and len(meta["manifest_hash"]) == 12
    assert set(json.loads(path.with_suffix(".json").read_text())) >= {"config", "seed", "manifest_hash"}

    meta_net = checkpoints.load_backbone(MODEL, "meta", "smoke")
    for k, v in meta_net.backbone.state_dict().items():
        assert torch.equal(v, state[f"backbone.{k}"])
    imagenet = checkpoints.load_backbone(MODEL, "imagenet", "smoke").backbone.state_dict()
    best_is_start = max(r["val_acc"] for r in hist[1:]) <= hist[0]["val_acc"]
    same = all(torch.equal(v, imagenet[k]) for k, v in meta_net.backbone.state_dict().items())
    assert best_is_start == same
    assert checkpoints.checkpoint_path(MODEL, "imagenet", "smoke").is_file()

    threads_before = torch.get_num_threads()
    calls = []
    real = mt.meta_train
    monkeypatch.setattr(mt, "meta_train", lambda *a, **k: calls.append(torch.get_num_threads()) or real(*a, **k))
    again = mt.train_one(cfg, progress=False)             # identical config: reused
    assert json.dumps(again) == json.dumps(hist)
    assert calls == []
    torch.set_num_threads(1)
    try:
        mt.train_one(MetaConfig(**{**cfg.__dict__, "lr": 1e-4}), progress=False)
        assert torch.get_num_threads() == 1                # the caller's count restored after
    finally:
        torch.set_num_threads(threads_before)
    assert calls == [META_THREADS]                         # changed config: trained again, on the
                                                           # fixed count whatever the caller's
    assert checkpoints.load(path)[1]["config"]["lr"] == 1e-4


def test_load_backbone_errors(sandbox):
    with pytest.raises(ValueError, match="imagenet, meta"):
        checkpoints.load_backbone(MODEL, "best", "smoke")
    with pytest.raises(ValueError, match="unknown model"):
        checkpoints.load_backbone("resnet50", "meta", "smoke")
    with pytest.raises(FileNotFoundError, match="01_pretrain.ipynb"):
        checkpoints.load_backbone("proxyless-w0.3", "meta", "smoke")
    with pytest.raises(FileNotFoundError, match="init='scratch'"):
        checkpoints.load_backbone("proxyless-w0.3", "scratch-meta", "smoke")
    with pytest.raises(ValueError, match="init must be"):
        MetaConfig(model=MODEL, init="random")


def test_scratch_init_and_one_supervised_step_trains():
    torch.manual_seed(0)
    net = init_from_scratch(models.create(MODEL, pretrained=False, num_classes=4))
    residual_last = [b.pointwise2.conv.weight for b in net.backbone.blocks if b.residual]
    assert residual_last and all(w.abs().sum() == 0 for w in residual_last)   # blocks start as identity
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    before = net.classifier.weight.clone()
    hist = supervised_pretrain(net, [(x, torch.arange(8) % 4)], small_cfg(scratch_steps=1),
                                  progress=False)
    assert len(hist) == 1 and torch.isfinite(torch.tensor(hist[0]["loss"]))
    assert not torch.equal(before, net.classifier.weight)


def test_scratch_pipeline_runs_on_fixture(sandbox):
    cfg = MetaConfig(model=MODEL, profile="smoke", init="scratch", episodes=1, val_every=1,
                        val_episodes=2, scratch_steps=1, scratch_batch=8)
    mt.train_one(cfg, progress=False)
    for name in checkpoints.SCRATCH_CHECKPOINTS:
        assert checkpoints.load_backbone(MODEL, name, "smoke").backbone.feature_dim == 160
