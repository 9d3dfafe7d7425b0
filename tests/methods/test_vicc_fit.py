"""ViCC training runs through the engine: prototype freezing, the frozen stream, exact resume
with the queue, mixed precision."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from tests.methods.coclr_helpers import TwoStreamVideos
from tests.methods.moco_helpers import TwoViewVideos
from tests.methods.vicc_helpers import vicc_checkpoint, vicc_config

from vidssl.methods.registry import build_method
from vidssl.train.engine import fit


class Recorder(Callback):
    def __init__(self) -> None:
        self.prototypes: list[torch.Tensor] = []
        self.encoder: list[torch.Tensor] = []
        self.second: list[dict] = []
        self.second_training: list[bool] = []

    def on_train_batch_start(self, trainer, module, *args) -> None:
        self.prototypes.append(module.prototypes.weight.detach().clone())
        self.encoder.append(module.encoder_q.head[0].weight.detach().clone())
        if module.second is not None:
            self.second.append(copy.deepcopy(module.second.state_dict()))
            self.second_training.append(any(m.training for m in module.second.modules()))


def test_prototypes_frozen_for_exactly_the_frozen_epochs(tmp_path: Path) -> None:
    cfg = vicc_config("method.freeze_prototypes_nepochs=2", "trainer.epochs=3",
                      run_dir=tmp_path / "run")  # fmt: skip
    method = build_method(cfg)
    recorder = Recorder()
    fit(method, TwoViewVideos(8), cfg, callbacks=[recorder])  # 2 steps per epoch
    states = [*recorder.prototypes, method.prototypes.weight.detach().clone()]
    moved = []
    for before, after in itertools.pairwise(states):
        renormalised = F.normalize(before.double(), dim=1)
        moved.append(float((after.double() - renormalised).abs().max()))
    assert [m < 1e-7 for m in moved] == [True] * 4 + [False] * 2  # epochs 0-1 frozen, epoch 2 not
    assert min(moved[4:]) > 1e-4
    encoder_moved = [not torch.equal(x, y) for x, y in zip(recorder.encoder, recorder.encoder[1:])]
    assert all(encoder_moved)  # the encoder trains while the prototypes are frozen


def test_frozen_stream_weights_and_bn_buffers_stay_bit_identical(tmp_path: Path) -> None:
    a, b = vicc_checkpoint(tmp_path / "a.ckpt", 11), vicc_checkpoint(tmp_path / "b.ckpt", 22)
    cfg = vicc_config("method.cross=true", f"method.pretrain=[{a},{b}]", "method.queue_size=8",
                      "method.epoch_queue_starts=0", "method.freeze_prototypes_nepochs=0",
                      "trainer.epochs=2", run_dir=tmp_path / "run")  # fmt: skip
    method = build_method(cfg)
    initial = copy.deepcopy(method.second.state_dict())
    assert any("running_mean" in k for k in initial)
    recorder = Recorder()
    fit(method, TwoStreamVideos(8), cfg, callbacks=[recorder])
    for state in [*recorder.second, method.second.state_dict()]:
        assert [k for k in initial if not torch.equal(state[k], initial[k])] == []
    assert recorder.second_training == [False] * 4
    assert not torch.equal(recorder.encoder[0], method.encoder_q.head[0].weight)
    assert method.queue.shape == (4, 1, 8, 16) and method.queue[:, 0, -1].any(dim=1).all()


class Crash(Callback):
    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == 3:
            raise RuntimeError("simulated crash")


def test_fit_resumes_exactly_including_the_queue(tmp_path: Path) -> None:
    overrides = ("method.queue_size=8", "method.epoch_queue_starts=1",
                 "method.freeze_prototypes_nepochs=1", "trainer.epochs=3",
                 "trainer.checkpoint_every_n_steps=1", "optim.name=larc_sgd", "optim.lr=0.6",
                 "optim.momentum=0.9", "schedule.name=cosine", "schedule.min_lr=6e-4")  # fmt: skip
    whole = build_method(vicc_config(*overrides, run_dir=tmp_path / "whole"))
    fit(whole, TwoViewVideos(8), whole.cfg)
    cfg = vicc_config(*overrides, run_dir=tmp_path / "resumed")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(build_method(cfg), TwoViewVideos(8), cfg, callbacks=[Crash()])
    resumed = build_method(cfg)
    fit(resumed, TwoViewVideos(8), cfg)  # resume=auto from step 3 (queue half full)
    expected, state = whole.state_dict(), resumed.state_dict()
    assert sorted(expected) == sorted(state) and "queue" in state
    assert state["queue"][:, 0, -1].any(dim=1).all()  # the queue is full at the end
    assert [k for k in expected if not torch.equal(expected[k], state[k])] == []


def test_bf16_mixed_precision_step_gives_a_finite_float32_loss(tmp_path: Path) -> None:
    cfg = vicc_config("method.queue_size=8", "method.epoch_queue_starts=0",
                      "trainer.precision=bf16-mixed", "trainer.epochs=2",
                      run_dir=tmp_path / "run")  # fmt: skip
    method = build_method(cfg)
    losses: list[torch.Tensor] = []

    class Losses(Callback):
        def on_train_batch_end(self, trainer, module, outputs, *args) -> None:
            losses.append(outputs["loss"].detach())

    fit(method, TwoViewVideos(8), cfg, callbacks=[Losses()])
    assert len(losses) == 4 and all(loss.dtype == torch.float32 for loss in losses)
    assert all(torch.isfinite(loss) for loss in losses)
    assert method.queue.dtype == torch.float32 and method.queue[:, 0, -1].any(dim=1).all()
