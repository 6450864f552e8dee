"""AdapterDrop (Ruckle et al. 2021) for CNNs, the fixed ("specialised") variant: a zero-initialised
parallel 1x1-conv adapter in every block, those of the lowest 25/50/75% of blocks dropped; only
the adapters train (`schemes.adapter_drop`, `branches.py`)."""
from ..training.schemes import adapter_drop
from .base import Method


class AdapterDrop(Method):
    drop = 0.0

    def scheme(self, backbone, support_x, support_y, ctx):
        return adapter_drop(backbone.conv_shapes(), self.drop)


class AdapterDrop25(AdapterDrop):
    name, drop = "AdapterDrop-25%", 0.25


class AdapterDrop50(AdapterDrop):
    name, drop = "AdapterDrop-50%", 0.50


class AdapterDrop75(AdapterDrop):
    name, drop = "AdapterDrop-75%", 0.75
