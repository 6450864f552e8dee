"""Offline stage: ImageNet backbone -> episodic ProtoNet meta-training on the base domain (P>M>F).

Each step samples a fixed N-way K-shot episode from the base domain's *train* classes, embeds
augmented support and query images, builds class-mean prototypes from the support features and
classifies queries by `scale * (cos + bias)` (`heads.CosineHead`, learnable scale and bias), with
cross-entropy on the queries. AdamW, linear warm-up then cosine decay. Every `val_every` episodes
the frozen backbone is scored by nearest-prototype accuracy on fixed episodes of the base *val*
classes; the best state (the ImageNet start included) is kept.

`init="scratch"` is for users without the ImageNet weights: supervised cross-entropy
pre-training from random weights on the base train classes (linear classifier over those
classes), then the same meta-training. It is visibly worse (far less data than ImageNet).

Checkpoints: `results/<profile>/checkpoints/<model>-<name>.pt` (tensors only, read back with
`weights_only=True`) with a JSON sidecar holding config, seed and data-manifest hash; a rerun
with an identical sidecar reuses the file instead of training again.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoints, models
from .evaluate import episode_accuracies_many as episode_accuracies
from .heads import CosineHead, prototypes
from .paths import check_profile, checkpoints_dir, figures_dir, results_dir
from .stats import mean_ci95, paired_diff_ci95

CHECKPOINTS = ("imagenet", "meta")            # what 02_adapt and later notebooks choose between
SCRATCH_CHECKPOINTS = ("scratch", "scratch-meta")  # init="scratch": no ImageNet weights needed
INITS = ("imagenet", "scratch")

# Per-profile sizes (the notebook's `None` parameters resolve here). Default: 200 episodes per
# backbone ~ 5-6 min of training at the 1.4-1.8 s/episode measured on 2 shared cores (75 images:
# the icons keep 10-16 images per class, so 5 shots + 10 queries), plus validation and the
# before/after table, inside 10 minutes. lr 5e-4, from a quick test (mcunet-5fps, 40 episodes,
# base-val gain over the ImageNet start on 30 paired episodes): 5e-5 +5.6 +- 2.4, 5e-4
# +6.7 +- 2.8, 2e-3 +2.4 +- 3.8 points; P>M>F's 5e-5 (tuned for ViTs) is as good in that short
# test, 2e-3 is too high.
PROFILE_SETTINGS = {
    "smoke": dict(models=("mcunet-5fps",), episodes=6, ways=5, shots=2, queries=4, lr=5e-4,
                  weight_decay=0.05, warmup=2, schedule="cosine", augment="batched",
                  val_every=3, val_episodes=4, eval_episodes=6, eval_shots=2, eval_queries=4,
                  scratch_steps=4, scratch_batch=32, scratch_lr=2e-3),
    "default": dict(models=models.MODEL_NAMES, episodes=200, ways=5, shots=5, queries=10, lr=5e-4,
                    weight_decay=0.05, warmup=20, schedule="cosine", augment="batched",
                    val_every=40, val_episodes=30, eval_episodes=40, eval_shots=5, eval_queries=10,
                    scratch_steps=400, scratch_batch=64, scratch_lr=2e-3),
    "paper": dict(models=models.MODEL_NAMES, episodes=5000, ways=5, shots=5, queries=15, lr=5e-4,
                  weight_decay=0.05, warmup=250, schedule="cosine", augment="batched",
                  val_every=250, val_episodes=100, eval_episodes=200, eval_shots=5, eval_queries=15,
                  scratch_steps=20000, scratch_batch=128, scratch_lr=2e-3),
}
SELECT_SEED_OFFSET = 1000   # model-selection episodes differ from the reported val episodes


@dataclass
class MetaConfig:
    """Everything that determines a meta-trained checkpoint (recorded in its sidecar)."""
    model: str
    profile: str = "smoke"
    init: str = "imagenet"
    episodes: int = 6
    ways: int = 5
    shots: int = 2
    queries: int = 4
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup: int = 2
    schedule: str = "cosine"
    augment: str = "batched"
    val_every: int = 3
    val_episodes: int = 6
    seed: int = 0
    scratch_steps: int = 4
    scratch_batch: int = 32
    scratch_lr: float = 2e-3

    def __post_init__(self):
        models.check_name(self.model)
        check_profile(self.profile)
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, not {self.init!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', not {self.schedule!r}")
        if self.augment not in ("batched", "meta", "none"):
            raise ValueError(f"augment must be 'batched', 'meta' or 'none', not {self.augment!r}")


def resolve(profile: str, **overrides) -> dict:
    """Profile defaults with the non-None overrides applied (the notebook's parameters)."""
    s = dict(PROFILE_SETTINGS[check_profile(profile)])
    unknown = set(overrides) - set(s) - {"seed", "init"}
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(s)}")
    s.update({k: v for k, v in overrides.items() if v is not None})
    s.setdefault("seed", 0)
    s.setdefault("init", "imagenet")
    s["models"] = tuple(models.check_name(m) for m in
                        ([s["models"]] if isinstance(s["models"], str) else s["models"]))
    return s


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- augmentation

