import contextlib
import pickle
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from vidssl.data.sources import FrameFolder, FrameSource, VideoFile, find_videos, video_file
from vidssl.errors import CorruptVideoError
from vidssl.utils.jpeg import decode_jpeg, encode_jpeg


def decode_all(path) -> np.ndarray:
    """Ground truth: a plain sequential PyAV decode of every frame."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def first_packet_pts(path) -> int:
    with av.open(str(path)) as container:
        return next(p.pts for p in container.demux(video=0) if p.size)


def index_sets(n_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random sets, two far-apart 8-frame clips, duplicates, unsorted, first and last frame."""
    sets = [rng.integers(0, n_frames, size=rng.integers(1, 10)) for _ in range(6)]
    sets.append(np.r_[np.arange(2, 10), np.arange(n_frames - 9, n_frames - 1)])
    sets.append(np.array([n_frames - 1, 3, 3, n_frames - 1, 0]))
    sets.append(np.array([n_frames - 1]))
    return sets


# name, codec, gop, bframes, frames, expected way frames are named after the index is built
VIDEO_CASES = [
    ("x264_gop16.mp4", "libx264", 16, False, 70, "dts"),
    ("x264_gop250.mp4", "libx264", 250, False, 300, "dts"),
    ("x264_gop16.avi", "libx264", 16, False, 70, "dts"),
    ("mpeg4_gop16.avi", "mpeg4", 16, False, 70, "dts"),
    ("mpeg4_gop16.mp4", "mpeg4", 16, False, 70, "dts"),
    ("x264_bframes.mkv", "libx264", 16, True, 70, "pts"),
    ("x264_bframes.mp4", "libx264", 16, True, 70, "pts"),
    ("x264_bframes.avi", "libx264", 16, True, 70, None),  # AVI pts are made up: count frames
]


@pytest.mark.parametrize(("name", "codec", "gop", "bframes", "n_frames", "stamp"), VIDEO_CASES)
def test_video_file_matches_sequential_decode(
    make_video, name, codec, gop, bframes, n_frames, stamp
):
    path = make_video(
        name, n_frames=n_frames, gop=gop, codec=codec, bframes=bframes, height=32, width=32
    )
    truth = decode_all(path)
    video = VideoFile(path)
    assert len(video) == len(truth) == n_frames
    rng = np.random.default_rng(n_frames + gop)
    for indices in index_sets(n_frames, rng):
        clip = video.read(indices)
        assert clip.dtype == torch.uint8 and clip.shape == (len(indices), 32, 32, 3)
        np.testing.assert_array_equal(clip.numpy(), truth[indices])
    assert video._index.stamp == stamp
    assert isinstance(video, FrameSource)


def test_h264_in_avi_starts_at_pts_1_and_still_reads_frame_0(make_video):
    path = make_video("start.avi", n_frames=20, gop=8)
    assert first_packet_pts(path) == 1
    np.testing.assert_array_equal(VideoFile(path).read([0, 1]).numpy(), decode_all(path)[:2])


