"""Architecture inference from keys/shapes, the TCLR layer-4 variant, and the key-map helpers."""

from __future__ import annotations

import pytest
import torch
from tests.models.test_checkpoints_fixtures import (
    assert_state_equal,
    randomized_backbone,
    save,
    trunk_state,
)

from vidssl.errors import CheckpointError
from vidssl.models import build_backbone
from vidssl.models.checkpoints import load_foreign
from vidssl.models.checkpoints.adapters import ctp_rename, stage_index_to_name
from vidssl.models.checkpoints.arch import (
    ARCH_NAMES,
    _simplest_between,
    apply_tclr_layer4,
    build_encoder_backbone,
    guess_architecture,
    guess_in_channels,
    guess_width_mult,
)


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize(
    ("width_mult", "in_channels"), [(0.125, 3), (0.3, 2), (0.0625, 3), (0.07, 1)]
)
def test_architecture_channels_and_width_are_inferred(arch, width_mult, in_channels):
    state = trunk_state(
        build_encoder_backbone(arch, width_mult=width_mult, in_channels=in_channels)
    )
    assert guess_architecture(state) == arch
    assert guess_in_channels(arch, state) == in_channels
    width = guess_width_mult(arch, state, in_channels)
    rebuilt = build_encoder_backbone(arch, width_mult=width, in_channels=in_channels)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in state.items()
    }
    if width_mult != 0.07:  # 0.07 shares its widths with simpler values, which win
        assert width == width_mult


def test_full_width_is_inferred_exactly():
    with torch.device("meta"):
        state = build_backbone("r2plus1d_18").state_dict()
    assert guess_width_mult("r2plus1d_18", state) == 1.0


@pytest.mark.parametrize("arch", ["s3d", "r2plus1d_18_tclr", "r21d_10"])
def test_loading_infers_everything_from_a_raw_state_dict(tmp_path, arch):
    source = randomized_backbone(arch, width_mult=0.2, in_channels=2)
    trunk = trunk_state(source)
    model = load_foreign(save(tmp_path, "w.pth", trunk), "supervised")
    assert_state_equal(model, trunk)
    report = model.load_report
    assert (report.arch, report.in_channels, report.width_mult) == (arch, 2, 0.2)


def test_width_candidates_prefer_one_then_short_decimals():
    assert _simplest_between(0.1236, 0.1259) == [0.125, pytest.approx(0.12475)]
    assert _simplest_between(0.123, 0.1259) == [0.125, pytest.approx(0.12445)]  # 1/8, not 0.124
    assert _simplest_between(0.9, 1.2)[0] == 1.0
    assert _simplest_between(0.3000011, 0.3000012) == [pytest.approx(0.30000115)]  # 7+ digits


def test_inconsistent_widths_give_no_guess():
    state = trunk_state(build_backbone("c3d", width_mult=0.125))
    state["bn5b.weight"] = torch.zeros(300)  # 300 of 512 contradicts 8 of 64
    assert guess_width_mult("c3d", state) is None


def test_old_checkpoints_without_batchnorm_counters(tmp_path):
    trunk = trunk_state(randomized_backbone("r3d_18", width_mult=0.0625))
    old = {k: v for k, v in trunk.items() if not k.endswith("num_batches_tracked")}
    model = load_foreign(save(tmp_path, "old.pth", old), "supervised")
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in old.items())
    assert all(loaded[k] == 0 for k in trunk if k.endswith("num_batches_tracked"))


# ---------------------------------------------------------------------------------------- TCLR


