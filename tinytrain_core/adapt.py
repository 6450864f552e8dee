"""Run adaptation methods over fixed episodes: per-task rows, resume, and a summary with CIs.

Every method sees the same test episodes (and the same augmentation draws: the fine-tuning seed
depends on the episode only). Per (domain, method) the learning rate is picked from `lrs` on
`val_episodes` episodes of the domain's *validation* split, never on test episodes; the choice is
cached in `results/<profile>/adapt/<model>/lr.json` under the config that made it.

Rows go to `results/<profile>/adapt/<model>/<domain>.csv` one task at a time (append + flush).
Each row carries a `key`: a hash of what made it (the method's config, the *content* of the
checkpoint its backbone loaded, the build of the domain). A rerun skips the (episode, method)
pairs already present under the current key, so an interrupted run resumes where it stopped.
Rows under another key (a retrained checkpoint, a changed setting, a rebuilt domain, or the
older format without keys) are moved to `<domain>.stale-<UTC time>.csv` beside the CSV, with a
message, and computed again; rows of methods the run does not touch are left alone. A CSV cut
short by a kill (empty, or a torn last line) is repaired and the lost task recomputed.
The `<domain>.json` sidecar describes the keys of the rows in the CSV (config, checkpoint
identity, domain and manifest hashes); it is written only alongside those rows and is never
what decides a resume.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import shutil
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import checkpoints, methods as method_registry
from .finetune import initial_state, run_task, query_accuracy
from .paths import results_dir
from .costs import scheme_costs
from .selection import DEFAULT_COMPUTE_MACS, DEFAULT_MEMORY_KIB
from .stats import mean_ci95, paired_diff_ci95

CL = torch.channels_last
# Profile sizes. default: sized for 2 CPU cores (FullTrain dominates; ~15 min with one thread on
# an idle machine): 12 test + 1 validation episode per domain, 5-6 ways with at most 3 shots
# (16 images) and 5 queries per class, 10 steps, the LR grid without 1e-4 (it barely moves in 10
# steps). Episodes are pure functions of their index, so raising `episodes` resumes a run.
PROFILE_DEFAULTS = {
    "smoke": dict(episodes=2, val_episodes=1, steps=1, lrs=(1e-3,),
                  episode=dict(max_ways=3, min_ways=3, max_query_per_class=2, max_support=6,
                               max_support_per_class=2)),
    "default": dict(episodes=12, val_episodes=1, steps=10, lrs=(1e-3, 1e-2, 0.0),
                    episode=dict(max_ways=6, min_ways=5, max_query_per_class=5, max_support=16,
                                 max_support_per_class=3)),
    "paper": dict(episodes=200, val_episodes=5, steps=40, lrs=(1e-4, 1e-3, 1e-2, 0.0), episode={}),
}
COLUMNS = ["domain", "episode", "ways", "shots", "queries", "method", "checkpoint", "lr", "accuracy",
           "backward_macs", "backward_kib", "select_s", "train_s", "n_layers", "scheme"]
FIELDS = COLUMNS + ["key"]           # a results CSV; the frames we return leave `key` out
REQUIRED = ("domain", "episode", "method", "accuracy")


@dataclass
class AdaptConfig:
    profile: str = "smoke"
    model: str = "mcunet-5fps"
    domains: list[str] | None = None               # None: the profile's target domains
    methods: list[str] = field(default_factory=lambda: ["None", "FullTrain", "LastLayer", "TinyTrain"])
    episodes: int | None = None                    # None: profile default (also steps, lrs, ...)
    val_episodes: int | None = None
    steps: int | None = None
    lrs: tuple[float, ...] | None = None
    # None: each method's default (TinyTrain meta, others imagenet); a name for all; or {method: name}
    checkpoint: str | dict | None = None
    meta_fallback: bool = False                    # no meta checkpoint -> ImageNet weights, with a warning
    memory_kib: float = DEFAULT_MEMORY_KIB
    compute_macs: float = DEFAULT_COMPUTE_MACS
    channels: str = "fisher"
    activation: str = "input"
    seed: int = 0

    def resolved(self) -> "AdaptConfig":
        d = PROFILE_DEFAULTS[self.profile]
        c = AdaptConfig(**asdict(self))
        c.episodes = d["episodes"] if c.episodes is None else c.episodes
        c.val_episodes = d["val_episodes"] if c.val_episodes is None else c.val_episodes
        c.steps = d["steps"] if c.steps is None else c.steps
        c.lrs = tuple(d["lrs"] if c.lrs is None else c.lrs)
        if c.domains is None:
            from .data import target_domains
            c.domains = target_domains(c.profile)
            if not c.domains:
                raise FileNotFoundError(f"no target domains built for profile {c.profile!r}; run "
                                        f"`make data PROFILE={c.profile}` (or `make fixture` for smoke)")
        for m in c.methods:
            method_registry.get(m)
        return c

    def checkpoint_of(self, method: str) -> str:
        if isinstance(self.checkpoint, dict):
            return self.checkpoint.get(method, method_registry.get(method).default_checkpoint)
        return self.checkpoint or method_registry.get(method).default_checkpoint

    def episode_config(self):
        from .data import episode_config
        return episode_config(self.profile, **PROFILE_DEFAULTS[self.profile]["episode"])

    def key(self, method: str) -> str:
        """What a row of `method` depends on in the config, hashed (part of `row_key`)."""
        skip = ("domains", "methods", "episodes", "checkpoint")
        d = {k: v for k, v in asdict(self).items() if k not in skip}
        d.update(method=method, checkpoint=self.checkpoint_of(method), episode=self.episode_config().key())
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def out_dir(profile: str, model: str) -> Path:
    d = results_dir(profile) / "adapt" / model
    d.mkdir(parents=True, exist_ok=True)
    return d


def _read_json(path: Path) -> dict:
    """A small JSON file we write ourselves, or {} when it is missing or unreadable (a cache)."""
    if not path.is_file():
        return {}
    try:
        got = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        print(f"{path} is not valid JSON (an interrupted write?); ignoring it")
        return {}
    return got if isinstance(got, dict) else {}


def _write_json(path: Path, obj) -> None:
    """Write to a temporary file, then rename: a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


