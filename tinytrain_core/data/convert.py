"""Converters for the paper's real data: Meta-Dataset's records (targets) here, MiniImageNet
(base) in miniimagenet.py, the records' framing in tfrecords.py.

    python -m tinytrain_core.data convert-md --records PATH [--sources a,b] [--max-per-class N] [--force]
    python -m tinytrain_core.data convert-mini --src PATH [--force]
    make metadataset RECORDS=PATH MINI=PATH           # both; converted ones are skipped

Once `miniimagenet` and at least one `md_<source>` domain exist, the paper profile uses them
instead of the embedded domains (domains.list_domains); the default and smoke profiles never do.

Meta-Dataset (google-research/meta-dataset, its "records" root, read by tfrecords.py with the `tfrecord`
package's protobuf, no TensorFlow): one folder per source holding `dataset_spec.json` and one file per
class named by the spec's `file_pattern` ("{}.tfrecords"; sharded "{}_{}.tfrecords" is read
too). A record is a tf.train.Example: `image` (encoded JPEG/PNG bytes), `label` (int64 class
id). Class ids are contiguous: TRAIN first, then VALID, then TEST, counted by the spec's
`classes_per_split` (keys "TRAIN" or "Split.TRAIN") or, for Omniglot's BiLevel spec, by
`superclasses_per_split` x `classes_per_superclass` (classes contiguous per alphabet). The
domain keeps these splits (TRAIN->train, VALID->val, TEST->test). `ilsvrc_2012` is refused:
the paper's targets are the nine other sources.

Traffic Sign has no validation classes (0/0/43), and any other source whose spec lists none
is accepted likewise: the domain has an empty val split. The learning rate of such a domain
is chosen on the other domains' validation episodes, which the adapt module pools.

Choices: images are decoded as Meta-Dataset's pipeline does (3 channels, stretched to a square,
here 128 px) and written as RGB PNG by the DomainWriter byo uses, with nothing dropped as blank
or duplicate (Omniglot's records are white strokes on black and stay so). Wrong-label records,
records without an image or a label, undecodable images and damaged records are skipped and
listed in the manifest (skipped_records, skipped_files), the rest of their file kept. Every
record's framing is checked as TensorFlow does (masked CRC-32C of its length and of its data):
a record whose data fails its CRC is skipped; a length that fails its CRC, exceeds
MAX_RECORD_BYTES or runs past the end of the file ends that file (what came before is kept),
and is checked before anything is allocated. Missing files are reported before anything is
written. `max_images_per_class` keeps a random subset of N records of a larger class, seeded
by the class id (reruns keep the same images): it bounds QuickDraw (~140k images per class)
and MSCOCO, and N >= 110 (the paper's 100 support + 10 query images per class) leaves the
episode shapes' distribution as is.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile
from tqdm import tqdm

from .byo import (MIN_WAYS, _ascii_slug, check_domain_name, check_source,
                  to_8bit)
from .domains import (MD_COLLECTION, MD_TARGETS, SPLITS, domains_dir)
from .sources.common import DomainWriter
from .tfrecords import _records

TARGETS = MD_TARGETS
STANDS_IN_FOR = {"traffic_sign": "Traffic Sign", "omniglot": "Omniglot", "aircraft": "Aircraft",
                 "vgg_flower": "VGG Flower", "cu_birds": "CUB", "dtd": "DTD",
                 "quickdraw": "QuickDraw", "fungi": "Fungi", "mscoco": "MSCOCO"}
EXCLUDED = {"ilsvrc_2012": "the paper excludes ImageNet from the targets (its backbones are "
                           "pre-trained on it); MiniImageNet is the base: use convert-mini"}
MD_SPLITS = {"TRAIN": "train", "VALID": "val", "TEST": "test"}
PATTERNS = ("{}.tfrecords", "{}_{}.tfrecords")
MIN_IMAGES = 2          # one support and one query image per class
MAX_REPORTED = 500      # skipped records listed one by one in the manifest; the rest are counted
SHOWN_PER_CLASS = 3     # skipped records printed per class (a damaged file's end always is)
MAX_SPEC_CLASSES = 100_000      # classes of one source (Meta-Dataset's most: Omniglot's 1,623)
MAX_SPEC_IMAGES_PER_CLASS = 10_000_000   # (its most: a QuickDraw class, a few 100k)


# ---------------------------------------------------------------- shared

def _domain_parent(name: str, parent, force: bool) -> Path:
    parent = Path(parent) if parent is not None else domains_dir()
    check_domain_name(name)
    if (parent / name).exists() and not force:
        raise FileExistsError(f"domain {name!r} already exists at {parent / name}; pass --force "
                              "to replace it")
    return parent


def _finish(w: DomainWriter, name: str, role: str, stands_in_for: str, splits: dict,
            origin: dict, labels: dict, **extra) -> dict:
    """Drop classes under MIN_IMAGES, refuse a domain without MIN_WAYS test classes, write."""
    kept = {k: [c for c in v if w.count.get(c, 0) >= MIN_IMAGES] for k, v in splits.items()}
    if len(kept["test"]) < MIN_WAYS:
        raise ValueError(f"domain {name!r} not written: {len(kept['test'])} test classes with >= "
                         f"{MIN_IMAGES} readable images, but episodes need at least {MIN_WAYS}")
    dropped = sorted(set().union(*splits.values()) - set().union(*kept.values()))
    m = w.finish(role, stands_in_for, [origin], min_images=MIN_IMAGES, splits=kept,
                 labels={c: v for c, v in labels.items() if c not in dropped},
                 skipped_classes=dropped, **extra)
    print(f"domain {name!r}: {', '.join(f'{k} {len(v)}' for k, v in m['splits'].items())} classes, "
          f"{m['images']} images; {len(dropped)} classes dropped (< {MIN_IMAGES} images)")
    return m


def _decode(data: bytes) -> Image.Image:
    """The fully decoded image in `data`; raises if it is not one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return to_8bit(im).copy()