def test_tclr_layer4_layout_matches_severe():
    full = apply_tclr_layer4(build_backbone("r2plus1d_18").to("meta"))
    conv = full.layer4[0].conv1[0]
    assert isinstance(conv, torch.nn.Conv3d)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (256, 512, (3, 3, 3))
    assert (conv.stride, conv.padding, conv.dilation) == ((1, 2, 2), (2, 1, 1), (2, 1, 1))
    assert conv.bias is None
    shortcut = full.layer4[0].downsample[0]
    assert (shortcut.kernel_size, shortcut.stride, shortcut.bias) == ((1, 1, 1), (1, 2, 2), None)
    keys = full.state_dict()
    assert keys["layer4.0.conv1.0.weight"].shape == (512, 256, 3, 3, 3)
    assert "layer4.0.conv1.0.0.weight" not in keys
    assert keys["layer4.0.conv2.0.0.weight"].shape == (921, 512, 1, 3, 3)  # mid from 256→512
    assert full.variant == "tclr_layer4"


def test_tclr_layer4_keeps_the_temporal_length():
    plain = build_encoder_backbone("r2plus1d_18", width_mult=0.0625).eval()
    tclr = build_encoder_backbone("r2plus1d_18_tclr", width_mult=0.0625).eval()
    clips = torch.randn(1, 3, 32, 32, 32)
    assert plain.forward_map(clips).shape[2:] == (4, 2, 2)
    assert tclr.forward_map(clips).shape[2:] == (8, 2, 2)  # "T_out=8 for 32 frames"


def test_tclr_surgery_only_for_r2plus1d():
    with pytest.raises(CheckpointError, match="needs an r2plus1d_18"):
        apply_tclr_layer4(build_backbone("r3d_18", width_mult=0.0625))


def test_plain_r2plus1d_checkpoint_read_as_tclr_stays_plain(tmp_path):
    # detection is by the keys: a TCLR-method file with the standard layer 4 loads as such
    trunk = trunk_state(randomized_backbone("r2plus1d_18"))
    checkpoint = {"state_dict": {f"module.0.{k}": v for k, v in trunk.items()}}
    model = load_foreign(save(tmp_path, "t.pth", checkpoint), "tclr")
    assert model.load_report.arch == "r2plus1d_18"
    assert_state_equal(model, trunk)


# ------------------------------------------------------------------------------------ key maps


@pytest.mark.parametrize(
    ("ctp_key", "ours"),
    [
        ("stem.conv_s.weight", "stem.0.weight"),
        ("stem.bn_s.running_var", "stem.1.running_var"),
        ("stem.conv_t.weight", "stem.3.weight"),
        ("stem.bn_t.bias", "stem.4.bias"),
        ("layer1.1.conv2.conv_s.weight", "layer1.1.conv2.0.0.weight"),
        ("layer3.0.conv1.bn_s.weight", "layer3.0.conv1.0.1.weight"),
        ("layer4.1.conv1.conv_t.weight", "layer4.1.conv1.0.3.weight"),
        ("layer2.1.bn1.num_batches_tracked", "layer2.1.conv1.1.num_batches_tracked"),
        ("layer2.1.bn2.weight", "layer2.1.conv2.1.weight"),
        ("layer2.0.downsample.conv.weight", "layer2.0.downsample.0.weight"),
        ("layer2.0.downsample_bn.running_mean", "layer2.0.downsample.1.running_mean"),
        ("stem.conv.weight", "stem.0.weight"),  # R3D stem
        ("layer1.0.conv1.conv.weight", "layer1.0.conv1.0.weight"),  # R3D conv
        ("layer1.0.mystery.weight", "layer1.0.mystery.weight"),  # left for the strict check
    ],
)
def test_ctp_rename(ctp_key, ours):
    assert ctp_rename(ctp_key) == ours


@pytest.mark.parametrize(
    ("key", "ours"),
    [
        ("0.0.weight", "stem.0.weight"),
        ("0.4.running_mean", "stem.4.running_mean"),
        ("3.1.conv2.0.3.weight", "layer3.1.conv2.0.3.weight"),
        ("conv5.block1.bn2.bias", "conv5.block1.bn2.bias"),
        ("5.weight", "5.weight"),
    ],
)
def test_stage_index_to_name(key, ours):
    assert stage_index_to_name(key) == ours
