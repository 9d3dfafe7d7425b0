import json
from pathlib import Path

import av
import numpy as np
import pytest

from vidssl.data.synthetic.dataset import CORRUPT_KINDS, make_synthetic_dataset
from vidssl.data.synthetic.motion import MOTION_CLASSES, SHAPES, TEXTURES
from vidssl.data.synthetic.plan import SynthParams, draw_source, plan_video, render_video
from vidssl.errors import UserError

TINY = dict(classes=3, videos_per_class=4, frames=12, size=32, seed=7)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def decoded_frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def all_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_synthetic")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    make_synthetic_dataset(root, workers=1, **TINY)
    return root


def test_params_layout_arithmetic():
    default = SynthParams()
    assert (default.height, default.width, default.length_range) == (64, 86, (40, 88))
    assert default.group_sizes == [3, 3, 3, 3]
    assert [default.test_groups(split) for split in (1, 2, 3)] == [[1], [2], [3]]
    many = SynthParams(videos_per_class=25)
    assert many.group_sizes == [3, 3, 3, 3, 3, 3, 3, 2, 2]
    assert [many.test_groups(s) for s in (1, 2, 3)] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    two = SynthParams(videos_per_class=2, size=112, frames=8)
    assert (two.width, two.length_range, two.group_sizes) == (150, (5, 11), [1, 1])
    assert [two.test_groups(s) for s in (1, 2, 3)] == [[1], [2], [1]]


def test_catalogue_names_and_signatures_are_distinct():
    names = [m.name for m in MOTION_CLASSES]
    assert len(names) == len(set(names)) == 20
    assert all(name[0].isupper() and name.isalnum() for name in names)
    signatures = [m.signature for m in MOTION_CLASSES]
    assert len(set(signatures)) == len(signatures)
    assert all(shape in SHAPES and texture in TEXTURES for shape, texture in signatures)


def test_ucf101_layout_and_split_files(tiny):
    lists = tiny / "ucfTrainTestlist"
    assert read_lines(lists / "classInd.txt") == ["1 MoveUp", "2 MoveDown", "3 MoveSideways"]
    ids = {"MoveUp": 1, "MoveDown": 2, "MoveSideways": 3}
    train = [line.split(" ") for line in read_lines(lists / "trainlist01.txt")]
    test = read_lines(lists / "testlist01.txt")
    # 4 videos per class -> groups g01, g02 of 2 clips; split 1 tests g01.
    assert len(train) == 6 and len(test) == 6
    for path, class_id in train:
        name = path.split("/")[0]
        assert path == f"{name}/v_{name}_g02_c{path[-6:-4]}.avi" and path[-6:-4] in ("01", "02")
        assert int(class_id) == ids[name]
    for path in test:
        name = path.split("/")[0]
        assert " " not in path and path.startswith(f"{name}/v_{name}_g01_c0")
    listed = {p for p, _ in train} | set(test)
    on_disk = {str(p.relative_to(tiny / "UCF-101")) for p in (tiny / "UCF-101").rglob("*.avi")}
    assert listed == on_disk
    assert read_lines(lists / "testlist02.txt") == [p for p, _ in train]
    summary = json.loads((tiny / "synth.json").read_text())
    assert summary["complete"] and summary["corrupt"] == []
    assert summary["splits"]["01"] == {"test_groups": [1], "train": 6, "test": 6}
    for video in summary["videos"]:
        path = tiny / "UCF-101" / video["path"]
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert frames[0].shape == (32, 42, 3)
        assert len(frames) == video["n_frames"] and 8 <= video["n_frames"] <= 16


def test_siblings_share_the_source_appearance():
    params = SynthParams(classes=1, videos_per_class=6, frames=48, size=48, seed=3)
    plans = {(g, c): plan_video(params, 0, g, c) for g in (1, 2) for c in (1, 2)}
    clips = {key: render_video(params, plan).astype(np.float32) for key, plan in plans.items()}
    # MoveUp objects travel, so the per-pixel temporal median is the (jittered) background.
    backgrounds = {key: np.median(clip, axis=0) for key, clip in clips.items()}
    sibling = np.abs(backgrounds[1, 1] - backgrounds[1, 2]).mean()
    stranger = np.abs(backgrounds[1, 1] - backgrounds[2, 1]).mean()
    assert sibling < 6.0 < 20.0 < stranger
    assert not np.array_equal(clips[1, 1][:10], clips[1, 2][:10])  # different time offsets
    assert draw_source(params, 0, 1) == draw_source(params, 0, 1)
    assert draw_source(params, 0, 1).look != draw_source(params, 0, 2).look


