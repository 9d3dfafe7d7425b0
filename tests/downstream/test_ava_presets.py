"""AVA presets: the 11 SEVERE reference configs + tiny, with the reference values."""

from __future__ import annotations

import pytest

from vidssl.config.schema import available_presets, read_config_tree
from vidssl.models.checkpoints.adapters import canonical_method

METHODS = (
    "scratch", "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet",
    "avid_cma", "ctp", "tclr", "gdt",
)  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_reference_presets_share_the_severe_body(method: str) -> None:
    tree = read_config_tree(f"downstream/ava/{method}")
    assert tree["init"] == method
    assert (tree["checkpoint"] is None) == (method == "scratch")
    if method != "scratch":
        assert canonical_method(method) == method
        assert tree["checkpoint"].startswith("checkpoints_pretraining/")
    data, model, optim, schedule = tree["data"], tree["model"], tree["optim"], tree["schedule"]
    assert (data["num_frames"], data["stride"], data["crop_size"]) == (32, 2, 112)
    assert (data["train_jitter"], data["score_threshold"], data["batch_size"]) == (
        [256, 320],
        0.9,
        32,
    )
    assert (model["roi_resolution"], model["spatial_scale"], model["aligned"]) == (7, 1 / 16, True)
    assert (model["sampling_ratio"], model["dropout"], model["num_classes"]) == (0, 0.5, 80)
    assert (optim["lr"], optim["weight_decay"], optim["momentum"]) == (0.1, 1e-7, 0.9)
    assert (schedule["warmup_epochs"], schedule["warmup_start_lr"]) == (5, 1.25e-4)
    assert (schedule["milestones"], tree["trainer"]["epochs"]) == ([10, 15], 20)
    assert tree["eval"]["val_second_stride"] == 4


def test_tiny_preset_and_overrides() -> None:
    tree = read_config_tree("downstream/ava/tiny", ["data.root=/tmp/x", "init=moco"])
    assert (tree["data"]["root"], tree["init"]) == ("/tmp/x", "moco")
    assert (tree["data"]["crop_size"], tree["model"]["width_mult"]) == (32, 0.0625)
    assert tree["model"]["aligned"] and tree["trainer"]["epochs"] == 2


def test_downstream_presets_are_not_training_presets() -> None:
    assert not any(name.startswith("downstream/") for name in available_presets())
