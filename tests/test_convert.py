"""The paper's real data (`convert.py`): Meta-Dataset records and MiniImageNet become domains,
and the paper profile switches to them. Every test writes tiny files in the real formats
(tf.train.Example records via `tfrecord`, PIL-made JPEGs) into a temporary data folder."""
from __future__ import annotations

import csv
import io
import json
import re
import struct
import tracemalloc

import numpy as np
import pytest
from PIL import Image
from tfrecord import TFRecordWriter

from tinytrain_core import data as D
from tinytrain_core.data.__main__ import main as cli
from tinytrain_core.data.domains import domains_dir

N_IMAGES = 3


@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root))
    return root


def colour(c):
    return (40 + 53 * c) % 256, (200 - 37 * c) % 256, (90 + 71 * c) % 256


def jpeg(c, size=(24, 18)):
    return jpeg_of(colour(c), size)


def jpeg_of(rgb, size=(24, 18)):
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_records(path, records):
    """records: (image bytes, label) pairs, one tf.train.Example each."""
    w = TFRecordWriter(str(path))
    for image, label in records:
        w.write({"image": (image, "byte"), "label": (label, "int")})
    w.close()


def md_source(root, source, per_split=(2, 2, 5), superclasses=None, split_keys="{}"):
    """`root/source/`: dataset_spec.json + one <id>.tfrecords per class. per_split counts classes
    (flat spec) or, with `superclasses` (classes per superclass), superclasses (BiLevel spec)."""
    d = root / source
    d.mkdir(parents=True)
    n = sum(superclasses) if superclasses else sum(per_split)
    splits = {split_keys.format(k): v for k, v in zip(("TRAIN", "VALID", "TEST"), per_split)}
    spec = {"name": source, "images_per_class": {str(c): N_IMAGES for c in range(n)},
            "class_names": {str(c): f"{source} Class {c}" for c in range(n)},
            "path": str(d), "file_pattern": "{}.tfrecords"}
    if superclasses:
        spec.update(__class__="BiLevelDatasetSpecification", superclasses_per_split=splits,
                    classes_per_superclass={str(i): k for i, k in enumerate(superclasses)},
                    superclass_names={str(i): f"alphabet {i}" for i in range(len(superclasses))})
    else:
        spec.update(__class__="DatasetSpecification", classes_per_split=splits)
    (d / "dataset_spec.json").write_text(json.dumps(spec))
    for c in range(n):
        write_records(d / f"{c}.tfrecords", [(jpeg(c, (24 + i, 18)), c) for i in range(N_IMAGES)])
    return d


def manifest(name):
    return json.loads((domains_dir() / name / "manifest.json").read_text())


def nothing_left(name):
    return not (domains_dir() / name).exists() and not (domains_dir() / f".{name}.tmp").exists()


def mini_csv(src, splits=(3, 2, 5), n=N_IMAGES):
    """Ravi & Larochelle's layout: images/*.jpg + train/val/test.csv (filename,label)."""
    (src / "images").mkdir(parents=True)
    c = 0
    for split, k in zip(("train", "val", "test"), splits):
        rows = []
        for _ in range(k):
            wnid = f"n{1000000 + c:08d}"
            for i in range(n):
                name = f"{wnid}{i:08d}.jpg"
                (src / "images" / name).write_bytes(jpeg(c))
                rows.append((name, wnid))
            c += 1
        write_csv(src / f"{split}.csv", rows)
    return src


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("filename", "label"), *rows])


def mini_folders(src, splits=(3, 2, 5), n=N_IMAGES):
    """Class-folder layout: <split>/<wnid>/*.jpg."""
    c = 0
    for split, k in zip(("train", "val", "test"), splits):
        for _ in range(k):
            d = src / split / f"n{1000000 + c:08d}"
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.jpg").write_bytes(jpeg(c))
            c += 1
    return src


# ---------------------------------------------------------------- Meta-Dataset

