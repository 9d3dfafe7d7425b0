"""`vidssl pretrain pcl/tiny`: runs, resumes exactly, exports a residual encoder that
`vidssl eval retrieval --preset pcl_tiny` and `vidssl eval finetune --preset pcl_tiny_finetune`
evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from vidssl import cli


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from vidssl.data.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("pcl_synth")
    # 2 classes x 6 videos of 30-66 frames (tuples of 3x8 frames + 2x4 need 32)
    make_synthetic_dataset(root, classes=2, videos_per_class=6, frames=48, size=40, workers=1)
    return root


def _args(synth, run_dir, *extra):
    return ["pretrain", "pcl/tiny", f"data.root={synth}", f"trainer.run_dir={run_dir}",
            "data.batch_size=2", "trainer.progress_bar_refresh=0", *extra]  # fmt: skip


def _state(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["global_step"], checkpoint["state_dict"], checkpoint


@pytest.mark.slow
def test_pretrain_pcl_resumes_exactly_and_exports_for_pcl_retrieval(synth, tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli.main(_args(synth, straight, "trainer.epochs=2")) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("pretrain pcl: 6 steps, final loss ")
    # interrupted mid-epoch (step 4 of 6), then resumed to the end
    assert cli.main(_args(synth, split, "trainer.epochs=2", "trainer.max_steps=4")) == 0
    assert cli.main(_args(synth, split, "trainer.epochs=2")) == 0
    step_a, state_a, ckpt_a = _state(straight)
    step_b, state_b, ckpt_b = _state(split)
    assert step_a == step_b == 6
    assert state_a.keys() == state_b.keys()
    assert state_a["bank_clip1"].shape == (6, 16)  # one row per training video
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    # the plateau scheduler stepped on val/loss after each epoch (same state in both runs)
    plateau_a, plateau_b = ckpt_a["vidssl"]["plateau"], ckpt_b["vidssl"]["plateau"]
    assert plateau_a["patience"] == 50 and plateau_a["factor"] == 0.1
    assert plateau_a == plateau_b and plateau_a["last_epoch"] == 2
    # resumed from an epoch-end checkpoint: epoch 1's step is kept, epoch 2's follows
    third = tmp_path / "third"
    assert cli.main(_args(synth, third, "trainer.epochs=1")) == 0
    assert _state(third)[2]["vidssl"]["plateau"]["last_epoch"] == 1
    assert cli.main(_args(synth, third, "trainer.epochs=2")) == 0
    step_c, state_c, ckpt_c = _state(third)
    assert step_c == 6
    assert ckpt_c["vidssl"]["plateau"] == plateau_a
    assert all(torch.equal(state_a[key], state_c[key]) for key in state_a)

    info = json.loads((straight / "encoder" / "encoder.json").read_text())
    assert info["residual"] == "pcl" and info["arch"] == "r3d_10"
    assert info["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert info["source"]["method"] == "pcl"

    out = tmp_path / "eval"
    eval_args = ["eval", "retrieval", "--encoder", str(straight / "encoder"), "--preset",
                 "pcl_tiny", "--root", str(synth), "--out", str(out)]  # fmt: skip
    assert cli.main(eval_args) == 0
    record = json.loads((out / "retrieval.json").read_text())
    rgb = record["results"]["rgb"]
    assert rgb["queries"] == 6 and rgb["gallery"] == 6
    assert 0.0 <= rgb["R@1"] <= 1.0 and rgb["R@5"] == 1.0  # 2 classes
    assert record["protocol"]["name"] == "pcl"
    ft_args = ["eval", "finetune", "--encoder", str(straight / "encoder"), "--preset",
               "pcl_tiny_finetune", "--root", str(synth), "--out", str(out), "--epochs", "1"]
    assert cli.main(ft_args) == 0
    finetune = json.loads((out / "finetune.json").read_text())["results"]["rgb"]
    assert finetune["videos"] == 6 and finetune["top5"] == 1.0
