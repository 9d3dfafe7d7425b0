"""Charades catalogs, labels and clip geometry with hand-worked values (severe.md §7)."""

from __future__ import annotations

import numpy as np
import pytest

from vidssl.downstream.charades import (
    read_frame_list,
    read_official_csv,
    span_label,
    video_label,
    views,
)
from vidssl.downstream.charades.catalog import write_frame_list
from vidssl.errors import DataError

FRAME_LIST = """original_vido_id video_id frame_id path labels
AAA 0 0 AAA/AAA-000001.jpg ""
AAA 0 1 AAA/AAA-000002.jpg "3"
AAA 0 2 AAA/AAA-000003.jpg "3,7"
AAA 0 3 AAA/AAA-000004.jpg "12"
AAA 0 4 AAA/AAA-000005.jpg ""
BBB 1 0 BBB/BBB-000001.jpg "0"
"""


def classes(multi_hot: np.ndarray) -> list[int]:
    return np.flatnonzero(multi_hot).tolist()


def test_frame_list_labels_union_over_span_and_video(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(FRAME_LIST)
    aaa, bbb = read_frame_list(path)
    assert (aaa.video_id, aaa.n_frames, bbb.video_id, bbb.n_frames) == ("AAA", 5, "BBB", 1)
    assert aaa.frame_labels == ((), (3,), (3, 7), (12,), ())
    assert aaa.frame_paths[2] == "AAA/AAA-000003.jpg"
    assert classes(span_label(aaa.frame_labels, [0, 0, 2])) == [3, 7]  # frames 0..2
    assert classes(span_label(aaa.frame_labels, [2, 3, 4])) == [3, 7, 12]
    assert classes(span_label(aaa.frame_labels, [4, 4])) == []
    assert classes(span_label(aaa.frame_labels, [1, 1, 1, 3])) == [3, 7, 12]  # span, not points
    assert classes(video_label(aaa.frame_labels)) == [3, 7, 12]
    assert video_label(bbb.frame_labels).shape == (157,)
    write_frame_list(tmp_path / "again.csv", [aaa, bbb])
    assert (tmp_path / "again.csv").read_text() == FRAME_LIST


def test_bad_frame_list_rows_are_data_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(FRAME_LIST.splitlines()[0] + "\nAAA 0 0 x.jpg\n")
    with pytest.raises(DataError, match="5 columns"):
        read_frame_list(path)


def test_official_csv_gives_per_frame_labels_at_24_fps(tmp_path):
    path = tmp_path / "Charades_v1_train.csv"
    path.write_text(
        "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
        'XYZ,s,Kitchen,6,7,Yes,"a script",cup,"d","c003 0.00 0.05;c156 0.10 0.20",0.25\n'
        "EMP,s,Hall,6,7,Yes,x,y,z,,1.0\n"
    )
    xyz, empty = read_official_csv(path)
    # frame times 0, 1/24=.042, .083, .125, .167, .208: c3 on [0, .05], c156 on [.1, .2]
    assert xyz.frame_labels == ((3,), (3,), (), (156,), (156,), ())
    assert empty.n_frames == 24 and set(empty.frame_labels) == {()}
    (counted,) = read_official_csv(path, {"XYZ": 2})[:1]
    assert counted.n_frames == 2


def test_test_view_starts_and_clamped_indices():
    assert views.clip_span(32, 8) == 249
    assert views.test_starts(339, 32, 8, 10) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    # gap 51/9 = 5.67: round(i·gap)
    assert views.test_starts(300, 32, 8, 10) == [0, 6, 11, 17, 23, 28, 34, 40, 45, 51]
    assert views.test_starts(100, 32, 8, 10) == [0] * 10
    indices = views.clip_indices(0, 100, 32, 8)
    assert indices[:13].tolist() == list(range(0, 97, 8)) and set(indices[13:].tolist()) == {99}
    assert views.clip_indices(-5, 10, 4, 3).tolist() == [0, 0, 1, 4]  # -5, -2, 1, 4


def test_train_starts_cover_the_valid_range():
    rng = np.random.default_rng(0)
    long = {views.train_start(259, 32, 8, rng) for _ in range(500)}
    assert long == set(range(11))  # L − span = 10
    short = {views.train_start(240, 32, 8, rng) for _ in range(500)}
    assert short == set(range(-9, 1))  # shorter than the span: start in [L − span, 0]


def test_inverse_uniform_short_side_formula_and_distribution():
    assert views.inverse_uniform_side(0.0, 256, 340) == 340
    assert views.inverse_uniform_side(1.0, 256, 340) == 256
    # 1 / ((1/340 + 1/256) / 2) = 292.08
    assert views.inverse_uniform_side(0.5, 256, 340) == 292
    draws = np.array([views.inverse_uniform_side(u, 256, 340)
                      for u in np.random.default_rng(1).random(20000)])  # fmt: skip
    assert draws.min() >= 256 and draws.max() <= 340
    # P(side ≤ 298) = P(1/x < 298.5) for x ~ U(1/340, 1/256)
    expected = (1 / 256 - 1 / 298.5) / (1 / 256 - 1 / 340)
    assert np.mean(draws <= 298) == pytest.approx(expected, abs=0.015)
    assert expected > 0.5  # more small sides than a uniform draw (which gives 0.5)


def test_rescale_and_the_three_test_crops():
    assert views.scaled_size(240, 320, 112) == (112, 149)
    assert views.scaled_size(320, 240, 256) == (341, 256)
    assert views.scaled_size(100, 100, 112) == (112, 112)
    assert [views.uniform_crop_offset(112, 149, 112, j) for j in range(3)] == [
        (0, 0), (0, 19), (0, 37),
    ]  # fmt: skip
    assert [views.uniform_crop_offset(199, 112, 112, j) for j in range(3)] == [
        (0, 0), (44, 0), (87, 0),
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    tops = {views.random_crop_offset(115, 112, 112, rng) for _ in range(200)}
    assert tops == {(0, 0), (1, 0), (2, 0)}  # randint(0, 3): the last offset 3 is never drawn


def _tiny_settings():
    from vidssl.downstream.charades.dataset import ClipSettings

    return ClipSettings(num_frames=4, stride=2, jitter=(40, 48), crop=32, temporal_views=2)


def test_dataset_items_geometry_labels_and_unreadable_videos(tmp_path):
    from vidssl.data.sources.video_io import write_video
    from vidssl.downstream.charades.catalog import CharadesVideo
    from vidssl.downstream.charades.dataset import CharadesDataset

    frames = np.random.default_rng(0).integers(0, 255, (12, 36, 48, 3), dtype=np.uint8)
    write_video(tmp_path / "GOOD1.mp4", frames, fps=24)
    labels = tuple((c,) if i < 6 else () for i, c in enumerate([2] * 12))
    good = CharadesVideo("GOOD1", labels)
    broken = CharadesVideo("BAD01", labels)  # no file: unreadable
    test = CharadesDataset([good, broken], tmp_path, _tiny_settings(), train=False)
    assert len(test) == 2 * 6
    item = test[5]
    assert item["views"][0].shape == (3, 4, 32, 32) and item["view"] == 5
    assert classes(item["label"].numpy()) == [2] and not item["failed"]
    assert test[6]["failed"] and test.failed_videos() == ["BAD01"]
    train = CharadesDataset([broken, good], tmp_path, _tiny_settings(), train=True)
    np.random.seed(3)
    item = train[0]  # BAD01 is replaced by GOOD1
    assert item["video"] == "GOOD1" and train.failures() == 1
    clip = item["views"][0]
    assert clip.shape == (3, 4, 32, 32)
    # normalised with mean 0.45, std 0.225: pixel values lie in [-2, 2.45]
    assert clip.min() >= -2.0 - 1e-6 and clip.max() <= 2.4445 + 1e-4