# ---------------------------------------------------------------- Meta-Dataset

def _split_key(key: str) -> str:
    return key.rsplit(".", 1)[-1].upper()   # "Split.TRAIN" and "TRAIN" alike


class BadCount(ValueError):
    pass


def _count(value, field: str, f: Path, limit: int) -> int:
    """`value` of the spec `f`'s `field` as a whole count from 0 to `limit`, checked before
    anything is sized by it: a damaged count of 3e7 classes took 4 GB before its refusal, and
    a negative one put classes of one split into another."""
    try:
        n = int(value)
    except (ValueError, TypeError, OverflowError):
        n = None
    if n is None or n != value and not isinstance(value, str) or not 0 <= n <= limit:
        raise BadCount(f"{f}: {field} is {value!r}, but a count there must be a whole number from 0 "
                       f"to {limit:,}; the spec is damaged: convert the source again (Meta-Dataset's "
                       "dataset_conversion)")
    return n


def read_spec(source_dir: Path) -> dict:
    """The parts of `dataset_spec.json` a conversion needs: name, file_pattern, class names,
    images per class and {train/val/test: [class ids]} in Meta-Dataset's contiguous order."""
    f = source_dir / "dataset_spec.json"
    if not f.is_file():
        raise FileNotFoundError(f"{f} not found: {source_dir} is not a Meta-Dataset source folder "
                                "(convert the source with Meta-Dataset's dataset_conversion first)")
    try:
        spec = json.loads(f.read_text())
        bilevel = "superclasses_per_split" in spec
        field = "superclasses_per_split" if bilevel else "classes_per_split"
        per_split = {MD_SPLITS[_split_key(k)]: _count(v, f"{field}[{k!r}]", f, MAX_SPEC_CLASSES)
                     for k, v in spec[field].items()}
        if bilevel:  # superclasses contiguous per split, classes contiguous per superclass
            sizes = {int(k): _count(v, f"classes_per_superclass[{k!r}]", f, MAX_SPEC_CLASSES)
                     for k, v in spec["classes_per_superclass"].items()}
            starts = {"train": 0, "val": per_split.get("train", 0)}
            starts["test"] = starts["val"] + per_split.get("val", 0)
            per_split = {s: sum(sizes[i] for i in range(starts[s], starts[s] + per_split.get(s, 0)))
                         for s in SPLITS}
        _count(sum(per_split.values()), "the classes of all splits together", f, MAX_SPEC_CLASSES)
        names = {int(k): str(v) for k, v in spec.get("class_names", {}).items()}
        counts = {int(k): _count(sum(v.values()) if isinstance(v, dict) else v, f"images_per_class[{k!r}]",
                                 f, MAX_SPEC_IMAGES_PER_CLASS)
                  for k, v in spec.get("images_per_class", {}).items()}
        pattern = spec.get("file_pattern", "{}.tfrecords")
    except BadCount:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{f} is not a DatasetSpecification or BiLevelDatasetSpecification "
                         f"({type(e).__name__}: {e}); ImageNet's hierarchical spec is not supported") from e
    if pattern not in PATTERNS:
        raise ValueError(f"{f}: file_pattern {pattern!r} is not one of {PATTERNS}")
    ids, start = {}, 0
    for s in SPLITS:
        ids[s] = list(range(start, start + per_split.get(s, 0)))
        start += per_split.get(s, 0)
    if set(counts) != set(range(start)):
        raise ValueError(f"{f}: its splits give {start} classes but images_per_class lists "
                         f"{len(counts)}; the spec is inconsistent (convert the source again)")
    if len(ids["test"]) < MIN_WAYS:
        raise ValueError(f"{f}: {len(ids['test'])} test classes, but episodes need at least "
                         f"{MIN_WAYS}; this source cannot be a target")
    return {"name": spec.get("name", source_dir.name), "pattern": pattern, "splits": ids,
            "class_names": names, "images_per_class": counts,
            "superclasses": spec.get("superclass_names") if bilevel else None}


