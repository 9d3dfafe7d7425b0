"""`build_pretrain_dataset` from configs, and worker-count independence through the loader."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tests.conftest import frame_pattern
from tests.data.dataset_helpers import tiny_synth, write_frame_folder

from vidssl.data.dataset_builder import build_pretrain_dataset, build_view_policy
from vidssl.data.transforms.presets import CoclrViewPolicy, PerClipViews
from vidssl.errors import ConfigError, DataError
from vidssl.methods.registry import load_config
from vidssl.train.engine import ReportSkippedVideos
from vidssl.train.loader import build_train_loader

# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_dataset_builder")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"), corrupt=1)


def _cfg(root, *overrides):
    return load_config("infonce/tiny", [f"data.root={root}", *overrides])


def test_builds_ucf101_split_with_groups_and_labels(synth):
    data = build_pretrain_dataset(_cfg(synth))
    assert len(data) == 7 and isinstance(data.views, CoclrViewPolicy)
    names = [str(p) for p in data.table.paths]
    up = names.index("MoveUp/v_MoveUp_g02_c01.avi")
    down = names.index("MoveDown/v_MoveDown_g02_c01.avi")
    np.random.seed(0)
    item = data[up]
    assert [v.shape for v in item["views"]] == [(3, 8, 32, 32)] * 2
    # classInd ids are 1-based, ours 0-based; UCF101 group = label·100 + gXX
    assert (item["label"], item["group"], item["video"]) == (0, 2, names[up])
    assert (data.label_of(down), data.group_of(down)) == (1, 102)


@pytest.mark.parametrize(
    ("augmentation", "views", "policy"),
    [("coclr", 2, CoclrViewPolicy), ("coclr", 3, PerClipViews), ("base", 2, PerClipViews)],
)
def test_view_policy_per_augmentation(augmentation, views, policy):
    made = build_view_policy(augmentation, views, 16)
    assert type(made) is policy
    if policy is PerClipViews:
        assert (made.n_clips, made.p_base) == (views, {"coclr": 0.3, "base": 1.0}[augmentation])


def test_unknown_augmentation_is_a_config_error(synth):
    with pytest.raises(ConfigError, match=r"data\.augmentation"):
        _cfg(synth, "data.augmentation=strong")


def test_missing_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_pretrain_dataset(_cfg(tmp_path / "nowhere"))


def test_two_stream_when_flow_media_is_set(synth, tmp_path):
    data = build_pretrain_dataset(_cfg(synth))
    keep = [str(p)[: -len(".avi")] for p in data.table.paths[:3]]  # flow for 3 videos only
    for name in keep:
        write_frame_folder(tmp_path / "flow" / name, frame_pattern(10, 32, 42), prefix="flow")
    two = build_pretrain_dataset(_cfg(synth, f"data.flow_media={tmp_path / 'flow'}"))
    assert len(two) == 3 and two.flow_table is not None
    assert [str(p)[:-4] for p in two.table.paths] == keep
    np.random.seed(1)
    item = two[0]
    assert [v.shape for v in item["flow_views"]] == [(3, 8, 32, 32)] * 2
    assert int(item["clips"][:, 1].max()) <= 10  # clips on min(n_rgb, n_flow = 10)


def test_residual_turns_the_rgb_views_into_frame_differences(synth, tmp_path):
    for name in [str(p)[: -len(".avi")] for p in build_pretrain_dataset(_cfg(synth)).table.paths]:
        write_frame_folder(tmp_path / "flow" / name, frame_pattern(10, 32, 42), prefix="flow")
    flow = f"data.flow_media={tmp_path / 'flow'}"
    plain = build_pretrain_dataset(_cfg(synth, flow))
    residual = build_pretrain_dataset(_cfg(synth, flow, "data.residual=pcl"))
    np.random.seed(3)
    a = plain[2]
    np.random.seed(3)
    b = residual[2]
    for view, fed in zip(a["views"], b["views"], strict=True):
        assert torch.allclose(fed[:, 1:], view[:, :-1] - view[:, 1:])  # previous − current
        assert torch.allclose(fed[:, 0], view[:, -1] - view[:, 0])
    for view, fed in zip(a["flow_views"], b["flow_views"], strict=True):
        assert torch.equal(view, fed)  # flow clips are left alone


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.augment_on=device"], "data.augment_on"),
        (["data.modality=flow"], "data.residual"),
        (["data.residual=diff"], "data.residual"),
    ],
)
def test_residual_needs_rgb_clips_on_the_cpu_path(synth, overrides, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(synth, "data.residual=pcl", *overrides)


def test_trained_residual_is_recorded_for_rgb_encoders_only(synth):
    from vidssl.train.pretraining import trained_residual

    assert trained_residual(_cfg(synth, "data.residual=vcp")) == "vcp"
    assert trained_residual(_cfg(synth)) is None
    two_stream_flow = _cfg(synth, "data.residual=pcl", "data.modality=flow", "data.flow_media=f")
    assert trained_residual(two_stream_flow) is None  # CoCLR's reverse stage trains the flow side


def test_same_seed_same_batches_with_0_or_2_workers(synth):
    batches = {}
    for workers in (0, 2):
        cfg = _cfg(synth, f"data.workers={workers}", "data.batch_size=2")
        data = build_pretrain_dataset(cfg)
        loader = build_train_loader(data, cfg)
        batches[workers] = list(loader)
        assert data.failures() == 1  # the corrupt video, replaced and counted once
        assert data.failed_videos() == ["MoveUp/v_MoveUp_g02_c04.avi"]
    assert len(batches[0]) == 3
    for a, b in zip(batches[0], batches[2], strict=True):
        assert a["video"] == b["video"] and torch.equal(a["index"], b["index"])
        assert all(torch.equal(x, y) for x, y in zip(a["views"], b["views"], strict=True))
        assert "MoveUp/v_MoveUp_g02_c04.avi" not in a["video"]


def test_epoch_end_report_names_the_skipped_videos(synth, caplog):
    data = build_pretrain_dataset(_cfg(synth))
    caplog.set_level(logging.WARNING, logger="vidssl.train.engine")
    report = ReportSkippedVideos(data)
    report.on_train_epoch_end(None)
    assert caplog.records == []  # nothing skipped yet: silent
    for index in range(len(data)):
        data[index]
    report.on_train_epoch_end(None)
    assert [r.getMessage() for r in caplog.records if r.name == "vidssl.train.engine"] == [
        "skipped 1 unreadable videos: MoveUp/v_MoveUp_g02_c04.avi"
    ]