def batched_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """P>M>F's meta-training augmentation (random-resized-crop scale 0.35-1 and ratio 3/4-4/3,
    flip, colour jitter 0.4/0.4/0.4/0.1) as whole-batch tensor ops. Same distribution family as
    `data.augment_batch(x, 'meta', gen)` but ~50x faster on CPU (per-image torchvision transforms
    cost ~3 s per 100-image episode here, 3x a training step); hue is a YIQ rotation and the
    jitter order is fixed. Deterministic given `gen`."""
    n = x.shape[0]

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    area, log_ratio = u(0.35, 1.0), u(math.log(3 / 4), math.log(4 / 3))
    w = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    cx, cy = u(-1, 1) * (1 - w), u(-1, 1) * (1 - h)
    flip = torch.where(u(0, 1) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, cx, h, cy
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    img = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    img = ((img * 128 + 128) / 255).clamp(0, 1)
    bri, con, sat, hue = u(0.6, 1.4), u(0.6, 1.4), u(0.6, 1.4), u(-0.1, 0.1) * 2 * math.pi
    v = lambda t: t.view(n, 1, 1, 1).to(img)  # noqa: E731
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1).to(img)
    img = (img * v(bri)).clamp(0, 1)
    mean = (img * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    img = ((img - mean) * v(con) + mean).clamp(0, 1)
    grey = (img * luma).sum(1, keepdim=True)
    img = ((img - grey) * v(sat) + grey).clamp(0, 1)
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    cos, sin = torch.cos(hue), torch.sin(hue)
    rot = torch.zeros(n, 3, 3)
    rot[:, 0, 0], rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = 1, cos, -sin, sin, cos
    m = torch.linalg.inv(yiq) @ rot @ yiq                                   # (n, 3, 3)
    img = torch.einsum("nij,njhw->nihw", m.to(img), img).clamp(0, 1)
    return (img * 255 - 128) / 128


def augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    if kind == "none":
        return x
    if kind == "batched":
        return batched_augment(x, gen)
    from .data import augment_batch
    return augment_batch(x, "meta", gen)


# ---------------------------------------------------------------- frozen-feature evaluation

def eval_queries(domain: str, split: str, shots: int, queries: int, profile: str, ways: int = 5) -> int:
    """Queries per class for a `ways`-way `shots`-shot table row: at most `queries`, and few
    enough that ~90% of the split's classes can take part (the domains keep 7-20 images per
    class; asking for more would restrict the episodes to a handful of large classes)."""
    from .data import load_domain
    d = load_domain(domain, profile)
    sizes = sorted(d.n_images(c, split) for c in d.classes(split))
    if len(sizes) < ways:
        return 0
    q = min(queries, sizes[len(sizes) // 10] - shots)
    return q if q >= 1 else min(queries, sizes[-ways] - shots)


def fixed_episodes(domain: str, split: str, n: int, ways: int, shots: int, queries: int,
                   seed: int, profile: str):
    from .data import EpisodeConfig, sample_episodes
    cfg = EpisodeConfig(mode="fixed", ways=ways, shots=shots, queries=queries)
    return sample_episodes(domain, split, n, cfg, seed=seed, profile=profile)


# ---------------------------------------------------------------- the training loops

def lr_lambda(step: int, total: int, warmup: int, schedule: str) -> float:
    """Linear warm-up over `warmup` steps, then constant or cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def protonet_loss(backbone: nn.Module, head: CosineHead, xs, ys, xq, yq, n_way: int):
    """One episode's query cross-entropy and accuracy; support and query go through the
    backbone as a single batch."""
    f = backbone(torch.cat([xs, xq]).contiguous(memory_format=torch.channels_last))
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
        xs = augment(xs, cfg.augment, gen).to(dev)
        xq = augment(xq, cfg.augment, gen).to(dev)
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
    """Cross-entropy over the base train classes, from random weights (init="scratch")."""
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
            x = augment(x, cfg.augment, gen).to(dev).contiguous(memory_format=torch.channels_last)
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


# ---------------------------------------------------------------- checkpoints

def checkpoint_path(model: str, name: str, profile: str):
    return checkpoints_dir(profile) / f"{model}-{name}.pt"


def _sidecar(cfg: MetaConfig, name: str) -> dict:
    from .data import manifest_hash
    return {"checkpoint": name, "model": cfg.model, "profile": cfg.profile, "seed": cfg.seed,
            "config": asdict(cfg), "manifest_hash": manifest_hash(cfg.profile)}


def _backbone_state(net: models.TinyNet, head: CosineHead | None = None) -> dict:
    state = {f"backbone.{k}": v for k, v in net.backbone.state_dict().items()}
    if head is not None:
        state.update({"proto_head.scale": head.scale.detach(), "proto_head.bias": head.bias.detach()})
    return state


def load_backbone(model: str, checkpoint: str = "imagenet", profile: str = "default") -> models.TinyNet:
    """A TinyNet whose backbone holds the `checkpoint` weights: "imagenet" (the released
    weights) or "meta" (meta-trained by notebooks/01_pretrain.ipynb); "scratch" and
    "scratch-meta" are the no-ImageNet path. The classifier is not part of a checkpoint."""
    models.check_name(model)
    valid = CHECKPOINTS + SCRATCH_CHECKPOINTS
    if checkpoint not in valid:
        raise ValueError(f"unknown checkpoint {checkpoint!r}; valid checkpoints: {', '.join(valid)}")
    if checkpoint == "imagenet":
        return models.create(model, pretrained=True)
    path = checkpoint_path(model, checkpoint, profile)
    scratch = ", init='scratch'" if checkpoint.startswith("scratch") else ""
    if not path.is_file():
        raise FileNotFoundError(
            f"no {checkpoint!r} checkpoint for {model} in profile {profile!r} ({path}); create it "
            f"by running notebooks/01_pretrain.ipynb with profile={profile!r}{scratch} "
            f"(or `make reproduce PROFILE={profile}`)")
    state, _ = checkpoints.load(path)
    net = models.create(model, pretrained=False)
    net.backbone.load_state_dict({k[len("backbone."):]: v for k, v in state.items()
                                  if k.startswith("backbone.")})
    return net


def _start_net(cfg: MetaConfig, names: tuple[str, str], progress: bool) -> models.TinyNet:
    """The network meta-training starts from: ImageNet weights, or supervised from scratch
    (reused from its checkpoint when the config matches)."""
    if cfg.init == "imagenet":
        net = models.create(cfg.model, pretrained=True)
        path, meta = checkpoint_path(cfg.model, "imagenet", cfg.profile), _sidecar(cfg, "imagenet")
        meta["config"] = {"model": cfg.model, "weights": "mit-han-lab/tiny-training int8, dequantised"}
        meta.pop("seed")
        if not checkpoints.matches(path, meta):
            checkpoints.save(path, _backbone_state(net), meta)
        return net
    path, meta = checkpoint_path(cfg.model, names[0], cfg.profile), _sidecar(cfg, names[0])
    keep = ("model", "profile", "seed", "augment", "weight_decay")
    meta["config"] = {k: v for k, v in meta["config"].items() if k in keep or k.startswith("scratch")}
    if checkpoints.matches(path, meta):
        return load_backbone(cfg.model, names[0], cfg.profile)
    from .data import base_loader
    torch.manual_seed(cfg.seed)
    classes = len(_base(cfg.profile).classes("train"))
    net = init_from_scratch(models.create(cfg.model, pretrained=False, num_classes=classes)).to(device())
    net = net.to(memory_format=torch.channels_last)
    batches = base_loader(cfg.profile, "train", batch_size=cfg.scratch_batch, augment="none",
                          seed=cfg.seed)
    hist = supervised_pretrain(net, batches, cfg, progress)
    checkpoints.save(path, _backbone_state(net), meta)
    path.with_name(path.stem + "-history.json").write_text(json.dumps(hist))
    return net


def _base(profile: str):
    from .data import base_domain, load_domain
    return load_domain(base_domain(profile), profile)


def checkpoint_names(init: str) -> tuple[str, str]:
    return CHECKPOINTS if init == "imagenet" else SCRATCH_CHECKPOINTS


def train_one(cfg: MetaConfig, force: bool = False, progress: bool = True) -> list[dict]:
    """Make (or reuse) the start and meta checkpoints of one backbone; returns the history."""
    names = checkpoint_names(cfg.init)
    path, meta = checkpoint_path(cfg.model, names[1], cfg.profile), _sidecar(cfg, names[1])
    hist_path = path.with_name(path.stem + "-history.json")
    if not force and checkpoints.matches(path, meta) and hist_path.is_file():
        return json.loads(hist_path.read_text())
    net = _start_net(cfg, names, progress).to(device()).to(memory_format=torch.channels_last)
    base = _base(cfg.profile)
    train_eps = fixed_episodes(base.name, "train", cfg.episodes, cfg.ways, cfg.shots, cfg.queries,
                               cfg.seed, cfg.profile)
    val_eps = fixed_episodes(base.name, "val", cfg.val_episodes, cfg.ways, cfg.shots, cfg.queries,
                             cfg.seed + SELECT_SEED_OFFSET, cfg.profile)
    from .data import episode_tensors

    def validate(bb):
        return mean_ci95(episode_accuracies({"m": bb}, val_eps)["m"])

    history, head = meta_train(net.backbone, (episode_tensors(ep) for ep in train_eps), cfg,
                               validate, progress)
    checkpoints.save(path, _backbone_state(net, head), meta)
    hist_path.write_text(json.dumps(history, indent=1))
    return history


# ---------------------------------------------------------------- the offline stage end to end

def pretrain(profile: str = "smoke", force: bool = False, progress: bool = True, **overrides) -> dict:
    """Meta-train every requested backbone (reusing matching checkpoints); returns
    {model: history rows}."""
    s = resolve(profile, **overrides)
    fields = set(MetaConfig.__dataclass_fields__) - {"model", "profile"}
    out = {}
    for m in s["models"]:
        cfg = MetaConfig(model=m, profile=profile, **{k: v for k, v in s.items() if k in fields})
        out[m] = train_one(cfg, force=force, progress=progress)
    return out


def before_after(profile: str = "smoke", progress: bool = True, force: bool = False, **overrides):
    """Frozen-feature N-way K-shot accuracy of both checkpoints of every model on the base
    domain (val and test classes) and every target domain's test classes, on the same fixed
    episodes. Returns (table, paired) DataFrames, written to results/<profile>/ and reused when
    settings, data and checkpoints are unchanged."""
    import pandas as pd

    from .data import base_domain, manifest_hash, target_domains
    s = resolve(profile, **overrides)
    names = checkpoint_names(s["init"])
    suffix = "" if s["init"] == "imagenet" else "_scratch"
    out = results_dir(profile)
    files = [out / f"meta_training{suffix}{x}" for x in (".csv", "_paired.csv", ".json")]
    key = json.loads(json.dumps(
        {"settings": s, "manifest_hash": manifest_hash(profile),
         "checkpoints": {m: {n: json.loads(checkpoint_path(m, n, profile).with_suffix(".json").read_text())
                             for n in names} for m in s["models"]}}, default=str))
    if not force and all(f.is_file() for f in files) and json.loads(files[2].read_text()).get("key") == key:
        return pd.read_csv(files[0]), pd.read_csv(files[1])
    rows, paired, used = [], [], {}
    base = base_domain(profile)
    splits = [(base, "val"), (base, "test")] + [(d, "test") for d in target_domains(profile)]
    for m in tqdm(s["models"], desc="before/after", disable=not progress):
        bbs = {n: load_backbone(m, n, profile).backbone.to(device()).to(memory_format=torch.channels_last)
               for n in names}
        for dom, split in splits:
            queries = eval_queries(dom, split, s["eval_shots"], s["eval_queries"], profile)
            if queries < 1:
                print(f"skipping {dom}/{split}: fewer than 5 classes with {s['eval_shots'] + 1} images")
                continue
            eps = fixed_episodes(dom, split, s["eval_episodes"], 5, s["eval_shots"], queries,
                                 s["seed"], profile)
            used[f"{dom}/{split}"] = queries
            accs = episode_accuracies(bbs, eps)
            for n in names:
                acc, ci = mean_ci95(accs[n])
                rows.append({"model": m, "domain": dom, "split": split, "checkpoint": n,
                             "acc": round(acc, 2), "ci95": round(ci, 2)})
            d, dci = paired_diff_ci95(accs[names[1]], accs[names[0]])
            verdict = "helps" if d - dci > 0 else "hurts" if d + dci < 0 else "no clear change"
            paired.append({"model": m, "domain": dom, "split": split, "delta": round(d, 2),
                           "ci95": round(dci, 2), "verdict": verdict})
    table, paired = pd.DataFrame(rows), pd.DataFrame(paired)
    table.to_csv(files[0], index=False)
    paired.to_csv(files[1], index=False)
    files[2].write_text(json.dumps(
        {"key": key, "seed": s["seed"], "manifest_hash": key["manifest_hash"], "ways": 5,
         "shots": s["eval_shots"], "queries_per_class": used, "episodes_per_row": s["eval_episodes"],
         "note": "paired = meta minus start checkpoint on the same episodes; base val classes also "
                 "drove model selection (on other episodes), base test classes are untouched"},
        indent=1))
    return table, paired


def plot_curves(histories: dict, profile: str, init: str = "imagenet"):
    """Learning curves: training query loss and base-val frozen accuracy (95% CI) per backbone."""
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, hist in histories.items():
        ep = [r["episode"] for r in hist]
        ax1.plot(ep[1:], [r["train_loss"] for r in hist[1:]], marker="o", ms=3, label=m)
        acc = [r.get("val_acc", math.nan) for r in hist]
        ci = [r.get("val_ci95", 0.0) for r in hist]
        ax2.errorbar(ep, acc, yerr=ci, marker="o", ms=3, capsize=2, label=m)
    ax1.set(xlabel="episode", ylabel="query cross-entropy (mean since last point)",
            title="meta-training loss")
    ax2.set(xlabel="episode", ylabel="base-val 5-way accuracy (%)",
            title="model selection (frozen features, 95% CI)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(f"ProtoNet meta-training on the base domain ({profile}, init={init})")
    fig.tight_layout()
    name = "meta_training" if init == "imagenet" else "meta_training_scratch"
    fig.savefig(figures_dir(profile) / f"{name}.png", dpi=120)
    return fig
