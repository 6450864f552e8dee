"""The few-shot head shared by meta-training and fine-tuning: cosine ProtoNet (P>M>F).

Prototypes are class means of support features; logits = scale * (cos(f, prototype) + bias)
with a learnable scale (init 10) and bias (init 0). No weights of its own beyond those two
scalars, so it works for any number of ways.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def prototypes(features: torch.Tensor, labels: torch.Tensor, n_way: int | None = None) -> torch.Tensor:
    """Class means (n_way, D) of `features` (N, D) grouped by integer `labels` in [0, n_way)."""
    n_way = int(labels.max()) + 1 if n_way is None else n_way
    onehot = F.one_hot(labels, n_way).to(features.dtype)          # (N, C)
    counts = onehot.sum(0).clamp_min(1.0)
    return (onehot.t() @ features) / counts[:, None]


class CosineHead(nn.Module):
    def __init__(self, scale: float = 10.0, bias: float = 0.0, learnable: bool = True):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=learnable)
        self.bias = nn.Parameter(torch.tensor(float(bias)), requires_grad=learnable)

    def forward(self, query_features: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(query_features, dim=-1) @ F.normalize(protos, dim=-1).t()
        return self.scale * (cos + self.bias)


@torch.no_grad()
def prototype_accuracy(support_f, support_y, query_f, query_y) -> float:
    """Top-1 accuracy (0-1) of nearest-prototype classification by cosine similarity."""
    protos = prototypes(support_f, support_y)
    pred = (F.normalize(query_f, dim=-1) @ F.normalize(protos, dim=-1).t()).argmax(1)
    return (pred == query_y).float().mean().item()


@torch.no_grad()
def embed(backbone: torch.nn.Module, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Frozen features of `x` in batches of `batch`, on the backbone's device, returned on the CPU."""
    backbone.eval()
    dev = next(backbone.parameters()).device
    return torch.cat([backbone(x[i:i + batch].to(dev)).float().cpu()
                      for i in range(0, len(x), batch)])