# ---------------------------------------------------------------- backbones

class Backbones:
    """One backbone per checkpoint, channels_last, with its initial weights kept for resets,
    and the identity (content hash) of the weights each checkpoint name stands for."""

    def __init__(self, cfg: AdaptConfig):
        self.cfg, self.nets, self.fallbacks, self.ids = cfg, {}, set(), {}

    def get(self, checkpoint: str):
        if checkpoint not in self.nets:
            net = self._load(checkpoint).backbone
            self._check_unchanged(checkpoint)
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            net = net.to(dev).to(memory_format=CL).eval()
            self.nets[checkpoint] = (net, initial_state(net))
        return self.nets[checkpoint]

    def label(self, checkpoint: str) -> str:
        return "imagenet (meta missing)" if checkpoint in self.fallbacks else checkpoint

    def identity(self, checkpoint: str) -> str:
        """'<name>:<sha256 prefix>' of the weights `checkpoint` loads in this run. ImageNet: the
        pinned release's hash (load_imagenet verifies the file against it); a trained checkpoint:
        its .pt file's hash; a missing meta checkpoint under meta_fallback: ImageNet's. Raises
        the loader's own error (what to run to create it) when the checkpoint is missing."""
        if checkpoint not in self.ids:
            self.ids[checkpoint] = self._identity(checkpoint)
        return self.ids[checkpoint]

    def _identity(self, checkpoint: str) -> str:
        from .metatrain import load_backbone
        from .weights import SHA256
        if checkpoint == "imagenet":
            return f"imagenet:{SHA256[self.cfg.model][:16]}"
        if not self._path(checkpoint).is_file():
            try:
                load_backbone(self.cfg.model, checkpoint, self.cfg.profile)  # raises: how to make it
            except FileNotFoundError as e:
                if not (self.cfg.meta_fallback and checkpoint == "meta"):
                    raise
                self._fall_back(checkpoint, e)
                return self.identity("imagenet")
        return self._hashed(checkpoint)

    def _path(self, checkpoint: str) -> Path:
        from .metatrain import checkpoint_path
        return checkpoint_path(self.cfg.model, checkpoint, self.cfg.profile)

    def _hashed(self, checkpoint: str) -> str:
        return f"{checkpoint}:{checkpoints.file_sha256(self._path(checkpoint))[:16]}"

    def _check_unchanged(self, checkpoint: str):
        """Rows are keyed by the identity taken before loading: the file must not have been
        replaced in between (e.g. notebook 01 retraining it while this run starts)."""
        if checkpoint not in self.ids or checkpoint == "imagenet" or checkpoint in self.fallbacks:
            return
        if self._hashed(checkpoint) != self.ids[checkpoint]:
            raise RuntimeError(f"checkpoint {checkpoint!r} of {self.cfg.model} changed while this run "
                               "loaded it (is notebooks/01_pretrain.ipynb running?); rerun when it is done")

    def _fall_back(self, checkpoint: str, why: Exception):
        warnings.warn(f"{why}\n-> meta_fallback=True: using the ImageNet weights instead", stacklevel=3)
        self.fallbacks.add(checkpoint)

    def _load(self, checkpoint):
        from . import models
        try:
            from .metatrain import load_backbone
        except ImportError:
            if checkpoint != "imagenet":
                raise FileNotFoundError(f"checkpoint {checkpoint!r} needs tinytrain_core.metatrain "
                                        "(notebooks/01_pretrain.ipynb)") from None
            return models.create(self.cfg.model, pretrained=True)
        if checkpoint in self.fallbacks:
            return load_backbone(self.cfg.model, "imagenet", self.cfg.profile)
        try:
            return load_backbone(self.cfg.model, checkpoint, self.cfg.profile)
        except FileNotFoundError as e:
            if not (self.cfg.meta_fallback and checkpoint == "meta"):
                raise
            self._fall_back(checkpoint, e)
            return load_backbone(self.cfg.model, "imagenet", self.cfg.profile)


