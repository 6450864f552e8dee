"""Offline stage: ImageNet backbone -> episodic ProtoNet meta-training on the base domain (P>M>F).

Each step samples a fixed N-way K-shot episode from the base domain's *train* classes, embeds
augmented support and query images (`data.augment_batch(x, "meta", generator)`), builds
class-mean prototypes from the support features and classifies queries by
`scale * (cos + bias)` (`heads.CosineHead`, learnable scale and bias), with cross-entropy on
the queries. AdamW, linear warm-up then cosine decay (`metaconfig.lr_lambda`). Every
`val_every` episodes the frozen backbone is scored by nearest-prototype accuracy on fixed
episodes of the base *val* classes; the best state (the ImageNet start included) is kept.

`init="scratch"` starts from supervised pre-training instead of ImageNet (`scratch.py`).

Checkpoints: `results/<profile>/checkpoints/<model>-<name>.pt` (`checkpoints.py`: tensors
only, a JSON sidecar with config, seed and data-manifest hash); a rerun with an identical
sidecar reuses the file instead of training again.
"""
from __future__ import annotations

import copy
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..nets import checkpoints
from .. import data
from .evaluate import episode_accuracies_many, fixed_episodes
from ..training.heads import CosineHead, prototypes
from .metaconfig import MetaConfig, configs, lr_lambda, sidecar
from ..runtime import CL, META_THREADS, device, threads, to_channels_last
from .scratch import scratch_start
from ..stats import mean_ci95

SELECT_SEED_OFFSET = 1000   # model-selection episodes differ from the reported val episodes
IMAGENET_SIDECAR = {"weights": "mit-han-lab/tiny-training int8, dequantised"}


def protonet_loss(backbone: nn.Module, head: CosineHead, xs, ys, xq, yq, n_way: int):
    """One episode's query cross-entropy and accuracy; support and query go through the
    backbone as a single batch."""
    f = backbone(to_channels_last(torch.cat([xs, xq])))
    fs, fq = f[:len(xs)], f[len(xs):]
    logits = head(fq, prototypes(fs, ys, n_way))
    return F.cross_entropy(logits, yq), (logits.argmax(1) == yq).float().mean().item()


def meta_train(backbone: nn.Module, episodes, cfg: MetaConfig, validate=None, progress=True):
    """Episodic ProtoNet training of `backbone` in place.

    `episodes`: an iterable of (xs, ys, xq, yq) tensors (real or synthetic), `cfg.episodes` long.
    `validate(backbone) -> (acc, ci)`: frozen-feature score used for model selection, called at
    episode 0 and every `cfg.val_every` episodes and at the end; the best state is loaded back.
    Returns (history rows, head)."""
    dev = next(backbone.parameters()).device
    head = CosineHead().to(dev)
    params = [p for p in backbone.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, cfg.episodes, cfg.warmup, cfg.schedule))
    gen = torch.Generator().manual_seed(cfg.seed)
    history, losses, accs = [], [], []
    best = (-math.inf, None, None)

    def checkpoint_val(episode: int):
        nonlocal best, losses, accs
        row = {"episode": episode, "lr": opt.param_groups[0]["lr"],
               "train_loss": sum(losses) / len(losses) if losses else math.nan,
               "train_acc": 100 * sum(accs) / len(accs) if accs else math.nan,
               "scale": head.scale.item(), "bias": head.bias.item()}
        if validate is not None:
            row["val_acc"], row["val_ci95"] = validate(backbone)
            if row["val_acc"] > best[0]:
                best = (row["val_acc"], copy.deepcopy(backbone.state_dict()),
                        copy.deepcopy(head.state_dict()))
        history.append(row)
        losses, accs = [], []

    checkpoint_val(0)
    bar = tqdm(total=cfg.episodes, desc=f"meta-train {cfg.model}", disable=not progress)
    for step, (xs, ys, xq, yq) in enumerate(episodes):
        if step >= cfg.episodes:
            break
        backbone.train()
        xs = data.augment_batch(xs, cfg.augment_kind, gen).to(dev)
        xq = data.augment_batch(xq, cfg.augment_kind, gen).to(dev)
        loss, acc = protonet_loss(backbone, head, xs, ys.to(dev), xq, yq.to(dev), cfg.ways)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        accs.append(acc)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.val_every == 0 or step + 1 == cfg.episodes:
            checkpoint_val(step + 1)
    bar.close()
    if best[1] is not None:
        backbone.load_state_dict(best[1])
        head.load_state_dict(best[2])
    return history, head


def _start_net(cfg: MetaConfig, name: str, progress: bool):
    """The network meta-training starts from: ImageNet weights (also saved as checkpoint `name`,
    so later notebooks load both ends alike), or supervised from scratch."""
    if cfg.init == "scratch":
        return scratch_start(cfg, name, progress)
    net = checkpoints.create(cfg.model, pretrained=True)
    path, meta = checkpoints.checkpoint_path(cfg.model, name, cfg.profile), sidecar(cfg, name)
    meta["config"] = {"model": cfg.model, **IMAGENET_SIDECAR}
    meta.pop("seed")
    if not checkpoints.matches(path, meta):
        checkpoints.save(path, checkpoints.backbone_state(net), meta)
    return net


def train_one(cfg: MetaConfig, force: bool = False, progress: bool = True, name: str | None = None) -> list[dict]:
    """Make (or reuse) the start and meta checkpoints of one backbone, on `runtime.META_THREADS`
    intra-op threads whatever the machine (the bits depend on the count); returns the history.
    `name`: the meta checkpoint's name (None: the init's, "meta"; notebook 03's seed runs
    "meta-seed<s>")."""
    with threads(META_THREADS):
        return _train_one(cfg, force, progress, name)


def _train_one(cfg: MetaConfig, force: bool, progress: bool, name: str | None = None) -> list[dict]:
    start, meta_name = checkpoints.checkpoint_names(cfg.init)
    meta_name = name or meta_name
    path, meta = checkpoints.checkpoint_path(cfg.model, meta_name, cfg.profile), sidecar(cfg, meta_name)
    hist_path = checkpoints.history_path(path)
    if not force and checkpoints.matches(path, meta) and hist_path.is_file():
        return json.loads(hist_path.read_text())
    net = _start_net(cfg, start, progress).to(device()).to(memory_format=CL)
    base = data.base_domain(cfg.profile)
    train_eps = fixed_episodes(base, "train", cfg.episodes, cfg.ways, cfg.shots, cfg.queries,
                               cfg.seed, cfg.profile)
    val_eps = fixed_episodes(base, "val", cfg.val_episodes, cfg.ways, cfg.shots, cfg.queries,
                             cfg.seed + SELECT_SEED_OFFSET, cfg.profile)

    def validate(bb):
        return mean_ci95(episode_accuracies_many({"m": bb}, val_eps)["m"])

    history, head = meta_train(net.backbone, (data.episode_tensors(ep) for ep in train_eps), cfg,
                               validate, progress)
    checkpoints.save(path, checkpoints.backbone_state(net, head), meta)
    hist_path.write_text(json.dumps(history, indent=1))
    return history


def pretrain(profile: str = "smoke", force: bool = False, progress: bool = True, **overrides) -> dict:
    """Meta-train every requested backbone (reusing matching checkpoints); returns
    {model: history rows}."""
    return {cfg.model: train_one(cfg, force=force, progress=progress)
            for cfg in configs(profile, **overrides)}