def test_meta_dataset_class_splits_are_the_specs(tmp_path):
    md_source(tmp_path, "aircraft")
    m = D.convert_meta_dataset(tmp_path, "aircraft")
    assert m["name"] == "md_aircraft" and m["role"] == "target" and m["stands_in_for"] == "Aircraft"
    assert m["n_classes"] == {"train": 2, "val": 2, "test": 5}
    ids = [int(c.split("-")[0]) for s in ("train", "val", "test") for c in m["splits"][s]]
    assert ids == list(range(9))                      # contiguous: TRAIN, then VALID, then TEST
    assert m["splits"]["val"] == ["0002-aircraft-class-2", "0003-aircraft-class-3"]
    assert m["labels"]["0004-aircraft-class-4"] == "aircraft Class 4"
    assert (m["collection"], m["source"], m["spec_name"]) == ("meta-dataset", "aircraft", "aircraft")
    assert m["counts"] == m["spec_images_per_class"] and set(m["counts"].values()) == {N_IMAGES}
    assert m["skipped_records"] == [] and m["skipped_records_total"] == 0


def test_every_record_becomes_a_128px_rgb_png_of_its_class(tmp_path):
    md_source(tmp_path, "dtd")
    m = D.convert_meta_dataset(tmp_path, "dtd")
    d = D.load_domain("md_dtd", "paper")
    assert m["images"] == 9 * N_IMAGES
    for cls in m["files"]:
        for path in d.images(cls):
            im = Image.open(path)
            assert im.size == (128, 128) and im.mode == "RGB"
            mean = np.asarray(im, dtype=float).reshape(-1, 3).mean(0)
            assert np.abs(mean - colour(int(cls[:4]))).max() < 6   # stretched, not padded


def test_omniglot_bilevel_spec_splits_by_alphabet(tmp_path):
    # 4 alphabets: 1 train (2 characters), 1 val (2), 2 test (3 + 3); "Split.X" keys
    md_source(tmp_path, "omniglot", per_split=(1, 1, 2), superclasses=(2, 2, 3, 3),
              split_keys="Split.{}")
    m = D.convert_meta_dataset(tmp_path, "omniglot")
    assert m["n_classes"] == {"train": 2, "val": 2, "test": 6}
    assert [c[:4] for c in m["splits"]["test"]] == ["0004", "0005", "0006", "0007", "0008", "0009"]
    assert m["superclass_names"]["3"] == "alphabet 3"


def test_traffic_sign_has_test_classes_only_and_is_still_a_domain(tmp_path):
    md_source(tmp_path, "traffic_sign", per_split=(0, 0, 6))
    m = D.convert_meta_dataset(tmp_path, "traffic_sign")
    assert m["n_classes"] == {"train": 0, "val": 0, "test": 6}
    ep = D.sample_episode("md_traffic_sign", "test", 0, D.EpisodeConfig(mode="fixed", ways=5, shots=1,
                                                                         queries=1), profile="paper")
    xs, *_ = D.episode_tensors(ep)
    assert xs.shape == (5, 3, 128, 128)


def test_wrong_label_corrupt_image_and_damaged_file_are_skipped_and_reported(tmp_path, capsys):
    src = md_source(tmp_path, "cu_birds")
    write_records(src / "4.tfrecords", [(jpeg(4), 4), (jpeg(7), 7), (b"\xff\xd8\xff\xe0 not a jpeg", 4),
                                        (jpeg(4, (30, 30)), 4)])
    whole = (src / "5.tfrecords").read_bytes()
    (src / "5.tfrecords").write_bytes(whole[:-20])   # the last record cut short
    m = D.convert_meta_dataset(tmp_path, "cu_birds")
    reasons = {(r["file"], r["record"]): r["reason"] for r in m["skipped_records"]}
    assert reasons[("4.tfrecords", 1)].startswith("label 7 is not the file's class id 4")
    assert reasons[("4.tfrecords", 2)].startswith("undecodable image")
    assert reasons[("5.tfrecords", 2)].startswith("file unreadable from here on")
    assert m["skipped_records_total"] == 3 and "skipped 3 records" in capsys.readouterr().out
    assert m["counts"]["0004-cu_birds-class-4"] == 2 and m["counts"]["0005-cu_birds-class-5"] == 2


