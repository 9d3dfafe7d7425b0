import os
from pathlib import Path

import numpy as np
import pytest

from vidssl.bench.flow import moving_texture
from vidssl.data.flow import dataset as flow_dataset
from vidssl.data.flow.dataset import extract_flow_dataset, read_video_frames
from vidssl.data.flow.extract import compute_video_flow
from vidssl.data.sources.frame_files import list_frames
from vidssl.data.sources.video_io import write_video
from vidssl.errors import DataError, UserError
from vidssl.utils.jpeg import decode_jpeg, encode_jpeg

N_FRAMES = 6


def moving_frames(seed: int, n_frames: int = N_FRAMES, height: int = 32, width: int = 32):
    """RGB frames of a blocky random texture moving (dx, dy) = (2, 1) px per frame."""
    return moving_texture(n_frames, height, width, seed)


def write_frame_root(root: Path, videos: dict[str, np.ndarray]) -> Path:
    for video_id, frames in videos.items():
        folder = root / video_id
        folder.mkdir(parents=True)
        for index, frame in enumerate(frames, start=1):
            (folder / f"image_{index:05d}.jpg").write_bytes(encode_jpeg(frame, quality=100))
    return root


@pytest.fixture
def frame_root(tmp_path):
    return write_frame_root(
        tmp_path / "frames",
        {
            "ClassA/v1": moving_frames(0),
            "ClassA/v2": moving_frames(1),
            "ClassB/v3": moving_frames(2),
        },
    )


def decoded_folder(folder: Path) -> np.ndarray:
    return np.stack([decode_jpeg(path.read_bytes()) for path in list_frames(folder)])


def test_frames_to_flow_layout_names_and_values(frame_root, tmp_path):
    out = tmp_path / "flow"
    summary = extract_flow_dataset(frame_root, out, source_kind="frames", method="tvl1")
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, [])
    assert summary.flow_frames == 3 * (N_FRAMES - 1)
    assert summary.frames_per_second > 0
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*")) == [
        "ClassA/v1",
        "ClassA/v2",
        "ClassB/v3",
    ]
    names = sorted(os.listdir(out / "ClassA" / "v1"))
    assert names == [f"flow_{k:05d}.jpg" for k in range(1, N_FRAMES)]  # n_flow = n_rgb - 1
    expected = compute_video_flow(decoded_folder(frame_root / "ClassA" / "v1"), "tvl1")
    written = decoded_folder(out / "ClassA" / "v1").astype(int)
    assert written.shape == (N_FRAMES - 1, 32, 32, 3)
    assert np.abs(written - expected).max() <= 4  # JPEG only
    # the texture moves (dx, dy) = (2, 1): u level round(22 * 6.375) = 140, v level 134
    median = np.median(written[:, 8:-8, 8:-8], axis=(0, 1, 2))
    assert np.abs(median - [128, 134, 140]).max() <= 1  # JPEG noise of one level


def test_videos_with_short_side_and_parallel_workers_match_serial(tmp_path):
    videos = tmp_path / "videos"
    for index, video_id in enumerate(["ClassA/a1", "ClassA/a2", "ClassB/b1"]):
        write_video(videos / f"{video_id}.avi", moving_frames(index, height=32, width=48), crf=10)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    kwargs = {"source_kind": "videos", "method": "farneback", "short_side": 16}
    summary = extract_flow_dataset(videos, serial, workers=1, **kwargs)
    assert (summary.done, summary.flow_frames) == (3, 3 * (N_FRAMES - 1))
    assert extract_flow_dataset(videos, parallel, workers=2, **kwargs).done == 3
    for path in sorted(serial.rglob("*.jpg")):
        assert path.relative_to(serial).parent.as_posix() in {"ClassA/a1", "ClassA/a2", "ClassB/b1"}
        assert (parallel / path.relative_to(serial)).read_bytes() == path.read_bytes()
    first = decode_jpeg((serial / "ClassA" / "a1" / "flow_00001.jpg").read_bytes())
    assert first.shape == (16, 24, 3)  # short side 32 -> 16, aspect kept
    decoded = np.stack(list(read_video_frames(videos / "ClassA" / "a1.avi")))
    assert decoded.shape == (N_FRAMES, 32, 48, 3)
    expected = compute_video_flow(decoded, "farneback", short_side=16)
    assert np.abs(first.astype(int) - expected[0]).max() <= 4


def test_resume_skips_done_videos_and_removes_partials(frame_root, tmp_path):
    out = tmp_path / "flow"
    finished = out / "ClassA" / "v1"
    finished.mkdir(parents=True)
    (finished / "flow_00001.jpg").write_bytes(b"from an earlier run")
    stale = out / "ClassA" / ".v2.partial-abc123"
    stale.mkdir()
    (stale / "flow_00001.jpg").write_bytes(b"half")
    summary = extract_flow_dataset(frame_root, out, method="farneback")
    assert (summary.done, summary.skipped, summary.partials_removed) == (2, 1, 1)
    assert summary.flow_frames == 2 * (N_FRAMES - 1)
    assert (finished / "flow_00001.jpg").read_bytes() == b"from an earlier run"  # not redone
    assert sorted(os.listdir(out / "ClassA")) == ["v1", "v2"]
    assert len(os.listdir(out / "ClassA" / "v2")) == N_FRAMES - 1
    again = extract_flow_dataset(frame_root, out, method="farneback")
    assert (again.done, again.skipped, again.flow_frames) == (0, 3, 0)


