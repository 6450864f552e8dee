"""init="scratch", for users without the ImageNet weights: supervised cross-entropy pre-training
from random weights on the base domain's train classes (a linear classifier over those
classes, label smoothing 0.1, AdamW with a 5% warm-up and cosine decay), before the same
meta-training. It is visibly worse than starting from ImageNet: far less data.
"""
from __future__ import annotations

import json

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..nets import checkpoints, models
from .. import data
from .metaconfig import MetaConfig, lr_lambda, sidecar
from ..runtime import CL, device, to_channels_last

# what the scratch checkpoint depends on (besides every scratch_* field): not the meta-training
SIDECAR_FIELDS = ("model", "profile", "seed", "augment", "weight_decay")


def init_from_scratch(net: models.TinyNet) -> models.TinyNet:
    """He init for the ReLU6 convs, LeCun for the linear projections, zero biases, and zero for
    the last conv of each residual block so that every block starts as the identity: these nets
    have no BatchNorm left (it is folded), and a residual stack without normalisation trains
    more stably from an identity start (Fixup/SkipInit)."""
    for u in net.convs():
        nn.init.kaiming_normal_(u.conv.weight, mode="fan_in",
                                nonlinearity="relu" if u.shape.relu6 else "linear")
        nn.init.zeros_(u.conv.bias)
    for b in net.backbone.blocks:
        if b.residual:
            nn.init.zeros_(b.pointwise2.conv.weight)
    return net


def supervised_pretrain(net: models.TinyNet, batches, cfg: MetaConfig, progress=True):
    """Cross-entropy over the base train classes, from random weights, for `cfg.scratch_steps`
    steps (cycling over `batches`); returns one history row per step."""
    dev = next(net.parameters()).device
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.scratch_lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.scratch_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, cfg.scratch_steps, warm, "cosine"))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    history, step = [], 0
    bar = tqdm(total=cfg.scratch_steps, desc=f"scratch {cfg.model}", disable=not progress)
    while step < cfg.scratch_steps:
        for x, y in batches:
            net.train()
            x = to_channels_last(data.augment_batch(x, cfg.augment_kind, gen).to(dev))
            logits = net(x)
            loss = F.cross_entropy(logits, y.to(dev), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            history.append({"step": step, "loss": loss.item(),
                            "acc": 100 * (logits.argmax(1) == y.to(dev)).float().mean().item()})
            step += 1
            bar.update(1)
            if step >= cfg.scratch_steps:
                break
    bar.close()
    return history


def scratch_start(cfg: MetaConfig, name: str, progress: bool = True) -> models.TinyNet:
    """The supervised-from-scratch network meta-training starts from, saved as checkpoint `name`
    (reused when its sidecar matches)."""
    path, meta = checkpoints.checkpoint_path(cfg.model, name, cfg.profile), sidecar(cfg, name)
    meta["config"] = {k: v for k, v in meta["config"].items()
                      if k in SIDECAR_FIELDS or k.startswith("scratch")}
    if checkpoints.matches(path, meta):
        return checkpoints.load_backbone(cfg.model, name, cfg.profile)
    torch.manual_seed(cfg.seed)
    classes = len(data.load_domain(data.base_domain(cfg.profile), cfg.profile).classes("train"))
    net = init_from_scratch(models.create(cfg.model, num_classes=classes)).to(device())
    net = net.to(memory_format=CL)
    batches = data.base_loader(cfg.profile, "train", batch_size=cfg.scratch_batch, augment="none",
                               seed=cfg.seed)
    hist = supervised_pretrain(net, batches, cfg, progress)
    checkpoints.save(path, checkpoints.backbone_state(net), meta)
    checkpoints.history_path(path).write_text(json.dumps(hist))
    return net