def test_max_images_per_class_keeps_the_same_random_subset_on_every_run(tmp_path):
    src = md_source(tmp_path, "fungi")
    greys = [(20 * i, 20 * i, 20 * i) for i in range(10)]
    write_records(src / "4.tfrecords", [(jpeg_of(g), 4) for g in greys])
    spec = json.loads((src / "dataset_spec.json").read_text())
    spec["images_per_class"]["4"] = 10
    (src / "dataset_spec.json").write_text(json.dumps(spec))

    def kept():
        d = D.load_domain("md_fungi")
        return sorted(int(round(np.asarray(Image.open(p), dtype=float).mean() / 20))
                      for p in d.images("0004-fungi-class-4"))
    m = D.convert_meta_dataset(tmp_path, "fungi", max_images_per_class=4)
    assert m["counts"]["0004-fungi-class-4"] == 4 and m["max_images_per_class"] == 4
    assert set(m["counts"].values()) == {N_IMAGES, 4}      # classes under the cap keep everything
    first = kept()
    assert len(set(first)) == 4 and first != [0, 1, 2, 3]   # a subset, not the first records
    D.convert_meta_dataset(tmp_path, "fungi", max_images_per_class=4, force=True)
    assert kept() == first


def test_sharded_class_files_are_all_read(tmp_path):
    src = md_source(tmp_path, "mscoco", per_split=(0, 2, 5))
    spec = json.loads((src / "dataset_spec.json").read_text())
    (src / "dataset_spec.json").write_text(json.dumps({**spec, "file_pattern": "{}_{}.tfrecords"}))
    for c in range(7):
        (src / f"{c}.tfrecords").rename(src / f"{c}_0.tfrecords")
        write_records(src / f"{c}_1.tfrecords", [(jpeg(c), c)])
    m = D.convert_meta_dataset(tmp_path, "mscoco")
    assert m["n_classes"] == {"train": 0, "val": 2, "test": 5}
    assert set(m["counts"].values()) == {N_IMAGES + 1}


def _drop_spec(src):
    (src / "dataset_spec.json").unlink()


def _drop_class_file(src):
    (src / "6.tfrecords").unlink()


def _bad_spec(src):
    spec = json.loads((src / "dataset_spec.json").read_text())
    spec["classes_per_split"]["TEST"] = 7          # 11 classes, but 9 counts and 9 files
    (src / "dataset_spec.json").write_text(json.dumps(spec))


def _few_test_classes(src):
    spec = json.loads((src / "dataset_spec.json").read_text())
    spec["classes_per_split"] = {"TRAIN": 4, "VALID": 1, "TEST": 4}
    (src / "dataset_spec.json").write_text(json.dumps(spec))


def _not_a_spec(src):
    (src / "dataset_spec.json").write_text('{"name": "x", "classes_per_split": [1, 2]}')


@pytest.mark.parametrize("damage, error, message", [
    (_drop_spec, FileNotFoundError, "dataset_spec.json not found"),
    (_drop_class_file, FileNotFoundError, r"1 of 9 class files missing \(e.g. 6.tfrecords\).*redo it"),
    (_bad_spec, ValueError, "splits give 11 classes but images_per_class lists 9"),
    (_few_test_classes, ValueError, "4 test classes, but episodes need at least 5"),
    (_not_a_spec, ValueError, "is not a DatasetSpecification"),
])
def test_broken_source_is_refused_before_anything_is_written(tmp_path, damage, error, message):
    damage(md_source(tmp_path, "vgg_flower"))
    with pytest.raises(error, match=message):
        D.convert_meta_dataset(tmp_path, "vgg_flower")
    assert nothing_left("md_vgg_flower")


