"""TinyTrain's dynamic layer/channel selection under a memory and a compute budget.

Multi-objective score per conv i (TINYTRAIN.md section 2), each cost normalised by its maximum
over all convs of the model:

    s_i = P_i / ( (|W_i| / max_l |W_l|) * (M_i / max_l M_l) )

Selection rule -- a *reconstruction* of the paper's unseen Algorithm 1, documented here:
1. rank the candidate convs by s_i, highest first;
2. walk down the ranking; for each conv try the channel ratios RATIOS from the largest down and
   add it with the first ratio whose accumulated scheme still fits BOTH budgets (backward memory
   in KiB under the cost preset, backward MACs per sample); a conv that fits at no ratio is
   skipped and the walk goes on (a cheaper conv further down may still fit);
3. within a conv the kept input channels (depthwise: channels) are the top-k by Fisher potential
   (`channels="fisher"`), by static weight L2 norm (`"l2"`, SparseUpdate's rule) or at random
   (`"random"`) -- the paper's channel ablation. Layers are ranked by s_i in every mode.
Biases: `biases="selected"` (default) trains the bias of every selected conv, `"none"` none.
Nothing fits -> ValueError giving the smallest feasible budgets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from .costs import SchemeCost, scheme_costs
from .fisher import FisherPotential
from ..nets.models import ConvShape
from .schemes import UpdateScheme, l2_channels

RATIOS = (1.0, 0.5, 0.25, 0.125)
CHANNEL_MODES = ("fisher", "l2", "random")
BIAS_MODES = ("selected", "none")
PRESET = "tiny_training_int8"
# The paper's figures for mcunet-5fps: the middle of its channel ablation (303-355 kB) and its
# TinyTrain backward compute (6.51 M MACs, table 2). They are results of the paper, not budgets that
# make selection a per-task decision here (compute alone binds): the profiles' budgets
# (`profiles.MEMORY_KIB`, `profiles.COMPUTE_MACS`, chosen in notebook 02) are the run's defaults.
DEFAULT_MEMORY_KIB = 320.0
DEFAULT_COMPUTE_MACS = 6.5e6


def layer_scores(fp: FisherPotential, shapes: Sequence[ConvShape], layers: Sequence[int] | None = None
                 ) -> dict[int, float]:
    """s_i for the convs in `layers` (default: those with a potential)."""
    layers = sorted(fp.per_channel) if layers is None else layers
    max_w = max(s.params for s in shapes)
    max_m = max(s.macs for s in shapes)
    return {i: fp.layer(i) / ((shapes[i].params / max_w) * (shapes[i].macs / max_m)) for i in layers}


def pick_channels(mode: str, i: int, k: int, shape: ConvShape, fp: FisherPotential | None,
                  weight: torch.Tensor | None, generator: torch.Generator | None) -> tuple[int, ...]:
    """The k input channels (depthwise: channels) of conv i to train, by `mode`."""
    if k >= shape.in_channels:
        return tuple(range(shape.in_channels))
    if mode == "fisher":
        scores = fp.channel_scores(i) if fp is not None else None
        if scores is not None:
            return tuple(sorted(torch.topk(scores, k).indices.tolist()))
        mode = "l2"   # output-mode potentials of the first conv's input (the image) do not exist
    if mode == "l2":
        if weight is None:
            raise ValueError("channels='l2' needs the conv weights")
        return l2_channels(weight, k, shape.depthwise)
    if mode == "random":
        return tuple(sorted(torch.randperm(shape.in_channels, generator=generator)[:k].tolist()))
    raise ValueError(f"channels must be one of {', '.join(CHANNEL_MODES)}, not {mode!r}")


def n_channels(shape: ConvShape, ratio: float) -> int:
    return max(1, int(shape.in_channels * ratio))


def _with(scheme: UpdateScheme, i: int, chans: tuple[int, ...], bias: bool) -> UpdateScheme:
    return UpdateScheme(scheme.name, {**scheme.weights, i: chans},
                        scheme.biases | ({i} if bias else set()), scheme.extra_params)


def smallest_feasible(shapes, layers, biases="selected", preset=PRESET):
    """(memory KiB, backward MACs, description) of the cheapest single-conv schemes at the
    smallest ratio: the smallest memory budget and the smallest compute budget that admit one."""
    best_mem = best_mac = None
    for i in layers:
        c = n_channels(shapes[i], RATIOS[-1])
        cost = scheme_costs(shapes, UpdateScheme("probe", {i: tuple(range(c))},
                                                 frozenset({i} if biases == "selected" else ())), preset)
        if best_mem is None or cost.memory_kib < best_mem[0]:
            best_mem = (cost.memory_kib, cost.backward_macs, i)
        if best_mac is None or cost.backward_macs < best_mac[1]:
            best_mac = (cost.memory_kib, cost.backward_macs, i)
    return best_mem, best_mac


@dataclass(frozen=True)
class Step:
    """One conv's turn in the greedy walk: `ratio` is the ratio it was added with (None: refused),
    `cost` the price of the accumulated scheme with it at that ratio (refused: at the smallest
    ratio, the cheapest try, so a budget it exceeds is exceeded at every ratio)."""
    conv: int
    ratio: float | None
    cost: SchemeCost


def walk(fp: FisherPotential, shapes: Sequence[ConvShape], memory_kib: float, compute_macs: float,
         channels: str = "fisher", biases: str = "selected", conv_weights: Sequence[torch.Tensor] | None = None,
         layers: Sequence[int] | None = None, seed: int = 0, preset: str = PRESET, name: str = "TinyTrain"
         ) -> Iterator[tuple[Step, UpdateScheme]]:
    """The greedy walk of the module docstring, one (Step, scheme after the step) per ranked conv.
    `select_scheme` keeps the last scheme; `explain.explain_selection` tabulates the steps."""
    if channels not in CHANNEL_MODES:
        raise ValueError(f"channels must be one of {', '.join(CHANNEL_MODES)}, not {channels!r}")
    if biases not in BIAS_MODES:
        raise ValueError(f"biases must be one of {', '.join(BIAS_MODES)}, not {biases!r}")
    scores = layer_scores(fp, shapes, layers)
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    gen = torch.Generator().manual_seed(seed)
    scheme = UpdateScheme(name)
    for i in ranked:
        step = None
        for r in RATIOS:
            k = n_channels(shapes[i], r)
            w = conv_weights[i] if conv_weights is not None else None
            chans = pick_channels(channels, i, k, shapes[i], fp, w, gen)
            trial = _with(scheme, i, chans, biases == "selected")
            cost = scheme_costs(shapes, trial, preset)
            if cost.memory_kib <= memory_kib and cost.backward_macs <= compute_macs:
                scheme, step = trial, Step(i, r, cost)
                break
        yield step or Step(i, None, cost), scheme


def select_scheme(fp: FisherPotential, shapes: Sequence[ConvShape], memory_kib: float = DEFAULT_MEMORY_KIB,
                  compute_macs: float = DEFAULT_COMPUTE_MACS, channels: str = "fisher",
                  biases: str = "selected", conv_weights: Sequence[torch.Tensor] | None = None,
                  layers: Sequence[int] | None = None, seed: int = 0, preset: str = PRESET,
                  name: str = "TinyTrain") -> UpdateScheme:
    """Greedy budgeted selection (module docstring, `walk`). `conv_weights[i]` is needed for
    channels='l2'; `layers` restricts the candidates (default: every conv with a potential)."""
    steps = list(walk(fp, shapes, memory_kib, compute_macs, channels, biases, conv_weights, layers, seed, preset,
                      name))
    ranked = [step.conv for step, _ in steps]
    scheme = steps[-1][1] if steps else UpdateScheme(name)
    if not scheme.trained_layers:
        (m_kib, m_macs, m_i), (c_kib, c_macs, c_i) = smallest_feasible(shapes, ranked, biases, preset)
        raise ValueError(
            f"no conv fits the budgets (memory {memory_kib:.1f} KiB, compute {compute_macs:,.0f} MACs). "
            f"Smallest feasible: conv {m_i} at ratio {RATIOS[-1]} needs memory_kib >= {m_kib:.1f} with "
            f"compute_macs >= {m_macs:,.0f}; the cheapest in compute, conv {c_i}, needs compute_macs >= "
            f"{c_macs:,.0f} with memory_kib >= {c_kib:.1f}.")
    return scheme.validate(shapes)
