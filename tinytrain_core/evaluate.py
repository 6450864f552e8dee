"""Frozen-feature few-shot evaluation: how good is a representation before any adaptation?

For each N-way K-shot episode, embed support and query images with the frozen backbone,
classify queries by cosine similarity to class-mean prototypes, and average over episodes
(mean and 95% CI in percent). The same episodes are used for every backbone and checkpoint.
"""
from __future__ import annotations

import torch

from .heads import prototype_accuracy
from .stats import mean_ci95


@torch.no_grad()
def embed(backbone: torch.nn.Module, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    backbone.eval()
    device = next(backbone.parameters()).device
    return torch.cat([backbone(x[i:i + batch].to(device)).float().cpu()
                      for i in range(0, len(x), batch)])


def episode_accuracies(backbone, episodes) -> list[float]:
    """Per-episode nearest-prototype accuracy (%) of one frozen backbone."""
    return episode_accuracies_many({"m": backbone}, episodes)["m"]


@torch.no_grad()
def episode_accuracies_many(backbones: dict, episodes, batch: int = 200) -> dict[str, list[float]]:
    """Per-episode nearest-prototype accuracy (%) of several frozen backbones on the same
    episodes. Every distinct image is decoded once and embedded once per backbone, however many
    episodes share it (episodes of one domain overlap heavily)."""
    from .data import load_batch
    paths = sorted({p for ep in episodes for p, _ in ep.support + ep.query})
    index = {p: i for i, p in enumerate(paths)}
    feats = {k: [] for k in backbones}
    for bb in backbones.values():
        bb.eval()
    for i in range(0, len(paths), batch):
        x = load_batch(paths[i:i + batch])
        for k, bb in backbones.items():
            dev = next(bb.parameters()).device
            feats[k].append(bb(x.to(dev).contiguous(memory_format=torch.channels_last)).float().cpu())
    out = {}
    for k in backbones:
        f = torch.cat(feats[k]) if feats[k] else torch.zeros(0, 1)
        accs = []
        for ep in episodes:
            si = torch.tensor([index[p] for p, _ in ep.support])
            qi = torch.tensor([index[p] for p, _ in ep.query])
            ys = torch.tensor([y for _, y in ep.support])
            yq = torch.tensor([y for _, y in ep.query])
            accs.append(100.0 * prototype_accuracy(f[si], ys, f[qi], yq))
        out[k] = accs
    return out


def frozen_accuracy(backbone, domain_name: str, profile: str, split: str = "test",
                    n_episodes: int = 50, ways: int = 5, shots: int = 5, queries: int = 15,
                    seed: int = 0) -> tuple[float, float]:
    """(mean accuracy %, 95% CI half-width) of cosine prototypes on frozen features over
    `n_episodes` fixed-mode episodes of `domain_name`'s `split`."""
    from .data import EpisodeConfig, load_domain, sample_episodes
    cfg = EpisodeConfig(mode="fixed", ways=ways, shots=shots, queries=queries)
    domain = load_domain(domain_name, profile)
    eps = sample_episodes(domain, split, n_episodes, cfg, seed=seed, profile=profile)
    return mean_ci95(episode_accuracies(backbone, eps))