def test_missing_root_or_source_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="records root .* is not a folder"):
        D.convert_meta_dataset(tmp_path / "nowhere", "dtd")
    tmp_path.joinpath("records").mkdir()
    with pytest.raises(FileNotFoundError, match="has no dtd/ folder"):
        D.convert_meta_dataset(tmp_path / "records", "dtd")
    assert nothing_left("md_dtd")


def test_ilsvrc_2012_is_refused_with_the_papers_reason(tmp_path):
    with pytest.raises(ValueError, match="excludes ImageNet from the targets"):
        D.convert_meta_dataset(tmp_path, "ilsvrc_2012")
    with pytest.raises(ValueError, match="excludes ImageNet"):
        D.convert_meta_dataset_all(tmp_path, ["aircraft", "ilsvrc_2012"])


def test_converting_all_skips_absent_and_converted_sources(tmp_path, capsys):
    md_source(tmp_path, "aircraft")
    md_source(tmp_path, "quickdraw")
    assert set(D.convert_meta_dataset_all(tmp_path)) == {"aircraft", "quickdraw"}
    out = capsys.readouterr().out
    assert "fungi: no " in out and "mscoco: no " in out
    assert D.convert_meta_dataset_all(tmp_path) == {}
    assert "aircraft: already converted" in capsys.readouterr().out
    with pytest.raises(FileExistsError, match="--force"):
        D.convert_meta_dataset(tmp_path, "aircraft")
    assert set(D.convert_meta_dataset_all(tmp_path, ["aircraft"], force=True)) == {"aircraft"}


# ---------------------------------------------------------------- MiniImageNet

def test_miniimagenet_both_layouts_give_the_layouts_splits(tmp_path):
    a = D.convert_miniimagenet(mini_csv(tmp_path / "csv"))
    b = D.convert_miniimagenet(mini_folders(tmp_path / "folders"), name="mini-folders")
    assert a["splits"] == b["splits"] and a["n_classes"] == {"train": 3, "val": 2, "test": 5}
    assert (a["layout"], b["layout"]) == ("csv", "folders")
    assert a["role"] == "base" and a["collection"] == "miniimagenet" and a["images"] == 10 * N_IMAGES
    assert a["splits"]["val"] == ["n01000003", "n01000004"]
    im = Image.open(D.load_domain("miniimagenet").images("n01000000")[0])
    assert im.size == (128, 128) and im.mode == "RGB"


def test_csv_row_naming_a_missing_image_is_skipped_and_reported(tmp_path):
    src = mini_csv(tmp_path / "mini")
    (src / "images" / "n0100000000000001.jpg").unlink()
    m = D.convert_miniimagenet(src)
    assert m["skipped_files"] == [str(src / "images" / "n0100000000000001.jpg")]
    assert m["counts"]["n01000000"] == N_IMAGES - 1


