"""Map-style datasets: item layout, exact frame content, two-stream, groups, corrupt videos."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tests.conftest import frame_pattern
from tests.data.dataset_helpers import (
    SIZE,
    plain,
    table,
    write_corrupt,
    write_frame_folder,
    write_videos,
)
from torch.utils.data import DataLoader

from vidssl.data.datasets import ClassificationDataset, MultiViewDataset
from vidssl.data.sampling import MultiRandomClips, RandomClip, SlidingWindows
from vidssl.data.sources import VideoFile
from vidssl.data.transforms.compose import MultiCrop
from vidssl.data.transforms.presets import (
    CoclrViewPolicy,
    PerClipViews,
    coclr_base,
    coclr_null,
)
from vidssl.errors import DataError
from vidssl.train.loader import SeededItems


def _item(dataset, index: int, seed: int = 0):
    np.random.seed(seed)
    return dataset[index]


def test_multiview_items_hold_the_sampled_frames(tmp_path):
    names = write_videos(tmp_path, [20, 30])
    data = MultiViewDataset(
        table(tmp_path, names, groups=[7, -1], labels=[3, 4]),
        MultiRandomClips(3, 6, 1),
        PerClipViews(3, plain(), plain(), p_base=0.5),
    )
    for index in (0, 1):
        item = _item(data, index, seed=index)
        assert list(item) == ["views", "label", "index", "clip", "clips", "video", "group"]
        assert (item["label"], item["index"], item["video"]) == ([3, 4][index], index, names[index])
        assert item["group"] == [7, 8 + 1][index]  # no group: max group + 1 + index
        assert item["clips"].shape == (3, 2) and item["clips"].dtype == torch.int64
        assert item["clip"] == (int(item["clips"][:, 0].min()), int(item["clips"][:, 1].max()))
        video = VideoFile(tmp_path / names[index])
        for view, (start, end) in zip(item["views"], item["clips"].tolist(), strict=True):
            assert end - start == 6 and view.shape == (3, 6, SIZE, SIZE)
            expected = video.read(np.arange(start, end)).permute(3, 0, 1, 2).float() / 255
            assert torch.equal(view, expected)


def test_same_seed_same_item_and_coclr_views(tmp_path):
    names = write_videos(tmp_path, [24])
    data = MultiViewDataset(
        table(tmp_path, names),
        MultiRandomClips(2, 8, 2),
        CoclrViewPolicy(coclr_base(16), coclr_null(16)),
    )
    first, again, other = _item(data, 0, 5), _item(data, 0, 5), _item(data, 0, 6)
    assert [v.shape for v in first["views"]] == [(3, 8, 16, 16)] * 2
    assert all(torch.equal(a, b) for a, b in zip(first["views"], again["views"], strict=True))
    assert not torch.equal(first["views"][0], other["views"][0])
    assert first["views"][0].dtype == torch.float32


def test_device_params_for_on_device_augmentation(tmp_path):
    names = write_videos(tmp_path, [16])
    policy = CoclrViewPolicy(coclr_base(16), coclr_null(16), on_device=True)
    item = _item(MultiViewDataset(table(tmp_path, names), MultiRandomClips(2, 4), policy), 0)
    assert [v.dtype for v in item["views"]] == [torch.uint8, torch.uint8]
    assert len(item["device_params"]) == 2 and isinstance(item["device_params"][0], dict)


def test_groups_fall_back_to_the_index_without_a_catalog_group(tmp_path):
    names = write_videos(tmp_path, [10, 10, 10])
    data = MultiViewDataset(
        table(tmp_path, names), MultiRandomClips(2, 4), PerClipViews(2, plain(), plain())
    )
    assert [data.group_of(i) for i in range(3)] == [0, 1, 2]


def test_two_stream_shares_indices_and_augmentation(tmp_path):
    frames = frame_pattern(20, SIZE, SIZE)
    write_frame_folder(tmp_path / "rgb" / "c" / "v", frames)
    # "flow" = the first 12 RGB frames: identical pixels, so equal draws give equal views
    write_frame_folder(tmp_path / "flow" / "c" / "v", frames[:12], prefix="flow")
    rgb = table(tmp_path / "rgb", ["c/v"], storage="frames", n_frames=[20])
    flow = table(tmp_path / "flow", ["c/v"], storage="frames", n_frames=[12])
    data = MultiViewDataset(
        rgb,
        MultiRandomClips(2, 8),
        CoclrViewPolicy(coclr_base(16), coclr_null(16)),
        flow_table=flow,
    )
    for seed in range(6):
        item = _item(data, 0, seed)
        assert int(item["clips"][:, 1].max()) <= 12  # drawn on min(n_rgb, n_flow)
        assert len(item["flow_views"]) == 2
        for view, flow_view in zip(item["views"], item["flow_views"], strict=True):
            assert view.shape == (3, 8, 16, 16) and torch.equal(view, flow_view)


def test_misaligned_flow_table_is_rejected(tmp_path):
    rgb = table(tmp_path, ["a.avi", "b.avi"])
    flow = table(tmp_path, ["b", "a"], storage="frames")
    with pytest.raises(DataError, match="not row-aligned"):
        MultiViewDataset(rgb, MultiRandomClips(2, 4), PerClipViews(2), flow_table=flow)


def test_classification_windows_and_multicrop(tmp_path):
    names = write_videos(tmp_path, [40])
    windows = ClassificationDataset(table(tmp_path, names), SlidingWindows(16), plain())
    item = _item(windows, 0)
    assert item["clips"].tolist() == [[0, 16], [7, 23], [14, 30], [21, 37]]  # stride 16//2−1
    assert item["clip"] == (0, 37) and item["label"] == 0
    expected = VideoFile(tmp_path / names[0]).read(np.arange(21, 37))
    assert torch.equal(item["views"][3], expected.permute(3, 0, 1, 2).float() / 255)
    crops = ClassificationDataset(table(tmp_path, names), RandomClip(4), MultiCrop(16, flips=True))
    item = _item(crops, 0)
    assert len(item["views"]) == 10 and item["views"][0].shape == (3, 4, 16, 16)
    assert item["clips"].shape == (10, 2) and len(set(map(tuple, item["clips"].tolist()))) == 1


def test_classification_two_stream_same_crop(tmp_path):
    frames = frame_pattern(12, SIZE, SIZE)
    write_frame_folder(tmp_path / "rgb" / "v", frames)
    write_frame_folder(tmp_path / "flow" / "v", frames[:11], prefix="flow")
    data = ClassificationDataset(
        table(tmp_path / "rgb", ["v"], storage="frames", n_frames=[12]),
        RandomClip(4),
        MultiCrop(16),
        flow_table=table(tmp_path / "flow", ["v"], storage="frames", n_frames=[11]),
    )
    item = _item(data, 0)
    assert len(item["flow_views"]) == 5
    assert all(torch.equal(a, b) for a, b in zip(item["views"], item["flow_views"], strict=True))


def _corrupt_dataset(tmp_path):
    good = write_videos(tmp_path, [12, 14, 16])
    bad = write_corrupt(tmp_path, tmp_path / good[2])
    names = [bad[0], good[0], bad[1], good[1], bad[2], good[2]]
    return MultiViewDataset(
        table(tmp_path, names), MultiRandomClips(2, 4), PerClipViews(2, plain(), plain())
    ), bad


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_videos_are_replaced_counted_and_logged_once(tmp_path, caplog, workers):
    data, bad = _corrupt_dataset(tmp_path)
    loader = DataLoader(
        SeededItems(data, 3), batch_size=2, num_workers=workers, collate_fn=lambda b: b
    )
    caplog.set_level(logging.WARNING, logger="vidssl.data.dataset_failures")
    seen = []
    for _ in range(2):  # two passes: the bad videos are skipped without being read again
        seen += [item for batch in loader for item in batch]
    assert len(seen) == 12
    assert {item["video"] for item in seen} <= {"v0.avi", "v1.avi", "v2.avi"}
    assert all(item["views"][0].shape == (3, 4, SIZE, SIZE) for item in seen)
    assert data.failures() == 3 and sorted(data.failed_videos()) == sorted(bad)
    if workers == 0:  # worker processes log to their own stderr
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 3 and all(
            m.startswith("skipping unreadable video") for m in messages
        )


def test_replacement_does_not_depend_on_known_failures(tmp_path):
    data, _ = _corrupt_dataset(tmp_path)
    cold = _item(data, 0, seed=11)  # reads zero.avi, fails, falls back
    assert data.failures() >= 1
    warm = _item(data, 0, seed=11)  # zero.avi now skipped without reading
    assert cold["video"] == warm["video"] and torch.equal(cold["views"][0], warm["views"][0])


def test_all_videos_unreadable_raise_data_error(tmp_path):
    good = write_videos(tmp_path, [12])
    bad = write_corrupt(tmp_path, tmp_path / good[0])
    data = MultiViewDataset(
        table(tmp_path, bad), MultiRandomClips(2, 4), PerClipViews(2, plain(), plain())
    )
    with pytest.raises(DataError, match="all 3 videos of test train"):
        _item(data, 1)
    assert data.failures() == 3


def test_missing_frames_count_as_a_failure(tmp_path):
    names = write_videos(tmp_path, [10, 40])
    # the table claims 30 frames for a 10-frame video: reading past its end is a failure
    data = MultiViewDataset(
        table(tmp_path, names, n_frames=[30, 40]), MultiRandomClips(2, 20), PerClipViews(2)
    )
    assert _item(data, 0)["video"] == "v1.avi"
    assert data.failed_videos() == ["v0.avi"]
