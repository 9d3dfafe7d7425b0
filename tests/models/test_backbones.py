"""Backbone layouts against the reference facts (coclr §2.1, severe §3, vicc_vcp_pcl §3.7).

Full-width models are built on the ``meta`` device: shapes, keys and parameter counts are exact
there and nothing is allocated or computed. Numerical checks use tiny widths on CPU.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from vidssl.errors import UserError
from vidssl.models import BACKBONE_NAMES, build_backbone
from vidssl.models.backbones import S3D_BLOCK_ALIASES, s3d_alias_to_canonical
from vidssl.models.backbones.resnet3d import BasicBlock, conv2plus1d, r2plus1d_mid_channels
from vidssl.models.backbones.s3d import SelfGating
from vidssl.models.backbones.vcop import FullConv, ResBlock, separable_mid_channels


def meta_backbone(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return build_backbone(name, **kwargs)


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_forward(model: nn.Module, frames: int, size: int, batch: int = 1) -> torch.Tensor:
    clips = torch.empty(batch, model.in_channels, frames, size, size, device="meta")
    return model.forward_map(clips)


# ----------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(
    ("name", "num_classes", "expected"),
    [
        ("s3d", None, 7_910_048),  # coclr §2.1
        ("r2plus1d_18", 400, 31_505_325),  # severe §3
        ("r3d_18", 400, 33_371_472),  # torchvision r3d_18 with its 400-way fc
    ],
)
def test_reference_parameter_counts(name, num_classes, expected):
    assert n_params(meta_backbone(name, num_classes=num_classes)) == expected


def test_r3d_10_parameter_count_matches_hand_count():
    # stem 3→64 (3,7,7) + BN, then per stage: two 3³ convs + 2 BNs, plus a 1×1×1 shortcut + BN.
    expected = 3 * 64 * 3 * 49 + 2 * 64
    expected += 2 * 64 * 64 * 27 + 2 * 2 * 64
    for c_in, c_out in ((64, 128), (128, 256), (256, 512)):
        expected += c_in * c_out * 27 + c_out * c_out * 27 + c_in * c_out + 3 * 2 * c_out
    assert expected == 14_361_792  # "about 14.36 M" (vicc_vcp_pcl §3.7)
    assert n_params(meta_backbone("r3d_10")) == expected


def test_c3d_parameter_count_matches_hand_count():
    widths = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    expected = sum(a * b * 27 + b + 2 * b for a, b in itertools.pairwise(widths))
    assert n_params(meta_backbone("c3d")) == expected
    assert n_params(meta_backbone("c3d", num_classes=101)) == expected + 512 * 101 + 101


# ------------------------------------------------------------------------------ key layouts


def test_r2plus1d_18_documented_keys_and_entry_count():
    layout = shapes(meta_backbone("r2plus1d_18", num_classes=400))
    assert len(layout) == 224  # severe §3, incl. num_batches_tracked and fc
    documented = {
        "stem.0.weight": (45, 3, 1, 7, 7),
        "stem.1.running_var": (45,),
        "stem.3.weight": (64, 45, 3, 1, 1),
        "stem.4.weight": (64,),
        "layer1.0.conv1.0.0.weight": (144, 64, 1, 3, 3),
        "layer1.0.conv1.0.1.running_mean": (144,),
        "layer1.0.conv1.0.3.weight": (64, 144, 3, 1, 1),
        "layer1.0.conv1.1.bias": (64,),
        "layer1.0.conv2.0.0.weight": (144, 64, 1, 3, 3),
        "layer1.0.conv2.0.1.weight": (144,),
        "layer1.0.conv2.0.3.weight": (64, 144, 3, 1, 1),
        "layer1.0.conv2.1.num_batches_tracked": (),
        "layer2.0.conv1.0.0.weight": (230, 64, 1, 3, 3),
        "layer2.0.conv1.0.3.weight": (128, 230, 3, 1, 1),
        "layer2.0.conv2.0.0.weight": (230, 128, 1, 3, 3),  # not 288
        "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1),
        "layer2.0.downsample.1.running_mean": (128,),
        "layer4.0.conv1.0.0.weight": (921, 256, 1, 3, 3),
        "layer4.1.conv1.0.0.weight": (1152, 512, 1, 3, 3),
        "fc.weight": (400, 512),
        "fc.bias": (400,),
    }
    for key, shape in documented.items():
        assert layout[key] == shape, key
    mids = {
        f"layer{s}.{b}": layout[f"layer{s}.{b}.conv2.0.0.weight"][0]
        for s in (1, 2, 3, 4)
        for b in (0, 1)
    }
    assert mids == {
        "layer1.0": 144, "layer1.1": 144, "layer2.0": 230, "layer2.1": 288,
        "layer3.0": 460, "layer3.1": 576, "layer4.0": 921, "layer4.1": 1152,
    }  # fmt: skip
    assert not any(key.startswith("layer1.0.downsample") for key in layout)


def test_r3d_18_layout():
    layout = shapes(meta_backbone("r3d_18"))
    assert layout["stem.0.weight"] == (64, 3, 3, 7, 7)
    assert layout["layer1.0.conv1.0.weight"] == (64, 64, 3, 3, 3)
    assert layout["layer3.0.downsample.0.weight"] == (256, 128, 1, 1, 1)
    assert layout["layer4.1.conv2.1.running_var"] == (512,)
    assert "fc.weight" not in layout
    assert len(layout) == 120  # 20 convs + 20 BNs × 5 entries


def test_s3d_documented_keys_no_aliases():
    layout = shapes(meta_backbone("s3d"))
    assert len(layout) == 924 // 2  # coclr §2.1: 924 keys = 462 tensors × 2 aliases
    assert layout["Conv_1a.conv1.weight"] == (64, 3, 1, 7, 7)
    assert layout["Conv_1a.conv2.weight"] == (64, 64, 7, 1, 1)
    assert layout["Conv_2b.conv.weight"] == (64, 64, 1, 1, 1)
    assert layout["Conv_2c.bn2.running_var"] == (192,)
    assert layout["Mixed_3b.branch1.1.conv1.weight"] == (128, 96, 1, 3, 3)
    assert layout["Mixed_3b.branch3.1.conv.weight"] == (32, 192, 1, 1, 1)
    assert layout["Mixed_5c.branch0.0.bn.running_mean"] == (384,)
    assert layout["Mixed_5c.branch2.1.conv2.weight"] == (128, 128, 3, 1, 1)
    assert not any(key.startswith("block") for key in layout)
    assert not any("gating" in key for key in layout)


def test_s3dg_adds_one_gating_fc_per_branch():
    plain, gated = shapes(meta_backbone("s3d")), shapes(meta_backbone("s3dg"))
    extra = set(gated) - set(plain)
    assert len(extra) == 9 * 4 * 2  # 9 Mixed blocks × 4 branches × (weight, bias)
    assert gated["Mixed_5c.gating_b0.fc.weight"] == (384, 384)
    assert gated["Mixed_4f.gating_b3.fc.bias"] == (128,)


def test_s3d_aliases_map_coclr_doubled_state_dict_onto_ours():
    ours = shapes(meta_backbone("s3d"))
    canonical_to_alias = {v: k for k, v in S3D_BLOCK_ALIASES.items()}
    coclr = dict(ours)  # CoCLR's state dict holds every tensor under both names
    for key, shape in ours.items():
        prefix, rest = key.split(".", 1)
        coclr[f"{canonical_to_alias[prefix]}.{rest}"] = shape
    assert len(coclr) == 924
    mapped: dict[str, tuple[int, ...]] = {}
    for key, shape in coclr.items():
        mapped.setdefault(s3d_alias_to_canonical(key), shape)
    assert mapped == ours
    assert s3d_alias_to_canonical("block4.5.branch1.1.conv2.weight") == (
        "Mixed_4f.branch1.1.conv2.weight"
    )
    assert s3d_alias_to_canonical("block2.1.conv.weight") == "Conv_2b.conv.weight"
    assert s3d_alias_to_canonical("Mixed_3b.branch0.0.conv.weight") == (
        "Mixed_3b.branch0.0.conv.weight"
    )


def test_vcop_r3d_10_and_r21d_10_layouts():
    r3d = shapes(meta_backbone("r3d_10", num_classes=101))
    assert r3d["conv1.temporal_spatial_conv.weight"] == (64, 3, 3, 7, 7)
    assert r3d["bn1.running_mean"] == (64,)
    assert r3d["conv2.block1.conv1.temporal_spatial_conv.weight"] == (64, 64, 3, 3, 3)
    assert r3d["conv3.block1.downsampleconv.temporal_spatial_conv.weight"] == (128, 64, 1, 1, 1)
    assert r3d["conv5.block1.downsamplebn.weight"] == (512,)
    assert r3d["conv5.block1.bn2.num_batches_tracked"] == ()
    assert r3d["linear.weight"] == (101, 512)
    assert not any(key.startswith("conv2.block1.downsample") for key in r3d)

    r21d = shapes(meta_backbone("r21d_10"))
    assert r21d["conv1.spatial_conv.weight"] == (83, 3, 1, 7, 7)  # ⌊3·49·3·64 / (49·3+3·64)⌋
    assert r21d["conv1.bn.running_var"] == (83,)
    assert r21d["conv1.temporal_conv.weight"] == (64, 83, 3, 1, 1)
    # mid is computed per conv (VCOP), so conv2 of conv3.block1 has 288, not torchvision's 230
    assert r21d["conv3.block1.conv1.spatial_conv.weight"] == (230, 64, 1, 3, 3)
    assert r21d["conv3.block1.conv2.spatial_conv.weight"] == (288, 128, 1, 3, 3)
    assert r21d["conv3.block1.downsampleconv.spatial_conv.weight"] == (42, 64, 1, 1, 1)


def test_c3d_layout_has_biases_and_bn():
    layout = shapes(meta_backbone("c3d"))
    assert layout["conv1.weight"] == (64, 3, 3, 3, 3)
    assert layout["conv1.bias"] == (64,)
    assert layout["conv3b.weight"] == (256, 256, 3, 3, 3)
    assert layout["bn5b.running_mean"] == (512,)
    assert [k.split(".")[0] for k in layout if k.endswith(".bias") and k.startswith("conv")] == [
        "conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b",
    ]  # fmt: skip


def test_mid_channel_formulas():
    assert r2plus1d_mid_channels(64, 128) == 230
    assert r2plus1d_mid_channels(256, 512) == 921
    assert separable_mid_channels((3, 7, 7), 2, 64) == 64  # ⌊18816 / 290⌋, 2-channel flow stem
    assert separable_mid_channels((1, 1, 1), 256, 512) == 170


# ------------------------------------------------------------------------ outputs and strides


@pytest.mark.parametrize(
    ("name", "frames", "size", "expected"),
    [
        ("s3d", 32, 128, (1024, 4, 4, 4)),  # coclr §2.1
        ("s3d", 32, 224, (1024, 4, 7, 7)),
        ("s3d", 8, 128, (1024, 1, 4, 4)),
        ("s3dg", 32, 128, (1024, 4, 4, 4)),
        ("r2plus1d_18", 32, 112, (512, 4, 7, 7)),  # severe §3
        ("r3d_18", 16, 112, (512, 2, 7, 7)),
        ("r3d_10", 16, 112, (512, 2, 7, 7)),  # vicc_vcp_pcl §3.7
        ("r21d_10", 16, 112, (512, 2, 7, 7)),
        ("c3d", 16, 112, (512, 2, 7, 7)),
    ],
)
def test_feature_map_sizes(name, frames, size, expected):
    model = meta_backbone(name)
    assert tuple(meta_forward(model, frames, size, batch=2).shape) == (2, *expected)
    clips = torch.empty(2, 3, frames, size, size, device="meta")
    assert tuple(model(clips).shape) == (2, model.feature_dim)


@pytest.mark.parametrize("name", ["r3d_10", "r21d_10", "c3d"])
def test_vcop_retrieval_feature_is_9216(name):
    model = meta_backbone(name)
    feature = model.forward_retrieval(torch.empty(3, 3, 16, 112, 112, device="meta"))
    assert tuple(feature.shape) == (3, 512 * 2 * 3 * 3) == (3, 9216)


def test_retrieval_feature_values_are_max_pooled_conv5():
    torch.manual_seed(0)
    model = build_backbone("r3d_10", width_mult=0.0625).eval()
    clips = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        fmap = model.forward_map(clips)  # 1×32×1×4×4
        feature = model.forward_retrieval(clips)
    assert tuple(fmap.shape) == (1, 32, 1, 4, 4)
    manual = fmap.reshape(1, 32, 1, 2, 2, 2, 2).amax(dim=(4, 6)).flatten(1)
    assert torch.equal(feature, manual)


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_logits_and_feature_dim(name):
    model = meta_backbone(name, num_classes=7)
    clips = torch.empty(2, 3, 16, 112, 112, device="meta")
    assert tuple(model(clips).shape) == (2, 7)
    assert model.feature_dim == (1024 if name.startswith("s3d") else 512)
    assert model.classifier is not None and model.classifier.in_features == model.feature_dim


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_pooled_features_are_the_mean_of_the_map_on_cpu(name):
    torch.manual_seed(0)
    model = build_backbone(name, width_mult=0.0625, in_channels=2).eval()
    clips = torch.randn(2, 2, 8, 32, 32)
    with torch.no_grad():
        fmap, pooled = model.forward_map(clips), model(clips)
    assert fmap.shape[:2] == (2, model.feature_dim)
    assert torch.allclose(pooled, fmap.mean(dim=(2, 3, 4)), atol=1e-6)
    assert torch.isfinite(pooled).all()


# ---------------------------------------------------------------- width_mult and in_channels


def test_width_mult_scales_every_width_keeping_the_branches():
    s3d = meta_backbone("s3d", width_mult=0.25)
    layout = shapes(s3d)
    assert layout["Conv_1a.conv1.weight"] == (16, 3, 1, 7, 7)
    assert layout["Mixed_3b.branch2.0.conv.weight"] == (4, 48, 1, 1, 1)  # 16·0.25, input 192·0.25
    assert s3d.feature_dim == 96 + 96 + 32 + 32  # Mixed_5c branches 384, 384, 128, 128 × 0.25
    assert set(layout) == set(shapes(meta_backbone("s3d")))

    r21d = shapes(meta_backbone("r2plus1d_18", width_mult=0.5))
    assert r21d["stem.0.weight"] == (23, 3, 1, 7, 7)  # 45·0.5 = 22.5 rounds half up
    assert r21d["layer2.0.conv1.0.0.weight"] == (115, 32, 1, 3, 3)  # 32·64·27 // (288+192)
    assert r21d["layer4.1.conv2.1.weight"] == (256,)


def test_tiny_width_keeps_at_least_one_channel_per_branch():
    model = build_backbone("s3d", width_mult=1e-3)
    assert model.feature_dim == 4
    assert all(p.shape[0] == 1 for n, p in model.named_parameters() if n.endswith("conv.weight"))
    with torch.no_grad():
        assert tuple(model.eval()(torch.randn(1, 3, 8, 32, 32)).shape) == (1, 4)


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        ("s3d", "Conv_1a.conv1.weight", (64, 2, 1, 7, 7)),
        ("r2plus1d_18", "stem.0.weight", (45, 2, 1, 7, 7)),
        ("r3d_18", "stem.0.weight", (64, 2, 3, 7, 7)),
        ("r3d_10", "conv1.temporal_spatial_conv.weight", (64, 2, 3, 7, 7)),
        ("r21d_10", "conv1.spatial_conv.weight", (64, 2, 1, 7, 7)),
        ("c3d", "conv1.weight", (64, 2, 3, 3, 3)),
    ],
)
def test_two_channel_flow_input(name, key, expected):
    assert shapes(meta_backbone(name, in_channels=2))[key] == expected


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_config_rebuilds_the_same_backbone(name):
    model = meta_backbone(name, in_channels=2, width_mult=0.5, num_classes=3)
    config = model.config()
    assert config == {
        "name": name, "in_channels": 2, "width_mult": 0.5, "num_classes": 3,
        "feature_dim": model.feature_dim,
    }  # fmt: skip
    rebuilt = meta_backbone(**{k: v for k, v in config.items() if k != "feature_dim"})
    assert shapes(rebuilt) == shapes(model)


# ------------------------------------------------------------------------------ initialisation


def test_initialisation_follows_the_references():
    torch.manual_seed(0)
    s3d = build_backbone("s3d", width_mult=0.5)
    weight = s3d.Mixed_4f.branch1[1].conv1.weight  # N(0, 0.01)
    assert abs(weight.std().item() - 0.01) < 0.0005
    assert torch.equal(s3d.Conv_2c.bn2.weight, torch.ones(96))

    r3d = build_backbone("r3d_18", width_mult=0.5, num_classes=10)
    conv = r3d.layer4[0].conv1[0].weight  # kaiming fan_out: std = sqrt(2 / (256·27))
    assert abs(conv.std().item() - math.sqrt(2 / (256 * 27))) < 0.0005
    assert abs(r3d.fc.weight.std().item() - 0.01) < 0.002
    assert torch.equal(r3d.fc.bias, torch.zeros(10))


# --------------------------------------------------------------------------- block semantics


def test_identity_blocks_reduce_to_relu_when_convs_are_zero():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 6, 6)
    torch_block = BasicBlock(8, 8, conv2plus1d).eval()
    vcop_block = ResBlock(8, 8, FullConv, downsample=False).eval()
    for block in (torch_block, vcop_block):
        for module in block.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.zeros_(module.weight)
        with torch.no_grad():
            assert torch.allclose(block(x), torch.relu(x), atol=1e-6)


def test_self_gating_with_zero_fc_halves_the_input():
    gate = SelfGating(4)
    nn.init.zeros_(gate.fc.weight)
    nn.init.zeros_(gate.fc.bias)
    x = torch.randn(2, 4, 3, 5, 5)
    assert torch.allclose(gate(x), 0.5 * x)


# ------------------------------------------------------------------------------------- errors


def test_unknown_name_lists_valid_names():
    with pytest.raises(UserError) as error:
        build_backbone("resnet50")
    message = str(error.value)
    assert "'resnet50'" in message and "\n" not in message
    for name in BACKBONE_NAMES:
        assert name in message


@pytest.mark.parametrize("width_mult", [0, -0.5, float("nan"), float("inf"), "1", True, None])
def test_bad_width_mult(width_mult):
    with pytest.raises(UserError, match="width_mult"):
        build_backbone("r3d_10", width_mult=width_mult)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"in_channels": 0}, "in_channels"), ({"in_channels": 2.0}, "in_channels"),
     ({"num_classes": 0}, "num_classes"), ({"num_classes": True}, "num_classes")],
)  # fmt: skip
def test_bad_integer_arguments(kwargs, field):
    with pytest.raises(UserError, match=field):
        build_backbone("c3d", **kwargs)
