"""What the notebooks show their readers (issue 24): paths relative to the project root (in
messages and in warnings' headers), no TqdmWarning from the package, schemes in words."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from tinytrain_core import paths
from tinytrain_core.report import plots

ROOT = Path(__file__).resolve().parents[1]


def test_paths_inside_the_project_are_shown_relative_to_its_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    assert paths.shown(tmp_path / "results" / "smoke" / "x.pt") == "results/smoke/x.pt"
    outside = tmp_path.parent / "elsewhere.pt"
    assert paths.shown(outside) == str(outside)


def test_a_missing_checkpoint_is_named_relative_to_the_project_root(monkeypatch, tmp_path):
    from tinytrain_core.nets import checkpoints
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        checkpoints.load_backbone("mcunet-5fps", "meta", "smoke")
    assert "(results/smoke/checkpoints/" in str(e.value) and str(tmp_path) not in str(e.value)


def test_warnings_name_their_source_file_relative_to_the_project_root(monkeypatch):
    monkeypatch.setenv("TINYTRAIN_ROOT", str(ROOT))

    def caller():
        paths.warn("a notice", stacklevel=2)     # attributed to caller's caller, as warnings.warn
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        caller()
    (w,) = got
    assert w.filename == "tests/test_messages.py" and w.category is UserWarning
    assert "a notice" in str(w.message)
    assert w.lineno == caller.__code__.co_firstlineno + 4   # the line calling caller()


def test_no_package_module_imports_tqdm_auto():
    """tqdm.auto warns (TqdmWarning: IProgress not found) in every notebook without ipywidgets."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tinytrain_core").rglob("*.py")
                 if re.search(r"^\s*(from tqdm\.auto import|import tqdm\.auto|from tqdm import auto)",
                              p.read_text(), re.M)]
    assert offenders == []


def test_schemes_are_printed_as_channels_per_conv_without_hex_masks():
    stored = "28:192/192;29:96/192@58316c1225aa5590ccf549479f651eddeba017b0fb1e431f;adapter=3,4"
    text = plots.readable_scheme(stored)
    assert text == "conv 28: 192/192 channels; conv 29: 96/192 channels; adapter at blocks 3, 4"
    assert "@" not in text
    assert plots.readable_scheme("") == plots.readable_scheme(float("nan")) == "no conv trained"