def test_stream_with_open_gop_b_frames(tmp_path):
    """MPEG-4 with B-frames: frames displayed before a keyframe are decoded after it."""
    from tests.conftest import frame_pattern

    path = tmp_path / "open_gop.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25, 1))
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.gop_size, stream.codec_context.max_b_frames = 12, 2
        for array in frame_pattern(50, 32, 32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    truth = decode_all(path)
    video = VideoFile(path)
    for indices in [*index_sets(50, np.random.default_rng(1)), np.arange(10, 15)]:
        np.testing.assert_array_equal(video.read(indices).numpy(), truth[indices])


class _CountingContainer:
    """Wraps a PyAV container and counts the frames it hands to the decoder (packets with data).

    Without B-frames and with one thread, the decoder returns each frame from its own packet, so
    this is the number of frames decoded.
    """

    def __init__(self, container, counter):
        self._container, self._counter = container, counter

    def __getattr__(self, name):
        return getattr(self._container, name)

    def demux(self, *args, **kwargs):
        for packet in self._container.demux(*args, **kwargs):
            if packet.size:
                self._counter.append(packet)
            yield packet


def test_seek_decodes_only_the_needed_spans(make_video, monkeypatch):
    path = make_video("gop16.mp4", n_frames=240, gop=16, height=16, width=16)
    video = VideoFile(path)
    assert len(video) == 240
    decoded = []
    original_open = VideoFile._open

    @contextlib.contextmanager
    def counting_open(self, reuse=False):
        with original_open(self, reuse) as (container, stream, reformatter):
            yield _CountingContainer(container, decoded), stream, reformatter

    monkeypatch.setattr(VideoFile, "_open", counting_open)
    np.testing.assert_array_equal(video.read([200, 5]).numpy(), decode_all(path)[[200, 5]])
    # keyframe 0 → frame 5 is 6 frames, keyframe 192 → frame 200 is 9 frames; nothing between
    assert len(decoded) == 6 + 9
    decoded.clear()
    video.read(np.arange(20, 52))  # one 32-frame clip spanning three GOPs: one pass from 16
    assert len(decoded) == 52 - 16


def test_out_of_range_and_empty_indices(make_video):
    video = VideoFile(make_video("short.mp4", n_frames=12))
    with pytest.raises(IndexError, match="12"):
        video.read([3, 12])
    with pytest.raises(IndexError):
        video.read([-1])
    with pytest.raises(ValueError, match="at least one"):
        video.read([])


def _write_audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.parametrize(
    "kind", ["zero", "garbage", "half.avi", "half.mp4", "half.mkv", "audio", "missing"]
)
def test_corrupt_files_raise_corrupt_video_error(make_video, tmp_path, kind):
    if kind == "zero":
        path = tmp_path / "zero.mp4"
        path.write_bytes(b"")
    elif kind == "garbage":
        path = tmp_path / "garbage.avi"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    elif kind.startswith("half"):
        whole = make_video("whole" + kind[4:], n_frames=60)
        path = tmp_path / kind
        data = whole.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "audio":
        path = tmp_path / "audio.wav"
        _write_audio_only(path)
    else:
        path = tmp_path / "missing.mp4"
    with pytest.raises(CorruptVideoError, match=path.name):
        len(VideoFile(path))
    with pytest.raises(CorruptVideoError, match=path.name):
        VideoFile(path).read([0])
    with pytest.raises(CorruptVideoError, match=path.name):
        list(VideoFile(path).iter_frames())


def test_truncated_mp4_with_index_up_front(tmp_path):
    """moov before mdat: the header survives a cut, the missing frames must still be reported."""
    from tests.conftest import frame_pattern

    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "8", "bf": "0"})
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for array in frame_pattern(40, 32, 32):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    video = VideoFile(cut)
    assert len(video) == 40  # what the header promises
    np.testing.assert_array_equal(video.read([0, 3]).numpy(), decode_all(whole)[[0, 3]])
    with pytest.raises(CorruptVideoError, match=r"cut\.mp4"):
        video.read([39])
    with pytest.raises(CorruptVideoError, match=r"cut\.mp4"):
        list(video.iter_frames())


def test_iter_frames_and_short_side_resize(make_video):
    path = make_video("resize.mp4", n_frames=10, height=48, width=64)
    truth = decode_all(path)
    np.testing.assert_array_equal(np.stack(list(VideoFile(path).iter_frames())), truth)
    small = VideoFile(path, short_side=24).read([0, 9]).numpy()
    assert small.shape == (2, 24, 32, 3)
    block_means = truth[[0, 9]].reshape(2, 24, 2, 32, 2, 3).astype(float).mean(axis=(2, 4))
    assert np.abs(small - block_means).mean() < 4  # area downscale ≈ 2×2 block average


