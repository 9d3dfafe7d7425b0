"""The co-training guard warns exactly when the frozen stream is fed another augmentation."""

from __future__ import annotations

import json
import logging

import yaml

from vidssl.config.schema import DataConfig
from vidssl.data.dataset_builder import trained_augmentation
from vidssl.methods.frozen_stream import check_frozen_augmentation, recorded_augmentation


def _run(tmp_path, name, **data):
    run = tmp_path / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / "config.yaml").write_text(yaml.safe_dump({"data": data}))
    return run


def test_recorded_policy_of_runs_checkpoints_and_exports(tmp_path):
    flow_run = _run(tmp_path, "flow", augmentation="null", modality="flow")
    assert recorded_augmentation(flow_run) == "null"
    assert recorded_augmentation(flow_run / "checkpoints" / "last.ckpt") == "null"
    # a reverse two-stream stage trains flow from the flow views: their policy is recorded
    reverse = _run(
        tmp_path, "rev", augmentation="base", flow_augmentation="null", modality="flow",
        flow_media="data/flow",
    )  # fmt: skip
    assert recorded_augmentation(reverse) == "null"
    export = tmp_path / "enc"
    export.mkdir()
    (export / "encoder.json").write_text(json.dumps({"extra": {"augmentation": "coclr"}}))
    (export / "encoder.safetensors").write_bytes(b"")
    assert recorded_augmentation(export) == "coclr"
    assert recorded_augmentation(export / "encoder.safetensors") == "coclr"
    unfinished = tmp_path / "unfinished"  # a run directory without a checkpoint yet
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text(yaml.safe_dump({"data": {"augmentation": "base"}}))
    assert recorded_augmentation(unfinished) == "base"
    foreign = tmp_path / "coclr.pth.tar"
    foreign.write_bytes(b"")
    assert recorded_augmentation(foreign) is None


def test_trained_policy_follows_the_trained_stream():
    two_stream = {"augmentation": "base", "flow_augmentation": "null", "flow_media": "f"}
    assert trained_augmentation(**two_stream, modality="rgb") == "base"
    assert trained_augmentation(**two_stream, modality="flow") == "null"
    assert trained_augmentation(augmentation="base", modality="flow") == "base"  # single stream


def test_warns_exactly_when_the_policies_differ(tmp_path, caplog):
    flow_run = _run(tmp_path, "flow", augmentation="null", modality="flow")
    same_as_rgb = DataConfig(augmentation="base", flow_media="data/flow")
    per_stream = DataConfig(augmentation="base", flow_media="data/flow", flow_augmentation="null")
    with caplog.at_level(logging.WARNING, logger="vidssl.methods.frozen_stream"):
        message = check_frozen_augmentation(flow_run, same_as_rgb, "flow")
        assert check_frozen_augmentation(flow_run, per_stream, "flow") is None
    assert message == (
        f"the frozen flow encoder {flow_run} was trained with augmentation 'null' but this run "
        "feeds it 'base'; set data.flow_augmentation=null so it sees its training distribution"
    )
    assert caplog.text.count("was trained with augmentation") == 1
    rgb_run = _run(tmp_path, "rgb", augmentation="base")
    assert check_frozen_augmentation(rgb_run, per_stream, "rgb") is None  # reverse: RGB views
    assert "data.augmentation=null" in check_frozen_augmentation(
        _run(tmp_path, "rgb_null", augmentation="null"), per_stream, "rgb"
    )
    assert check_frozen_augmentation(tmp_path / "nothing.pth", same_as_rgb, "flow") is None