@pytest.mark.parametrize("filename", ["../outside.jpg", "/etc/passwd", "a/../../outside.jpg", "link.jpg"])
def test_csv_names_escaping_images_are_refused_and_nothing_is_written(tmp_path, filename):
    src = mini_csv(tmp_path / "mini")
    (tmp_path / "outside.jpg").write_bytes(jpeg(0))
    (src / "images" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    with open(src / "test.csv", "a", newline="") as f:
        csv.writer(f).writerow((filename, "n01000005"))
    with pytest.raises(ValueError, match="test.csv line 17.*(not a plain name|outside images)"):
        D.convert_miniimagenet(src)
    assert nothing_left("miniimagenet")


@pytest.mark.parametrize("make, message", [
    (lambda src: (src / "train").mkdir(parents=True), "not a MiniImageNet folder"),
    (lambda src: write_csv(mini_csv(src) / "val.csv", [("x.jpg", "n01000000")]), "in both train and val"),
    (lambda src: (mini_csv(src) / "val.csv").write_text("name;wnid\nx.jpg;n1\n"), "header must be"),
], ids=["no-layout", "class-in-two-splits", "bad-header"])
def test_bad_miniimagenet_folder_is_refused_naming_the_layouts(tmp_path, make, message):
    make(tmp_path / "mini")
    with pytest.raises(ValueError, match=message) as e:
        D.convert_miniimagenet(tmp_path / "mini")
    if "both" not in message:
        assert "src/images/*.jpg" in str(e.value) and "src/train/<wnid>/*.jpg" in str(e.value)
    assert nothing_left("miniimagenet")


# ---------------------------------------------------------------- profiles and CLI

def test_paper_profile_switches_to_converted_domains_and_default_does_not(tmp_path):
    byo = tmp_path / "byo"
    for k in range(10):
        (byo / f"class {k}").mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (20, 20), colour(k)).save(byo / f"class {k}" / f"{i}.png")
    D.import_folder(byo, "mine")
    for s in ("aircraft", "traffic_sign", "omniglot"):
        md_source(tmp_path / "records", s)
    D.convert_meta_dataset_all(tmp_path / "records")
    # targets without the converted base: nothing switches, and no converted domain leaks in
    for profile in ("default", "paper"):
        assert D.list_domains(profile) == ["mine"] and D.base_domain(profile) == "icons"
    D.convert_miniimagenet(mini_folders(tmp_path / "mini"))
    assert D.list_domains("paper") == ["miniimagenet", "md_traffic_sign", "md_omniglot", "md_aircraft"]
    assert D.base_domain("paper") == "miniimagenet"
    assert D.target_domains("paper") == ["md_traffic_sign", "md_omniglot", "md_aircraft"]
    assert D.list_domains("default") == ["mine"] and D.base_domain("default") == "icons"
    assert D.list_domains("smoke") == [] and D.base_domain("smoke") == "fixture_base"


def test_cli_converts_and_reports_user_errors_without_traceback(tmp_path, capsys):
    md_source(tmp_path / "records", "aircraft")
    md_source(tmp_path / "records", "dtd")
    mini_csv(tmp_path / "mini")
    assert cli(["convert-md", "--records", str(tmp_path / "records"), "--sources", "aircraft, dtd",
                "--max-per-class", "2"]) == 0
    assert cli(["convert-mini", "--src", str(tmp_path / "mini")]) == 0
    assert cli(["convert-mini", "--src", str(tmp_path / "mini")]) == 0       # kept, not redone
    assert "already exists" in capsys.readouterr().out
    assert manifest("md_dtd")["max_images_per_class"] == 2
    assert D.list_domains("paper") == ["miniimagenet", "md_aircraft", "md_dtd"]
    for argv, message in [(["convert-md", "--records", str(tmp_path / "nowhere")], "not a folder"),
                          (["convert-md", "--records", str(tmp_path / "records"), "--sources",
                            "ilsvrc_2012"], "excludes ImageNet"),
                          (["convert-mini", "--src", str(tmp_path / "records"), "--force"],
                           "two layouts")]:
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("error: ") and message in err
        assert "Traceback" not in err