def _class_files(source_dir: Path, pattern: str, cid: int) -> list[Path]:
    if pattern == "{}.tfrecords":
        f = source_dir / pattern.format(cid)
        return [f] if f.is_file() else []
    return sorted(source_dir.glob(pattern.format(cid, "*")))


def _subset(cid: int, n: int | None, cap: int | None) -> set[int] | None:
    """Record positions kept of a class of `n` records under a cap (None: all), seeded by the
    class id. Meta-Dataset's files are in the source's listing order, so the first N would
    be biased (one QuickDraw drawing session, one Fungi observer)."""
    if not cap or not n or n <= cap:
        return None
    return set(np.random.default_rng(cid).choice(n, cap, replace=False).tolist())


def _convert_class(w: DomainWriter, folder: str, cid: int, files: list[Path],
                   keep: set[int] | None, cap: int | None) -> list[dict]:
    """Add the images of Meta-Dataset class `cid` to `w` as class `folder` (the record
    positions in `keep`, at most `cap`); returns the records skipped, with the reason."""
    skipped, pos, last = [], -1, max(keep) if keep else None
    for f in files:
        for i, rec, why in _records(f):
            pos += 1
            if (cap and w.count[folder] >= cap) or (last is not None and pos > last):
                return skipped
            if why is None and keep is not None and pos not in keep:
                continue
            if why is None and rec["label"] != cid:
                why = f"label {rec['label']} is not the file's class id {cid}"
            if why is None:
                try:
                    im = _decode(rec["image"])
                except Exception as e:  # noqa: BLE001 - any undecodable image is skipped
                    why = f"undecodable image: {type(e).__name__}: {e}"
            if why:
                skipped.append({"file": f.name, "record": i, "reason": why})
                if len(skipped) <= SHOWN_PER_CLASS or why.startswith("file unreadable"):
                    print(f"skipped {f.name} record {i}: {why}")
            else:
                w.add(folder, im, fit="resize", dedup=False, drop_blank=False)
    return skipped