def object_steps(clip: np.ndarray) -> np.ndarray:
    """Frame-to-frame moves (dx, dy) of the centroid of pixels far from the median background.

    Only steps between frames where the object is whole (its mask area is at least 80% of the
    largest) count, so objects leaving or entering the frame do not bias the estimate.
    """
    frames = clip.astype(np.float32)
    masks = np.abs(frames - np.median(frames, axis=0)).sum(-1) > 90
    areas = masks.sum(axis=(1, 2))
    centroids = np.array([np.argwhere(m).mean(0)[::-1] if m.any() else (0, 0) for m in masks])
    whole = areas >= 0.8 * areas.max()
    return np.diff(centroids, axis=0)[whole[1:] & whole[:-1]]


@pytest.mark.parametrize(
    ("name", "vertical_sign", "sideways"),
    [("MoveUp", -1, False), ("MoveDown", 1, False), ("MoveSideways", 0, True)],
)
def test_translation_direction_is_what_the_class_says(name, vertical_sign, sideways):
    index = [m.name for m in MOTION_CLASSES].index(name)
    params = SynthParams(classes=index + 1, frames=40, size=64, seed=11)
    for group in (1, 2, 3):
        clip = render_video(params, plan_video(params, index, group, 1))
        steps = object_steps(clip)
        assert len(steps) >= 4
        dx, dy = np.median(steps, axis=0)
        # speeds are 0.03-0.05 H/frame (1.9-3.2 px at H=64), times 1 +- 8% per clip
        if vertical_sign:
            assert 1.5 < vertical_sign * dy < 4.0 and abs(dx) < 1.0
        if sideways:
            assert 1.5 < abs(dx) < 4.0 and abs(dy) < 1.0


def test_flow_sees_zoom_and_spin():
    pytest.importorskip("cv2")
    from vidssl.data.synthetic.probe import motion_feature

    names = [m.name for m in MOTION_CLASSES]
    params = SynthParams(classes=10, frames=24, size=64, seed=5)
    features = {
        name: motion_feature(render_video(params, plan_video(params, names.index(name), 1, 1)))
        for name in ("ZoomIn", "ZoomOut", "Spin", "MoveUp")
    }
    divergence, curl = 6, 8  # indices in motion_feature: mean divergence, |mean curl|
    assert features["ZoomIn"][divergence] > 0.02 > -0.02 > features["ZoomOut"][divergence]
    assert features["Spin"][curl] > 3 * max(features["MoveUp"][curl], 0.01)


def test_same_bytes_across_runs_and_worker_counts(tmp_path, tiny):
    make_synthetic_dataset(tmp_path / "parallel", workers=2, **TINY)
    assert all_bytes(tmp_path / "parallel") == all_bytes(tiny)
    other_seed = make_synthetic_dataset(tmp_path / "seed8", workers=1, **dict(TINY, seed=8))
    assert other_seed["reused"] == 0
    reference = (tiny / "UCF-101/MoveUp/v_MoveUp_g01_c01.avi").read_bytes()
    assert (tmp_path / "seed8/UCF-101/MoveUp/v_MoveUp_g01_c01.avi").read_bytes() != reference


def test_fewer_classes_give_the_same_videos():
    small, large = SynthParams(classes=2, **_shape()), SynthParams(classes=5, **_shape())
    for group, clip in ((1, 1), (2, 2)):
        plan = plan_video(small, 1, group, clip)
        assert plan == plan_video(large, 1, group, clip)
        assert np.array_equal(render_video(small, plan), render_video(large, plan))


def _shape() -> dict:
    return dict(videos_per_class=4, frames=10, size=32, seed=1)


