"""FullTrain: every conv weight and bias trains (through the same engine)."""
from ..training.schemes import full_train
from .base import Method


class FullTrain(Method):
    name = "FullTrain"

    def scheme(self, backbone, support_x, support_y, ctx):
        return full_train(backbone.conv_shapes())