def convert_meta_dataset(records_root, source: str, name: str | None = None,
                         max_images_per_class: int | None = None, force: bool = False,
                         parent=None) -> dict:
    """Convert one Meta-Dataset source into the target domain `md_<source>`; returns the
    manifest. Splits are the spec's; see the module docstring for the format and choices."""
    if source in EXCLUDED:
        raise ValueError(f"{source} is not converted: {EXCLUDED[source]}")
    if source not in TARGETS:
        raise ValueError(f"unknown Meta-Dataset source {source!r}; the paper's targets are "
                         f"{', '.join(TARGETS)}")
    if max_images_per_class is not None and max_images_per_class < MIN_IMAGES:
        raise ValueError(f"max_images_per_class={max_images_per_class}: episodes need >= {MIN_IMAGES}")
    name = name or f"md_{source}"
    parent = _domain_parent(name, parent, force)
    root = Path(records_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Meta-Dataset records root {records_root} is not a folder; pass "
                                "the folder holding omniglot/, aircraft/, ... (RECORDS=path)")
    src = root / source
    if not src.is_dir():
        raise FileNotFoundError(f"{src} not found: the records root has no {source}/ folder")
    src = check_source(src, parent / name)
    spec = read_spec(src)
    ids = [c for s in SPLITS for c in spec["splits"][s]]
    files = {c: _class_files(src, spec["pattern"], c) for c in ids}
    missing = [c for c in ids if not files[c]]
    if missing:
        raise FileNotFoundError(
            f"{src}: {len(missing)} of {len(ids)} class files missing (e.g. "
            f"{spec['pattern'].format(missing[0], '0')}); the download or Meta-Dataset's "
            f"conversion of {source} is incomplete: redo it for this source")
    cls = {c: f"{c:04d}-{_ascii_slug(spec['class_names'].get(c, ''))[0]}".rstrip("-") for c in ids}
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    w = DomainWriter(name, parent)
    skipped = []
    try:
        for c in tqdm(ids, desc=f"convert {source}", unit="class"):
            keep = _subset(c, spec["images_per_class"].get(c), max_images_per_class)
            skipped += _convert_class(w, cls[c], c, files[c], keep, max_images_per_class)
        if skipped:
            print(f"{source}: skipped {len(skipped)} records (see the manifest's skipped_records)")
        splits = {s: [cls[c] for c in spec["splits"][s]] for s in SPLITS}
        extra = {"superclass_names": spec["superclasses"]} if spec["superclasses"] else {}
        return _finish(
            w, name, "target", STANDS_IN_FOR[source], splits,
            {"name": f"Meta-Dataset {source} ({spec['name']})",
             "version": "records of google-research/meta-dataset",
             "licence": "the original dataset's terms"},
            labels={cls[c]: spec["class_names"].get(c, str(c)) for c in ids},
            description=f"Meta-Dataset source {source} converted from {src}",
            collection=MD_COLLECTION, source=source, spec_name=spec["name"],
            spec_images_per_class={cls[c]: spec["images_per_class"].get(c) for c in ids},
            max_images_per_class=max_images_per_class, skipped_records=skipped[:MAX_REPORTED],
            skipped_records_total=len(skipped), **extra)
    except BaseException:
        w.abort()
        raise


def convert_meta_dataset_all(records_root, sources=TARGETS, max_images_per_class: int | None = None,
                             force: bool = False, parent=None) -> dict[str, dict]:
    """Convert every listed source present under `records_root` ({source: manifest}). Absent
    sources, and ones already converted (without `force`), are skipped with a message, so an
    interrupted run resumes; a source that fails does not stop the others, but the call raises
    ValueError naming the failures at the end."""
    root = Path(records_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Meta-Dataset records root {records_root} is not a folder")
    bad = [s for s in sources if s not in TARGETS]
    if bad:
        raise ValueError(f"source(s) {bad} not converted: "
                         + "; ".join(EXCLUDED.get(s, "not one of the paper's targets") for s in bad)
                         + f". Targets: {', '.join(TARGETS)}")
    present = [s for s in sources if (root / s).is_dir()]
    for s in sources:
        if s not in present:
            print(f"{s}: no {root / s}/ folder; skipped")
    if not present:
        raise FileNotFoundError(f"{root} holds none of {', '.join(sources)}: is it Meta-Dataset's "
                                "records root?")
    done, failed = {}, {}
    for s in present:
        out = (Path(parent) if parent is not None else domains_dir()) / f"md_{s}"
        if out.exists() and not force:
            print(f"{s}: already converted at {out}; skipped (--force converts it again)")
            continue
        try:
            done[s] = convert_meta_dataset(root, s, max_images_per_class=max_images_per_class,
                                           force=force, parent=parent)
        except (ValueError, FileNotFoundError, OSError) as e:
            print(f"{s}: FAILED: {e}")
            failed[s] = str(e)
    if failed:
        raise ValueError(f"{len(failed)} source(s) not converted: " +
                         "; ".join(f"{s}: {e}" for s, e in failed.items()))
    return done


