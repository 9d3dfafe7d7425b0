"""AVA presets: the 11 SEVERE reference configs + tiny load into `AvaConfig` with the reference
values, and the module's config checks refuse what it cannot run."""

from __future__ import annotations

import pytest

from vidssl.config.schema import available_presets
from vidssl.downstream.ava.task import AvaConfig, clip_spec, load_ava_config
from vidssl.errors import ConfigError
from vidssl.models.checkpoints.adapters import canonical_method

METHODS = (
    "scratch", "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet",
    "avid_cma", "ctp", "tclr", "gdt",
)  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_reference_presets_share_the_severe_body(method: str) -> None:
    cfg = load_ava_config(method)
    m = cfg.method
    assert isinstance(m, AvaConfig) and (m.name, m.init) == ("ava", method)
    assert (m.checkpoint is None) == (method == "scratch")
    if method != "scratch":
        assert canonical_method(method) == method
        assert m.checkpoint.startswith("checkpoints_pretraining/")
    assert cfg.model.backbone == ("r2plus1d_18_tclr" if method == "tclr" else "r2plus1d_18")
    assert cfg.trainer.run_dir == f"runs/ava/{method}"
    d, o, s = cfg.data, cfg.optim, cfg.schedule
    assert (d.seq_len, d.ds, d.img_size, d.batch_size) == (32, 2, 112, 32)
    assert ((m.jitter_min, m.jitter_max), m.score_threshold, m.flip_probability) == (
        (256, 320),
        0.9,
        0.5,
    )
    assert (m.roi_resolution, m.spatial_scale, m.aligned, m.sampling_ratio) == (7, 1 / 16, True, 0)
    assert (m.dropout, m.num_classes, m.reference_batch, m.precise_bn_batches) == (0.5, 80, 32, 0)
    assert (o.name, o.lr, o.weight_decay, o.momentum, o.nesterov) == ("sgd", 0.1, 1e-7, 0.9, True)
    assert (s.name, s.warmup_epochs, s.warmup_start_lr) == ("multistep", 5, 1.25e-4)
    assert (s.milestones, s.gamma, cfg.trainer.epochs) == ([10, 15], 0.1, 20)
    assert (m.labelmap, m.groundtruth, m.exclusions) == (
        "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
        "ava_val_v2.2.csv",
        "ava_val_excluded_timestamps_v2.2.csv",
    )


def test_tiny_preset_and_overrides() -> None:
    cfg = load_ava_config("tiny", ["data.root=/tmp/x", "method.init=moco", "method.checkpoint=m"])
    assert (cfg.data.root, cfg.method.init, cfg.method.checkpoint) == ("/tmp/x", "moco", "m")
    assert (cfg.data.img_size, cfg.model.width_mult, cfg.trainer.epochs) == (32, 0.0625, 2)
    spec = clip_spec(cfg)
    assert (spec.num_frames, spec.stride, spec.crop_size, spec.jitter) == (8, 2, 32, (48, 56))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.precise_bn_batches=2", "precise_bn_batches must be 0"),
        ("method.num_classes=60", "has 80"),
        ("method.jitter_min=60", "is not a range"),
        ("method.score_threshold=1.5", "must be in"),
        ("method.init=moco", "needs a checkpoint"),
        ("method.nope=1", "method.nope"),
    ],
)
def test_bad_settings_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_ava_config("tiny", [override])


def test_downstream_presets_are_not_training_presets() -> None:
    assert not any(name.startswith("downstream/") for name in available_presets())
