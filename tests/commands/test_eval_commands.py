import json

import pytest
import torch

from vidssl import cli
from vidssl.eval.results import RECORD_KEYS

# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_eval_commands")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    args = ["--classes", "2", "--videos-per-class", "3", "--frames", "16", "--size", "32"]
    assert cli.main(["data", "synth", "--out", str(root / "synth"), *args, "--corrupt", "1"]) == 0
    from vidssl.models import build_backbone
    from vidssl.models.checkpoints.export import export_encoder

    torch.manual_seed(0)
    export_encoder(build_backbone("r3d_18", width_mult=0.125), root / "enc", input_size=(8, 32, 32))
    return root


def common(synth, out):
    return ["--encoder", str(synth / "enc"), "--preset", "tiny", "--root", str(synth / "synth"),
            "--out", str(out)]  # fmt: skip


def test_retrieval_end_to_end(synth, tmp_path, capsys):
    assert cli.main(["eval", "retrieval", *common(synth, tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "retrieval rgb: R@1" in printed and "skipped 1 unreadable videos" in printed
    record = json.loads((tmp_path / "retrieval.json").read_text())
    assert tuple(k for k in record if k in RECORD_KEYS) == RECORD_KEYS
    rgb = record["results"]["rgb"]
    keys = ["R@1", "R@5", "R@10", "R@20", "R@50", "queries", "gallery", "degenerate_features"]
    assert list(rgb) == keys and rgb["degenerate_features"] is False
    # split 01: 3 train (1 corrupt -> 2 in the gallery, one per class) / 4 test queries
    assert (rgb["queries"], rgb["gallery"]) == (4, 2)
    # the R@k values themselves are checked against a hand computation in
    # tests/eval/test_orchestration.py (a gallery of 2 makes every R@k here trivially true)
    assert record["skipped"]["count"] == 1 and len(record["skipped"]["rgb_train"]) == 1
    assert record["protocol"]["seq_len"] == 8 and record["protocol"]["resolution"] == 32
    assert record["encoders"]["rgb"]["sha256"] and record["encoders"]["rgb"]["arch"] == "r3d_18"
    assert "| rgb |" in (tmp_path / "retrieval.md").read_text()


def test_linear_and_finetune_end_to_end(synth, tmp_path, capsys):
    assert cli.main(["eval", "linear", *common(synth, tmp_path), "--epochs", "3"]) == 0
    linear = json.loads((tmp_path / "linear.json").read_text())
    keys = {"top1", "top5", "videos", "train_clips", "degenerate_features"}
    assert set(linear["results"]["rgb"]) == keys
    assert linear["results"]["rgb"]["degenerate_features"] is False
    assert linear["results"]["rgb"]["videos"] == 4 and linear["settings"]["linear"]["epochs"] == 3
    assert cli.main(["eval", "finetune", *common(synth, tmp_path), "--epochs", "1"]) == 0
    finetune = json.loads((tmp_path / "finetune.json").read_text())
    keys = set(finetune["results"]["rgb"])
    assert {"center_crop_top1", "five_crop_top1", "ten_crop_top1", "ten_crop_top5"} <= keys
    assert finetune["protocol"]["crops"].startswith("ten: 5 positions x flip 32 -> 32")
    assert "finetune rgb: center_crop_top1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpoint", "x.pth"], "give exactly one of --encoder DIR"),
        (["--set", "linear.epoch=3"], "unknown config key 'linear.epoch'; did you mean"),
        (["--preset", "nope"], "unknown eval preset 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(synth, tmp_path, capsys, extra, message):
    args = common(synth, tmp_path)
    if extra[0] == "--preset":
        args = args[:2] + args[4:]
    assert cli.main(["eval", "linear", *args, *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"vidssl: error: {message}") and error.count("\n") == 1


def test_missing_encoder_and_dataset_exit_2(synth, tmp_path, capsys):
    args = ["eval", "retrieval", "--preset", "tiny", "--root", str(synth / "synth")]
    assert cli.main([*args, "--encoder", str(tmp_path / "none")]) == 2
    assert "expected a directory with encoder.json" in capsys.readouterr().err
    args = ["eval", "retrieval", "--preset", "tiny", "--encoder", str(synth / "enc")]
    assert cli.main([*args, "--root", str(tmp_path / "nodata")]) == 2
    assert capsys.readouterr().err.startswith("vidssl: error: dataset root")


def test_python_api_two_stream_fusion(synth, tmp_path):
    from vidssl.eval.linear import run_linear_probe
    from vidssl.eval.run import run_retrieval

    # the RGB videos double as the "flow" store: identical streams, so fusion changes nothing
    media = str(synth / "synth" / "UCF-101")
    overrides = [f"data.root={synth / 'synth'}", f"data.flow_media={media}"]
    enc = synth / "enc"
    record = run_retrieval(enc, "tiny", overrides=overrides, flow_encoder=enc, out=tmp_path)
    results = record["results"]
    assert set(results) == {"rgb", "flow", "fused"}
    assert results["rgb"] == results["flow"] and results["rgb"]["degenerate_features"] is False
    assert results["fused"] == {
        k: v for k, v in results["rgb"].items() if k != "degenerate_features"
    }
    assert set(record["encoders"]) == {"rgb", "flow"}
    overrides.append("linear.epochs=2")
    linear = run_linear_probe(enc, "tiny", overrides=overrides, flow_encoder=enc, out=tmp_path)
    assert linear["results"]["fused"]["top1"] == linear["results"]["rgb"]["top1"]
    assert linear["files"]["json"].endswith("linear.json")


def test_constant_features_are_flagged_and_give_constant_predictions(synth, tmp_path, caplog):
    """Regression: an encoder whose eval-mode output is ~1e-22 for any clip (like S3D at init)
    gave exact chance with no hint why; the record now says ``degenerate_features``."""
    from tests.eval.eval_helpers import IDENTITY, MeanBackbone

    from vidssl.eval.encoders import EvalEncoder
    from vidssl.eval.linear import run_linear_probe
    from vidssl.eval.run import run_retrieval

    tiny = EvalEncoder(_Tiny(MeanBackbone()), IDENTITY, {"kind": "test", "sha256": None})
    overrides = [f"data.root={synth / 'synth'}", "linear.epochs=100"]
    with caplog.at_level("WARNING", logger="vidssl.eval.features"):
        linear = run_linear_probe(tiny, "tiny", overrides=overrides, out=tmp_path)
        retrieval = run_retrieval(tiny, "tiny", overrides=overrides, out=tmp_path)
    rgb = linear["results"]["rgb"]
    # 4 test videos, 2 per class: one prediction for all of them is right for exactly half
    assert rgb["degenerate_features"] is True and rgb["top1"] == 0.5
    assert retrieval["results"]["rgb"]["degenerate_features"] is True
    saved = json.loads((tmp_path / "linear.json").read_text())
    assert saved["results"]["rgb"]["degenerate_features"] is True
    for split in ("linear probe rgb train", "linear probe rgb test", "retrieval rgb test"):
        assert f"{split}: features are the same for every video" in caplog.text


class _Tiny(torch.nn.Module):
    """``MeanBackbone`` times 1e-22 (its bias too): input-dependent features at ~1e-22."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 1e-22
