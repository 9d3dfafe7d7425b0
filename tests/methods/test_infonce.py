from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from tests.methods.moco_helpers import (
    KeySpy,
    TwoViewVideos,
    expected_ema,
    independent_q_k,
    moco_config,
    two_view_batch,
)

from vidssl.errors import ConfigError
from vidssl.methods import losses
from vidssl.methods.infonce import InfoNCE, mask_negatives
from vidssl.methods.moco import (
    ENCODER_PREFIX,
    batch_shuffle,
    batch_unshuffle,
    concat_all_gather,
)
from vidssl.methods.registry import build_method, load_config
from vidssl.train.engine import fit


def perturbed_method(*overrides: str) -> InfoNCE:
    """A tiny InfoNCE whose query encoder differs from the key encoder (as after training)."""
    method = build_method(moco_config("infonce", *overrides))
    with torch.no_grad():
        for param in method.encoder_q.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return method


def test_encoders_queue_and_checkpoint_layout() -> None:
    method = build_method(moco_config("infonce"))
    state = method.state_dict()
    assert state["encoder_q.head.0.weight"].shape == (32, 32, 1, 1, 1)  # hidden = feature_dim
    assert state["encoder_q.head.2.weight"].shape == (16, 32, 1, 1, 1)
    assert state["queue.keys"].shape == (16, 16)
    assert torch.allclose(state["queue.keys"].norm(dim=1), torch.ones(16))
    assert state["queue.ptr"].tolist() == [0] and "queue.groups" not in state
    backbone_keys = [k for k in state if k.startswith(ENCODER_PREFIX)]
    assert sorted(method.encoder_state_dict()) == sorted(
        k.removeprefix(ENCODER_PREFIX) for k in backbone_keys
    )
    for name, value in method.encoder_k.state_dict().items():  # initialised as a copy
        assert torch.equal(value, method.encoder_q.state_dict()[name])
    assert all(not p.requires_grad for p in method.encoder_k.parameters())
    learnable = [name for name, _ in method.learnable_named_parameters()]
    assert learnable and all(name.startswith("encoder_q.") for name in learnable)


def test_momentum_update_is_exactly_the_reference_ema() -> None:
    method = perturbed_method()
    expected = expected_ema(method)
    query_before = [p.detach().clone() for p in method.encoder_q.parameters()]
    method.update_key_encoder()
    for param, value in zip(method.encoder_k.parameters(), expected):
        assert torch.equal(param, value)  # bit for bit: θ_k·0.999 + θ_q·0.001
    for param, value in zip(method.encoder_q.parameters(), query_before):
        assert torch.equal(param, value)


def test_step_loss_equals_losses_infonce_with_ema_before_keys() -> None:
    method = perturbed_method()
    batch = two_view_batch(seed=1)
    q, k = independent_q_k(method, batch)  # k from the already-updated key encoder
    queue_before = method.queue.keys.clone()
    out = method.contrastive_step(batch)
    expected = losses.infonce(q, k, queue_before, temperature=0.07)
    torch.testing.assert_close(out["loss"], expected, rtol=1e-6, atol=1e-6)
    assert torch.allclose(method.queue.keys[:4], k, atol=1e-6)  # this batch's keys enqueued
    assert torch.equal(method.queue.keys[4:], queue_before[4:])
    logits = losses.contrastive_logits(q, k, queue_before, 0.07)
    top1 = (logits.argmax(dim=1) == 0).float().mean()
    top5 = (logits.topk(5, dim=1).indices == 0).any(dim=1).float().mean()
    assert out["top1"] == top1 and out["top5"] == top5
    assert out["queue_fill"] == pytest.approx(4 / 16)


def test_queue_pointer_wraps_and_holds_each_steps_keys() -> None:
    method = build_method(moco_config("infonce"))
    spy = KeySpy(method)
    pointers, fills = [], []
    for step in range(5):
        out = method.contrastive_step(two_view_batch(seed=step))
        pointers.append(int(method.queue.ptr))
        fills.append(float(out["queue_fill"]))
    assert pointers == [4, 8, 12, 0, 4]
    assert fills == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert int(method.queue.count) == 20
    expected = torch.cat([spy.keys[4], spy.keys[1], spy.keys[2], spy.keys[3]])
    assert torch.equal(method.queue.keys, expected)  # step 5 overwrote slots 0-3


