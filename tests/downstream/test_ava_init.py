"""Strict initialisation of the AVA detector from each of the 12 initialisations (tiny width).

Every checkpoint is written in its method's exact format by the builders of
``tests/models/test_checkpoints.py`` (the same ones the Charades init tests use); the AVA module
must hold every backbone tensor unchanged, report exactly the non-backbone keys as ignored, and
its head must see the source backbone's feature map.
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

from vidssl.downstream.ava.task import AvaModule, load_ava_config
from vidssl.errors import CheckpointError
from vidssl.methods.registry import build_method

WIDTH = 0.0625  # the tiny preset's width
FILE_INITS = (
    "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet", "avid_cma",
    "ctp", "tclr", "gdt",
)  # fmt: skip
BOXES = torch.tensor([[0, 1.0, 2.0, 20.0, 30.0], [1, 0.0, 0.0, 31.0, 31.0], [1, 8, 4, 12, 9]])


def _module(init: str, checkpoint=None) -> AvaModule:
    ckpt = f"method.checkpoint={checkpoint}" if checkpoint else "method.checkpoint=null"
    module = build_method(load_ava_config("tiny", [ckpt], init=init))
    assert isinstance(module, AvaModule)
    return module


def _assert_head_sees(module: AvaModule, source: torch.nn.Module) -> None:
    module.eval()
    clips = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = module(clips, BOXES)
        expected = module.head(source.eval().forward_map(clips), BOXES)
    assert logits.shape == (3, 80)
    assert torch.allclose(logits, expected, atol=1e-5)


@pytest.mark.parametrize("init", FILE_INITS)
def test_every_backbone_tensor_arrives_from_the_methods_own_format(tmp_path, init):
    _, arch, build = CASES[init]
    source = randomized_backbone(arch, width_mult=WIDTH, seed=5)
    trunk = trunk_state(source)
    checkpoint, extras = build(trunk, source.feature_dim)
    module = _module(init, save(tmp_path, f"{init}.pth", checkpoint))

    assert_state_equal(module.backbone, trunk)
    report = module.load_report
    assert (report.method, report.arch) == (init, arch)
    assert sorted(report.ignored) == sorted(extras)
    assert len(report.loaded) == len(trunk)
    assert module.cfg.model.backbone == arch  # tclr gets its own backbone under --preset tiny
    _assert_head_sees(module, source)


def test_scratch_loads_nothing_and_keeps_its_own_initialisation():
    module = _module("scratch")
    assert module.load_report.path is None and module.load_report.loaded == {}
    bn = module.backbone.layer1[0].conv1[1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert not hasattr(module, "classifier")  # the RoI head replaces the pooled classifier
    assert module.head.projection.weight.shape == (80, module.backbone.feature_dim)


def test_a_vidssl_exported_encoder_is_an_init(tmp_path):
    from vidssl.models.checkpoints import export_encoder

    source = randomized_backbone("r2plus1d_18", width_mult=WIDTH, seed=9)
    export_encoder(source, tmp_path / "encoder")
    module = _module("vidssl", tmp_path / "encoder")
    assert_state_equal(module.backbone, trunk_state(source))
    assert (module.load_report.method, len(module.load_report.loaded)) == ("vidssl", 222)
    _assert_head_sees(module, source)


def test_a_file_of_another_width_is_refused(tmp_path):
    _, arch, build = CASES["moco"]
    source = randomized_backbone(arch, width_mult=0.125, seed=5)
    path = save(tmp_path, "moco.pth", build(trunk_state(source), source.feature_dim)[0])
    with pytest.raises(CheckpointError):
        _module("moco", path)
