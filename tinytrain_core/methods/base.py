"""The interface every adaptation method implements, and the context it is given.

A method decides, per task and before any training, WHICH parts of the backbone train: it
returns an `UpdateScheme`. Fine-tuning (`finetune.py`) and costing (`costs.py`) are shared, so
methods differ only in that choice (and in their offline checkpoint). Static methods ignore the
support set; TinyTrain reads it (Fisher pass + budgeted selection), which is why the time spent
in `scheme()` is measured and reported as selection time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..training.schemes import UpdateScheme
from ..profiles import COMPUTE_MACS, MEMORY_KIB


@dataclass
class Context:
    """Everything a method may need besides the backbone and the support set."""
    model: str
    memory_kib: float = MEMORY_KIB               # backward memory budget, tiny_training_int8 KiB
    compute_macs: float = COMPUTE_MACS           # backward MACs budget per sample
    channels: str = "fisher"                     # fisher | l2 | random
    activation: str = "input"                    # Fisher potential of the conv input or output
    fisher_path: str = "total"                   # input gradient: total | conv (without the skip's)
    biases: str = "selected"                     # selected | none
    fisher_chunk: int = 25
    sparse_update_label: str | None = None       # SparseUpdate: "search", a released label, None: the largest
    sparse_gains: object = None                  # SparseUpdate "search": its contribution analysis (a DataFrame)
    static_scheme: str | None = None             # Static: the frozen scheme, as `adapt.scheme_summary` writes it
    seed: int = 0


class Method:
    name: str = "?"
    default_checkpoint: str = "imagenet"   # the paper's main table: baselines from ImageNet weights
    trains: bool = True
    entropy_weight: float = 0.0            # > 0: transductive (the queries' entropy joins the loss)

    def scheme(self, backbone, support_x: torch.Tensor, support_y: torch.Tensor,
               ctx: Context) -> UpdateScheme:
        raise NotImplementedError

    def timed_scheme(self, backbone, support_x, support_y, ctx: Context) -> tuple[UpdateScheme, float]:
        t0 = time.perf_counter()
        sch = self.scheme(backbone, support_x, support_y, ctx)
        return sch, time.perf_counter() - t0

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"
