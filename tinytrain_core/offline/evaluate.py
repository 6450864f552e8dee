"""Frozen-feature few-shot evaluation: how good is a representation before any adaptation?

For each N-way K-shot episode, embed support and query images with the frozen backbone,
classify queries by cosine similarity to class-mean prototypes, and average over episodes
(mean and 95% CI in percent). The same episodes are used for every backbone and checkpoint.

`before_after` is notebook 01's table: both checkpoints of every backbone (the start and the
meta-trained one) on the same fixed episodes of the base domain and every target domain.
"""
from __future__ import annotations

import json

import pandas as pd
import torch
from tqdm import tqdm

from .. import data
from ..nets.checkpoints import checkpoint_names, checkpoint_path, load_backbone
from ..training.heads import embed, prototype_accuracy  # noqa: F401 (embed re-exported)
from .metaconfig import resolve
from ..paths import results_dir
from ..results import read_table, write_table
from ..runtime import CL, device, to_channels_last
from ..stats import mean_ci95, paired_diff_ci95

WAYS = 5    # the before/after table's N-way


def episode_accuracies(backbone, episodes) -> list[float]:
    """Per-episode nearest-prototype accuracy (%) of one frozen backbone."""
    return episode_accuracies_many({"m": backbone}, episodes)["m"]


@torch.no_grad()
def episode_accuracies_many(backbones: dict, episodes, batch: int = 200) -> dict[str, list[float]]:
    """Per-episode nearest-prototype accuracy (%) of several frozen backbones on the same
    episodes. Every distinct image is decoded once and embedded once per backbone, however many
    episodes share it (episodes of one domain overlap heavily)."""
    paths = sorted({p for ep in episodes for p, _ in ep.support + ep.query})
    index = {p: i for i, p in enumerate(paths)}
    feats = {k: [] for k in backbones}
    for bb in backbones.values():
        bb.eval()
    for i in range(0, len(paths), batch):
        x = data.load_batch(paths[i:i + batch])
        for k, bb in backbones.items():
            dev = next(bb.parameters()).device
            feats[k].append(bb(to_channels_last(x.to(dev))).float().cpu())
    out = {}
    for k in backbones:
        f = torch.cat(feats[k]) if feats[k] else torch.zeros(0, 1)
        accs = []
        for ep in episodes:
            si = torch.tensor([index[p] for p, _ in ep.support])
            qi = torch.tensor([index[p] for p, _ in ep.query])
            ys = torch.tensor([y for _, y in ep.support])
            yq = torch.tensor([y for _, y in ep.query])
            accs.append(100.0 * prototype_accuracy(f[si], ys, f[qi], yq))
        out[k] = accs
    return out


def fixed_episodes(domain: str, split: str, n: int, ways: int, shots: int, queries: int,
                   seed: int, profile: str):
    """Episodes 0..n-1 of exactly `ways` classes, `shots` support and `queries` query images each."""
    cfg = data.EpisodeConfig(mode="fixed", ways=ways, shots=shots, queries=queries)
    return data.sample_episodes(domain, split, n, cfg, seed=seed, profile=profile)


def frozen_accuracy(backbone, domain_name: str, profile: str, split: str = "test",
                    n_episodes: int = 50, ways: int = 5, shots: int = 5, queries: int = 15,
                    seed: int = 0) -> tuple[float, float]:
    """(mean accuracy %, 95% CI half-width) of cosine prototypes on frozen features over
    `n_episodes` fixed-mode episodes of `domain_name`'s `split`."""
    eps = fixed_episodes(domain_name, split, n_episodes, ways, shots, queries, seed, profile)
    return mean_ci95(episode_accuracies(backbone, eps))


def eval_queries(domain: str, split: str, shots: int, queries: int, profile: str, ways: int = WAYS) -> int:
    """Queries per class for a `ways`-way `shots`-shot table row: at most `queries`, and few
    enough that ~90% of the split's classes can take part (the domains keep 7-20 images per
    class; asking for more would restrict the episodes to a handful of large classes)."""
    d = data.load_domain(domain, profile)
    sizes = sorted(d.n_images(c, split) for c in d.classes(split))
    if len(sizes) < ways:
        return 0
    q = min(queries, sizes[len(sizes) // 10] - shots)
    return q if q >= 1 else min(queries, sizes[-ways] - shots)


# ---------------------------------------------------------------- notebook 01's before/after table

def before_after(profile: str = "smoke", progress: bool = True, force: bool = False, **overrides):
    """Frozen-feature N-way K-shot accuracy of both checkpoints of every model on the base
    domain (val and test classes) and every target domain's test classes, on the same fixed
    episodes. Returns (table, paired) DataFrames, written to results/<profile>/ and reused when
    settings, data and checkpoints are unchanged."""
    s = resolve(profile, **overrides)
    names = checkpoint_names(s["init"])
    stem = results_dir(profile) / ("meta_training" if s["init"] == "imagenet" else "meta_training_scratch")
    table_csv, paired_csv, sidecar = (stem.with_name(stem.name + x) for x in (".csv", "_paired.csv", ".json"))
    key = json.loads(json.dumps(
        {"settings": s, "manifest_hash": data.manifest_hash(profile),
         "checkpoints": {m: {n: json.loads(checkpoint_path(m, n, profile).with_suffix(".json").read_text())
                             for n in names} for m in s["models"]}}, default=str))
    done = table_csv.is_file() and paired_csv.is_file() and sidecar.is_file()
    if not force and done and json.loads(sidecar.read_text()).get("key") == key:
        return read_table(table_csv), read_table(paired_csv)
    rows, paired, used = [], [], {}
    base = data.base_domain(profile)
    splits = [(base, "val"), (base, "test")] + [(d, "test") for d in data.target_domains(profile)]
    for m in tqdm(s["models"], desc="before/after", disable=not progress):
        bbs = {n: load_backbone(m, n, profile).backbone.to(device()).to(memory_format=CL)
               for n in names}
        for dom, split in splits:
            queries = eval_queries(dom, split, s["eval_shots"], s["eval_queries"], profile)
            if queries < 1:
                print(f"skipping {dom}/{split}: fewer than {WAYS} classes with {s['eval_shots'] + 1} images")
                continue
            eps = fixed_episodes(dom, split, s["eval_episodes"], WAYS, s["eval_shots"], queries,
                                 s["seed"], profile)
            used[f"{dom}/{split}"] = queries
            accs = episode_accuracies_many(bbs, eps)
            for n in names:
                acc, ci = mean_ci95(accs[n])
                rows.append({"model": m, "domain": dom, "split": split, "checkpoint": n,
                             "acc": round(acc, 2), "ci95": round(ci, 2)})
            d, dci = paired_diff_ci95(accs[names[1]], accs[names[0]])
            verdict = "helps" if d - dci > 0 else "hurts" if d + dci < 0 else "no clear change"
            paired.append({"model": m, "domain": dom, "split": split, "delta": round(d, 2),
                           "ci95": round(dci, 2), "verdict": verdict})
    provenance = dict(
        key=key, seed=s["seed"], manifest_hash=key["manifest_hash"], ways=WAYS, shots=s["eval_shots"],
        queries_per_class=used, episodes_per_row=s["eval_episodes"],
        note="paired = meta minus start checkpoint on the same episodes; base val classes also "
             "drove model selection (on other episodes), base test classes are untouched")
    table, paired = pd.DataFrame(rows), pd.DataFrame(paired)
    write_table(paired, paired_csv, **provenance)
    write_table(table, table_csv, **provenance)    # its sidecar holds the reuse key: written last
    return table, paired
