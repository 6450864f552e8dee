"""None: no adaptation; cosine prototypes on the offline features."""
from ..training.schemes import no_update
from .base import Method


class NoUpdate(Method):
    name = "None"
    trains = False

    def scheme(self, backbone, support_x, support_y, ctx):
        return no_update()
