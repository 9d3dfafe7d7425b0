import json

import numpy as np

from vidssl.bench.flow import moving_texture
from vidssl.cli import main


def test_moving_texture_translates_by_2_1_per_frame():
    frames = moving_texture(3, 16, 24, seed=0)
    assert frames.shape == (3, 16, 24, 3) and frames.dtype.name == "uint8"
    assert (frames[2] == np.roll(frames[0], (2, 4), axis=(0, 1))).all()


def test_bench_flow_tiny_writes_json(tmp_path, capsys):
    out = tmp_path / "flow.json"
    argv = ["bench", "flow", "--sizes", "16x24", "--videos", "2", "--pairs", "2"]
    assert main([*argv, "--workers", "1,2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [(r["method"], r["workers"]) for r in rows] == [
        ("tvl1", 1),
        ("farneback", 1),
        ("tvl1", 2),
        ("farneback", 2),
    ]
    for row in rows:
        assert (row["height"], row["width"], row["frame_pairs"]) == (16, 24, 4)
        assert row["pairs_per_s"] > 0
        assert abs(row["pairs_per_s"] - 4 / row["seconds"]) <= 0.02 * row["pairs_per_s"] + 0.01
    assert rows[0]["speedup_vs_1_worker"] == 1.0
    assert "| tvl1 | 16×24 | 2 | 4 |" in capsys.readouterr().out


def test_bench_flow_bad_option_is_exit_2(capsys):
    assert main(["bench", "flow", "--sizes", "big"]) == 2
    assert "--sizes item 'big' is not HEIGHTxWIDTH" in capsys.readouterr().err
