"""Update schemes: which parts of a backbone train. Every method maps to one.

An `UpdateScheme` names, over the ordered conv list of a backbone (first conv = 0):
- `weights`: conv index -> the kept channels whose weight slices train. For a regular conv
  these are INPUT channels (the slice `weight[:, c]`); for a depthwise conv, channels
  (`weight[c]`). All channels = full weight update.
- `biases`: conv indices whose bias trains.
- `branches`: block index -> side-branch kind (`branches.py`: TinyTL's `lite_residual`,
  AdapterDrop's `adapter`); the engine builds and trains them, the cost model prices them.
- `extra_params`: other trainable parameters (e.g. a classifier), by name -> count; the cost
  model charges them as parameters, the engine ignores them.

The cost model (`costs.py`) prices a scheme; the sparse engine (`sparse.py`) trains exactly it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..nets.branches import KINDS, n_blocks
from ..nets.models import ConvShape
from .. import reference


@dataclass(frozen=True)
class UpdateScheme:
    name: str
    weights: dict[int, tuple[int, ...]] = field(default_factory=dict)
    biases: frozenset[int] = frozenset()
    extra_params: dict[str, int] = field(default_factory=dict)
    branches: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "weights", {int(k): tuple(sorted(int(c) for c in v))
                                             for k, v in self.weights.items() if len(v) > 0})
        object.__setattr__(self, "biases", frozenset(int(i) for i in self.biases))
        object.__setattr__(self, "branches", {int(b): str(k) for b, k in sorted(self.branches.items())})

    @property
    def lowest_branch(self) -> int | None:
        """The lowest block with a side branch: gradient must reach that block's output."""
        return min(self.branches) if self.branches else None

    @property
    def trains(self) -> bool:
        return bool(self.trained_layers or self.branches)

    @property
    def trained_layers(self) -> list[int]:
        return sorted(set(self.weights) | set(self.biases))

    @property
    def earliest(self) -> int | None:
        """The earliest conv that trains anything: backward stops there."""
        layers = self.trained_layers
        return layers[0] if layers else None

    def ratio(self, index: int, shapes: Sequence[ConvShape]) -> float:
        return len(self.weights.get(index, ())) / shapes[index].in_channels

    def validate(self, shapes: Sequence[ConvShape]) -> "UpdateScheme":
        for i, chans in self.weights.items():
            if not 0 <= i < len(shapes):
                raise ValueError(f"scheme {self.name}: conv index {i} outside 0..{len(shapes) - 1}")
            if chans and not (0 <= chans[0] and chans[-1] < shapes[i].in_channels):
                raise ValueError(f"scheme {self.name}: channel out of range for conv {i} "
                                 f"({shapes[i].in_channels} channels)")
        if any(not 0 <= i < len(shapes) for i in self.biases):
            raise ValueError(f"scheme {self.name}: bias index outside 0..{len(shapes) - 1}")
        if self.branches:
            nb = n_blocks(shapes)
            for b, kind in self.branches.items():
                if not 0 <= b < nb or kind not in KINDS:
                    raise ValueError(f"scheme {self.name}: branch {kind!r} at block {b} (blocks 0..{nb - 1}, "
                                     f"kinds {', '.join(KINDS)})")
        return self

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "weights": {str(k): list(v) for k, v in self.weights.items()},
                           "biases": sorted(self.biases), "extra_params": self.extra_params,
                           "branches": {str(b): k for b, k in self.branches.items()}})


def full_train(shapes: Sequence[ConvShape]) -> UpdateScheme:
    return UpdateScheme("FullTrain", {s.index: tuple(range(s.in_channels)) for s in shapes},
                        frozenset(s.index for s in shapes))


def last_layer(shapes: Sequence[ConvShape]) -> UpdateScheme:
    """The last conv (the feature-mix conv where there is one): weights and bias."""
    s = shapes[-1]
    return UpdateScheme("LastLayer", {s.index: tuple(range(s.in_channels))}, frozenset({s.index}))


def tinytl(shapes: Sequence[ConvShape]) -> UpdateScheme:
    """TinyTL (lite residual + bias): every conv's bias and a lite-residual branch per block."""
    return UpdateScheme("TinyTL", {}, frozenset(s.index for s in shapes),
                        branches={b: "lite_residual" for b in range(n_blocks(shapes))})


def adapter_drop(shapes: Sequence[ConvShape], drop: float) -> UpdateScheme:
    """AdapterDrop-<drop>: an adapter in every block but the lowest floor(drop x blocks)."""
    nb = n_blocks(shapes)
    return UpdateScheme(f"AdapterDrop-{round(drop * 100)}%", branches={b: "adapter" for b in range(int(nb * drop), nb)})


def bias_only(shapes: Sequence[ConvShape]) -> UpdateScheme:
    return UpdateScheme("BiasOnly", {}, frozenset(s.index for s in shapes))


def no_update() -> UpdateScheme:
    return UpdateScheme("None")


def l2_channels(weight: torch.Tensor, k: int, depthwise: bool) -> tuple[int, ...]:
    """SparseUpdate's static 'magnitude+' rule: the k input channels (depthwise: channels) whose
    weight slices have the largest L2 norm."""
    w = weight.detach().float()
    norms = w.flatten(1).norm(dim=1) if depthwise else w.transpose(0, 1).flatten(1).norm(dim=1)
    return tuple(sorted(torch.topk(norms, k).indices.tolist()))


def from_ratios(name: str, shapes: Sequence[ConvShape], n_bias_update: int, weight_idx: Sequence[int],
                ratios: Sequence[float], conv_weights: Sequence[torch.Tensor] | None = None) -> UpdateScheme:
    """A SparseUpdate-style scheme: biases of the last `n_bias_update` convs, plus weights of the
    listed convs at the given input-channel ratios (0 = bias only), channels by weight L2 norm
    (or the first c channels when no weights are given, which only the cost model may use)."""
    weights = {}
    for i, r in zip(weight_idx, ratios):
        c = int(shapes[i].in_channels * r)
        if c > 0:
            weights[i] = (l2_channels(conv_weights[i], c, shapes[i].depthwise)
                          if conv_weights is not None else tuple(range(c)))
    biases = frozenset(range(len(shapes) - n_bias_update, len(shapes)))
    return UpdateScheme(name, weights, biases).validate(shapes)


def released_sparse_update(model: str) -> dict[str, dict]:
    """SparseUpdate's released schemes for `model` (label -> config): the tiny-training
    repository's `sparse_update_config` (MIT), read from the reference folder at run time."""
    raw = reference.sparse_update_schemes()
    if model not in raw["schemes"]:
        raise ValueError(f"no released SparseUpdate scheme for {model}; have {', '.join(raw['schemes'])}")
    return raw["schemes"][model]


def sparse_update(model: str, label: str, shapes: Sequence[ConvShape],
                  conv_weights: Sequence[torch.Tensor] | None = None) -> UpdateScheme:
    cfg = released_sparse_update(model)
    if label not in cfg:
        raise ValueError(f"{model} has SparseUpdate schemes {', '.join(cfg)}, not {label!r}")
    c = cfg[label]
    return from_ratios(f"SparseUpdate-{label}", shapes, c["n_bias_update"], c["manual_weight_idx"],
                       c["weight_update_ratio"], conv_weights)


def conv_weights_of(backbone) -> list[torch.Tensor]:
    return [u.conv.weight.detach() for u in backbone.convs()]