def test_key_encoder_gets_no_gradient() -> None:
    method = build_method(moco_config("infonce"))
    method.contrastive_step(two_view_batch())["loss"].backward()
    assert all(p.grad is None for p in method.encoder_k.parameters())
    assert all(p.grad is not None for p in method.encoder_q.parameters())


def test_mask_negatives_sets_exactly_the_masked_logits_to_minus_inf() -> None:
    logits = torch.arange(12.0).view(2, 6)
    mask = torch.tensor([[True, False, False, True, False], [False] * 5])
    masked = mask_negatives(logits, mask)
    assert masked[0].tolist() == [0.0, -math.inf, 2.0, 3.0, -math.inf, 5.0]
    assert torch.equal(masked[1], logits[1])


def test_sibling_masking_removes_same_group_queue_entries() -> None:
    method = perturbed_method("method.mask_siblings=true")
    queue_groups = torch.tensor([7, 3, -1, 3, 9, 5, 5, 1, 0, 2, 3, 8, 6, 4, 7, 11])
    method.queue.groups.copy_(queue_groups)
    batch = two_view_batch(seed=2, groups=[3, 5, -1, 12])
    q, k = independent_q_k(method, batch)
    queue_before = method.queue.keys.clone()
    out = method.contrastive_step(batch)
    siblings = torch.zeros(4, 16, dtype=torch.bool)
    siblings[0, [1, 3, 10]] = True  # group 3
    siblings[1, [5, 6]] = True  # group 5; -1 and 12 have no siblings
    expected = losses.infonce(q, k, queue_before, 0.07, negative_mask=siblings)
    unmasked = losses.infonce(q, k, queue_before, 0.07)
    torch.testing.assert_close(out["loss"], expected, rtol=1e-6, atol=1e-6)
    assert not torch.isclose(expected, unmasked)
    assert method.queue.groups[:4].tolist() == [3, 5, -1, 12]  # groups enqueued with keys


def test_sibling_masking_falls_back_to_the_video_index() -> None:
    method = build_method(moco_config("infonce", "method.mask_siblings=true"))
    batch = two_view_batch(seed=3)
    del batch["group"]
    method.contrastive_step(batch)
    assert method.queue.groups[:4].tolist() == batch["index"].tolist()


def test_flow_input_channels_come_from_the_model_config() -> None:
    method = build_method(moco_config("infonce", "model.in_channels=2"))
    out = method.contrastive_step(two_view_batch(channels=2))
    assert torch.isfinite(out["loss"])
    assert method.encoder_q.backbone.in_channels == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method.queue_size=18"], "not a positive multiple of data.batch_size=4"),
        (["method.momentum=1.0"], "method.momentum=1.0 is not in"),
        (["method.temperature=0"], "method.temperature=0"),
        (["data.num_views=1"], "data.num_views=1"),
        (["method.batch_norm=cross"], "batch_norm"),
    ],
)
def test_bad_configs_raise_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        moco_config("infonce", *overrides)


def test_queue_must_hold_whole_global_batches() -> None:
    method = build_method(moco_config("infonce"))
    method.check_distributed_setup(4, torch.device("cpu"))  # 16 = 4 × 4
    with pytest.raises(ConfigError, match=r"not a multiple of the global batch 12 \(data.batch"):
        method.check_distributed_setup(3, torch.device("cpu"))
    with pytest.raises(ConfigError, match="drop_last"):
        build_method(moco_config("infonce", "data.drop_last=false")).check_distributed_setup(
            2, torch.device("cpu")
        )
    sync = build_method(moco_config("infonce", "method.batch_norm=sync"))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in sync.encoder_k.modules())
    with pytest.raises(ConfigError, match="needs CUDA"):
        sync.check_distributed_setup(2, torch.device("cpu"))


class Crash(Callback):
    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == 3:
            raise RuntimeError("simulated crash")


