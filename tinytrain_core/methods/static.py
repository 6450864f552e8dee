"""Static: one fixed scheme for every task (notebook 03's dynamic-vs-static ablation).

The scheme is given as the `adapt.scheme_summary` string of a TinyTrain selection (kept input
channels as a bit mask per conv); as TinyTrain selects them, the bias of every listed conv trains
too. Which scheme to freeze (TinyTrain's most frequent one) is `ablations.most_frequent_scheme`.
"""
from ..training.schemes import UpdateScheme
from .base import Method


def scheme_from_summary(summary: str, shapes, name: str = "static") -> UpdateScheme:
    """The inverse of `adapt.scheme_summary` for weight parts ('conv:kept/in[@hexmask]')."""
    weights = {}
    for part in filter(None, (p.strip() for p in summary.split(";"))):
        if "=" in part:
            raise ValueError(f"Static: side branches ({part!r}) are not part of a TinyTrain scheme")
        head, _, mask = part.partition("@")
        i, _, frac = head.partition(":")
        i, (kept, n) = int(i), map(int, frac.split("/"))
        if not (0 <= i < len(shapes)) or n != shapes[i].in_channels:
            raise ValueError(f"Static: {part!r} does not fit this backbone (conv {i} of {len(shapes)})")
        chans = [c for c in range(n) if int(mask, 16) >> c & 1] if mask else list(range(n))
        if len(chans) != kept:
            raise ValueError(f"Static: {part!r} lists {len(chans)} channels, not {kept}")
        weights[i] = tuple(chans)
    return UpdateScheme(name, weights, frozenset(weights)).validate(shapes)


class Static(Method):
    name = "Static"
    default_checkpoint = "meta"

    def scheme(self, backbone, support_x, support_y, ctx):
        if not ctx.static_scheme:
            raise ValueError("Static needs the scheme to freeze: AdaptConfig(static_scheme=...) "
                             "(notebook 03 takes TinyTrain's most frequent one)")
        return scheme_from_summary(ctx.static_scheme, backbone.conv_shapes())
