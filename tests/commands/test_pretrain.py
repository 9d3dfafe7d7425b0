"""``vidssl pretrain`` on tiny synthetic data: checkpoints, exported encoder, resume, errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from tests.data.dataset_helpers import tiny_synth

from vidssl import cli
from vidssl.models import load_encoder

PREFIX = "encoder_q.backbone."


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_pretrain")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"), corrupt=1)


def _args(preset, synth, run_dir, *extra):
    # 7 train videos (one corrupt), batch 2 → 3 steps per epoch
    return [
        "pretrain",
        preset,
        f"data.root={synth}",
        f"trainer.run_dir={run_dir}",
        "data.batch_size=2",
        "trainer.progress_bar_refresh=0",
        *extra,
    ]


def _checkpoint_backbone(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return state["global_step"], {
        k[len(PREFIX) :]: v for k, v in state["state_dict"].items() if k.startswith(PREFIX)
    }


@pytest.mark.parametrize("preset", ["infonce/tiny", "ubernce/tiny"])
def test_pretrain_exports_the_trained_encoder_and_resumes(synth, tmp_path, capsys, preset):
    run_dir = tmp_path / "run"
    assert cli.main(_args(preset, synth, run_dir, "trainer.max_steps=3")) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    method = preset.split("/")[0]
    assert line.startswith(f"pretrain {method}: 3 steps, final loss ")
    assert "skipped 1 unreadable videos: MoveUp/v_MoveUp_g02_c04.avi" in line
    step, trained = _checkpoint_backbone(run_dir)
    assert step == 3 and len(trained) == 462  # S3D backbone tensors
    encoder = load_encoder(run_dir / "encoder")
    exported = encoder.state_dict()
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    info = json.loads((run_dir / "encoder" / "encoder.json").read_text())
    assert (info["modality"], info["input_size"]) == ("rgb", [8, 32, 32])
    assert info["source"]["global_step"] == 3 and info["source"]["method"] == method
    assert info["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert info["extra"]["augmentation"] == "coclr"  # the trained stream's policy (tiny presets)

    # resume=auto (the default) continues the same run for another epoch
    assert cli.main(_args(preset, synth, run_dir, "trainer.epochs=2")) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"pretrain {method}: 6 ")
    step, resumed = _checkpoint_backbone(run_dir)
    key = "Conv_1a.conv1.weight"
    assert step == 6 and not torch.equal(resumed[key], trained[key])
    exported = load_encoder(run_dir / "encoder").state_dict()
    assert all(torch.equal(exported[k], resumed[k]) for k in resumed)


def test_missing_root_exits_2_with_one_line(tmp_path, capsys):
    code = cli.main(_args("infonce/tiny", tmp_path / "nowhere", tmp_path / "run"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vidssl: error: dataset root {tmp_path / 'nowhere'} does not exist")
    assert err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_dry_run_prints_the_resolved_config(tmp_path, capsys):
    assert cli.main(_args("ubernce/tiny", tmp_path, tmp_path / "run", "--dry-run")) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["method"]["name"] == "ubernce"
    assert resolved["data"]["root"] == str(tmp_path) and resolved["data"]["batch_size"] == 2
    assert resolved["data"]["augmentation"] == "coclr" and not (tmp_path / "run").exists()


def test_bad_override_exits_2(tmp_path, capsys):
    assert cli.main(_args("infonce/tiny", tmp_path, tmp_path / "run", "data.augmentaton=x")) == 2
    assert "data.augmentaton" in capsys.readouterr().err
