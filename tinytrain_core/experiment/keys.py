"""What a row depends on: the config of its arm, the content of the checkpoint its backbone
loads and the build of its domain, hashed into the row's `key` (`taskrows` resumes by it)."""
from __future__ import annotations

import hashlib
from dataclasses import asdict

from .. import data
from .backbones import Backbones
from .config import AdaptConfig


def _domain_hash(domain: str, profile: str) -> str:
    # looked up on the module at call time, so a test can stand in a rebuilt domain
    return data.domains.domain_hash(data.load_domain(domain, profile))


def row_key(cfg: AdaptConfig, arm: tuple, nets: Backbones, built: str) -> str:
    """12 hex digits over what a row of `arm` depends on: the config (`cfg.key`), the content
    of the checkpoint its backbone loads, and the build of the domain (`built`, its hash)."""
    blob = f"{cfg.key(*arm)}|{nets.identity(arm[1])}|{built}"
    if arm[0] == "SparseUpdate" and cfg.sparse_update == "search":     # its gains come from the base domain
        blob += "|" + _domain_hash(data.domains.base_domain(cfg.profile), cfg.profile)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _arm_info(cfg: AdaptConfig, arm: tuple, nets: Backbones, built: str, manifest: str) -> dict:
    """The sidecar's description of the rows `arm` writes in this run (their key included)."""
    return {"method": arm[0], "checkpoint": arm[1], "key": row_key(cfg, arm, nets, built),
            "config_key": cfg.key(*arm), "checkpoint_id": nets.identity(arm[1]), "domain_hash": built,
            "manifest_hash": manifest, "config": asdict(cfg)}