# ---------------------------------------------------------------- one task

def _tensors(ep):
    from .data import episode_tensors
    xs, ys, xq, yq = episode_tensors(ep)
    return xs.contiguous(memory_format=CL), ys, xq.contiguous(memory_format=CL), yq


def scheme_summary(scheme, shapes) -> str:
    """'conv:kept/in' for each weight-trained conv, ';'-separated (the layer figure reads it)."""
    return ";".join(f"{i}:{len(c)}/{shapes[i].in_channels}" for i, c in sorted(scheme.weights.items()))


def adapt_task(method, net, state, tensors, cfg: AdaptConfig, lr: float, task_seed: int) -> dict:
    xs, ys, xq, yq = tensors
    ctx = method_registry.Context(cfg.model, cfg.memory_kib, cfg.compute_macs, cfg.channels, cfg.activation,
                                  seed=task_seed)
    net.load_state_dict(state)
    scheme, select_s = method.timed_scheme(net, xs, ys, ctx)
    shapes = net.conv_shapes()
    cost = scheme_costs(shapes, scheme)
    res = run_task(net, state, scheme, xs, ys, xq, yq, cfg.steps, lr if method.trains else 0.0,
                   seed=task_seed)
    return dict(accuracy=res.accuracy, backward_macs=cost.backward_macs,
                backward_kib=round(cost.memory_kib, 3), select_s=round(select_s, 4),
                train_s=round(res.train_s, 4), n_layers=len(scheme.trained_layers),
                scheme=scheme_summary(scheme, shapes))


def _task_seed(cfg, ep) -> int:
    return cfg.seed * 1_000_003 + ep.index


# ---------------------------------------------------------------- what a row depends on

def _domain_hash(domain: str, profile: str) -> str:
    from .data import load_domain
    from .data.domains import domain_hash
    return domain_hash(load_domain(domain, profile))


