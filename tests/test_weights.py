"""Weight files: safe loading (no code runs), sha256 checks, and clear errors."""
import io
import os
import pickle
import re
import zipfile

import pytest

from tinytrain_core.nets import weights


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _as_torch_zip(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


@pytest.mark.parametrize("wrap", ["zip", "raw"])
def test_crafted_file_is_refused_and_runs_nothing(tmp_path, wrap):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"first_conv": _Evil(marker)}, protocol=2)
    path = tmp_path / "evil.pkl"
    _as_torch_zip(path, payload) if wrap == "zip" else path.write_bytes(payload)
    with pytest.raises(weights.UnsafeWeights, match="posix.system|os.system|nt.system"):
        weights.safe_load(path)
    assert not marker.exists()


def test_other_globals_refused_even_harmless_ones(tmp_path):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"x": io.BytesIO}, protocol=2))
    with pytest.raises(weights.UnsafeWeights, match="_io.BytesIO"):
        weights.safe_load(path)


def test_numpy_arrays_load(tmp_path):
    import numpy as np
    path = tmp_path / "ok.pkl"
    arr = np.arange(6, dtype=np.int8).reshape(2, 3)
    _as_torch_zip(path, pickle.dumps({"w": arr, "s": 0.5}, protocol=2))
    d = weights.safe_load(path)
    assert (d["w"] == arr).all()


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(b"\x80\x02}q\x00(X")
    with pytest.raises(weights.UnsafeWeights, match="make weights"):
        weights.safe_load(path)


def test_missing_weights_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    monkeypatch.delenv("TINYTRAIN_WEIGHTS_DIR", raising=False)
    with pytest.raises(weights.WeightsMissing, match="make weights"):
        weights.find("mcunet-5fps")


def test_fetch_rejects_a_wrong_checksum(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in weights.SHA256:
        (src / f"{name}.pkl").write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="sha256"):
        weights.fetch(dest=tmp_path / "dest", source_dir=str(src))
    assert not list((tmp_path / "dest").glob("*.pkl"))


def test_fetch_from_a_folder_missing_files(tmp_path):
    with pytest.raises(weights.WeightsMissing, match="TINYTRAIN_WEIGHTS_DIR"):
        weights.fetch(dest=tmp_path / "dest", source_dir=str(tmp_path / "nowhere"))


def test_fetch_copies_and_verifies_the_real_files(tmp_path):
    src = os.environ.get("TINYTRAIN_WEIGHTS_DIR")
    if not src or not os.path.isdir(src):
        pytest.skip("TINYTRAIN_WEIGHTS_DIR not set: run `make weights` on a machine that has them")
    placed = weights.fetch(dest=tmp_path, source_dir=src)
    assert sorted(p.name for p in placed) == sorted(f"{n}.pkl" for n in weights.SHA256)


def _numpy_zip(path):
    import numpy as np
    _as_torch_zip(path, pickle.dumps({"w": np.arange(4000, dtype=np.int8)}, protocol=2))
    return path.read_bytes()


def test_a_zip_with_a_damaged_member_names_the_path_and_the_fix(tmp_path):
    path = tmp_path / "mcunet-5fps.pkl"
    raw = bytearray(_numpy_zip(path))
    raw[len(raw) // 3] ^= 0xFF                         # inside the stored data.pkl: its CRC fails
    path.write_bytes(bytes(raw))
    with pytest.raises(weights.DamagedWeights, match=rf"{re.escape(str(path))}.*damaged.*make weights.*TINYTRAIN_WEIGHTS_DIR"):
        weights.safe_load(path)


def test_a_truncated_zip_is_reported_as_damaged(tmp_path):
    path = tmp_path / "mcunet-5fps.pkl"
    path.write_bytes(_numpy_zip(path)[:-100])
    with pytest.raises(weights.DamagedWeights, match=rf"{re.escape(str(path))}.*truncated.*make weights"):
        weights.safe_load(path)


def test_damaged_weights_are_caught_as_unsafe_weights_too():
    assert issubclass(weights.DamagedWeights, weights.UnsafeWeights)


def test_a_release_file_failing_its_sha256_is_refused_at_load(tmp_path, monkeypatch):
    from tinytrain_core.nets import checkpoints
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    monkeypatch.delenv("TINYTRAIN_WEIGHTS_DIR", raising=False)
    path = tmp_path / "data" / "weights" / "mcunet-5fps.pkl"
    path.parent.mkdir(parents=True)
    _numpy_zip(path)                                   # readable, but not the release
    with pytest.raises(weights.DamagedWeights, match=rf"{re.escape(str(path))} fails its sha256 check.*make weights"):
        checkpoints.create("mcunet-5fps", pretrained=True)


def test_the_real_release_passes_its_check_at_load():
    src = os.environ.get("TINYTRAIN_WEIGHTS_DIR")
    if not src or not os.path.isdir(src):
        pytest.skip("TINYTRAIN_WEIGHTS_DIR not set: run `make weights` on a machine that has them")
    from tinytrain_core.nets import checkpoints
    net = checkpoints.create("mcunet-5fps", pretrained=True)
    assert net.classifier.weight.abs().sum() > 0
