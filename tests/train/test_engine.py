from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from tests.ddp_helpers import IMPORT_PATHS, run_two_ranks
from tests.engine_toy import ToyDataset, ToyMethod, toy_config

from vidssl.errors import CheckpointError, ConfigError
from vidssl.methods.registry import build_method
from vidssl.train.engine import (
    CsvMetricsLogger,
    PeriodicCheckpoint,
    _launch_layout,
    build_trainer,
    fit,
)
from vidssl.train.loader import EpochSampler, ResumableLoader

STEPS_PER_EPOCH = 6  # ToyDataset(24) / batch 4; 3 epochs = 18 steps


class Kill(Callback):
    """Raises at the start of the step with this global step (a crash in the middle of it)."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.at_step:
            raise RuntimeError("simulated crash")


def train(
    run_dir: Path, *overrides: str, kill_at: int | None = None, val: bool = False
) -> ToyMethod:
    cfg = toy_config(run_dir, *overrides)
    method = build_method(cfg)
    callbacks = [Kill(kill_at)] if kill_at is not None else []
    val_data = ToyDataset(8) if val else None
    if kill_at is None:
        fit(method, ToyDataset(), cfg, callbacks=callbacks, val_data=val_data)
    else:
        with pytest.raises(RuntimeError, match="simulated crash"):
            fit(method, ToyDataset(), cfg, callbacks=callbacks, val_data=val_data)
    return method


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_engine")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> ToyMethod:
    return train(tmp_path_factory.mktemp("uninterrupted"))


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    different = [k for k in state_a if not torch.equal(state_a[k], state_b[k])]
    assert different == []


@pytest.mark.parametrize(
    ("every_n_steps", "kill_at", "workers"),
    [(4, 9, 0), (3, 7, 0), (4, 11, 2)],
    ids=["mid-epoch", "epoch-boundary", "mid-epoch-2-workers"],
)
def test_killed_and_resumed_run_ends_bit_identical(
    tmp_path: Path, uninterrupted: ToyMethod, every_n_steps: int, kill_at: int, workers: int
) -> None:
    overrides = (f"trainer.checkpoint_every_n_steps={every_n_steps}", f"data.workers={workers}")
    killed = train(tmp_path, *overrides, kill_at=kill_at)
    resumed = train(tmp_path, *overrides)
    assert_same_weights(uninterrupted, resumed)
    assert resumed.enqueued == uninterrupted.enqueued  # non-tensor extra state
    saved_at = (kill_at // every_n_steps) * every_n_steps
    seen = uninterrupted.seen_indices
    assert killed.seen_indices == seen[: kill_at * 4]
    assert resumed.seen_indices == seen[saved_at * 4 :]  # data order continues exactly
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "metrics.csv").open())]
    assert steps == list(range(3 * STEPS_PER_EPOCH))  # replayed steps are not logged twice


@pytest.mark.parametrize(
    ("overrides", "val"),
    [(("trainer.precision=bf16-mixed",), False), ((), True)],
    ids=["bf16-mixed", "with-validation"],
)
def test_resume_is_exact_with_bf16_or_validation(
    tmp_path: Path, overrides: tuple, val: bool
) -> None:
    reference = train(tmp_path / "a", *overrides, val=val)
    every = ("trainer.checkpoint_every_n_steps=4",)
    train(tmp_path / "b", *overrides, *every, kill_at=9, val=val)
    assert_same_weights(reference, train(tmp_path / "b", *overrides, *every, val=val))
    if val:  # one validation value per epoch, the same in both runs
        rows = [csv.DictReader((tmp_path / d / "metrics.csv").open()) for d in ("a", "b")]
        val_a, val_b = ([r["val/mse"] for r in rs if r.get("val/mse")] for rs in rows)
        assert len(val_a) == 3 and val_a == val_b


def test_build_trainer_settings(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, "trainer.grad_clip=0.5", "trainer.grad_clip_algorithm=value",
                     "trainer.max_steps=11", "trainer.progress_bar_refresh=7")  # fmt: skip
    trainer = build_trainer(cfg)
    assert (trainer.max_epochs, trainer.max_steps, trainer.log_every_n_steps) == (3, 11, 1)
    assert (trainer.gradient_clip_val, trainer.gradient_clip_algorithm) == (0.5, "value")
    assert trainer.precision == "32-true" and trainer.world_size == 1
    assert isinstance(trainer.loggers[0], CsvMetricsLogger)
    assert len(trainer.loggers) == 1 + (importlib.util.find_spec("tensorboard") is not None)
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, PeriodicCheckpoint))
    assert checkpoint.last_path == tmp_path / "checkpoints" / "last.ckpt"
    assert trainer.progress_bar_callback.refresh_rate == 7


def test_progress_bar_shows_loss_and_throughput(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, "trainer.progress_bar_refresh=1", "trainer.epochs=1")
    method = build_method(cfg)
    trainer = fit(method, ToyDataset(), cfg)
    shown = trainer.progress_bar_callback.get_metrics(trainer, method)
    assert set(shown) == {"loss", "samples/s"} and shown["samples/s"] > 0


@pytest.mark.gpu
def test_gpu_16_mixed_resume_is_exact_with_deterministic_kernels(tmp_path: Path) -> None:
    overrides = ("trainer.accelerator=gpu", "trainer.precision=16-mixed",
                 "trainer.deterministic=true", "trainer.checkpoint_every_n_steps=4")  # fmt: skip
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    reference = train(tmp_path / "a", *overrides)
    train(tmp_path / "b", *overrides, kill_at=9)
    resumed = train(tmp_path / "b", *overrides)
    assert_same_weights(reference.cpu(), resumed.cpu())
    scaler_state = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "MixedPrecision" in scaler_state  # the AMP grad scaler is checkpointed


def test_max_steps_then_continue_matches(tmp_path: Path, uninterrupted: ToyMethod) -> None:
    first = train(tmp_path, "trainer.max_steps=7")
    assert len(first.seen_indices) == 7 * 4
    resumed = train(tmp_path)
    assert_same_weights(uninterrupted, resumed)


def test_resume_from_explicit_or_newest_epoch_checkpoint(
    tmp_path: Path, uninterrupted: ToyMethod
) -> None:
    train(tmp_path)
    checkpoint = tmp_path / "checkpoints" / "epoch_0001.ckpt"
    resumed = train(tmp_path, f"trainer.resume={checkpoint}")
    assert len(resumed.seen_indices) == 2 * STEPS_PER_EPOCH * 4
    assert_same_weights(uninterrupted, resumed)
    # without last.ckpt, resume=auto continues from the newest epoch checkpoint
    (tmp_path / "checkpoints" / "last.ckpt").unlink()
    (tmp_path / "checkpoints" / "epoch_0003.ckpt").unlink()
    resumed = train(tmp_path)
    assert len(resumed.seen_indices) == STEPS_PER_EPOCH * 4
    assert_same_weights(uninterrupted, resumed)


def test_run_dir_contents(uninterrupted: ToyMethod) -> None:
    run_dir = Path(uninterrupted.cfg.trainer.run_dir)
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert {"config.yaml", "env.json", "metrics.csv", "checkpoints/last.ckpt"} <= names
    assert {f"checkpoints/epoch_{e:04d}.ckpt" for e in (1, 2, 3)} <= names
    assert not any(name.endswith(".tmp") for name in names)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3 * STEPS_PER_EPOCH
    assert checkpoint["vidssl"]["method"] == "toy"
    assert checkpoint["vidssl"]["config"] == uninterrupted.cfg.to_dict()
    assert "queue" in checkpoint["state_dict"]


def test_resume_refuses_other_config_or_method(tmp_path: Path) -> None:
    train(tmp_path, "trainer.epochs=1")
    with pytest.raises(
        ConfigError, match=r"was trained with a different config \(method.hidden, optim.lr\)"
    ):
        fit(
            build_method(cfg := toy_config(tmp_path, "method.hidden=4", "optim.lr=0.1")),
            ToyDataset(),
            cfg,
        )
    with pytest.raises(ConfigError, match=r"is of method 'toy', not 'toy_variant'"):
        fit(build_method(cfg := toy_config(tmp_path, "method.name=toy_variant")), ToyDataset(), cfg)
    with pytest.raises(
        ConfigError, match=r"already holds checkpoints \(last.ckpt\); resume it with"
    ):
        fit(build_method(cfg := toy_config(tmp_path, "trainer.resume=none")), ToyDataset(), cfg)
    with pytest.raises(
        ConfigError, match=r"trainer.resume='/no/such.ckpt' is not a checkpoint file"
    ):
        fit(
            build_method(cfg := toy_config(tmp_path, "trainer.resume=/no/such.ckpt")),
            ToyDataset(),
            cfg,
        )
    # run-control keys may change: more epochs continue the same run
    assert len(train(tmp_path, "trainer.epochs=2", "data.workers=0").seen_indices) == 24


def test_unreadable_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    cfg = toy_config(tmp_path)
    with pytest.raises(CheckpointError, match=r"^cannot read checkpoint .*last.ckpt: "):
        fit(build_method(cfg), ToyDataset(), cfg)


@pytest.mark.parametrize("drop_last", [True, False])
def test_epoch_sampler_shards_and_seeds_by_global_position(drop_last: bool) -> None:
    dataset = list(range(10))
    single = EpochSampler(dataset, batch_size=2, seed=3, shuffle=True, drop_last=drop_last)
    single.set_epoch(1)
    seeds_of = dict(single)  # index -> sample seed, world size 1
    shards = []
    for rank in range(2):
        sampler = EpochSampler(dataset, batch_size=2, seed=3, shuffle=True, drop_last=drop_last)
        sampler.set_distributed(rank, 2)
        sampler.set_epoch(1)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == (4 if drop_last else 5)
    indices = [i for shard in shards for i, _ in shard]
    assert set(shards[0]).isdisjoint(shards[1]) and len(set(indices)) == (8 if drop_last else 10)
    # the same sample (global position) gets the same seed whatever the world size
    assert all(seeds_of[i] == seed for shard in shards for i, seed in shard)
    sampler = EpochSampler(dataset, batch_size=2, seed=3, shuffle=True, drop_last=drop_last)
    sampler.set_epoch(1)
    sampler.start_batch = 2
    assert list(sampler) == list(single)[4:] and len(sampler) == len(single)
    sampler.set_epoch(2)
    assert sampler.start_batch == 0 and list(sampler) != list(single)


def test_loader_state_moves_to_next_epoch_after_a_full_epoch() -> None:
    loader = ResumableLoader(ToyDataset(), batch_size=4)
    loader.load_state_dict({"epoch": 2, "batches_done": 6, "world_size": 1, "batch_size": 4})
    assert (loader.epoch_sampler.epoch, loader.epoch_sampler.start_batch) == (3, 0)
    loader.load_state_dict({"epoch": 2, "batches_done": 4, "world_size": 1, "batch_size": 4})
    assert len(list(loader)) == 2 and len(loader) == 6
    assert loader.state_dict() == {"epoch": 2, "batches_done": 4, "world_size": 1, "batch_size": 4}


def test_csv_logger_keeps_rows_before_the_resumed_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,train/loss\n0,1.0\n1,2.0\n2,3.0\n")
    logger = CsvMetricsLogger(path, keep_before_step=2)
    logger.log_metrics({"train/loss": 9.0, "train/lr": 0.1}, step=2)
    logger.save()
    logger.log_metrics({"train/loss": 8.0, "train/extra": 5.0}, step=3)
    logger.save()
    assert path.read_text().splitlines() == [
        "step,train/loss,train/lr,train/extra",
        "0,1.0,,",
        "1,2.0,,",
        "2,9.0,0.1,",
        "3,8.0,,5.0",
    ]


def test_launch_layout_from_torchrun_and_slurm(monkeypatch) -> None:
    for key in list(os.environ):
        if key.startswith("SLURM_") or key in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
            monkeypatch.delenv(key)
    assert _launch_layout("auto", 0) == ("auto", 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert _launch_layout("auto", 0) == (4, 2) and _launch_layout("2", 1) == (2, 1)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert _launch_layout("auto", 0) == (4, 2)


DDP_SCRIPT = """
import sys, torch
sys.path[:0] = {paths!r}
torch.set_num_threads(1)
from tests.engine_toy import ToyDataset, toy_config
from vidssl.train.engine import fit
from vidssl.methods.registry import build_method
cfg = toy_config({run_dir!r}, "trainer.devices=auto", "trainer.epochs=2")
method = build_method(cfg)
trainer = fit(method, ToyDataset(), cfg)
flat = torch.cat([p.detach().flatten() for p in method.parameters()])
torch.save({{"indices": method.seen_indices, "params": flat, "world": trainer.world_size}},
           {run_dir!r} + f"/rank{{trainer.global_rank}}.pt")
"""


@pytest.mark.ddp
@pytest.mark.slow
def test_torchrun_two_cpu_processes_shard_data_and_agree(tmp_path: Path) -> None:
    script = DDP_SCRIPT.format(paths=IMPORT_PATHS, run_dir=str(tmp_path / "run"))
    ranks = run_two_ranks(script, tmp_path, tmp_path / "run")
    assert [r["world"] for r in ranks] == [2, 2]
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])  # DDP kept replicas identical
    # each epoch: 3 batches of 4 per rank, disjoint halves of the 24-sample permutation
    for epoch in range(2):
        parts = [set(r["indices"][epoch * 12 : (epoch + 1) * 12]) for r in ranks]
        assert parts[0].isdisjoint(parts[1]) and parts[0] | parts[1] == set(range(24))
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
