"""Checkpoint and sidecar are one unit: the sidecar records the sha256 of the weights it
describes, so a save killed between the two renames, or weights swapped under their sidecar,
is never reused (`matches` says no) nor loaded under the wrong description (`load` refuses)."""
import json
from pathlib import Path

import pytest
import torch

from tinytrain_core.nets import checkpoints
from tinytrain_core.nets.checkpoints import create


class Killed(BaseException):
    """What a kill looks like to the code after it: nothing more runs."""


def _kill_when_the_sidecar_lands(monkeypatch):
    """Interrupt a save at the moment its .json would be put in place (by rename or by a direct
    write), i.e. after the .pt already was: the window between the two."""
    real_replace, real_write = Path.replace, Path.write_text

    def replace(self, target):
        if Path(target).suffix == ".json":
            raise Killed
        return real_replace(self, target)

    def write_text(self, *args, **kwargs):
        if self.suffix == ".json":
            raise Killed
        return real_write(self, *args, **kwargs)
    monkeypatch.setattr(Path, "replace", replace)
    monkeypatch.setattr(Path, "write_text", write_text)


def test_a_save_killed_between_weights_and_sidecar_is_not_reused(tmp_path, monkeypatch, capsys):
    path, old, new = tmp_path / "m.pt", {"lr": 1e-3}, {"lr": 1e-4}
    checkpoints.save(path, {"w": torch.zeros(3)}, old)
    with monkeypatch.context() as m:
        _kill_when_the_sidecar_lands(m)
        with pytest.raises(Killed):
            checkpoints.save(path, {"w": torch.ones(3)}, new)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))   # new weights, old sidecar
    assert not checkpoints.matches(path, old)
    assert not checkpoints.matches(path, new)
    assert "sha256" in capsys.readouterr().out
    with pytest.raises(checkpoints.BadCheckpoint, match="not the checkpoint its sidecar describes"):
        checkpoints.load(path)
    checkpoints.save(path, {"w": torch.ones(3)}, new)                             # the rerun repairs it
    assert checkpoints.matches(path, new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt"]


def test_the_sidecar_records_the_weights_hash_and_load_hides_it(tmp_path):
    path = checkpoints.save(tmp_path / "m.pt", {"w": torch.ones(2)}, {"seed": 0})
    side = json.loads(path.with_suffix(".json").read_text())
    assert side[checkpoints.HASH_FIELD] == checkpoints.file_sha256(path)
    assert checkpoints.load(path)[1] == {"seed": 0}


def test_weights_replaced_under_their_sidecar_are_refused(tmp_path, capsys):
    path = checkpoints.save(tmp_path / "m.pt", {"w": torch.ones(2)}, {"seed": 0})
    torch.save({"w": torch.full((2,), 7.0)}, path)
    assert not checkpoints.matches(path, {"seed": 0})
    assert f"{path} is not reused" in capsys.readouterr().out
    with pytest.raises(checkpoints.BadCheckpoint, match="delete both files"):
        checkpoints.load(path)


def test_a_sidecar_without_a_hash_is_not_reused_but_still_loads(tmp_path, capsys):
    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(2)}, path)
    path.with_suffix(".json").write_text(json.dumps({"seed": 0}))              # written by the old save
    assert not checkpoints.matches(path, {"seed": 0})
    assert "records no sha256" in capsys.readouterr().out
    state, meta = checkpoints.load(path)
    assert torch.equal(state["w"], torch.ones(2)) and meta == {"seed": 0}


def test_a_config_change_is_a_quiet_no_match(tmp_path, capsys):
    path = checkpoints.save(tmp_path / "m.pt", {"w": torch.ones(2)}, {"seed": 0})
    assert not checkpoints.matches(path, {"seed": 1})
    assert capsys.readouterr().out == ""


def test_the_hash_field_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        checkpoints.save(tmp_path / "m.pt", {"w": torch.ones(2)}, {checkpoints.HASH_FIELD: "x"})


def test_the_feature_mix_variant_is_the_same_network_every_time_and_leaves_the_global_rng_alone():
    import os
    if not os.environ.get("TINYTRAIN_WEIGHTS_DIR") and not (Path(__file__).parent.parent / "data" / "weights").is_dir():
        pytest.skip("ImageNet weights absent (make weights)")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = create("mbv2-w0.35", pretrained=True, feature_mix=True)
    after = torch.rand(1)
    b = create("mbv2-w0.35", pretrained=True, feature_mix=True)
    assert torch.equal(before, after)                      # the global random stream is untouched
    assert torch.equal(a.backbone.feature_mix.conv.weight, b.backbone.feature_mix.conv.weight)
    c = create("mbv2-w0.35", pretrained=True, feature_mix=True, mix_seed=1)
    assert not torch.equal(a.backbone.feature_mix.conv.weight, c.backbone.feature_mix.conv.weight)
