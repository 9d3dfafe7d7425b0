import os

import av
import numpy as np
import pytest

from vidssl.cli import main
from vidssl.data.sources import FrameFolder, LmdbVideo
from vidssl.data.sources.frame_files import list_frames
from vidssl.utils.jpeg import decode_jpeg


def decode_all(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture
def video_tree(tmp_path, make_video):
    """videos/Run/a.avi (20 frames), videos/Run/b.mp4 (12), videos/Sit/c.mkv (9), Sit/bad.avi."""
    make_video("videos/Run/a.avi", n_frames=20, height=32, width=48)
    make_video("videos/Run/b.mp4", n_frames=12, height=32, width=48)
    make_video("videos/Sit/c.mkv", n_frames=9, height=32, width=48)
    (tmp_path / "videos/Sit/bad.avi").write_bytes(b"RIFF" + bytes(range(256)) * 40)
    return tmp_path / "videos"


def test_frames_extracts_every_video_and_lists_corrupt(video_tree, tmp_path, capsys):
    out = tmp_path / "frames"
    assert main(["data", "frames", "--videos", str(video_tree), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "4 videos: 3 extracted (41 frames), 0 already done, 1 corrupt" in stdout
    assert "corrupt: " in stdout and "bad.avi" in stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*")) == [
        "Run/a",
        "Run/b",
        "Sit/c",
    ]
    files = list_frames(out / "Run/a")
    assert [f.name for f in files[:2]] == ["image_00001.jpg", "image_00002.jpg"] and len(
        files
    ) == 20
    truth = decode_all(video_tree / "Run/a.avi")
    for i in (0, 19):
        assert np.abs(decode_jpeg(files[i].read_bytes()).astype(int) - truth[i]).mean() < 2.5


def test_frames_naming_short_side_and_workers(video_tree, tmp_path):
    out = tmp_path / "small"
    argv = ["data", "frames", "--videos", str(video_tree), "--out", str(out)]
    assert (
        main(
            [*argv, "--naming", "frame", "--short-side", "16", "--quality", "90", "--workers", "2"]
        )
        == 0
    )
    files = list_frames(out / "Sit/c")
    assert [f.name for f in files] == [f"frame{i:06d}.jpg" for i in range(1, 10)]
    assert decode_jpeg(files[0].read_bytes()).shape == (16, 24, 3)


def test_frames_resumes_after_a_killed_run(video_tree, tmp_path, capsys):
    out = tmp_path / "frames"
    argv = ["data", "frames", "--videos", str(video_tree), "--out", str(out)]
    assert main(argv) == 0
    # simulate a run killed while writing Run/b: the published folder is absent, a partial remains
    for f in (out / "Run/b").iterdir():
        f.unlink()
    (out / "Run/b").rmdir()
    partial = out / "Run/.b.partial-x1y2"
    partial.mkdir()
    (partial / "image_00001.jpg").write_bytes(b"half")
    kept = out / "Run/a/image_00001.jpg"
    stamp = kept.stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 videos: 1 extracted (12 frames), 2 already done, 1 corrupt" in capsys.readouterr().out
    assert not partial.exists() and len(list_frames(out / "Run/b")) == 12
    assert kept.stat().st_mtime_ns == stamp
    assert main([*argv, "--workers", "2"]) == 0  # nothing left to do
    assert "0 extracted (0 frames), 3 already done, 1 corrupt" in capsys.readouterr().out


def test_frames_user_errors(tmp_path, capsys):
    assert (
        main(["data", "frames", "--videos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "nope is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(["data", "frames", "--videos", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "no video files" in capsys.readouterr().err
    argv = ["data", "frames", "--videos", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--quality", "0"]) == 2
    assert "--quality 0" in capsys.readouterr().err


def test_lmdb_command_packs_extracted_frames(video_tree, tmp_path, capsys):
    frames = tmp_path / "frames"
    main(["data", "frames", "--videos", str(video_tree), "--out", str(frames)])
    db = tmp_path / "db" / "tiny_frame.lmdb"
    assert main(["data", "lmdb", "--frames", str(frames), "--out", str(db)]) == 0
    assert "wrote 3 videos (41 frames)" in capsys.readouterr().out
    for name in ("Run/a", "Run/b", "Sit/c"):
        folder, record = FrameFolder(frames / name), LmdbVideo(db, name)
        assert len(record) == len(folder)
        np.testing.assert_array_equal(
            record.read([0, len(folder) - 1]).numpy(), folder.read([0, len(folder) - 1]).numpy()
        )
    assert sorted((db.parent / "tiny_frame.lmdb-order").read_text().split("\n")) == [
        "Run/a",
        "Run/b",
        "Sit/c",
    ]
    assert main(["data", "lmdb", "--frames", str(tmp_path / "missing"), "--out", str(db)]) == 2
    assert "missing does not exist" in capsys.readouterr().err


def test_check_videos_lists_bad_files(video_tree, tmp_path, capsys):
    (video_tree / "Run/cut.mkv").write_bytes((video_tree / "Sit/c.mkv").read_bytes()[:1500])
    assert main(["data", "check", str(video_tree), "--min-frames", "10"]) == 1
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 4
    assert lines[0].startswith(f"{video_tree / 'Run/cut.mkv'}: unreadable (")
    assert (
        lines[1]
        == f"{video_tree / 'Sit/bad.avi'}: unreadable (" + lines[1].split(": unreadable (", 1)[1]
    )
    assert lines[2] == f"{video_tree / 'Sit/c.mkv'}: too short (9 < 10 frames)"
    assert lines[3] == "checked 5 video items: 3 bad (2 unreadable, 0 empty, 1 too short)"
    assert main(["data", "check", str(video_tree / "Run/a.avi")]) == 0
    assert (
        capsys.readouterr().out.strip()
        == "checked 1 video items: 0 bad (0 unreadable, 0 empty, 0 too short)"
    )


def test_check_frame_root_and_lmdb(video_tree, tmp_path, capsys):
    frames = tmp_path / "frames"
    main(["data", "frames", "--videos", str(video_tree), "--out", str(frames)])
    (frames / "Sit/empty").mkdir()
    (frames / "Run/a/image_00005.jpg").write_bytes(b"broken")
    capsys.readouterr()
    assert main(["data", "check", str(frames), "--workers", "2"]) == 1
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines[0].startswith(f"{frames / 'Run/a'}: unreadable (") and "frame 4" in lines[0]
    assert lines[1] == f"{frames / 'Sit/empty'}: empty (0 frames)"
    assert lines[2] == "checked 4 frames items: 2 bad (1 unreadable, 1 empty, 0 too short)"
    assert main(["data", "check", str(frames / "Run/b")]) == 0
    capsys.readouterr()

    db = tmp_path / "frames.lmdb"
    main(["data", "lmdb", "--frames", str(frames), "--out", str(db)])
    capsys.readouterr()
    assert main(["data", "check", str(db)]) == 1
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines[0].startswith(f"{db}:Run/a: unreadable (") and "frame 4" in lines[0]
    assert lines[1] == f"{db}:Sit/empty: empty (0 frames)"
    assert lines[2] == "checked 4 lmdb items: 2 bad (1 unreadable, 1 empty, 0 too short)"


def test_check_user_errors(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    (tmp_path / "nothing").mkdir()
    assert main(["data", "check", str(tmp_path / "nothing")]) == 2
    assert "holds no videos" in capsys.readouterr().err
    (tmp_path / "fake.lmdb").write_bytes(b"not an lmdb")
    assert main(["data", "check", str(tmp_path / "fake.lmdb")]) == 2
    assert "not a readable CoCLR LMDB" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path), "--min-frames", "0"]) == 2
    assert os.path.exists(tmp_path / "fake.lmdb")
