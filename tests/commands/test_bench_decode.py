import json

import numpy as np

from vidssl.bench import decode
from vidssl.cli import main


def test_check_frames_tells_wrong_frames_from_colour_differences():
    truth = np.stack([np.full((2, 3, 3), 40 * i, np.uint8) for i in range(4)])
    indices = np.array([1, 3])
    assert decode.check_frames(truth[[1, 3]], indices, truth) == (True, True, 0)
    shifted = truth[[1, 3]] + np.uint8(5)  # same frames, a slightly different conversion
    assert decode.check_frames(shifted, indices, truth) == (False, True, 5)
    early = truth[[0, 2]]  # frame i - 1 for frame i, as a reader with an off-by-one index
    assert decode.check_frames(early, indices, truth) == (False, False, 40)
    assert decode.check_frames(truth[[1]], indices, truth) == (False, False, 255)


def test_bench_decode_quick_reports_exactness_for_every_video_and_clip(tmp_path, capsys):
    out, table = tmp_path / "decode.json", tmp_path / "decode.md"
    argv = ["bench", "decode", "--quick", "--data-dir", str(tmp_path / "in")]
    assert main([*argv, "--out", str(out), "--table", str(table)]) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    readers = ["vidssl fresh", "vidssl warm", "pyav from start"]
    if decode.decord_available():
        readers += ["decord fresh", "decord warm"]
    else:
        assert any("decord is not installed" in note for note in report["notes"])
    videos = sorted(item["video"] for item in report["videos"])
    assert videos == ["h264-mp4_64x48.mp4", "mpeg4-avi_64x48.avi", "vp9-webm_64x48.webm"]
    clips = [name for name, _, _ in decode.CLIPS]
    assert sorted((r["video"], r["clip"], r["reader"]) for r in rows) == sorted(
        (v, c, r) for v in videos for c in clips for r in readers
    )
    for row in rows:
        assert row["reads"] == 1 and row["ms_median"] > 0
        if row["reader"] != "decord fresh" and row["reader"] != "decord warm":
            assert row["exact"] and row["right_frames"] and row["max_abs_diff"] == 0
        if row["reader"] == "vidssl warm" and decode.decord_available():
            decord_row = next(
                r
                for r in rows
                if (r["video"], r["clip"], r["reader"])
                == (row["video"], row["clip"], "decord warm")
            )
            assert row["vs_decord_warm"] == round(row["ms_median"] / decord_row["ms_median"], 3)
    printed = capsys.readouterr().out
    assert "| h264-mp4_64x48.mp4 | 32x1 |" in printed
    assert table.read_text().splitlines()[0].startswith("| video | clip | vidssl fresh ms |")


def test_bench_decode_missing_video_is_exit_2(tmp_path, capsys):
    assert main(["bench", "decode", "--quick", "--videos", str(tmp_path / "nope.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err