def test_paper_profile_runs_on_converted_data_and_traffic_sign_takes_the_pooled_lr(tmp_path, monkeypatch):
    """End to end on the paper profile's own sampler caps and plan (the per-task work stubbed):
    the run's domains are the converted ones, Traffic Sign (no validation classes) gets no
    validation rows and the LR that the other domains' validation chose."""
    from tinytrain_core.experiment import adapt, tasks
    from tinytrain_core import params
    md_source(tmp_path / "records", "traffic_sign", per_split=(0, 0, 6))
    md_source(tmp_path / "records", "omniglot", per_split=(2, 5, 6))
    D.convert_meta_dataset_all(tmp_path / "records")
    D.convert_miniimagenet(mini_folders(tmp_path / "mini"))
    assert params.expected_domains("paper") == ["miniimagenet", "md_traffic_sign", "md_omniglot"]
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    monkeypatch.setattr(adapt.Backbones, "get", lambda self, ckpt: (None, None))
    monkeypatch.setattr(tasks, "task_scheme", lambda *a: (None, {}))
    monkeypatch.setattr(tasks, "adapt_task", lambda method, net, state, t, cfg, lr, seed, chosen=None: dict(
        accuracy=50.0 + 1e4 * lr, backward_macs=0, backward_kib=0.0, select_s=0.0, train_s=0.0, n_layers=0,
        scheme=""))
    for engine in ("processes", "local"):
        cfg = adapt.AdaptConfig(profile="paper", methods=["None", "TinyTrain"], checkpoints=("imagenet",),
                                episodes=2, val_episodes=1, lrs=(1e-4, 1e-3), engine=engine, variant=engine,
                                workers=1)         # the stubs live in this process
        test, val = adapt.run(cfg, progress=False), adapt.rows_of_run(cfg, "val")
        assert set(val.domain) == {"md_omniglot"} and set(test.domain) == {"md_traffic_sign", "md_omniglot"}
        assert set(test[test.method == "TinyTrain"].lr) == {1e-3}          # md_omniglot's choice, pooled to signs
        assert test.ways.max() >= 5 and len(test) == 2 * 2 * 2


# ---------------------------------------------------------------- damaged records (issue 22)

def record_spans(path):
    """(offset, length) of every record of a .tfrecords file."""
    raw, out, at = path.read_bytes(), [], 0
    while at < len(raw):
        n = struct.unpack("<Q", raw[at:at + 8])[0]
        out.append((at, n))
        at += 12 + n + 4
    return out


def skipped(m):
    return {(r["file"], r["record"]): r["reason"] for r in m["skipped_records"]}


def test_a_record_failing_its_data_crc_is_skipped_and_the_rest_of_its_file_kept(tmp_path):
    src = md_source(tmp_path, "dtd")
    f = src / "4.tfrecords"
    raw = bytearray(f.read_bytes())
    image = jpeg(4, (25, 18))                          # record 1's JPEG
    at = raw.find(image)
    raw[at + len(image) - 20] ^= 0x10                  # one bit of its scan data flipped
    f.write_bytes(bytes(raw))
    m = D.convert_meta_dataset(tmp_path, "dtd")
    offset = record_spans(f)[1][0]
    assert skipped(m) == {("4.tfrecords", 1): f"damaged record: {f} record 1 at byte offset {offset}: "
                                              "its data fails its CRC-32C check"}
    assert m["counts"]["0004-dtd-class-4"] == N_IMAGES - 1


def _flip_length(raw, at, n):
    raw[at + 2] ^= 0x01                                # its CRC no longer matches


def _huge_length(raw, at, n):
    head = struct.pack("<Q", 100 * 2**20)              # 100 MiB, with a valid CRC
    raw[at:at + 12] = head + TFRecordWriter.masked_crc(head)


def _length_past_the_end(raw, at, n):
    head = struct.pack("<Q", 2**20)                    # 1 MiB in a file of a few KB, valid CRC
    raw[at:at + 12] = head + TFRecordWriter.masked_crc(head)