def test_corrupt_files_are_undecodable_and_listed(tmp_path):
    root = tmp_path / "broken"
    summary = make_synthetic_dataset(
        root, classes=2, videos_per_class=2, frames=12, size=32, corrupt=4, workers=1
    )
    expected = [
        ("MoveUp/v_MoveUp_g02_c02.avi", "truncated"),
        ("MoveDown/v_MoveDown_g02_c02.avi", "zero-byte"),
        ("MoveUp/v_MoveUp_g02_c03.avi", "garbage"),
        ("MoveDown/v_MoveDown_g02_c03.avi", "header-only"),
    ]
    assert [(c["path"], c["kind"]) for c in summary["corrupt"]] == expected
    assert {kind for _, kind in expected} == set(CORRUPT_KINDS)
    train = read_lines(root / "ucfTrainTestlist/trainlist01.txt")
    for path, _ in expected:
        assert f"{path} {1 if path.startswith('MoveUp') else 2}" in train
        file = root / "UCF-101" / path
        try:
            frames = decoded_frame_count(file)
        except (av.error.FFmpegError, IndexError, ValueError):
            frames = 0
        assert frames == 0, path
    assert (root / "UCF-101" / expected[1][0]).stat().st_size == 0
    truncated = (root / "UCF-101" / expected[0][0]).read_bytes()
    assert truncated.startswith(b"RIFF") and b"movi" in truncated
    assert summary["splits"]["01"] == {"test_groups": [1], "train": 6, "test": 2}
    assert decoded_frame_count(root / "UCF-101/MoveUp/v_MoveUp_g02_c01.avi") > 0


def test_rerun_resumes_and_repairs(tmp_path, tiny):
    root = tmp_path / "resume"
    make_synthetic_dataset(root, workers=1, **TINY)
    victim = root / "UCF-101/MoveDown/v_MoveDown_g02_c01.avi"
    victim.unlink()
    stale = root / "UCF-101/MoveDown/.v_MoveDown_g02_c01.avi.abc123.tmp"
    stale.write_bytes(b"half")
    summary = make_synthetic_dataset(root, workers=1, **TINY)
    assert (summary["written"], summary["reused"]) == (1, 11)
    assert not stale.exists()
    assert all_bytes(root) == all_bytes(tiny)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(classes=21), "--classes 21: expected 1 to 20"),
        (dict(classes=0), "--classes 0"),
        (dict(videos_per_class=1), "--videos-per-class 1"),
        (dict(size=30), "--size 30"),
        (dict(size=33), "--size 33"),
        (dict(frames=4), "--frames 4"),
        (dict(corrupt=-1), "--corrupt -1"),
        (dict(workers=0), "--workers 0"),
    ],
)
def test_bad_parameters_are_one_line_user_errors(tmp_path, overrides, message):
    arguments = {**TINY, "workers": 1, **overrides}
    with pytest.raises(UserError) as error:
        make_synthetic_dataset(tmp_path / "never", **arguments)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "never").exists()


def test_refuses_to_overwrite_other_content(tmp_path, tiny):
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    with pytest.raises(UserError, match="is a file"):
        make_synthetic_dataset(a_file, workers=1, **TINY)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"holds no synth\.json"):
        make_synthetic_dataset(foreign, workers=1, **TINY)
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    before = all_bytes(tiny)
    with pytest.raises(UserError, match="other parameters"):
        make_synthetic_dataset(tiny, workers=1, **dict(TINY, seed=99))
    assert all_bytes(tiny) == before


def test_motion_carries_most_of_the_signal(tmp_path):
    pytest.importorskip("cv2")
    from vidssl.data.synthetic.probe import probe_signal_split

    root = tmp_path / "probe"
    make_synthetic_dataset(root, classes=6, videos_per_class=9, frames=16, size=48, workers=1)
    scores = probe_signal_split(root, max_frames=16)
    # 3 sources per class, a query's own excluded: 2 of 17 other sources share its class.
    assert scores["chance"] == pytest.approx(2 / 17)
    assert scores["motion"] >= 0.75
    assert scores["motion"] >= scores["colour"] + 0.4
    assert scores["motion"] >= scores["structure"] + 0.2
    assert scores["structure"] >= scores["colour"] + 0.15
