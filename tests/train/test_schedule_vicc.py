"""ViCC's schedule (single RGB, single flow, cross RGB, cross flow) through the shared runner."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from tests.data.dataset_helpers import tiny_synth

from vidssl import cli
from vidssl.errors import ConfigError
from vidssl.methods.registry import load_config
from vidssl.optim import lr_multiplier
from vidssl.train.pretraining import run_pretraining
from vidssl.train.schedule import _stage_overrides, load_schedule, plan_stages, run_schedule


def test_vicc_ucf101_schedule_plan_alternates_streams_for_two_cycles() -> None:
    stages = plan_stages(load_schedule("vicc/ucf101_schedule"), Path("r"))
    assert [(s.label, s.spec.preset) for s in stages] == [
        ("rgb_single", "vicc/ucf101_rgb_single"), ("flow_single", "vicc/ucf101_flow_single"),
        ("cycle1_rgb_cross", "vicc/ucf101_rgb_cross"),
        ("cycle1_flow_cross", "vicc/ucf101_flow_cross"),
        ("cycle2_rgb_cross", "vicc/ucf101_rgb_cross"),
        ("cycle2_flow_cross", "vicc/ucf101_flow_cross"),
    ]  # fmt: skip
    d = {s.index: s.directory for s in stages}
    # §1.9: RGB c1 = RGB-1 + Flow-1, Flow c1 = Flow-1 + RGB c1, RGB c2 = RGB c1 + Flow c1, ...
    assert [s.pretrain_dirs for s in stages[2:]] == [
        (d[1], d[2]), (d[2], d[3]), (d[3], d[4]), (d[4], d[5]),
    ]  # fmt: skip


def test_take_epoch_trains_300_epochs_of_a_500_epoch_cosine() -> None:
    stages = plan_stages(load_schedule("vicc/ucf101_slurm_schedule"), Path("r"))
    rgb = _stage_overrides(stages[0], ["data.root=D"], [])
    assert rgb[-2:] == ["schedule.horizon_epochs=500", "trainer.epochs=300"]
    cfg = load_config(stages[0].spec.preset, rgb)
    assert (cfg.trainer.epochs, cfg.method.epoch_queue_starts) == (300, 150)
    # the last iteration of epoch 299 runs at lr ≈ 0.21 (the reference's save_epoch299)
    lr = cfg.optim.lr * lr_multiplier(cfg.schedule, cfg.optim.lr, 300 * 49 - 1, 49, 300)
    assert lr == pytest.approx(6e-4 + 0.5 * (0.6 - 6e-4) * (1 + math.cos(math.pi * 0.6)), rel=1e-3)
    assert 0.20 < lr < 0.21
    cross = _stage_overrides(stages[2], [], [])  # cross stages: the full 100 epochs
    assert not any(o.startswith(("trainer.epochs", "schedule.horizon")) for o in cross)
    bad = dataclasses.replace(stages[1], spec=dataclasses.replace(stages[1].spec, take_epoch=501))
    with pytest.raises(ConfigError, match="take_epoch=501 is beyond its 500-epoch schedule"):
        _stage_overrides(bad, [], [])


class _InterruptError(Exception):
    pass


def _queue_of(run: Path) -> torch.Tensor:
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    return state["queue"]


@pytest.mark.slow
def test_vicc_tiny_schedule_runs_all_stages_and_resumes_after_interruption(
    tmp_path: Path, capsys
) -> None:
    from vidssl.data.flow.dataset import extract_flow_dataset

    root = tiny_synth(tmp_path / "synth")
    extract_flow_dataset(root / "UCF-101", root / "tvl1_flow", source_kind="videos",
                         method="farneback", workers=1, progress=False)  # fmt: skip
    run_dir = tmp_path / "sched"
    # batch 2, a 4-row queue: filled by steps 1-2, used from step 3 on
    overrides = [f"data.root={root}", f"trainer.run_dir={run_dir}", "data.batch_size=2",
                 "method.queue_size=4", "trainer.max_steps=3",
                 "trainer.progress_bar_refresh=0"]  # fmt: skip
    interrupted: list[bool] = []

    def interrupted_in_stage_3(cfg, source=""):
        if cfg.trainer.run_dir.endswith("03_cycle1_rgb_cross") and not interrupted:
            interrupted.append(True)
            cfg.trainer.max_steps = 1  # one step (a checkpoint exists), then "get killed"
            run_pretraining(cfg, source)
            raise _InterruptError
        return run_pretraining(cfg, source)

    with pytest.raises(_InterruptError):
        run_schedule("vicc/tiny_schedule", overrides, pretrain_fn=interrupted_in_stage_3)
    stage3 = run_dir / "03_cycle1_rgb_cross"
    assert (stage3 / "checkpoints" / "last.ckpt").is_file() and not (stage3 / "stage.json").exists()
    assert cli.main(["pretrain", "vicc/tiny_schedule", *overrides]) == 0  # continues at stage 3
    printed = capsys.readouterr().out
    assert "| 4 | cycle1_flow_cross | flow |" in printed and "| rgb+flow |" in printed
    summary = json.loads((run_dir / "schedule.json").read_text())
    records = summary["stages"]
    assert [r["label"] for r in records] == [
        "rgb_single", "flow_single", "cycle1_rgb_cross", "cycle1_flow_cross",
    ]  # fmt: skip
    assert [r["global_step"] for r in records] == [3, 3, 3, 3]  # stage 3 went on from step 1
    for record in records:
        assert 0.0 <= record["retrieval"]["R@1"] <= 1.0
        assert (Path(record["encoder"]) / "encoder.json").is_file()
    # single stages: 2 views of 4 rows; cross stages: 4 views; every queue full after 3 steps
    for index, views in ((1, 2), (2, 2), (3, 4), (4, 4)):
        queue = _queue_of(Path(records[index - 1]["directory"]))
        assert queue.shape == (views, 1, 4, 128) and queue[:, 0, -1].any(dim=1).all()
    final = summary["final"]  # the newest RGB and flow encoders, alone and fused (R+F)
    assert final["stages"] == {"rgb": "cycle1_rgb_cross", "flow": "cycle1_flow_cross"}
    assert set(final["retrieval"]) == {"rgb", "flow", "rgb+flow"}
    for stream, recall in final["retrieval"].items():
        assert 0.0 <= recall["R@1"] <= recall["R@5"] <= 1.0, stream
    assert final["retrieval"]["rgb"]["R@1"] == records[2]["retrieval"]["R@1"]
    assert "| rgb+flow |" in (run_dir / "final.md").read_text()
    flow_cfg = (run_dir / "04_cycle1_flow_cross" / "config.yaml").read_text()
    assert str(stage3) in flow_cfg and str(run_dir / "02_flow_single") in flow_cfg
    assert "reverse: true" in flow_cfg
    exported = json.loads(
        (run_dir / "04_cycle1_flow_cross" / "encoder" / "encoder.json").read_text()
    )
    assert json.dumps(exported).count('"flow"') >= 1
    with (stage3 / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # batch 2 of 2 classes: a step with a same-class pair logs the agreement and its
    # count-matched baseline together; a step without one logs neither
    logged = [
        tuple(row.get(k) not in (None, "") for k in ("train/code_agreement",
                                                     "train/code_agreement_other_class"))
        for row in rows
    ]  # fmt: skip
    assert set(logged) <= {(True, True), (False, False)}
    assert [float(r["train/queue_used"]) for r in rows if r.get("train/queue_used")][-1] == 1.0
