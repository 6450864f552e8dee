"""TinyTL (Cai et al. 2020): weights frozen; every bias and a lite-residual branch per block train
(`schemes.tinytl`, `branches.py`)."""
from ..training.schemes import tinytl
from .base import Method


class TinyTL(Method):
    name = "TinyTL"

    def scheme(self, backbone, support_x, support_y, ctx):
        return tinytl(backbone.conv_shapes())