def row_key(cfg: AdaptConfig, method: str, nets: Backbones, built: str) -> str:
    """12 hex digits over what a row of `method` depends on: the config (`cfg.key`), the content
    of the checkpoint its backbone loads, and the build of the domain (`built`, its hash)."""
    blob = f"{cfg.key(method)}|{nets.identity(cfg.checkpoint_of(method))}|{built}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _method_info(cfg: AdaptConfig, method: str, nets: Backbones, built: str, manifest: str) -> dict:
    """The sidecar's description of the rows `method` writes in this run (their key included)."""
    ckpt = cfg.checkpoint_of(method)
    return {"method": method, "key": row_key(cfg, method, nets, built), "config_key": cfg.key(method),
            "checkpoint": ckpt, "checkpoint_id": nets.identity(ckpt), "domain_hash": built,
            "manifest_hash": manifest, "config": asdict(cfg)}


# ---------------------------------------------------------------- learning rate on validation episodes

def choose_lr(method, domain: str, cfg: AdaptConfig, nets: Backbones, progress: bool = True) -> float:
    """The LR of `lrs` with the best mean accuracy on validation episodes; cached under the
    row key (config, checkpoint content, domain build), so a retrained checkpoint re-chooses."""
    if not method.trains or len(cfg.lrs) == 1:
        return cfg.lrs[0] if method.trains else 0.0
    path = out_dir(cfg.profile, cfg.model) / "lr.json"
    key = f"{domain}|{method.name}|{row_key(cfg, method.name, nets, _domain_hash(domain, cfg.profile))}"
    cache = _read_json(path)
    if key in cache:
        return cache[key]["lr"]
    from .data import sample_episodes
    eps = sample_episodes(domain, "val", cfg.val_episodes, cfg.episode_config(), seed=cfg.seed,
                          profile=cfg.profile)
    net, state = nets.get(cfg.checkpoint_of(method.name))
    accs = {}
    for lr in tqdm(cfg.lrs, desc=f"lr {method.name} {domain}", leave=False, disable=not progress):
        vals = []
        for ep in eps:
            t = _tensors(ep)
            if lr == 0:
                net.load_state_dict(state)
                vals.append(query_accuracy(net, *t))
            else:
                vals.append(adapt_task(method, net, state, t, cfg, lr, _task_seed(cfg, ep))["accuracy"])
        accs[lr] = sum(vals) / len(vals)
    best = max(cfg.lrs, key=lambda lr: (accs[lr], -cfg.lrs.index(lr)))
    cache = _read_json(path)                     # re-read: another run may have added entries
    cache[key] = {"lr": best, "val_accuracy": {str(k): v for k, v in accs.items()},
                  "val_episodes": cfg.val_episodes, "checkpoint_id": nets.identity(cfg.checkpoint_of(method.name)),
                  "config": asdict(cfg)}
    _write_json(path, cache)
    return best


# ---------------------------------------------------------------- result files: read, repair, set aside

class BadResults(ValueError):
    """A results CSV that cannot be read; the message names the file and what to do."""


@dataclass
class _Table:
    """A results CSV as read: its header, its complete rows (raw strings by column), and what
    was wrong with it when it needs rewriting (empty, a torn last line)."""
    header: list[str]
    rows: list[dict]
    note: str | None = None


def _bad(path: Path, why: str) -> BadResults:
    return BadResults(f"{path} cannot be read as adaptation results: {why}. Move it aside (or delete "
                      "it and its .json) and rerun: its tasks are computed again")


def _row(record: list[str], header: list[str]) -> dict | None:
    """The record as {column: text} when it is a complete row, else None."""
    if len(record) != len(header):
        return None
    row = dict(zip(header, record))
    try:
        int(row["episode"])
        float(row["accuracy"])
    except ValueError:
        return None
    return row if row["method"] else None


