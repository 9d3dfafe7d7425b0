"""The demo's method stages: which run, in which order, with which starting points and inputs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vidssl.data.dataset_builder import stream_augmentation, trained_augmentation
from vidssl.demo.run import DEFAULT, QUICK, _check_settings, demo_settings
from vidssl.demo.stages import check_methods, method_stages
from vidssl.errors import UserError
from vidssl.methods.registry import load_config


def _value(overrides, key):
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")]
    return values[-1] if values else None


def test_methods_run_in_order_with_infonce_always_first():
    assert check_methods(("pcl", "vicc")) == ("infonce", "vicc", "pcl")
    assert demo_settings(quick=True).methods == ("infonce", "coclr")
    assert demo_settings().methods == ("infonce", "coclr", "vicc", "pcl")
    with pytest.raises(UserError, match="--methods swav: expected some of infonce, coclr"):
        demo_settings(methods=("swav",))


def test_vicc_cross_stages_start_from_the_single_stream_runs(tmp_path):
    stages = method_stages(dataclasses.replace(DEFAULT, methods=("vicc",)), tmp_path)
    assert [s.key for s in stages] == [
        "vicc_single_rgb",
        "vicc_single_flow",
        "vicc_cross_rgb",
        "vicc_cross_flow",
    ]
    cross_rgb, cross_flow = stages[2].overrides, stages[3].overrides
    assert _value(cross_rgb, "method.pretrain") == (
        f"[{tmp_path / 'vicc_single_rgb'},{tmp_path / 'vicc_single_flow'}]"
    )
    assert _value(cross_flow, "method.pretrain") == (
        f"[{tmp_path / 'vicc_single_flow'},{tmp_path / 'vicc_cross_rgb'}]"
    )
    assert _value(cross_flow, "data.modality") == "flow"
    for stage in stages:
        assert stage.steps == DEFAULT.vicc_steps
        assert _value(stage.overrides, "trainer.max_steps") == str(DEFAULT.vicc_steps)
        assert _value(stage.overrides, "method.queue_size") == str(DEFAULT.queue_size)
        assert _value(stage.overrides, "optim.lr") is None  # ViCC keeps its LARC settings


def test_every_stream_of_two_stream_stages_gets_the_policy_its_encoder_was_trained_with(tmp_path):
    # Issue 20: a frozen flow encoder fed colour-jittered flow mined at chance. In every stage the
    # RGB stream gets the RGB training policy ("base") and flow gets the flow one ("null"), so
    # both the frozen stream and the trained one see what they were (or are) trained on.
    (tmp_path / "data" / "ucfTrainTestlist").mkdir(parents=True)
    assert (DEFAULT.rgb_augmentation, DEFAULT.flow_augmentation) == ("base", "null")
    two_stream = []
    for stage in method_stages(DEFAULT, tmp_path):
        if stage.key == "pcl_rgb":
            continue  # PCL augments its tuples itself (strong/weak policies, not data.augmentation)
        data = load_config(stage.preset, list(stage.overrides)).data
        keys = {"augmentation": data.augmentation, "flow_augmentation": data.flow_augmentation,
                "flow_media": data.flow_media}  # fmt: skip
        if data.flow_media:
            two_stream.append(stage.key)
            assert stream_augmentation("rgb", **keys) == "base", stage.key
            assert stream_augmentation("flow", **keys) == "null", stage.key
        expected = "null" if data.modality == "flow" else "base"
        assert trained_augmentation(modality=data.modality, **keys) == expected, stage.key
    assert two_stream == ["coclr_rgb", "coclr_flow", "vicc_cross_rgb", "vicc_cross_flow"]


def test_stage_overrides_make_valid_configs(tmp_path):
    (tmp_path / "data" / "ucfTrainTestlist").mkdir(parents=True)
    for stage in method_stages(DEFAULT, tmp_path):
        cfg = load_config(stage.preset, list(stage.overrides))  # no ConfigError
        assert cfg.model.backbone == DEFAULT.backbone
        assert cfg.trainer.run_dir == str(tmp_path / stage.key)


def test_pcl_makes_its_own_residual_clips_and_skips_validation(tmp_path):
    (stage,) = method_stages(dataclasses.replace(DEFAULT, methods=("pcl",)), tmp_path)
    assert stage.preset == "pcl/tiny" and stage.key == "pcl_rgb"
    assert _value(stage.overrides, "data.residual") is None
    assert _value(stage.overrides, "method.val_split") == '""'


def test_settings_check_ignores_methods_and_settings_newer_than_the_run(tmp_path):
    _check_settings(tmp_path, QUICK)
    saved = json.loads((tmp_path / "settings.json").read_text())
    del saved["vicc_steps"]  # a run made before ViCC joined the demo
    (tmp_path / "settings.json").write_text(json.dumps(saved))
    _check_settings(tmp_path, dataclasses.replace(QUICK, methods=("infonce", "vicc")))
    with pytest.raises(UserError, match=r"other settings \(infonce_steps\)"):
        _check_settings(tmp_path, dataclasses.replace(QUICK, infonce_steps=5))


def test_vcp_is_asked_for_and_trains_the_cloze_pretext_alone_on_its_own_residual(tmp_path):
    (tmp_path / "data" / "ucfTrainTestlist").mkdir(parents=True)
    assert "vcp" not in demo_settings().methods  # not in the default 15-minute set
    settings = demo_settings(methods=("vcp",))
    (stage,) = method_stages(settings, tmp_path)
    assert (stage.key, stage.preset, stage.steps) == ("vcp_rgb", "vcp/tiny", DEFAULT.vcp_steps)
    cfg = load_config(stage.preset, list(stage.overrides))
    assert cfg.method.name == "vcp" and cfg.method.residual == "vcp"
    assert cfg.data.residual == "none"  # the method takes the residual after the cloze op


def test_raw_rgb_input_removes_the_residual_from_every_rgb_stage(tmp_path):
    from vidssl.demo.run import pretrain_overrides

    (tmp_path / "data" / "ucfTrainTestlist").mkdir(parents=True)
    raw = demo_settings(methods=("pcl", "vcp"), rgb_input="raw")
    residual = demo_settings(methods=("pcl", "vcp"))
    assert (raw.rgb_residual, residual.rgb_residual) == ("none", "pcl")
    infonce = pretrain_overrides(raw, tmp_path / "data", "rgb", tmp_path / "infonce_rgb")
    assert _value(infonce, "data.residual") == "none"
    for settings, expected in ((raw, {"none"}), (residual, {"pcl", "vcp"})):
        found = set()
        for stage in method_stages(settings, tmp_path):
            found.add(load_config(stage.preset, list(stage.overrides)).method.residual)
        assert found == expected
    with pytest.raises(UserError, match="--rgb-input flow: expected one of residual, raw"):
        demo_settings(rgb_input="flow")