def test_video_file_pickles_and_uses_no_open_handle(make_video):
    path = make_video("pickle.mp4", n_frames=20)
    video = VideoFile(path)
    before = video.read([4, 17]).numpy()
    clone = pickle.loads(pickle.dumps(video))
    np.testing.assert_array_equal(clone.read([4, 17]).numpy(), before)
    assert len(clone) == 20


def test_find_videos_is_recursive_and_skips_hidden(tmp_path):
    for name in ["b/x.avi", "a/y.MP4", "a/deep/z.mkv", "a/notes.txt", ".hidden/w.avi", "a/.v.mp4"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path)]
    assert found == ["a/deep/z.mkv", "a/y.MP4", "b/x.avi"]


# ----------------------------------------------------------------------------------- frame folders


def _write_frames(folder, template, n, height=24, width=32):
    folder.mkdir(parents=True)
    images = []
    for i in range(n):
        image = np.full((height, width, 3), 20 * i, np.uint8)
        (folder / template.format(i + 1)).write_bytes(encode_jpeg(image, quality=95))
        images.append(decode_jpeg((folder / template.format(i + 1)).read_bytes()))
    return np.stack(images)


@pytest.mark.parametrize(
    "template", ["image_{:05d}.jpg", "frame{:06d}.jpg", "img_{:05d}.jpg", "flow_{:05d}.jpg"]
)
def test_frame_folder_naming_variants(tmp_path, template):
    truth = _write_frames(tmp_path / "v", template, 12)
    (tmp_path / "v" / "notes.txt").write_text("not a frame")
    folder = FrameFolder(tmp_path / "v")
    assert len(folder) == 12
    indices = [11, 0, 5, 5]
    clip = folder.read(indices)
    assert clip.dtype == torch.uint8 and clip.shape == (4, 24, 32, 3)
    np.testing.assert_array_equal(clip.numpy(), truth[indices])
    # frame 10 sorts after frame 9 (numeric order), and its grey level says which frame it is
    assert abs(int(clip[0].float().mean()) - 20 * 11) <= 2


def test_frame_folder_draft_decoding_size(tmp_path):
    _write_frames(tmp_path / "v", "image_{:05d}.jpg", 2, height=240, width=320)
    assert FrameFolder(tmp_path / "v").read([0]).shape == (1, 240, 320, 3)
    assert FrameFolder(tmp_path / "v", min_short_side=112).read([0]).shape == (1, 120, 160, 3)
    assert FrameFolder(tmp_path / "v", min_short_side=60).read([1]).shape == (1, 60, 80, 3)


def test_frame_folder_errors(tmp_path):
    with pytest.raises(CorruptVideoError, match="missing"):
        len(FrameFolder(tmp_path / "missing"))
    _write_frames(tmp_path / "v", "image_{:05d}.jpg", 3)
    (tmp_path / "v" / "image_00002.jpg").write_bytes(b"not a jpeg")
    folder = FrameFolder(tmp_path / "v")
    assert folder.read([0, 2]).shape[0] == 2
    with pytest.raises(CorruptVideoError, match="frame 1"):
        folder.read([1])
    with pytest.raises(IndexError):
        folder.read([3])
    assert pickle.loads(pickle.dumps(folder)).read([2]).shape == (1, 24, 32, 3)


def test_index_cache_is_bounded(make_video, monkeypatch):
    monkeypatch.setattr(video_file, "_INDEX_CACHE_SIZE", 2)
    video_file._INDEX_CACHE.clear()
    for i in range(3):
        len(VideoFile(make_video(f"c{i}.mp4", n_frames=5)))
    assert len(video_file._INDEX_CACHE) == 2


# ------------------------------------------------------------------------ decoding costs kept low


