"""VCP/PCL cloze tuples: geometry in both stride modes, remote clip, labels, short videos."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tests.data.dataset_helpers import plain, table, write_videos

from vidssl.data.sampling import VcpTuples
from vidssl.data.transforms.compose import Normalize
from vidssl.data.vcp_tuples import (
    REMOTE_CLASS,
    VcpTupleDataset,
    build_tuple_dataset,
    draw_cloze_label,
)
from vidssl.errors import DataError


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    media = tmp_path_factory.mktemp("vcp")
    names = write_videos(media, [64, 96, 20])
    return media, names


def _spans(item) -> list[list[int]]:
    return item["clips"].tolist()


def test_short_videos_are_counted_and_skipped(videos) -> None:
    media, names = videos
    data = VcpTupleDataset(table(media, names, n_frames=[64, 96, 20]), VcpTuples(), plain())
    assert len(data) == 2
    assert data.short_videos == 1 and data.short_names == ["v2.avi"]
    assert data.table.paths.tolist() == ["v0.avi", "v1.avi"]
    with pytest.raises(DataError, match="none of its 1 videos has the 64 frames"):
        VcpTupleDataset(table(media, names[2:], n_frames=[20]), VcpTuples(), plain())


def test_short_video_of_unknown_length_is_skipped_as_a_failure(videos) -> None:
    media, names = videos
    data = VcpTupleDataset(table(media, [names[2], names[0]]), VcpTuples(), plain())
    assert data.short_videos == 0  # length unknown until opened
    np.random.seed(0)
    item = data[0]
    assert item["video"] == "v0.avi"  # replaced by the readable, long enough video
    assert data.failures() == 1 and data.failed_videos() == ["v2.avi"]


@pytest.mark.parametrize(
    ("stride", "expected"),
    [
        # i·(16+8): three disjoint clips with 8-frame gaps, span 64
        (None, [[0, 16], [24, 40], [48, 64]]),
        # reference bug i·(3+8) = 11: overlapping clips covering 38 frames
        (11, [[0, 16], [11, 27], [22, 38]]),
    ],
)
def test_tuple_of_a_64_frame_video_in_both_stride_modes(videos, stride, expected) -> None:
    media, names = videos
    data = VcpTupleDataset(
        table(media, names[:1], n_frames=[64]), VcpTuples(clip_stride=stride), plain()
    )
    labels = set()
    for seed in range(12):
        item = data.make_item(0, np.random.default_rng(seed))
        # start must be 0 (64 = span); no room for a remote clip: 4th view = middle copy
        assert _spans(item) == [*expected, expected[1]]
        assert len(item["views"]) == 4
        assert torch.equal(item["views"][3], item["views"][1])
        labels.add(item["cloze_label"])
        assert item["rot_k"] in (1, 2, 3)
        first, second = item["swap"].tolist()
        assert first != second and {first, second} <= {0, 1, 2, 3}
    assert labels <= {0, 1, 2, 3}  # fallback range: never the remote class


def test_views_are_the_frames_at_the_tuple_indices(videos) -> None:
    media, names = videos
    data = VcpTupleDataset(table(media, names[:1], n_frames=[64]), VcpTuples(), plain())
    item = data.make_item(0, np.random.default_rng(0))
    frames = data.table.source(0).read(np.arange(64))
    for view, (start, end) in zip(item["views"][:3], _spans(item)):
        expected = frames[start:end].permute(3, 0, 1, 2).float() / 255
        assert torch.allclose(view, expected)


def test_remote_clip_of_a_96_frame_video(videos) -> None:
    # start in 0..32; only start 0 has room after (80..95), only start 32 before (0..15)
    media, names = videos
    data = VcpTupleDataset(table(media, names[1:2], n_frames=[96]), VcpTuples(), plain())
    remote_spans = set()
    for seed in range(60):
        rng = np.random.default_rng(seed)
        start = int(np.random.default_rng(seed).integers(33))
        item = data.make_item(0, rng)
        spans = _spans(item)
        assert spans[:3] == [[start + offset, start + offset + 16] for offset in (0, 24, 48)]
        if item["cloze_label"] == REMOTE_CLASS:
            assert start in (0, 32)
            remote_spans.add(tuple(spans[3]))
        else:
            assert spans[3] == spans[1]
    assert remote_spans <= {(80, 96), (0, 16)}


def test_label_draw_is_uniform_with_the_reference_fallback() -> None:
    draws = 20000
    with_remote = [draw_cloze_label(np.random.default_rng(s), True) for s in range(draws)]
    without = [draw_cloze_label(np.random.default_rng(s), False) for s in range(draws)]
    counts = np.bincount(with_remote, minlength=5) / draws
    assert np.allclose(counts, 0.2, atol=0.015)
    counts = np.bincount(without, minlength=5) / draws
    assert counts[4] == 0 and np.allclose(counts[:4], 0.25, atol=0.015)


def test_build_tuple_dataset_geometry_and_augmentation(tmp_path) -> None:
    from vidssl.data.synthetic import make_synthetic_dataset

    make_synthetic_dataset(tmp_path, classes=2, videos_per_class=3, frames=16, size=32, workers=1)
    data = SimpleNamespace(
        dataset="ucf101", root=str(tmp_path), media=None, split_id=1, seq_len=8, img_size=32
    )
    reference = build_tuple_dataset(data, "train", interval=4, reference_stride=True)
    assert reference.sampler.clip_stride == 3 + 4 and reference.sampler.span == 8 * 3 + 4 * 2
    weak = build_tuple_dataset(data, "train", interval=4, strong=False)
    assert weak.sampler.clip_stride is None
    steps = weak.transform.transforms
    assert [type(step).__name__ for step in steps] == ["Resize", "RandomCrop", "Normalize"]
    assert steps[-1].stats is None  # [0, 1] clips
    strong = build_tuple_dataset(data, "test", interval=4)
    names = [type(step).__name__ for step in strong.transform.transforms]
    assert names[:2] == ["Resize", "RandomCrop"] and "ColorJitter" in names
    assert isinstance(strong.transform.transforms[-1], Normalize)
    assert strong.transform.transforms[-1].stats == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_each_clip_gets_its_own_augmentation(tmp_path) -> None:
    from vidssl.data.sources.video_io import write_video
    from vidssl.data.transforms.presets import pcl_train

    # every frame is the same image: the clips only differ by their augmentation draws
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "still.avi", np.repeat(frame[None], 64, axis=0), gop=64)
    data = VcpTupleDataset(
        table(tmp_path, ["still.avi"], n_frames=[64]), VcpTuples(), pcl_train(32, (37, 49))
    )
    differing = 0
    for seed in range(5):
        views = data.make_item(0, np.random.default_rng(seed))["views"]
        gaps = [float((views[i] - views[j]).abs().mean()) for i, j in ((0, 1), (1, 2), (0, 2))]
        differing += sum(gap > 0.05 for gap in gaps)
    assert differing >= 12  # of 15 pairs (flip and crop alone differ in most draws)
