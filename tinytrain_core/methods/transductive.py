"""Transductive fine-tuning (Dhillon et al. 2020): the whole network, support cross-entropy plus
the entropy of the unlabelled queries' predictions (weight 1; `finetune.fine_tune`). The queries'
labels are never used for training. Dhillon et al.'s own recipe (lr 5e-5, 25 epochs, no
augmentation) is replaced by the shared protocol so that only the loss differs from FullTrain."""
from ..training.schemes import UpdateScheme, full_train
from .base import Method


class Transductive(Method):
    name = "Transductive"
    entropy_weight = 1.0

    def scheme(self, backbone, support_x, support_y, ctx):
        s = full_train(backbone.conv_shapes())
        return UpdateScheme(self.name, s.weights, s.biases)
