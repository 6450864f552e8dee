"""Where tensors run: the device, the memory layout every training and evaluation path uses, and
the CPU kernels in effect (`cpu_kernels`, recorded with every run; the pin: `tinytrain_core.CPU_PIN`)."""
from __future__ import annotations

import contextlib
import os
import warnings

import torch

# 2.8-4x faster CPU training than NCHW (reference/CPU_SPEED.md), same outputs
CL = torch.channels_last


def device() -> str:
    """CUDA when present, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_kernels() -> dict:
    """The CPU instruction set ATen dispatches to in this process and the pin's variables as set:
    what a run records, since two machines agree bit for bit only under the same kernels."""
    from . import CPU_PIN
    return {"aten_cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            **{k: os.environ.get(k) for k in CPU_PIN}}


def _check_pin() -> None:
    """Warn when this process's CPU kernels are not the ones its environment asks for: an op ran
    before the package was imported (the pin then came too late) or the CPU lacks the pinned
    instruction set. Results may then differ from the reference in the last bits."""
    want = os.environ.get("ATEN_CPU_CAPABILITY", "")
    got = torch.backends.cpu.get_cpu_capability()
    if want and want.lower() != got.lower():
        warnings.warn(f"CPU kernels are {got}, not the pinned {want.upper()} (tinytrain_core.CPU_PIN): results may "
                      "differ from the reference in the last bits; start the process with ATEN_CPU_CAPABILITY="
                      f"{want} ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '')} set (make and the "
                      "tinytrain kernel do), or import tinytrain_core before running any tensor op", stacklevel=2)


_check_pin()


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x` laid out channels_last (a no-op when it already is)."""
    return x.contiguous(memory_format=CL)


# Meta-training's intra-op threads on every machine: reductions (weight gradients) are split
# over threads, so the count changes a checkpoint's bits (measured: 1 vs 2 threads gave two
# different mcunet meta checkpoints here). 2 = the reference machine's cores, so it costs nothing
# there; a bigger machine gives up speed for the same bits.
META_THREADS = 2


@contextlib.contextmanager
def threads(n: int):
    """`n` intra-op threads inside; the previous count restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread():
    """One intra-op thread inside, as the run's domain workers train (`adapt._domain_work`: two
    busy threads beside another process spin against it, and the rows then do not depend on the
    number of workers or cores)."""
    return threads(1)
