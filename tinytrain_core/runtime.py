"""Where tensors run: the device, and the memory layout every training and evaluation path uses."""
from __future__ import annotations

import torch

# 2.8-4x faster CPU training than NCHW (reference/CPU_SPEED.md), same outputs
CL = torch.channels_last


def device() -> str:
    """CUDA when present, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x` laid out channels_last (a no-op when it already is)."""
    return x.contiguous(memory_format=CL)