def _parse(path: Path) -> _Table:
    """Read a results CSV without trusting that its writer finished: an empty file (killed before
    its first row) is no rows, a torn last line (killed mid-write: no newline, missing fields,
    unparsable) is left out; anything else malformed raises BadResults naming the file."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise _bad(path, f"not text ({e})") from None
    if not text.strip():
        return _Table(FIELDS, [], "empty (a run stopped before its first row); starting it afresh")
    try:
        records = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as e:
        raise _bad(path, str(e)) from None
    header, body = records[0], records[1:]
    if not set(REQUIRED) <= set(header):
        if not body and not text.endswith("\n") and ",".join(FIELDS).startswith(text):
            return _Table(FIELDS, [], "a torn header and no rows (a run stopped mid-write); starting afresh")
        raise _bad(path, f"its header {','.join(header)[:80]!r} lacks the columns {', '.join(REQUIRED)}")
    rows, note = [], None
    for i, record in enumerate(body):
        row = _row(record, header)
        if i == len(body) - 1 and (row is None or not text.endswith("\n")):
            note = (f"dropped a torn last line {','.join(record)[:60]!r}… (a run stopped mid-write); "
                    "that task is computed again")
        elif row is None:
            raise _bad(path, f"row {i + 1} ({','.join(record)[:60]!r}…) has missing or unreadable fields")
        else:
            rows.append(row)
    return _Table(header, rows, note)


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as the DataFrame callers see: COLUMNS, typed as pandas reads the CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    buf.seek(0)
    # "None" is a method name here, not a missing value
    return pd.read_csv(buf, keep_default_na=False, na_values=[""])


def _read(path) -> pd.DataFrame:
    """The complete rows of a results CSV (old files without a key column included)."""
    return _frame(_parse(Path(path)).rows)


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Replace `path` with exactly these rows (FIELDS header), via a temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _sidecar_path(csv_path: Path) -> Path:
    return csv_path.with_suffix(".json")


def _described(csv_path: Path) -> dict:
    """{key: description} from the sidecar (empty for a missing or older-format sidecar)."""
    keys = _read_json(_sidecar_path(csv_path)).get("keys", {})
    return keys if isinstance(keys, dict) else {}


def _write_sidecar(csv_path: Path, domain: str, present: set, infos: dict) -> None:
    """Describe exactly the keys of the rows now in the CSV (`present`; "" for rows from before
    keys existed): this run's description of a key, else the one the sidecar already held.
    No rows -> no sidecar."""
    side = _sidecar_path(csv_path)
    if not present:
        side.unlink(missing_ok=True)
        return
    old = _read_json(side)
    mine, described = {i["key"]: i for i in infos.values()}, _described(csv_path)
    keys = {k: mine.get(k) or described[k] for k in sorted(present - {""}) if k in mine or k in described}
    body = {"domain": domain, "keys": keys}
    if "" in present:        # keyless rows kept (methods outside the run): keep what was said of them
        body["legacy"] = old.get("legacy") if "keys" in old else old
    _write_json(side, body)


def _archive_path(csv_path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest, n = csv_path.with_name(f"{csv_path.stem}.stale-{stamp}.csv"), 2
    while dest.exists():
        dest, n = csv_path.with_name(f"{csv_path.stem}.stale-{stamp}-{n}.csv"), n + 1
    return dest


def _is_archive(path: Path) -> bool:
    return ".stale-" in path.name


def _why_stale(old: dict | None, new: dict) -> str:
    """Why rows of `old`'s key do not count under `new` (two sidecar descriptions)."""
    if old is None:
        return "made under another config, checkpoint content or domain build"
    why = []
    if old.get("checkpoint_id") != new["checkpoint_id"]:
        why.append(f"checkpoint {new['checkpoint']!r} is now {new['checkpoint_id']} "
                   f"(was {old.get('checkpoint_id')})")
    if old.get("domain_hash") != new["domain_hash"]:
        why.append("the domain was rebuilt")
    if old.get("config_key") != new["config_key"]:
        why.append("the config changed")
    return ", ".join(why) or "made under another key"


