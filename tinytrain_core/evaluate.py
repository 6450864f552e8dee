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
    from .data import episode_tensors
    accs = []
    for ep in episodes:
        xs, ys, xq, yq = episode_tensors(ep)
        accs.append(100.0 * prototype_accuracy(embed(backbone, xs), ys, embed(backbone, xq), yq))
    return accs


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
