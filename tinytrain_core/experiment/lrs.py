"""The learning rate of each arm, from validation rows only (`choose_lrs`), and the test LR of an
arm on a domain (`lr_of`). The rule and its switch (`lr_scope`): `adapt.py`'s docstring."""
from __future__ import annotations

import pandas as pd

from .. import data, methods as method_registry
from .config import AdaptConfig


def choose_lrs(val: pd.DataFrame, cfg: AdaptConfig) -> dict:
    """{(domain, method, checkpoint): lr} from validation rows: the argmax over `cfg.lrs` of the
    mean accuracy (the method's lr_scope "domain", `cfg.lr_scope_of`) or of the mean over domains
    of per-domain means ("pooled");
    ties go to the earlier LR of `lrs`. A domain of the run without validation rows (no
    validation classes: Meta-Dataset's Traffic Sign) gets the pooled choice of the domains that
    have them. Arms without validation rows (lr 0 only) are absent."""
    if not len(val):
        return {}
    per = val.groupby(["method", "checkpoint", "domain", "lr"]).accuracy.mean().reset_index()
    out = {}
    for (m, ck), g in per.groupby(["method", "checkpoint"]):
        pooled = g.groupby("lr").accuracy.mean()
        scores = {d: pooled for d in [*(cfg.domains or []), *g.domain.unique()]}
        if cfg.lr_scope_of(m) == "domain":
            scores.update({d: gd.set_index("lr").accuracy for d, gd in g.groupby("domain")})
        for d, sc in scores.items():
            tried = [lr for lr in cfg.lrs if lr in sc.index]
            out[(d, m, ck)] = max(tried, key=lambda lr: (sc[lr], -cfg.lrs.index(lr)))
    return out


def has_validation(cfg: AdaptConfig, domain: str) -> bool:
    """Does `domain` have enough validation classes for an episode (min_ways with >= 2 images)?"""
    d = data.load_domain(domain, cfg.profile)
    return sum(d.n_images(c, "val") >= 2 for c in d.classes("val")) >= cfg.episode_config().min_ways


def lr_of(cfg: AdaptConfig, domain: str, arm: tuple, chosen: dict) -> float:
    """The test LR of `arm` on `domain`: 0 for a method that does not train, the only LR when
    `lrs` has one, else validation's choice (`choose_lrs`)."""
    if not method_registry.get(arm[0]).trains:
        return 0.0
    return cfg.lrs[0] if len(cfg.lrs) == 1 else chosen[(domain, *arm)]
