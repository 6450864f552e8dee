"""The paper's three MCU backbones, as readable data and a small builder.

mcunet-5fps, mbv2-w0.35 and proxyless-w0.3 at 128x128 input, exactly the nets whose int8
ImageNet weights mit-han-lab/tiny-training released (see `weights.py`). Each is a first 3x3
stride-2 conv followed by MobileNetV2-style inverted residual blocks
(1x1 expand -> kxk depthwise -> 1x1 project, residual when stride is 1 and channels match).

Two variants (`feature_mix`):
- nomix (default): the classifier reads the last block's 160/112/96 features; the released
  weights have this shape, and it is what we train.
- feature_mix=True: the usual 1x1 "feature mix" conv (mbv2 112->448, proxyless 96->384) that
  TinyTrain's cost table implies. It has no released weights (random init) and is used for
  costs; mcunet-5fps has none (its paper FullTrain figure is 2x the nomix forward MACs).

Activations: every conv whose int8 output range is [0, 6] is a ReLU6 (BatchNorm folded into the
conv). Projection convs are linear: their int8 clamp is a quantisation range, not part of the
float network, so we leave it out (the ImageNet check in tests passes either way).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F

INPUT_SIZE = 128

# (kernel, expansion, out_channels, stride) per inverted-residual block, read off the weights.
BLOCKS = {
    "mcunet-5fps": [(3, 1, 8, 1), (3, 4, 16, 2), (3, 3, 16, 1), (7, 3, 24, 2), (3, 5, 24, 1),
                    (3, 5, 40, 2), (7, 4, 40, 1), (5, 4, 48, 1), (3, 3, 48, 1), (3, 4, 48, 1),
                    (7, 5, 96, 2), (5, 4, 96, 1), (5, 4, 96, 1), (3, 6, 160, 1)],
    "mbv2-w0.35": [(3, 1, 8, 1), (3, 6, 8, 2), (3, 6, 8, 1), (3, 6, 16, 2), (3, 6, 16, 1),
                   (3, 6, 16, 1), (3, 6, 24, 2), (3, 6, 24, 1), (3, 6, 24, 1), (3, 6, 24, 1),
                   (3, 6, 32, 1), (3, 6, 32, 1), (3, 6, 32, 1), (3, 6, 56, 2), (3, 6, 56, 1),
                   (3, 6, 56, 1), (3, 6, 112, 1)],
    "proxyless-w0.3": [(3, 1, 8, 1), (5, 3, 16, 2), (3, 3, 16, 1), (7, 3, 16, 2), (3, 3, 16, 1),
                       (5, 3, 16, 1), (5, 3, 16, 1), (7, 6, 24, 2), (5, 3, 24, 1), (5, 3, 24, 1),
                       (5, 3, 24, 1), (5, 6, 32, 1), (5, 3, 32, 1), (5, 3, 32, 1), (5, 3, 32, 1),
                       (7, 6, 64, 2), (7, 6, 64, 1), (7, 3, 64, 1), (7, 3, 64, 1), (7, 6, 96, 1)],
}
FIRST_CHANNELS = 16
FEATURE_MIX = {"mcunet-5fps": None, "mbv2-w0.35": 448, "proxyless-w0.3": 384}
MODEL_NAMES = tuple(BLOCKS)


@dataclass(frozen=True)
class ConvShape:
    """What the cost model needs to know about one conv at 128 px input."""
    index: int
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    in_hw: int
    out_hw: int
    relu6: bool

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    @property
    def params(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel ** 2 + self.out_channels

    @property
    def macs(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel ** 2 * self.out_hw ** 2


class ConvUnit(nn.Module):
    """A conv with BatchNorm folded into its weight and bias, then ReLU6 or nothing."""

    def __init__(self, shape: ConvShape):
        super().__init__()
        self.shape = shape
        s = shape
        self.conv = nn.Conv2d(s.in_channels, s.out_channels, s.kernel, s.stride, s.kernel // 2,
                              groups=s.groups, bias=True)

    def forward(self, x):
        y = self.conv(x)
        return F.hardtanh(y, 0.0, 6.0) if self.shape.relu6 else y


class Block(nn.Module):
    def __init__(self, pointwise1, depthwise, pointwise2, residual: bool):
        super().__init__()
        self.pointwise1, self.depthwise, self.pointwise2 = pointwise1, depthwise, pointwise2
        self.residual = residual

    def units(self) -> list[ConvUnit]:
        return [u for u in (self.pointwise1, self.depthwise, self.pointwise2) if u is not None]


class Backbone(nn.Module):
    """Images (N,3,128,128) scaled (pixel-128)/128 -> pooled features (N, feature_dim)."""

    def __init__(self, name: str, feature_mix: bool = False):
        super().__init__()
        self.name = name
        shapes = _conv_shapes(name, feature_mix)
        units = iter(ConvUnit(s) for s in shapes)
        self.first_conv = next(units)
        blocks, cin = [], FIRST_CHANNELS
        for _k, e, cout, stride in BLOCKS[name]:
            pw1 = next(units) if e != 1 else None
            blocks.append(Block(pw1, next(units), next(units), stride == 1 and cin == cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.feature_mix = next(units, None)
        self.feature_dim = shapes[-1].out_channels

    def convs(self) -> list[ConvUnit]:
        """The ordered conv list (first conv = index 0, classifier excluded), the indexing
        SparseUpdate's schemes and the cost model use."""
        out = [self.first_conv]
        for b in self.blocks:
            out += b.units()
        if self.feature_mix is not None:
            out.append(self.feature_mix)
        return out

    def conv_shapes(self) -> list[ConvShape]:
        return [u.shape for u in self.convs()]

    def stages(self) -> list[list[ConvUnit]]:
        """The chain cut where a single tensor flows: stage 0 the first conv, stage k block k,
        then the feature mix (if any). Prefix caching cuts the network at these boundaries."""
        out = [[self.first_conv]] + [b.units() for b in self.blocks]
        return out + [[self.feature_mix]] if self.feature_mix is not None else out

    def stage_of(self, conv_index: int) -> int:
        """The stage holding conv `conv_index` (the `convs()` index)."""
        seen = 0
        for s, units in enumerate(self.stages()):
            seen += len(units)
            if conv_index < seen:
                return s
        raise IndexError(f"conv {conv_index} out of range ({seen} convs)")

    def run(self, x, unit=None, start: int = 0, stop: int | None = None, branch=None):
        """The network's topology in one place. `unit(conv_unit, x)` evaluates one conv; the
        sparse training engine passes its own to decide per layer what autograd keeps.
        `branch(block_index, block_input)` may return a tensor added to the block's main path
        before its skip connection (side branches, `branches.py`), or None.
        `stop=k` returns the activation entering stage k (see `stages`) and `start=k` continues
        from it; with `stop=None` the result is the pooled features."""
        unit = unit or (lambda u, t: u(t))
        n_blocks = len(self.blocks)
        for s in range(start, len(self.stages()) if stop is None else stop):
            if s == 0:
                x = unit(self.first_conv, x)
            elif s <= n_blocks:
                b, y = self.blocks[s - 1], x
                for u in b.units():
                    y = unit(u, y)
                side = branch(s - 1, x) if branch is not None else None
                if side is not None:
                    y = y + side
                x = x + y if b.residual else y
            else:
                x = unit(self.feature_mix, x)
        return x.mean((2, 3)) if stop is None else x

    def forward(self, x):
        return self.run(x)

    def forward_macs(self) -> int:
        return sum(s.macs for s in self.conv_shapes())