@pytest.mark.parametrize("damage, why", [
    (_flip_length, "its length field fails its CRC-32C check"),
    (_huge_length, f"its length field says {100 * 2**20} bytes, over the 64 MiB cap of one record"),
    (_length_past_the_end, f"its length field says {2**20} bytes, but only"),
], ids=["length-crc", "over-cap", "past-end"])
def test_a_damaged_length_field_ends_its_file_naming_file_and_offset_without_allocating_it(
        tmp_path, capsys, damage, why):
    src = md_source(tmp_path, "dtd")
    f = src / "4.tfrecords"
    write_records(f, [(jpeg(4, (24 + i, 18)), 4) for i in range(5)])
    at, n = record_spans(f)[2]
    raw = bytearray(f.read_bytes())
    damage(raw, at, n)
    f.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        m = D.convert_meta_dataset(tmp_path, "dtd")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    reason = skipped(m)[("4.tfrecords", 2)]
    assert reason.startswith(f"file unreadable from here on: {f} record 2 at byte offset {at}: {why}")
    assert reason.endswith("download or convert this source again") and reason in capsys.readouterr().out
    assert m["counts"]["0004-dtd-class-4"] == 2 and len(m["skipped_records"]) == 1   # records 3, 4 lost
    assert peak < 16 * 2**20                           # the length was never allocated


def test_a_record_without_a_label_is_skipped_with_a_message_and_the_rest_of_its_file_kept(tmp_path, capsys):
    src = md_source(tmp_path, "aircraft")
    w = TFRecordWriter(str(src / "4.tfrecords"))
    w.write({"image": (jpeg(4), "byte"), "label": (4, "int")})
    w.write({"image": (jpeg(4, (30, 20)), "byte")})    # no label
    w.write({"label": (4, "int")})                     # no image
    for size in ((26, 18), (28, 18)):
        w.write({"image": (jpeg(4, size), "byte"), "label": (4, "int")})
    w.close()
    m = D.convert_meta_dataset(tmp_path, "aircraft")
    assert skipped(m) == {("4.tfrecords", 1): "record has no int64 'label'",
                          ("4.tfrecords", 2): "record has no 'image' bytes"}
    assert m["counts"]["0004-aircraft-class-4"] == 3
    assert "skipped 4.tfrecords record 1: record has no int64 'label'" in capsys.readouterr().out


def edit_spec(src, **fields):
    spec = json.loads((src / "dataset_spec.json").read_text())
    for k, v in fields.items():
        spec[k] = {**spec[k], **v}
    (src / "dataset_spec.json").write_text(json.dumps(spec))


@pytest.mark.parametrize("fields, message", [
    (dict(classes_per_split={"TEST": 10**12}), r"classes_per_split\['TEST'\] is 1000000000000, .* from 0 to 100,000"),
    (dict(classes_per_split={"TEST": 3e7}), r"classes_per_split\['TEST'\] is 30000000.0, .* from 0 to 100,000"),
    (dict(classes_per_split={"VALID": -2, "TEST": 9}), r"classes_per_split\['VALID'\] is -2, .* from 0 to"),
    (dict(classes_per_split={"TEST": 2.5}), r"classes_per_split\['TEST'\] is 2.5, .* whole number"),
    (dict(images_per_class={"3": 10**12}), r"images_per_class\['3'\] is 1000000000000, .* from 0 to 10,000,000"),
    (dict(images_per_class={"3": -1}), r"images_per_class\['3'\] is -1, "),
], ids=["1e12-classes", "3e7-classes", "negative-split", "fraction", "1e12-images", "negative-images"])
def test_absurd_or_negative_spec_counts_are_refused_naming_field_value_limit_and_file_before_allocating(
        tmp_path, fields, message):
    src = md_source(tmp_path, "fungi")
    edit_spec(src, **fields)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message) as e:
            D.convert_meta_dataset(tmp_path, "fungi")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(e.value).startswith(f"{src / 'dataset_spec.json'}: ") and "convert the source again" in str(e.value)
    assert peak < 16 * 2**20 and nothing_left("md_fungi")