def test_open_containers_are_reused_bounded_and_closed(make_video, monkeypatch):
    monkeypatch.setattr(video_file, "OPEN_CONTAINERS", 2)
    video_file.clear_caches()
    paths = [make_video(f"open{i}.mp4", n_frames=20) for i in range(3)]
    truths = [decode_all(path) for path in paths]
    videos = [VideoFile(path) for path in paths]
    np.testing.assert_array_equal(videos[0].read([3, 4]).numpy(), truths[0][[3, 4]])
    (key,) = video_file._OPEN
    kept = video_file._OPEN[key][0]
    np.testing.assert_array_equal(videos[0].read([17, 2]).numpy(), truths[0][[17, 2]])
    assert video_file._OPEN[key][0] is kept  # the same container served the second read
    for video, truth in zip(videos[1:], truths[1:], strict=True):
        np.testing.assert_array_equal(video.read([0, 19]).numpy(), truth[[0, 19]])
    assert len(video_file._OPEN) == 2 and key not in video_file._OPEN  # least recent closed
    with pytest.raises(AssertionError, match="not open"):  # PyAV's answer on a closed container
        next(kept.demux(video=0))
    video_file.close_open_containers()
    assert not video_file._OPEN


def test_forked_child_never_reuses_the_parents_containers(make_video):
    import os

    path = make_video("fork.mp4", n_frames=30)
    truth = decode_all(path)
    video = VideoFile(path)
    video.read([5])
    assert len(video_file._OPEN) >= 1
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report how many containers it inherited open, then read
        try:
            inherited = len(video_file._OPEN)
            ok = np.array_equal(video.read([29, 6]).numpy(), truth[[29, 6]])
            os.write(write_end, bytes([inherited, ok]))
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 2)
    os.waitpid(pid, 0)
    assert answer == bytes([0, 1])
    np.testing.assert_array_equal(video.read([7]).numpy(), truth[[7]])  # parent's still usable


def test_unwanted_non_reference_frames_are_not_decoded(make_video, monkeypatch):
    path = make_video("skip.mp4", n_frames=64, gop=64, bframes=True, height=32, width=32)
    truth = decode_all(path)
    with av.open(str(path)) as container:  # which frames no other frame refers to
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        reference = {frame.pts for frame in container.decode(stream)}
    with av.open(str(path)) as container:
        display_pts = sorted(packet.pts for packet in container.demux(video=0) if packet.size)
    assert len(reference) < 64  # x264 made non-reference B-frames
    outputs = []
    original = video_file._decode_packet

    def counting(codec, packet):
        frames = original(codec, packet)
        outputs.extend(frames)
        return frames

    monkeypatch.setattr(video_file, "_decode_packet", counting)
    video_file.clear_caches()
    indices = np.arange(0, 64, 8)  # a strided clip from one keyframe: 1 seek, one pass
    np.testing.assert_array_equal(VideoFile(path).read(indices).numpy(), truth[indices])
    # decoded: the reference frames up to the last wanted one, and the wanted ones; nothing else
    expected = {pts for d, pts in enumerate(display_pts[:57]) if pts in reference or d % 8 == 0}
    assert sorted(frame.pts for frame in outputs) == sorted(expected)
    assert len(expected) < 57


def test_seek_lands_on_the_keyframe_before_the_clip_with_b_frames(make_video, monkeypatch):
    path = make_video("land.mp4", n_frames=70, gop=16, bframes=True, height=32, width=32)
    with av.open(str(path)) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size]
    display_pts = sorted(pts for pts, _ in packets)
    assert (display_pts[32], True) in packets  # the keyframe shown as frame 32
    fed = []
    original = video_file._decode_packet

    def recording(codec, packet):
        fed.append(packet.pts)
        return original(codec, packet)

    monkeypatch.setattr(video_file, "_decode_packet", recording)
    video_file.clear_caches()
    indices = np.arange(40, 44)
    np.testing.assert_array_equal(VideoFile(path).read(indices).numpy(), decode_all(path)[indices])
    assert fed[0] == display_pts[32]  # not the keyframe a GOP earlier
    assert len(fed) <= 44 - 32 + 4  # the span plus the decoder's reorder delay