class TinyNet(nn.Module):
    """Backbone + linear classifier. `net.backbone` is the feature extractor for few-shot heads."""

    def __init__(self, name: str, feature_mix: bool = False, num_classes: int = 1000):
        super().__init__()
        self.name = name
        self.backbone = Backbone(name, feature_mix)
        self.classifier = nn.Linear(self.backbone.feature_dim, num_classes)

    def forward(self, x):
        return self.classifier(self.backbone(x))

    def convs(self) -> list[ConvUnit]:
        return self.backbone.convs()


def _conv_shapes(name: str, feature_mix: bool) -> list[ConvShape]:
    shapes: list[ConvShape] = []

    def add(label, cin, cout, k, stride, groups, hw, relu6):
        out_hw = (hw + stride - 1) // stride
        shapes.append(ConvShape(len(shapes), label, cin, cout, k, stride, groups, hw, out_hw, relu6))
        return out_hw

    hw = add("first_conv", 3, FIRST_CHANNELS, 3, 2, 1, INPUT_SIZE, True)
    cin = FIRST_CHANNELS
    for i, (k, e, cout, stride) in enumerate(BLOCKS[name]):
        mid = cin * e
        if e != 1:
            add(f"blocks.{i}.pointwise1", cin, mid, 1, 1, 1, hw, True)
        new_hw = add(f"blocks.{i}.depthwise", mid, mid, k, stride, mid, hw, True)
        add(f"blocks.{i}.pointwise2", mid, cout, 1, 1, 1, new_hw, False)
        hw, cin = new_hw, cout
    if feature_mix and FEATURE_MIX[name]:
        add("feature_mix", cin, FEATURE_MIX[name], 1, 1, 1, hw, True)
    return shapes


def check_name(name: str) -> str:
    if name not in BLOCKS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    return name


def create(name: str, pretrained: bool = False, feature_mix: bool = False,
           num_classes: int = 1000) -> TinyNet:
    """A randomly initialised TinyNet by name. Weights are not this module's business: the
    released ImageNet weights come through `checkpoints.create(name, pretrained=True)`, so
    asking for them here raises and names that door."""
    if pretrained:
        raise ValueError("models.create builds the architecture only; load ImageNet weights with "
                         "tinytrain_core.nets.checkpoints.create(name, pretrained=True)")
    return TinyNet(check_name(name), feature_mix, num_classes)


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