def test_absurd_bilevel_counts_are_refused_before_allocating(tmp_path):
    src = md_source(tmp_path / "a", "omniglot", per_split=(1, 1, 2), superclasses=(2, 2, 3, 3))
    edit_spec(src, classes_per_superclass={"3": 10**12})
    with pytest.raises(ValueError, match=r"classes_per_superclass\['3'\] is 1000000000000, "):
        D.convert_meta_dataset(tmp_path / "a", "omniglot")
    src = md_source(tmp_path / "b", "omniglot", per_split=(1, 1, 2), superclasses=(2, 2, 3, 3))
    edit_spec(src, classes_per_superclass={str(i): 60_000 for i in range(4)})
    with pytest.raises(ValueError, match="the classes of all splits together is 240000, .* from 0 to 100,000"):
        D.convert_meta_dataset(tmp_path / "b", "omniglot")


# ---------------------------------------------------------------- MiniImageNet: links, repeats, text (issue 22)

def _link_class_folder(src, outside):
    (src / "test" / "n09999999").symlink_to(outside, target_is_directory=True)
    return src / "test" / "n09999999"


def _link_split_folder(src, outside):
    (src / "test").rename(src / "real-test")
    (src / "test").symlink_to(src / "real-test", target_is_directory=True)
    return src / "test"


def _link_image(src, outside):
    (src / "test" / "n01000009" / "x.jpg").symlink_to(outside / "0.jpg")
    return src / "test" / "n01000009" / "x.jpg"


@pytest.mark.parametrize("link", [_link_class_folder, _link_split_folder, _link_image],
                         ids=["class-folder", "split-folder", "image"])
def test_symlinks_in_the_folder_layout_are_refused_and_nothing_written(tmp_path, link):
    src = mini_folders(tmp_path / "mini")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for i in range(N_IMAGES):
        (outside / f"{i}.jpg").write_bytes(jpeg(20 + i))              # readable: followed before
    path = link(src, outside)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is a symbolic link.*nothing written.*cp -rL"):
        D.convert_miniimagenet(src)
    assert nothing_left("miniimagenet")


def test_a_csv_row_naming_a_link_inside_images_is_refused(tmp_path):
    src = mini_csv(tmp_path / "mini")
    (src / "images" / "again.jpg").symlink_to(src / "images" / "n0100000000000000.jpg")
    with open(src / "train.csv", "a", newline="") as f:
        csv.writer(f).writerow(("again.jpg", "n01000000"))
    with pytest.raises(ValueError, match=rf"train.csv line {3 * N_IMAGES + 2}: .*again.jpg is or passes "
                                         r"through a symbolic link.*cp -rL"):
        D.convert_miniimagenet(src)
    assert nothing_left("miniimagenet")


def test_an_image_listed_twice_is_converted_once_under_its_first_class_with_a_warning(tmp_path):
    src = mini_csv(tmp_path / "mini")
    with open(src / "train.csv", "a", newline="") as f:
        csv.writer(f).writerow(("n0100000000000000.jpg", "n01000000"))   # twice in its class
    with open(src / "test.csv", "a", newline="") as f:
        csv.writer(f).writerow(("n0100000000000001.jpg", "n01000009"))   # and in another class
    with pytest.warns(UserWarning, match="2 images repeat a file listed before"):
        m = D.convert_miniimagenet(src)
    assert m["counts"]["n01000000"] == N_IMAGES and m["counts"]["n01000009"] == N_IMAGES
    first, second = (str(src / "images" / f"n01000000{i:08d}.jpg") for i in (0, 1))
    assert m["duplicate_files"] == [{"file": first, "same_as": first}, {"file": second, "same_as": second}]


def test_a_non_utf8_csv_is_refused_naming_file_line_and_byte(tmp_path):
    src = mini_csv(tmp_path / "mini")
    with open(src / "val.csv", "ab") as f:
        f.write(b"caf\xe9.jpg,n01000003\n")                           # Latin-1, not UTF-8
    with pytest.raises(ValueError, match=rf"{re.escape(str(src / 'val.csv'))} line {2 * N_IMAGES + 2}: "
                                         r"byte 0xe9 \(file offset \d+\) is not UTF-8; save the file as UTF-8"):
        D.convert_miniimagenet(src)
    assert nothing_left("miniimagenet")