def test_interrupted_run_leaves_no_half_folder(frame_root, tmp_path, monkeypatch):
    out = tmp_path / "flow"
    calls = []

    def encode_then_die(image, quality):
        calls.append(1)
        if len(calls) == 8:  # in the second video, after 2 of its 5 flow frames
            raise KeyboardInterrupt
        return encode_jpeg(image, quality=quality)

    monkeypatch.setattr(flow_dataset, "encode_jpeg", encode_then_die)
    with pytest.raises(KeyboardInterrupt):
        extract_flow_dataset(frame_root, out, method="farneback", progress=False)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_dir()) == [
        "ClassA",
        "ClassA/v1",
    ]
    assert len(os.listdir(out / "ClassA" / "v1")) == N_FRAMES - 1
    monkeypatch.undo()
    summary = extract_flow_dataset(frame_root, out, method="farneback")
    assert (summary.done, summary.skipped) == (2, 1)


def test_unreadable_videos_are_skipped_counted_and_listed(tmp_path):
    videos = tmp_path / "videos"
    write_video(videos / "ClassA" / "good.avi", moving_frames(0))
    write_video(videos / "ClassA" / "single.avi", moving_frames(1, n_frames=1))
    write_video(videos / "ClassA" / "good.mp4", moving_frames(2))  # same output name as good.avi
    (videos / "ClassB").mkdir()
    (videos / "ClassB" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    (videos / "ClassB" / "notes.txt").write_text("ignored: not a video extension")
    out = tmp_path / "flow"
    summary = extract_flow_dataset(videos, out, source_kind="videos", method="farneback")
    assert (summary.done, summary.flow_frames) == (1, N_FRAMES - 1)
    failed = dict(summary.failed)
    assert sorted(failed) == ["ClassA/good", "ClassA/single", "ClassB/broken"]
    assert "good.mp4: same output folder as" in failed["ClassA/good"]
    assert "fewer than 2 frames" in failed["ClassA/single"]
    assert "broken.mp4" in failed["ClassB/broken"]
    assert "1 videos done, 0 skipped (already done), 3 failed" in summary.line()
    assert sorted(p.name for p in out.rglob("*") if p.is_dir()) == ["ClassA", "ClassB", "good"]


def test_corrupt_frame_folder_is_skipped(frame_root, tmp_path):
    (frame_root / "ClassB" / "v3" / "image_00003.jpg").write_bytes(b"truncated")
    summary = extract_flow_dataset(frame_root, tmp_path / "flow", method="farneback")
    assert summary.done == 2
    assert summary.failed[0][0] == "ClassB/v3" and "image_00003.jpg" in summary.failed[0][1]
    assert not (tmp_path / "flow" / "ClassB" / "v3").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"src": "missing"}, "is not a directory"),
        ({"src": "file.txt"}, "is not a directory"),
        ({"src": "empty"}, "holds no videos; expected Class/video/ frame folders"),
        ({"out": "file.txt"}, "exists and is not a directory"),
        ({"out": "frames"}, "is inside the input folder"),
        ({"out": "frames/ClassA/flow"}, "is inside the input folder"),
        ({"workers": 0}, "--workers must be >= 1"),
        ({"quality": 90}, "quality must be 95..100"),
        ({"short_side": 2}, "--short-side must be >= 8"),
        ({"method": "raft"}, "'raft' is unknown"),
        ({"source_kind": "lmdb"}, "source kind 'lmdb' is unknown"),
    ],
)
def test_bad_arguments_are_user_errors(frame_root, tmp_path, kwargs, message):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty" / "ClassA").mkdir(parents=True)
    arguments = {"src": "frames", "out": "flow"} | kwargs
    src, out = tmp_path / arguments.pop("src"), tmp_path / arguments.pop("out")
    with pytest.raises(UserError, match=message):
        extract_flow_dataset(src, out, **arguments)


def finish_without_work(task: flow_dataset.FlowTask) -> flow_dataset.FlowResult:
    return flow_dataset.FlowResult(task.video_id, 7)


def die(task: flow_dataset.FlowTask) -> flow_dataset.FlowResult:
    os._exit(3)  # a worker killed by the OOM killer or a segfault in a decoder


def test_dead_worker_ends_run_with_data_error_instead_of_hanging(tmp_path):
    tasks = [
        flow_dataset.FlowTask(f"C/v{i}", tmp_path, tmp_path / f"v{i}", "frames", "tvl1", None, 100)
        for i in range(5)
    ]
    # control: the same worker functions run fine in spawned processes
    results = list(flow_dataset._run_parallel(tasks, 2, work=finish_without_work))
    assert sorted((r.video_id, r.flow_frames) for r in results) == [
        (f"C/v{i}", 7) for i in range(5)
    ]
    with pytest.raises(DataError, match=r"worker process died .* processing C/v0") as error:
        list(flow_dataset._run_parallel(tasks, 2, work=die))
    assert "C/v4" not in str(error.value)  # only the videos in flight (at most 2 · workers)