def _set_aside(csv_path: Path, stale: list[dict], infos: dict) -> Path:
    """Move `stale` rows to a timestamped archive beside the CSV (with a copy of the sidecar
    that describes them) and say how many of which method, and why."""
    dest = _archive_path(csv_path)
    _write_rows(dest, stale)
    if _sidecar_path(csv_path).is_file():
        shutil.copyfile(_sidecar_path(csv_path), dest.with_suffix(".json"))
    described = _described(csv_path)
    reasons = Counter()
    for r in stale:
        key = r.get("key") or ""
        why = ("older format: written before rows carried a key" if not key
               else _why_stale(described.get(key), infos[r["method"]]))
        reasons[(r["method"], why)] += 1
    for (method, why), n in sorted(reasons.items()):
        print(f"{csv_path}: set aside {n} row(s) of {method} ({why}) in {dest.name}; computing them again")
    return dest


def _resume(csv_path: Path, infos: dict) -> tuple[set, set]:
    """Bring the CSV to a state this run can append to: repaired if a kill cut it short, rows of
    this run's methods made under another key set aside, old-format files given the key column.
    Returns ((episode, method) pairs done under the current keys, the keys of rows kept)."""
    if not csv_path.is_file():
        return set(), set()
    table = _parse(csv_path)
    if table.note:
        print(f"{csv_path}: {table.note}")
    want = {m: i["key"] for m, i in infos.items()}

    def is_stale(r):
        return r["method"] in want and (r.get("key") or "") != want[r["method"]]
    stale = [r for r in table.rows if is_stale(r)]
    keep = [r for r in table.rows if not is_stale(r)]
    if stale:
        _set_aside(csv_path, stale, infos)      # the archive is complete before rows leave the CSV
    if stale or table.note or table.header != FIELDS:
        _write_rows(csv_path, keep)
    done = {(int(r["episode"]), r["method"]) for r in keep if r["method"] in want}
    return done, {r.get("key") or "" for r in keep}


class _RowWriter:
    """Appends rows to a results CSV, each flushed as it is written. The file (with its header)
    is created with its first row, so a run that fails before any row leaves nothing behind."""

    def __init__(self, path: Path):
        self.path, self.fh, self.writer = path, None, None

    def write(self, row: dict) -> None:
        if self.fh is None:
            new = not self.path.is_file()
            self.fh = self.path.open("a", newline="", encoding="utf-8")
            self.writer = csv.DictWriter(self.fh, fieldnames=FIELDS)
            if new:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


# ---------------------------------------------------------------- the run

