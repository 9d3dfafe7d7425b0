"""Strict initialisation of the Charades model from each SEVERE initialisation (tiny widths).

Every checkpoint is written in its method's exact format by the builders of
``tests/models/test_checkpoints.py``; the downstream module must hold every backbone tensor
unchanged, report exactly the non-backbone keys as ignored, and run its head on the result.
"""

from __future__ import annotations

import pytest
import torch
from tests.models.test_checkpoints import CASES
from tests.models.test_checkpoints_fixtures import (
    assert_state_equal,
    randomized_backbone,
    save,
    trunk_state,
)

from vidssl.downstream.charades.presets import load_charades_config
from vidssl.errors import CheckpointError, ConfigError
from vidssl.methods.registry import build_method

FILE_INITS = (
    "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet", "avid_cma",
    "ctp", "tclr", "gdt",
)  # fmt: skip


def _config(init: str, checkpoint=None, *extra: str):
    overrides = [f"method.checkpoint={checkpoint}" if checkpoint else "method.checkpoint=null"]
    return load_charades_config("charades/tiny", [*overrides, *extra], init=init)


@pytest.mark.parametrize("init", FILE_INITS)
def test_every_backbone_tensor_arrives_from_the_methods_own_format(tmp_path, init):
    _, arch, build = CASES[init]
    source = randomized_backbone(arch, width_mult=0.125, seed=5)
    trunk = trunk_state(source)
    checkpoint, extras = build(trunk, source.feature_dim)
    path = save(tmp_path, f"{init}.pth", checkpoint)

    model = build_method(_config(init, path))

    assert_state_equal(model.backbone, trunk)
    report = model.load_report
    assert (report.method, report.arch) == (init, arch)
    assert sorted(report.ignored) == sorted(extras)
    assert len(report.loaded) == len(trunk) and report.sha256 is not None
    assert model.backbone.training  # fine-tuned in train mode
    model.eval()
    clips = torch.randn(2, 3, 8, 32, 32)
    logits = model(clips)
    assert logits.shape == (2, 157)
    assert torch.allclose(logits, model.classifier(source(clips)), atol=1e-5)


def test_tclr_keeps_its_layer4_time_resolution_under_the_global_pool(tmp_path):
    _, arch, build = CASES["tclr"]
    source = randomized_backbone(arch, width_mult=0.125, seed=5)
    plain = randomized_backbone("r2plus1d_18", width_mult=0.125, seed=5)
    clips = torch.randn(1, 3, 16, 32, 32)
    # TCLR's dilated 3D conv does not halve time in layer 4: 16 frames → 4 steps, not 2
    assert source.forward_map(clips).shape[2] == 4 and plain.forward_map(clips).shape[2] == 2
    path = save(tmp_path, "tclr.pth", build(trunk_state(source), source.feature_dim)[0])
    model = build_method(_config("tclr", path)).eval()
    assert model.backbone.forward_map(clips).shape[2] == 4
    assert model(clips).shape == (1, 157)


def test_scratch_is_the_torchvision_initialisation():
    model = build_method(_config("scratch"))
    assert model.load_report.path is None and model.load_report.loaded == {}
    bn = model.backbone.layer1[0].conv1[1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_wrong_files_and_settings_are_refused(tmp_path):
    _, arch, build = CASES["moco"]
    source = randomized_backbone(arch, width_mult=0.0625, seed=5)
    path = save(tmp_path, "moco.pth", build(trunk_state(source), source.feature_dim)[0])
    with pytest.raises(CheckpointError):  # a 1/16-width file into the 1/8-width tiny model
        build_method(_config("moco", path))
    with pytest.raises(CheckpointError):  # read as the wrong method
        build_method(_config("gdt", path, "model.width_mult=0.0625"))
    with pytest.raises(ConfigError, match="needs a checkpoint"):
        _config("moco")
    with pytest.raises(ConfigError, match="is not one of"):
        _config("byol", path)


def test_a_vidssl_exported_encoder_is_an_init(tmp_path):
    from vidssl.models.checkpoints import export_encoder

    source = randomized_backbone("r2plus1d_18", width_mult=0.125, seed=9)
    export_encoder(source, tmp_path / "encoder")
    model = build_method(_config("vidssl", tmp_path / "encoder"))
    assert_state_equal(model.backbone, trunk_state(source))
    report = model.load_report
    assert (report.method, report.arch, len(report.loaded)) == (
        "vidssl",
        "r2plus1d_18",
        222,
    )  # 224 minus fc
    other = randomized_backbone("r2plus1d_18", width_mult=0.0625)
    export_encoder(other, tmp_path / "narrow")
    with pytest.raises(CheckpointError, match="width"):
        build_method(_config("vidssl", tmp_path / "narrow"))
