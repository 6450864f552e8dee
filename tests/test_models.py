"""The three paper backbones: structure, MACs and parameters against the accounting oracles,
our MAC count against torch's FLOP counter, and the ImageNet weights on two real photos."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from tinytrain_core.nets import checkpoints, models
from tinytrain_core.nets.weights import WeightsMissing, find

# ../shared/reference/ACCOUNTING.md and ../shared/paper/TINYTRAIN.md §3
ORACLE = {
    "mcunet-5fps": dict(convs=42, macs=22_453_504, params=630_224, feat=160),
    "mbv2-w0.35": dict(convs=51, macs=16_646_912, params=357_448, feat=112),
    "proxyless-w0.3": dict(convs=60, macs=18_619_904, params=423_232, feat=96),
}
MIX_MACS = {"mbv2-w0.35": 17.45e6, "proxyless-w0.3": 19.21e6}


def needs_weights(name):
    try:
        find(name)
    except WeightsMissing as e:
        pytest.skip(f"{e}")


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_structure_matches_oracles(name):
    net = models.create(name, pretrained=False)
    o = ORACLE[name]
    assert len(net.convs()) == o["convs"]
    assert net.backbone.forward_macs() == o["macs"]
    assert models.param_count(net) == o["params"]
    assert net.backbone.feature_dim == o["feat"]


@pytest.mark.parametrize("name", sorted(MIX_MACS))
def test_feature_mix_variant(name):
    net = models.create(name, pretrained=False, feature_mix=True)
    assert len(net.convs()) == ORACLE[name]["convs"] + 1
    assert net.backbone.forward_macs() == pytest.approx(MIX_MACS[name], rel=1e-3)
    assert net.backbone.feature_dim == models.FEATURE_MIX[name]


def test_mcunet_has_no_feature_mix():
    net = models.create("mcunet-5fps", pretrained=False, feature_mix=True)
    assert net.backbone.forward_macs() == ORACLE["mcunet-5fps"]["macs"]


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_mac_counter_agrees_with_torch_flop_counter(name):
    net = models.create(name, pretrained=False, feature_mix=True).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net.backbone(torch.zeros(1, 3, 128, 128))
    conv_flops = fc.get_flop_counts()["Global"][torch.ops.aten.convolution]
    assert conv_flops == 2 * net.backbone.forward_macs()


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_shapes_follow_the_network(name):
    """ConvShape's in/out sizes (what the cost model reads) are what a forward pass produces."""
    net = models.create(name, pretrained=False)
    seen = []
    hooks = [u.register_forward_hook(lambda m, i, o: seen.append((i[0].shape[-1], o.shape[-1], o.shape[1])))
             for u in net.convs()]
    with torch.no_grad():
        net(torch.zeros(1, 3, 128, 128))
    for h in hooks:
        h.remove()
    assert seen == [(s.in_hw, s.out_hw, s.out_channels) for s in net.backbone.conv_shapes()]


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="mcunet-5fps, mbv2-w0.35, proxyless-w0.3"):
        models.create("resnet50")


def _photo(name):
    from skimage import data
    im = Image.fromarray(getattr(data, name)())
    w, h = im.size
    s = 146 / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = im.size
    left, top = (w - 128) // 2, (h - 128) // 2
    im = im.crop((left, top, left + 128, top + 128))
    x = torch.tensor(np.asarray(im), dtype=torch.float32).permute(2, 0, 1)[None]
    return (x - 128) / 128


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_imagenet_weights_classify_real_photos(name):
    needs_weights(name)
    net = checkpoints.create(name, pretrained=True).eval()
    with torch.no_grad():
        assert net(_photo("chelsea")).argmax().item() == 285  # Egyptian cat
        assert net(_photo("coffee")).argmax().item() == 967   # espresso
