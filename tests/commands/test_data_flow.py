import sys

import pytest

from vidssl.bench.flow import moving_texture
from vidssl.cli import main
from vidssl.data.sources.video_io import write_video
from vidssl.utils.jpeg import encode_jpeg


@pytest.fixture
def video_root(tmp_path):
    root = tmp_path / "videos"
    write_video(root / "ClassA" / "v1.avi", moving_texture(6, 32, 32, 0))
    write_video(root / "ClassB" / "v2.mp4", moving_texture(6, 32, 32, 1))
    return root


def test_data_flow_from_videos_exit_0(video_root, tmp_path, capsys):
    out = tmp_path / "flow"
    argv = ["data", "flow", "--videos", str(video_root), "--out", str(out), "--workers", "1"]
    assert main(argv) == 0  # default method: tvl1
    assert "flow: 2 videos done, 0 skipped (already done), 0 failed; 10 flow frames" in (
        capsys.readouterr().out
    )
    assert sorted(p.name for p in (out / "ClassB" / "v2").iterdir()) == [
        f"flow_{k:05d}.jpg" for k in range(1, 6)
    ]
    assert main(argv) == 0  # resumed: nothing left to do
    assert "0 videos done, 2 skipped" in capsys.readouterr().out


def test_data_flow_from_frames_with_unreadable_video_exit_1(tmp_path, capsys):
    frames = tmp_path / "frames"
    (frames / "ClassA" / "empty_video").mkdir(parents=True)  # a frame folder without frames
    good = frames / "ClassA" / "good"
    good.mkdir()
    for index, frame in enumerate(moving_texture(6, 32, 32, 2), start=1):
        (good / f"image_{index:05d}.jpg").write_bytes(encode_jpeg(frame))
    out = tmp_path / "flow"
    argv = ["data", "flow", "--frames", str(frames), "--out", str(out), "--method", "farneback"]
    assert main([*argv, "--workers", "1"]) == 1
    stdout = capsys.readouterr().out
    assert "failed: ClassA/empty_video:" in stdout and "fewer than 2 frames" in stdout
    assert "1 videos done, 0 skipped (already done), 1 failed; 5 flow frames" in stdout
    assert len(list((out / "ClassA" / "good").iterdir())) == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--videos", "{tmp}/nope"], "flow input {tmp}/nope is not a directory"),
        (["--videos", "{videos}", "--workers", "0"], "--workers must be >= 1"),
        (["--videos", "{videos}", "--quality", "80"], "quality must be 95..100"),
    ],
)
def test_bad_input_is_one_line_exit_2(video_root, tmp_path, capsys, extra, message):
    paths = {"tmp": tmp_path, "videos": video_root}
    argv = ["data", "flow", "--out", str(tmp_path / "flow")]
    assert main(argv + [item.format(**paths) for item in extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidssl: error: ") and message.format(**paths) in err
    assert "\n" not in err and not (tmp_path / "flow").exists()


def test_missing_opencv_is_exit_2(video_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    argv = ["data", "flow", "--videos", str(video_root), "--out", str(tmp_path / "flow")]
    assert main(argv) == 2
    assert "pip install 'vidssl[flow]'" in capsys.readouterr().err


def test_frames_or_videos_is_required(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "flow", "--out", str(tmp_path / "flow")])
    assert exit_info.value.code == 2