def run(cfg: AdaptConfig, progress: bool = True) -> pd.DataFrame:
    """Run every method of `cfg` on the same fixed test episodes of every domain; returns all rows."""
    from .data import manifest_hash, sample_episodes
    cfg = cfg.resolved()
    nets = Backbones(cfg)
    chosen = [method_registry.get(m) for m in cfg.methods]
    manifest = manifest_hash(cfg.profile)
    frames = []
    for domain in cfg.domains:
        path = out_dir(cfg.profile, cfg.model) / f"{domain}.csv"
        built = _domain_hash(domain, cfg.profile)
        infos = {m.name: _method_info(cfg, m.name, nets, built, manifest) for m in chosen}
        done, present = _resume(path, infos)
        _write_sidecar(path, domain, present, infos)
        eps = sample_episodes(domain, "test", cfg.episodes, cfg.episode_config(), seed=cfg.seed,
                              profile=cfg.profile)
        todo = [(ep, m) for ep in eps for m in chosen if (ep.index, m.name) not in done]
        lrs = {m.name: choose_lr(m, domain, cfg, nets, progress) for m in chosen
               if any(mm is m for _, mm in todo)}
        with contextlib.closing(_RowWriter(path)) as out, \
                tqdm(total=len(todo), desc=f"{cfg.model} {domain}", disable=not progress) as bar:
            cached = None
            for ep, m in todo:
                if cached is None or cached[0] is not ep:
                    cached = (ep, _tensors(ep))
                ckpt = cfg.checkpoint_of(m.name)
                net, state = nets.get(ckpt)
                row = dict(domain=domain, episode=ep.index, ways=ep.n_way, shots=len(ep.support),
                           queries=len(ep.query), method=m.name, checkpoint=nets.label(ckpt), lr=lrs[m.name])
                row.update(adapt_task(m, net, state, cached[1], cfg, lrs[m.name], _task_seed(cfg, ep)))
                out.write({**row, "key": infos[m.name]["key"]})
                if infos[m.name]["key"] not in present:     # the sidecar follows the first row of a key
                    present.add(infos[m.name]["key"])
                    _write_sidecar(path, domain, present, infos)
                bar.update(1)
        frames.append(_read(path) if path.is_file() else _frame([]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def load_rows(profile: str, model: str, domains=None) -> pd.DataFrame:
    """The rows of every domain's results CSV (or of `domains`), old files without keys included;
    archives of set-aside rows and other tables in the folder (summary.csv) are not rows."""
    d = out_dir(profile, model)
    if domains:
        files = [d / f"{x}.csv" for x in domains]
    else:
        files = [f for f in sorted(d.glob("*.csv")) if not _is_archive(f) and f.name != "summary.csv"]
    frames = [_read(f) for f in files if f.is_file()]
    return pd.concat(frames, ignore_index=True) if frames else _frame([])


# ---------------------------------------------------------------- summary

def summarize(rows: pd.DataFrame, reference: str = "FullTrain") -> pd.DataFrame:
    """Per domain and method: tasks, mean accuracy with 95% CI, paired difference to `reference`
    on the shared episodes, mean analytic backward MACs and KiB, the learning rate chosen on
    validation episodes, and the share of a task's time spent selecting (tasks that trained).
    A row 'average' per method averages the domains' means."""
    out = []
    for (domain, method), g in rows.groupby(["domain", "method"], sort=False):
        mean, ci = mean_ci95(g.accuracy)
        r = dict(domain=domain, method=method, tasks=len(g), accuracy=mean, ci95=ci)
        ref = rows[(rows.domain == domain) & (rows.method == reference)]
        if method != reference and len(ref):
            both = g.merge(ref, on="episode", suffixes=("", "_ref"))
            r["diff_vs_" + reference], r["diff_ci95"] = paired_diff_ci95(both.accuracy, both.accuracy_ref)
        trained = g[g.train_s > 0]          # tasks run with lr 0 took no step: no share to speak of
        total = (trained.select_s + trained.train_s).sum()
        r.update(backward_mmacs=g.backward_macs.mean() / 1e6, backward_kib=g.backward_kib.mean(),
                 select_s=g.select_s.mean(), train_s=g.train_s.mean(),
                 lr=g.lr.iloc[0] if "lr" in g else float("nan"),
                 select_share=trained.select_s.sum() / total if total > 0 else float("nan"))
        out.append(r)
    table = pd.DataFrame(out)
    if len(table):
        avg = table.groupby("method", sort=False).agg(tasks=("tasks", "sum"), accuracy=("accuracy", "mean"),
                                                      backward_mmacs=("backward_mmacs", "mean"),
                                                      backward_kib=("backward_kib", "mean")).reset_index()
        avg.insert(0, "domain", "average")
        table = pd.concat([table, avg], ignore_index=True)
    return table


def layer_choices(rows: pd.DataFrame, method: str = "TinyTrain") -> pd.DataFrame:
    """(domain, conv, mean kept-channel fraction over tasks, fraction of tasks that trained it)."""
    recs = []
    for (domain, ep), g in rows[rows.method == method].groupby(["domain", "episode"]):
        for item in str(g.scheme.iloc[0]).split(";"):
            if ":" in item:
                conv, frac = item.split(":")
                k, n = frac.split("/")
                recs.append(dict(domain=domain, episode=ep, conv=int(conv), fraction=int(k) / int(n)))
    df = pd.DataFrame(recs, columns=["domain", "episode", "conv", "fraction"])
    n_tasks = rows[rows.method == method].groupby("domain").episode.nunique()
    agg = df.groupby(["domain", "conv"]).agg(fraction=("fraction", "mean"),
                                             tasks=("episode", "count")).reset_index()
    agg["picked"] = agg.tasks / agg.domain.map(n_tasks)
    return agg
