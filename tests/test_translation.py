"""DiffAugment's translation by slices (`data.loading.translate`) is the former whole-batch padded
gather, bit for bit, for the same generator draws: a reference copy of the gather lives here."""
import pytest
import torch
import torch.nn.functional as F

from tinytrain_core.data import apply_finetune, augment_batch, finetune_draws
from tinytrain_core.data.loading import translate


def padded_gather(x, dy, dx):
    """The translation as `apply_finetune` did it before issue 23 (verbatim but for the name)."""
    n, _, h, w = x.shape
    dy, dx = dy.to(x.device), dx.to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + dy[:, None]          # (n, h) source rows
    cols = torch.arange(w, device=x.device)[None, :] + dx[:, None]          # (n, w) source cols
    pad = F.pad(x, (1, 1, 1, 1))                                             # out of range -> a zero
    rows, cols = rows.clamp(-1, h) + 1, cols.clamp(-1, w) + 1
    b = torch.arange(n, device=x.device)[:, None, None]
    out = pad.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]    # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def gather_apply_finetune(x, d):
    """`apply_finetune` before issue 23: its colour ops (unchanged: `apply_finetune` with zero
    shifts, a translation that copies), then the translation by `padded_gather`."""
    zero = torch.zeros_like(d["dy"])
    return padded_gather(apply_finetune(x, {**d, "dy": zero, "dx": zero}), d["dy"], d["dx"])


def _same_bits(a, b):
    """Equal values bit for bit (the sign of a zero included), shape, dtype and strides."""
    assert a.shape == b.shape and a.dtype == b.dtype and a.stride() == b.stride()
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
    assert torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))


def _batch(n, h, w, seed, channels_last=False, dtype=torch.float32):
    x = torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("n,h,w", [(15, 128, 128), (1, 128, 128), (4, 16, 24), (3, 9, 5), (2, 1, 1)])
def test_slice_translation_is_bit_identical_to_the_padded_gather(n, h, w):
    """Every shift either function can get, zero, the largest DiffAugment draws (H/8) and more
    than the image (then all zeros), per image, in both memory layouts and precisions."""
    for seed in range(8 if h * w > 4096 else 40):
        g = torch.Generator().manual_seed(seed)
        sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
        dy = torch.randint(-sy, sy + 1, (n,), generator=g)
        dx = torch.randint(-sx, sx + 1, (n,), generator=g)
        if seed % 4 == 1:      # the extremes: no shift, the largest draws, beyond the image
            dy = torch.tensor([(0, sy, -sy, h, -h - 3)[(i + seed) % 5] for i in range(n)])
            dx = torch.tensor([(0, -sx, sx, -w - 1, w + 2)[(i + 2 * seed) % 5] for i in range(n)])
        x = _batch(n, h, w, seed, channels_last=seed % 2 == 0, dtype=torch.float64 if seed % 3 == 0 else torch.float32)
        _same_bits(translate(x, dy, dx), padded_gather(x, dy, dx))


def test_negative_zeros_and_non_finite_values_are_copied_as_they_are():
    x = torch.tensor([-0.0, float("nan"), float("inf"), -float("inf"), 1.0, -2.5]).repeat(8)[:48]
    x = x.view(1, 3, 4, 4)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            a = translate(x, torch.tensor([dy]), torch.tensor([dx]))
            _same_bits(a, padded_gather(x, torch.tensor([dy]), torch.tensor([dx])))


def test_finetune_augmentation_is_bit_identical_to_the_former_one_for_the_same_draws():
    """The whole 'finetune' augmentation: the same random numbers taken in the same order (the
    translation takes none), the same output bits; over many seeds so flips, unaugmented batches
    and every shift occur."""
    for seed in range(60):
        n, h, w = (15, 128, 128) if seed % 10 == 0 else (1 + seed % 5, 20, 28)
        x = _batch(n, h, w, 1000 + seed, channels_last=seed % 2 == 1)
        g_new, g_old = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        new = augment_batch(x, "finetune", g_new)
        d = finetune_draws(n, h, w, g_old)
        old = x if d is None else gather_apply_finetune(x, d)
        assert (new is x) == (old is x)
        _same_bits(new, old)
        assert torch.equal(g_new.get_state(), g_old.get_state())     # the same draws consumed
        if d is not None:
            _same_bits(apply_finetune(x, d), old)


def test_the_benchmark_times_the_same_gather():
    """`make bench` times `translate` against its own copy of the gather: that copy is this one."""
    from tinytrain_core.bench import _padded_gather
    x = _batch(6, 32, 40, 7, channels_last=True)
    dy, dx = torch.tensor([0, 4, -4, 33, -2, 1]), torch.tensor([5, -5, 0, 1, -41, 2])
    _same_bits(_padded_gather(x, dy, dx), padded_gather(x, dy, dx))
    _same_bits(translate(x, dy, dx), padded_gather(x, dy, dx))
