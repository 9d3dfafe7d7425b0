import pickle
import sys
import types

import numpy as np
import pytest
from tests.data.catalog_fixtures import (
    touch_videos,
    ucf_video_ids,
    write_coclr_lmdb,
    write_frame_folder,
    write_ucf101_lists,
)

from vidssl.data.catalogs import table as catalogs


def _table(storage="video", media="/m", n=4):
    return catalogs.VideoTable(
        name="toy",
        split="train",
        media=media,
        storage=storage,
        paths=np.array([f"c{i % 2}/v{i}" for i in range(n)], dtype=str),
        labels=np.arange(n, dtype=np.int64) % 2,
        n_frames=np.arange(10, 10 + n, dtype=np.int64),
        groups=np.full(n, -1, dtype=np.int64),
        class_names=("c0", "c1"),
    )


def test_subset_by_positions_and_mask():
    table = _table()
    picked = table.subset([3, 0])
    assert picked.paths.tolist() == ["c1/v3", "c0/v0"]
    assert picked.labels.tolist() == [1, 0]
    assert picked.n_frames.tolist() == [13, 10]
    assert picked.class_names == table.class_names and picked.storage == "video"
    masked = table.subset(table.labels == 1)
    assert masked.paths.tolist() == ["c1/v1", "c1/v3"]
    assert len(table.subset([])) == 0


def test_table_holds_only_numpy_arrays():
    table = _table()
    for name in ("paths", "labels", "n_frames", "groups"):
        assert getattr(table, name).dtype != object
    assert pickle.loads(pickle.dumps(table)).paths.tolist() == table.paths.tolist()
    with pytest.raises(TypeError, match="labels must be int64"):
        catalogs.VideoTable(**{**table.__dict__, "labels": table.labels.astype(np.int32)})
    with pytest.raises(ValueError, match="groups has 3 rows, paths has 4"):
        catalogs.VideoTable(**{**table.__dict__, "groups": table.groups[:3]})
    with pytest.raises(TypeError, match="numpy unicode"):
        catalogs.VideoTable(**{**table.__dict__, "paths": table.paths.astype(object)})


@pytest.fixture
def fake_sources(monkeypatch):
    """A stand-in `vidssl.data.sources.base` recording how each source is constructed."""
    module = types.ModuleType("vidssl.data.sources.base")

    def recorder(kind):
        return lambda *args, **kwargs: (kind, args, kwargs)

    module.VideoFile = recorder("VideoFile")
    module.FrameFolder = recorder("FrameFolder")
    module.LmdbVideo = recorder("LmdbVideo")
    monkeypatch.setitem(sys.modules, "vidssl.data.sources.base", module)
    return module


def test_source_per_storage(fake_sources):
    assert _table("video").source(1, threads=2) == ("VideoFile", ("/m/c1/v1",), {"threads": 2})
    assert _table("frames").source(2, min_short_side=64) == (
        "FrameFolder",
        ("/m/c0/v2",),
        {"min_short_side": 64},
    )
    assert _table("lmdb", media="/db.lmdb").source(3) == ("LmdbVideo", ("/db.lmdb", "c1/v3"), {})


def test_loaded_table_sources(tmp_path, fake_sources):
    write_ucf101_lists(tmp_path)
    touch_videos(tmp_path / "UCF-101", ucf_video_ids())
    table = catalogs.load("ucf101", tmp_path, "train")
    kind, args, _ = table.source(3)
    assert kind == "VideoFile"
    video = "UCF-101/HandStandPushups/v_HandStandPushups_g08_c01.avi"
    assert args == (str(tmp_path.absolute() / video),)


def test_align_rgb_video_with_flow_lmdb(tmp_path):
    write_ucf101_lists(tmp_path)
    touch_videos(tmp_path / "UCF-101", ucf_video_ids())
    videos = ucf_video_ids()[:6]
    # The flow LMDB lacks the second video and spells the class as classInd does.
    counts = {video.replace("HandStand", "Handstand", 1): 3 for video in videos[:1] + videos[2:]}
    write_coclr_lmdb(tmp_path / "flow.lmdb", counts)
    rgb = catalogs.load("ucf101", tmp_path, "train")
    flow = catalogs.load("ucf101", tmp_path, "train", media=tmp_path / "flow.lmdb")
    assert len(rgb) == 6 and len(flow) == 5 and flow.missing == 1
    rgb_aligned, flow_aligned = catalogs.align(rgb, flow)
    assert rgb_aligned.paths.tolist() == [f"{video}.avi" for video in videos[:1] + videos[2:]]
    assert flow_aligned.paths.tolist() == [
        video.replace("HandStand", "Handstand", 1) for video in videos[:1] + videos[2:]
    ]
    assert rgb_aligned.video_keys().tolist() == flow_aligned.video_keys().tolist()
    assert rgb_aligned.labels.tolist() == flow_aligned.labels.tolist() == [0, 0, 1, 1, 2]


def test_register_a_new_catalog(tmp_path, monkeypatch):
    catalogs.known()  # register the built-in catalogs before copying the registry
    monkeypatch.setattr(catalogs, "_REGISTRY", dict(catalogs._REGISTRY))
    for video in ("a/x", "a/y"):
        write_frame_folder(tmp_path / "frames" / video, 2)

    @catalogs.register(
        "toy",
        splits=("train",),
        default_media=lambda root, split, entries: [root / "frames"],
        layout="nothing",
    )
    def read_toy(root, split, split_id, *, scale=1):
        return catalogs.SplitEntries(
            videos=np.array(["a/x", "a/y", "a/z"]),
            labels=np.array([[1, 0], [1, 1], [0, 1]], dtype=np.int64) * scale,
            class_names=("p", "q"),
            annotation=root / "toy.txt",
        )

    table = catalogs.load("toy", tmp_path, "train", scale=1)
    assert "toy" in catalogs.known()
    assert table.labels.tolist() == [[1, 0], [1, 1]]  # multi-hot rows follow the kept videos
    assert table.n_frames.tolist() == [2, 2] and table.missing == 1
