from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from tests.engine_toy import ToyDataset, toy_config

from vidssl.methods.base import (
    BaseMethod,
    NonFiniteLossError,
    batch_size_of,
    capture_rng_state,
    restore_rng_state,
)
from vidssl.methods.registry import build_method
from vidssl.optim import lr_multiplier
from vidssl.train.engine import fit

STEPS_PER_EPOCH = 6  # ToyDataset(24) / batch 4


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_rng_state_round_trip() -> None:
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_batch_size_of_nested_batches() -> None:
    assert (
        batch_size_of({"views": [torch.zeros(5, 3), torch.zeros(5, 3)], "index": torch.arange(5)})
        == 5
    )
    assert batch_size_of([torch.zeros(7, 2)]) == 7 and batch_size_of({"label": 3}) == 1


def test_nan_stop_names_the_step_and_terms(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, "method.nan_steps=[2]")
    with pytest.raises(NonFiniteLossError) as info:
        fit(build_method(cfg), ToyDataset(), cfg)
    message = str(info.value)
    assert message.startswith(
        "non-finite loss at global step 2 (epoch 0) on this or another rank: loss=nan, mse="
    )
    assert "trainer.nan_policy=skip" in message and "\n" not in message


class ParameterSpy(Callback):
    def __init__(self) -> None:
        self.before: dict[int, torch.Tensor] = {}
        self.after: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.before[trainer.global_step] = pl_module.head.weight.detach().clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after[trainer.global_step - 1] = pl_module.head.weight.detach().clone()


def test_nan_skip_leaves_weights_untouched_and_counts(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, "method.nan_steps=[2,4]", "trainer.nan_policy=skip")
    method, spy = build_method(cfg), ParameterSpy()
    trainer = fit(method, ToyDataset(), cfg, callbacks=[spy])
    assert method.skipped_steps == 2 and trainer.global_step == 3 * STEPS_PER_EPOCH
    for step in (2, 4):
        assert torch.equal(spy.before[step], spy.after[step])
    assert not torch.equal(spy.before[3], spy.after[3])
    assert all(torch.isfinite(p).all() for p in method.parameters())
    rows = read_metrics(tmp_path)
    assert [float(r["train/skipped_steps"]) for r in rows[:6]] == [0, 0, 1, 1, 2, 2]
    assert [r["train/loss"] for r in rows[:6]].count("nan") == 2 and rows[2]["train/loss"] == "nan"


def test_logged_lr_follows_schedule_and_terms_are_logged(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path)
    fit(build_method(cfg), ToyDataset(), cfg)
    rows = read_metrics(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(3 * STEPS_PER_EPOCH))
    for row in rows:
        step = int(row["step"])
        expected = 0.05 * lr_multiplier(cfg.schedule, 0.05, step, STEPS_PER_EPOCH, 3)
        assert float(row["train/lr"]) == pytest.approx(expected, rel=1e-6, abs=1e-9)
        assert (
            float(row["train/loss"]) >= 0
            and row["train/mse"]
            and int(float(row["epoch"])) == step // 6
        )
    assert all(float(r["train/samples_per_s"]) > 0 for r in rows[1:])


def test_param_group_multipliers_reach_the_trainer(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, "optim.lr_mult.backbone=0.1", "schedule.name=none",
                     "schedule.warmup_epochs=0", "trainer.epochs=1")  # fmt: skip
    trainer = fit(build_method(cfg), ToyDataset(), cfg)
    lrs = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups}
    assert lrs == {"lr_x0.1": pytest.approx(0.005), "lr_x1": 0.05}


def test_super_training_step_is_processed_once(tmp_path: Path, monkeypatch) -> None:
    calls = []
    original = BaseMethod._finish_training_step

    def spy(self, outputs, batch):
        calls.append(sorted(outputs))
        return original(self, outputs, batch)

    monkeypatch.setattr(BaseMethod, "_finish_training_step", spy)
    cfg = toy_config(tmp_path, "method.name=toy_variant", "trainer.epochs=1")
    fit(build_method(cfg), ToyDataset(), cfg)
    assert calls == [["extra", "loss", "mse"]] * STEPS_PER_EPOCH
    assert read_metrics(tmp_path)[0]["train/extra"] == "1.0"
