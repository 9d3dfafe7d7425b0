import json

import pytest

from vidssl import cli
from vidssl.data.synthetic.motion import MOTION_CLASSES

TINY = ["--classes", "2", "--videos-per-class", "2", "--frames", "8", "--size", "32"]


def test_writes_dataset_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "synth"
    code = cli.main(["data", "synth", "--out", str(out), *TINY, "--corrupt", "1", "--workers", "1"])
    assert code == 0
    line = capsys.readouterr().out.strip()
    assert "4 videos of 2 classes (42x32, 5-11 frames; 4 written, 0 reused)" in line
    assert "split 01: 3 train / 2 test, 1 corrupt" in line
    summary = json.loads((out / "synth.json").read_text())
    assert summary["params"] == {
        "classes": 2,
        "videos_per_class": 2,
        "frames": 8,
        "size": 32,
        "seed": 0,
        "corrupt": 1,
    }
    assert (out / "ucfTrainTestlist/classInd.txt").read_text() == "1 MoveUp\n2 MoveDown\n"
    assert (out / "UCF-101/MoveUp/v_MoveUp_g02_c02.avi").stat().st_size > 0  # the corrupt one

    assert cli.main(["data", "synth", "--out", str(out), *TINY, "--corrupt", "1"]) == 0
    assert "0 written, 4 reused" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "99"], "--classes 99: expected 1 to 20 (the number of implemented"),
        (["--size", "31"], "--size 31: expected an even frame height from 32 to 1080"),
        (["--videos-per-class", "1"], "--videos-per-class 1: expected at least 2"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, extra, message):
    code = cli.main(["data", "synth", "--out", str(tmp_path / "x"), *TINY, *extra])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"vidssl: error: {message}") and error.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_out_that_is_a_file_exits_2(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("data")
    assert cli.main(["data", "synth", "--out", str(target), *TINY]) == 2
    assert (
        capsys.readouterr().err
        == f"vidssl: error: --out {target} is a file; expected a new or empty folder\n"
    )
    assert target.read_text() == "data"


def test_help_lists_the_classes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "synth", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(m.name for m in MOTION_CLASSES[:3]) in text
    assert "--videos-per-class" in text