def test_resumed_run_restores_queue_pointer_and_encoders_exactly(tmp_path: Path) -> None:
    overrides = (
        "method.mask_siblings=true",
        "trainer.epochs=3",
        "trainer.checkpoint_every_n_steps=2",
    )
    whole = build_method(moco_config("infonce", *overrides, run_dir=tmp_path / "whole"))
    fit(whole, TwoViewVideos(), whole.cfg)
    cfg = moco_config("infonce", *overrides, run_dir=tmp_path / "resumed")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(build_method(cfg), TwoViewVideos(), cfg, callbacks=[Crash()])
    resumed = build_method(cfg)
    fit(resumed, TwoViewVideos(), cfg)  # resume=auto from the step-2 checkpoint
    expected, state = whole.state_dict(), resumed.state_dict()
    assert int(state["queue.ptr"]) == (6 * 4) % 16 and int(state["queue.count"]) == 24
    assert [k for k in expected if not torch.equal(expected[k], state[k])] == []


def test_tiny_preset_trains_s3d_on_cpu(tmp_path: Path) -> None:
    cfg = load_config("infonce/tiny", [f"trainer.run_dir={tmp_path}", "trainer.max_steps=2"])
    method = build_method(cfg)
    fit(method, TwoViewVideos(8, frames=cfg.data.seq_len), cfg)
    assert method.encoder_q.backbone.name == "s3d" and int(method.queue.ptr) == 8


def test_presets_mirror_the_reference_commands() -> None:
    rgb = load_config("infonce/ucf101_rgb")
    assert (rgb.data.seq_len, rgb.data.ds, rgb.data.img_size, rgb.data.batch_size) == (
        32,
        1,
        128,
        32,
    )
    assert (rgb.method.queue_size, rgb.method.temperature, rgb.method.momentum) == (
        2048,
        0.07,
        0.999,
    )
    assert (rgb.optim.name, rgb.optim.lr, rgb.optim.weight_decay) == ("adam", 1e-3, 1e-5)
    assert (rgb.schedule.milestones, rgb.trainer.epochs) == ([250, 280], 300)
    assert rgb.model.backbone == "s3d" and not rgb.method.mask_siblings
    flow = load_config("infonce/ucf101_flow")
    assert flow.data.media == "data/ucf101/tvl1_flow" and flow.model.in_channels == 3
    k400 = load_config("infonce/k400_flow")
    assert (k400.data.dataset, k400.method.queue_size) == ("kinetics400", 16384)
    tiny = load_config("infonce/tiny")
    assert (tiny.trainer.accelerator, tiny.model.width_mult, tiny.method.queue_size) == (
        "cpu",
        0.0625,
        64,
    )


def test_fit_trains_logs_and_lowers_the_loss(tmp_path: Path) -> None:
    """Real Lightning run: instance discrimination of 8 noisy "videos", siblings masked."""
    cfg = moco_config(
        "infonce",
        "method.mask_siblings=true",
        "method.momentum=0.9",
        "data.batch_size=8",
        "trainer.epochs=12",
        "optim.name=adam",
        "optim.lr=0.003",
        run_dir=tmp_path,
    )
    method = build_method(cfg)
    initial = copy.deepcopy(method.encoder_q)
    fit(method, TwoViewVideos(), cfg)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 12  # one step per epoch, logged every step
    assert [float(r["train/queue_fill"]) for r in rows[:3]] == [0.5, 1.0, 1.0]
    loss = [float(r["train/loss"]) for r in rows]
    assert max(loss[-3:]) < 0.2 * loss[1]  # step 2 is the first against a queue of real keys
    assert float(rows[-1]["train/top1"]) == 1.0

    def alignment_loss(encoder: torch.nn.Module) -> float:
        """Batch-of-8 InfoNCE between the two views, train-mode BN (as in training)."""
        videos = TwoViewVideos()
        torch.manual_seed(0)
        views = [torch.stack([videos[i]["views"][v] for i in range(8)]) for v in range(2)]
        with torch.no_grad():
            z0, z1 = encoder.train()(views[0]), encoder.train()(views[1])
        return float(F.cross_entropy(z0 @ z1.T / 0.07, torch.arange(8)))

    assert alignment_loss(method.encoder_q) < 0.1 * alignment_loss(initial)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_distributed_helpers_are_identities_without_a_process_group() -> None:
    x = torch.randn(4, 3)
    assert concat_all_gather(x) is x
    shuffled, index = batch_shuffle(x)
    assert shuffled is x and index.tolist() == [0, 1, 2, 3]
    assert batch_unshuffle(shuffled, index) is x
