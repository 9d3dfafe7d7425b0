"""``vidssl data charades``: 24 fps frames named as the frame lists expect, resumable."""

from __future__ import annotations

import numpy as np

from vidssl.cli import main
from vidssl.data.sources.video_io import write_video
from vidssl.downstream.charades import read_frame_list, read_official_csv
from vidssl.downstream.charades.prepare import resample_indices

CSV_HEAD = (
    "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
)


def test_resampling_to_24_fps_picks_the_nearest_source_frame():
    assert resample_indices(10, 24.0) == list(range(10))
    # 30 fps: output frame i ← round(1.25·i); 30 frames give floor(30·24/30) = 24 outputs
    picked = resample_indices(30, 30.0)
    assert len(picked) == 24 and picked[:8] == [0, 1, 2, 4, 5, 6, 8, 9] and picked[-1] == 29
    assert resample_indices(0, 30.0) == []


def test_prepare_extracts_lists_and_resumes(tmp_path, capsys):
    videos, annotations, out = tmp_path / "videos", tmp_path / "ann", tmp_path / "out"
    rng = np.random.default_rng(0)
    write_video(videos / "AAAAA.mp4", rng.integers(0, 255, (20, 32, 48, 3), dtype=np.uint8), fps=24)
    write_video(videos / "BBBBB.mp4", rng.integers(0, 255, (30, 32, 48, 3), dtype=np.uint8), fps=30)
    (videos / "CCCCC.mp4").write_bytes(b"not a video")
    annotations.mkdir()
    (annotations / "Charades_v1_train.csv").write_text(
        CSV_HEAD + "AAAAA,s,x,6,7,Yes,x,y,z,c004 0.00 0.20,0.83\n"
        "CCCCC,s,x,6,7,Yes,x,y,z,c001 0.00 0.50,1.00\n"
    )
    (annotations / "Charades_v1_test.csv").write_text(
        CSV_HEAD + "BBBBB,s,x,6,7,Yes,x,y,z,c156 0.50 1.00,1.00\n"
    )
    args = ["data", "charades", "--videos", str(videos), "--annotations", str(annotations),
            "--out", str(out)]  # fmt: skip
    assert main(args) == 1  # CCCCC is unreadable: listed, exit 1
    assert "CCCCC.mp4" in (out / "failed_videos.txt").read_text()
    frames = out / "Charades_v1_rgb"
    assert len(list((frames / "AAAAA").glob("AAAAA-*.jpg"))) == 20
    assert len(list((frames / "BBBBB").glob("*.jpg"))) == 24  # 30 frames at 30 fps → 24 at 24
    assert (frames / "AAAAA" / "AAAAA-000001.jpg").is_file()
    (train,) = read_frame_list(out / "frame_lists" / "train.csv")
    (test,) = read_frame_list(out / "frame_lists" / "val.csv")
    assert (train.video_id, train.n_frames, test.video_id, test.n_frames) == (
        "AAAAA",
        20,
        "BBBBB",
        24,
    )
    assert train.frame_labels[:5] == ((4,),) * 5 and train.frame_labels[5] == ()  # 5/24 > 0.2
    assert (
        test.frame_labels
        == read_official_csv(out / "Charades_v1_test.csv", {"BBBBB": 24})[0].frame_labels
    )
    assert train.frame_paths[0] == "AAAAA/AAAAA-000001.jpg"
    stamp = (frames / "AAAAA").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 1  # rerun: only the failed video is retried
    assert "2 already done" in capsys.readouterr().out
    assert (frames / "AAAAA").stat().st_mtime_ns == stamp
