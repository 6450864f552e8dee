"""Fixtures shared by test modules."""
import pytest

from tinytrain_core.experiment import adapt
from tinytrain_core.data import fixture_ready
from tinytrain_core.paths import project_root


@pytest.fixture
def adapt_on_fixture(tmp_path, monkeypatch):
    """`adapt.run` on the font fixture, results under `tmp_path` (returned), backbones stubbed
    out; each test module stands in its own `adapt.adapt_task`."""
    root = project_root()
    if not fixture_ready(root / "data" / "fixture"):
        pytest.skip("fixture domains missing: run `make fixture`")
    monkeypatch.setenv("TINYTRAIN_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("TINYTRAIN_ROOT", str(tmp_path))
    monkeypatch.setattr(adapt.Backbones, "get", lambda self, ckpt: (None, None))
    return tmp_path
