"""Small shared pieces: confidence intervals, the cosine-prototype head, safe checkpoints."""
import math
import os

import pytest
import torch

from tinytrain_core.nets import checkpoints
from tinytrain_core.training import heads
from tinytrain_core import stats


def test_mean_ci95_matches_the_textbook_formula():
    xs = [60.0, 70.0, 80.0, 90.0]
    m, ci = stats.mean_ci95(xs)
    sd = math.sqrt(sum((x - 75) ** 2 for x in xs) / 3)
    assert m == 75 and ci == pytest.approx(3.1824463 * sd / 2)  # t_{0.975, 3}


def test_paired_difference_is_tighter_than_separate_intervals():
    a = [50.0, 60.0, 70.0, 80.0, 90.0]
    b = [x - 2.0 + (0.5 if i % 2 else -0.5) for i, x in enumerate(a)]
    d, ci = stats.paired_diff_ci95(a, b)
    assert d == pytest.approx(2.1)
    assert ci < stats.mean_ci95(a)[1]
    with pytest.raises(ValueError, match="same tasks"):
        stats.paired_diff_ci95(a, b[:-1])


def test_prototypes_are_class_means_and_head_is_cosine():
    f = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 0, 1])
    p = heads.prototypes(f, y, 2)
    assert torch.equal(p, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    logits = heads.CosineHead(scale=10.0, bias=0.5)(torch.tensor([[5.0, 0.0]]), p)
    assert torch.allclose(logits, torch.tensor([[15.0, 5.0]]))
    assert heads.prototype_accuracy(f, y, torch.tensor([[0.1, 1.0]]), torch.tensor([1])) == 1.0


def test_checkpoint_roundtrip_and_reuse(tmp_path):
    path = tmp_path / "m.pt"
    meta = {"lr": 1e-3, "seed": 0}
    checkpoints.save(path, {"w": torch.ones(2)}, meta)
    state, got = checkpoints.load(path)
    assert torch.equal(state["w"], torch.ones(2)) and got == meta
    assert checkpoints.matches(path, meta) and not checkpoints.matches(path, {**meta, "seed": 1})


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_code_is_refused(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"w": _Evil(marker)}, path)
    with pytest.raises(checkpoints.BadCheckpoint, match="tensor-only"):
        checkpoints.load(path)
    assert not marker.exists()


def test_damaged_or_missing_checkpoint_names_the_fix(tmp_path):
    with pytest.raises(checkpoints.BadCheckpoint, match="01_pretrain"):
        checkpoints.load(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(checkpoints.BadCheckpoint, match="delete it"):
        checkpoints.load(tmp_path / "bad.pt")
