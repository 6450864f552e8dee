"""Where tensors run: the device, and the memory layout every training and evaluation path uses."""
from __future__ import annotations

import contextlib

import torch

# 2.8-4x faster CPU training than NCHW (reference/CPU_SPEED.md), same outputs
CL = torch.channels_last


def device() -> str:
    """CUDA when present, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x` laid out channels_last (a no-op when it already is)."""
    return x.contiguous(memory_format=CL)


@contextlib.contextmanager
def one_thread():
    """One intra-op thread inside, as the run's domain workers train (`adapt._domain_work`: two
    busy threads beside another process spin against it); the previous count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
