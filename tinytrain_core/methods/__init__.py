"""Adaptation methods by name. A new baseline is one module with a `Method` subclass, registered
here (or by `register` from outside); `get(name)` returns an instance."""
from __future__ import annotations

from .adapterdrop import AdapterDrop25, AdapterDrop50, AdapterDrop75
from .base import Context, Method
from .fulltrain import FullTrain
from .lastlayer import LastLayer
from .none import NoUpdate
from .sparseupdate import SparseUpdate
from .static import Static
from .tinytl import TinyTL
from .tinytrain import TinyTrain
from .transductive import Transductive

REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    REGISTRY[cls.name] = cls
    return cls


# Table 1's order
for _cls in (NoUpdate, FullTrain, LastLayer, TinyTL, AdapterDrop25, AdapterDrop50, AdapterDrop75,
             SparseUpdate, Transductive, TinyTrain):
    register(_cls)


TABLE1 = tuple(REGISTRY)
register(Static)      # an ablation arm (notebook 03), not one of Table 1's methods


def names() -> list[str]:
    """Table 1's ten methods, in its order (`get` knows the ablation arms too)."""
    return list(TABLE1)


def get(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]()


__all__ = ["Context", "Method", "REGISTRY", "get", "names", "register"]
