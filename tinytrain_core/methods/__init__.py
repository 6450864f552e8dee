"""Adaptation methods by name. A new baseline is one module with a `Method` subclass, registered
here (or by `register` from outside); `get(name)` returns an instance."""
from __future__ import annotations

from .base import Context, Method
from .fulltrain import FullTrain
from .lastlayer import LastLayer
from .none import NoUpdate
from .sparseupdate import SparseUpdate
from .tinytrain import TinyTrain

REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    REGISTRY[cls.name] = cls
    return cls


for _cls in (NoUpdate, FullTrain, LastLayer, SparseUpdate, TinyTrain):
    register(_cls)


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]()


__all__ = ["Context", "Method", "REGISTRY", "get", "names", "register"]
