"""ViCC: Sinkhorn and the swapped loss against float64 re-computations, view order, gradient
paths, the queue, checkpoint loading, config errors and presets (runs: test_vicc_fit.py)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.methods.coclr_helpers import two_stream_batch
from tests.methods.moco_helpers import two_view_batch
from tests.methods.vicc_helpers import (
    EmbeddingSpy,
    P,
    sinkhorn_float64,
    swav_loss_float64,
    vicc_checkpoint,
    vicc_config,
)

from vidssl.errors import ConfigError
from vidssl.methods.prototypes import code_agreement, swapped_prediction_loss
from vidssl.methods.registry import build_method
from vidssl.methods.vicc import ViCC, queue_length, sinkhorn


def cosine_scores(n: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, 16, generator=gen), dim=1)
    c = F.normalize(torch.randn(k, 16, generator=gen), dim=1)
    return z @ c.t()


# ------------------------------------------------------------------------------- Sinkhorn
@pytest.mark.parametrize(
    ("n", "k", "iterations"), [(6, 4, 3), (24, 30, 3), (5, 300, 1), (40, 7, 8)]
)
def test_sinkhorn_equals_an_independent_float64_implementation(n, k, iterations) -> None:
    scores = cosine_scores(n, k, seed=n + k)
    codes = sinkhorn(scores, 0.05, iterations)
    expected = sinkhorn_float64(scores, 0.05, iterations)
    assert codes.dtype == torch.float32 and codes.shape == (n, k)
    torch.testing.assert_close(codes.double(), expected, atol=1e-6, rtol=1e-5)
    stable = sinkhorn(scores, 0.05, iterations, stabilize=True)
    torch.testing.assert_close(stable.double(), expected, atol=1e-6, rtol=1e-5)


def test_sinkhorn_rows_sum_to_one_and_prototype_marginals_become_uniform() -> None:
    scores = cosine_scores(64, 16, seed=3)
    codes = sinkhorn(scores)  # the reference's 3 iterations
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(64), atol=1e-6, rtol=0)
    assert (codes >= 0).all()
    converged = sinkhorn(scores, 0.05, 200)
    torch.testing.assert_close(converged.sum(dim=1), torch.ones(64), atol=1e-6, rtol=0)
    marginals = converged.sum(dim=0) / 64  # each prototype gets 1/K of the batch
    torch.testing.assert_close(marginals, torch.full((16,), 1 / 16), atol=1e-5, rtol=0)
    # with 3 iterations the marginals are not yet uniform, but much closer than the raw softmax
    raw = torch.softmax(scores / 0.05, dim=1).sum(dim=0) / 64
    assert (codes.sum(dim=0) / 64 - 1 / 16).abs().max() < (raw - 1 / 16).abs().max()


def test_sinkhorn_replaces_an_infinite_exponential_by_the_largest_finite_one() -> None:
    scores = cosine_scores(6, 5, seed=1)
    huge = scores.clone()
    huge[2, 3] = 1e4  # exp(1e4 / 0.05) = inf in float32
    finite = scores.clone()
    finite[2, 3] = scores.flatten()[torch.arange(30) != 13].max()  # shoot_infs: the finite max
    codes = sinkhorn(huge)
    assert torch.isfinite(codes).all()
    assert torch.equal(codes, sinkhorn(finite))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sinkhorn_runs_in_float32_for_low_precision_inputs(dtype) -> None:
    scores = cosine_scores(8, 6, seed=2).to(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes = sinkhorn(scores)
    assert codes.dtype == torch.float32 and torch.isfinite(codes).all()
    assert torch.equal(codes, sinkhorn(scores.float()))


# ---------------------------------------------------------------------------- the loss
def _cross_entropy_by_hand(q: list[list[float]], s: list[list[float]], tau: float) -> float:
    total = 0.0
    for q_row, s_row in zip(q, s):
        norm = math.log(sum(math.exp(x / tau) for x in s_row))
        total += -sum(qk * (sk / tau - norm) for qk, sk in zip(q_row, s_row))
    return total / len(q)


def test_swapped_loss_two_views_equals_a_hand_computation() -> None:
    s0, s1 = [[0.5, -0.2, 0.1], [0.0, 0.3, -0.4]], [[0.2, 0.2, -0.6], [-0.1, 0.9, 0.0]]
    q0, q1 = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], [[0.3, 0.3, 0.4], [0.0, 1.0, 0.0]]
    loss = swapped_prediction_loss(
        [torch.tensor(s0), torch.tensor(s1)], {0: torch.tensor(q0), 1: torch.tensor(q1)}, 0.1
    )
    expected = 0.5 * (_cross_entropy_by_hand(q0, s1, 0.1) + _cross_entropy_by_hand(q1, s0, 0.1))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # agreeing views, one-hot codes on the larger of scores ±1 at τ=1: log(1 + e^-2) each
    s = torch.tensor([[1.0, -1.0]])
    one_hot = torch.tensor([[1.0, 0.0]])
    loss = swapped_prediction_loss([s, s], {0: one_hot, 1: one_hot}, 1.0)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


def test_swapped_loss_four_views_each_code_predicted_by_the_other_three() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = [torch.rand(2, 3, generator=gen) * 2 - 1 for _ in range(4)]
    codes = {a: torch.softmax(torch.randn(2, 3, generator=gen), dim=1) for a in range(4)}
    loss = swapped_prediction_loss(scores, codes, 0.1)
    as_lists = [s.tolist() for s in scores]
    expected = sum(
        sum(_cross_entropy_by_hand(codes[a].tolist(), as_lists[v], 0.1) for v in range(4) if v != a)
        / 3
        for a in range(4)
    ) / 4  # fmt: skip
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    only_two = swapped_prediction_loss(scores, {0: codes[0], 2: codes[2]}, 0.1)
    expected_two = sum(
        sum(_cross_entropy_by_hand(codes[a].tolist(), as_lists[v], 0.1) for v in range(4) if v != a)
        / 3
        for a in (0, 2)
    ) / 2  # fmt: skip
    assert float(only_two) == pytest.approx(expected_two, rel=1e-6)


def test_code_agreement_worked_example() -> None:
    # argmax codes: 0, 0, 1, 2, 1 ; labels: a a b b c
    codes = torch.eye(3)[[0, 0, 1, 2, 1]]
    same, other = code_agreement(codes, torch.tensor([0, 0, 1, 1, 2]))
    # same class: rows 0,1 agree (code 0); rows 2,3 differ; row 4 has no same-class neighbour
    assert same == pytest.approx(2 / 4)
    # baseline over the 4 rows with one same-class neighbour: rows 0, 1, 3 share their code with
    # none of their 3 other-class neighbours (p = 0); row 2 (code 1) with 1 of 3 (row 4), so
    # 1 − (1 − 1/3)^1 = 1/3; mean (0 + 0 + 1/3 + 0) / 4
    assert other == pytest.approx(1 / 12)
    lone, _ = code_agreement(codes[:3], torch.tensor([0, 1, 2]))
    assert math.isnan(lone)


# ------------------------------------------------------------------------- method steps
def test_single_stream_step_equals_the_float64_reference_and_renormalises() -> None:
    method = build_method(vicc_config())
    spy = EmbeddingSpy(method)
    weight = method.prototypes.weight.detach().clone()
    assert not torch.allclose(weight.norm(dim=1), torch.ones(P))  # Linear init: not unit rows
    batch = two_view_batch(4, seed=1)
    out = method.vicc_step(batch, epoch=0)
    expected = swav_loss_float64(spy.steps[0], weight, [0, 1])
    assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-5)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(P))
    # view 0 is clip 1 through the encoder in train mode (BN batch statistics)
    reference = copy.deepcopy(method.encoder_q)
    torch.testing.assert_close(spy.steps[0][0], reference(batch["views"][0]), atol=1e-6, rtol=0)
    # the two-view loss is the hand formula ½[H(q0, p1) + H(q1, p0)] of those embeddings
    assert out["prototypes_frozen"] == 1.0 and out["queue_used"] == 0.0


def test_cross_stream_four_views_in_reference_order(tmp_path: Path) -> None:
    a, b = vicc_checkpoint(tmp_path / "a.ckpt", 11), vicc_checkpoint(tmp_path / "b.ckpt", 22)
    for reverse in (False, True):
        cfg = vicc_config("method.cross=true", f"method.pretrain=[{a},{b}]",
                          f"method.reverse={str(reverse).lower()}")  # fmt: skip
        method = build_method(cfg)
        spy = EmbeddingSpy(method)
        weight = method.prototypes.weight.detach().clone()
        batch = two_stream_batch(4, seed=3)
        out = method.vicc_step(batch, epoch=0)
        other = batch["views"] if reverse else batch["flow_views"]
        second = copy.deepcopy(method.second)
        with torch.no_grad():
            torch.testing.assert_close(spy.steps[0][2], second(other[1]), atol=1e-6, rtol=0)
            torch.testing.assert_close(spy.steps[0][3], second(other[0]), atol=1e-6, rtol=0)
        expected = swav_loss_float64(spy.steps[0], weight, [0, 1, 2, 3])
        assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-5)
        assert not torch.allclose(spy.steps[0][0], spy.steps[0][2])


@pytest.mark.parametrize("second_clip_grad", [False, True])
def test_gradient_reaches_clip_two_only_when_asked(tmp_path: Path, second_clip_grad: bool) -> None:
    a, b = vicc_checkpoint(tmp_path / "a.ckpt", 1), vicc_checkpoint(tmp_path / "b.ckpt", 2)
    cfg = vicc_config("method.cross=true", f"method.pretrain=[{a},{b}]",
                      f"method.second_clip_grad={str(second_clip_grad).lower()}")  # fmt: skip
    method = build_method(cfg)
    batch = two_stream_batch(4, seed=0)
    for views in (batch["views"], batch["flow_views"]):
        for clip in views:
            clip.requires_grad_(True)
    method.vicc_step(batch)["loss"].backward()
    assert batch["views"][0].grad is not None and batch["views"][0].grad.abs().sum() > 0
    assert (batch["views"][1].grad is not None) == second_clip_grad
    assert all(clip.grad is None for clip in batch["flow_views"])  # frozen stream
    assert method.prototypes.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in method.second.parameters())


def test_queue_entry_fifo_order_and_first_use() -> None:
    # batch 4, queue 8 rows per view, filled from epoch 2 on, used once its last row is written
    method = build_method(vicc_config("method.queue_size=10", "method.epoch_queue_starts=2"))
    assert method.queue.shape == (2, 1, 8, 16) and queue_length(10, 4, 1) == 8
    spy = EmbeddingSpy(method)
    used, losses, expected = [], [], []
    for step, epoch in enumerate([0, 1, 2, 2, 2, 3]):
        weight = method.prototypes.weight.detach().clone()
        before = method.queue.clone()
        out = method.vicc_step(two_view_batch(4, seed=step), epoch=epoch)
        used.append(out["queue_used"])
        emb = spy.steps[-1]
        full = bool((before[0, 0, -1] != 0).any())
        queues = {a: before[a, 0] for a in (0, 1)} if full else None
        losses.append(float(out["loss"]))
        expected.append(float(swav_loss_float64(emb, weight, [0, 1], queues=queues)))
        if epoch < 2:
            assert not method.queue.any()  # nothing enters before epoch_queue_starts
        else:  # newest first: this batch in rows 0-3, the previous batch shifted to rows 4-7
            for a in (0, 1):
                assert torch.equal(method.queue[a, 0, :4], emb[a])
                assert torch.equal(method.queue[a, 0, 4:], before[a, 0, :4])
    assert used == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]  # first used at the third step of epoch 2
    assert losses == pytest.approx(expected, rel=1e-5)
    # the queue changed the codes: without it the loss of the last step would differ
    assert expected[-1] != pytest.approx(
        float(swav_loss_float64(spy.steps[-1], method.prototypes.weight.detach(), [0, 1])),
        rel=1e-4,
    )


def test_queue_length_rounds_down_to_the_global_batch() -> None:
    assert queue_length(1920, 48, 4) == 480 and queue_length(1920, 24, 4) == 480
    assert queue_length(1000, 48, 4) == 240 and queue_length(0, 4, 1) == 0
    method = build_method(vicc_config("method.queue_size=20"))
    method.resize_queue(2)  # global batch 8 → 16 rows in all, 8 per rank
    assert method.queue.shape == (2, 2, 8, 16)
    with pytest.raises(ConfigError, match="smaller than the global batch 24"):
        method.resize_queue(6)


# ----------------------------------------------------------------------- loading, config
def vicc_format(method: ViCC, second: ViCC) -> dict:
    """A ViCC ``main_cross.py`` checkpoint (``encoder_q.0/2/4``, prototypes, ``second.*``)."""
    state: dict[str, torch.Tensor] = {}
    for prefix, encoder in (("module.encoder_q.", method.encoder_q),
                            ("module.second.", second.encoder_q)):  # fmt: skip
        for key, value in encoder.backbone.state_dict().items():
            state[f"{prefix}0.{key}"] = value.clone()
        for ours, theirs in (("head.0.", "2."), ("head.2.", "4.")):
            for suffix in ("weight", "bias"):
                state[f"{prefix}{theirs}{suffix}"] = encoder.state_dict()[ours + suffix].clone()
    state["module.prototypes.weight"] = method.prototypes.weight.detach().clone()
    return {"epoch": 99, "state_dict": state, "best_loss": 0, "iteration": 1}


def test_pretrain_loads_a_encoder_and_prototypes_and_b_encoder_only(tmp_path: Path) -> None:
    a, b = vicc_checkpoint(tmp_path / "a.ckpt", 11), vicc_checkpoint(tmp_path / "b.ckpt", 22)
    method = build_method(vicc_config("method.cross=true", f"method.pretrain=[{a},{b}]"))
    state_a = torch.load(a, weights_only=True)["state_dict"]
    state_b = torch.load(b, weights_only=True)["state_dict"]
    for key, value in method.encoder_q.state_dict().items():
        assert torch.equal(value, state_a[f"encoder_q.{key}"]), key
    for key, value in method.second.state_dict().items():
        assert torch.equal(value, state_b[f"encoder_q.{key}"]), key
    assert torch.equal(method.prototypes.weight, state_a["prototypes.weight"])
    assert not method.queue.any()
    learnable = [n for n, _ in method.learnable_named_parameters()]
    assert learnable and not any(n.startswith("second.") for n in learnable)
    # a ViCC .pth.tar (DDP "module." keys, second stream and prototypes inside)
    source = build_method(vicc_config("trainer.seed=5"))
    other = build_method(vicc_config("trainer.seed=6"))
    torch.save(vicc_format(source, other), tmp_path / "vicc.pth.tar")
    loaded = build_method(
        vicc_config("method.cross=true", f"method.pretrain=[{tmp_path / 'vicc.pth.tar'},{b}]")
    )
    for key, value in loaded.encoder_q.state_dict().items():
        assert torch.equal(value, source.encoder_q.state_dict()[key]), key
    assert torch.equal(loaded.prototypes.weight, source.prototypes.weight)
    # an exported encoder as A: backbone only; head and prototypes keep their initialisation
    from vidssl.models.checkpoints.export import export_encoder

    export_encoder(source.encoder_q.backbone, tmp_path / "exported")
    cfg = vicc_config("method.cross=true", f"method.pretrain=[{tmp_path / 'exported'},{b}]")
    from_export, fresh = build_method(cfg), build_method(vicc_config())  # same seed
    for key, value in from_export.encoder_q.backbone.state_dict().items():
        assert torch.equal(value, source.encoder_q.backbone.state_dict()[key]), key
    assert torch.equal(from_export.encoder_q.head[0].weight, fresh.encoder_q.head[0].weight)
    assert torch.equal(from_export.prototypes.weight, fresh.prototypes.weight)


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    a = vicc_checkpoint(tmp_path / "a.ckpt", 1)
    with pytest.raises(ConfigError, match=r"cross stage expects \[A, B\]"):
        vicc_config("method.cross=true", f"method.pretrain=[{a}]")
    with pytest.raises(ConfigError, match="single-stream run takes at most one"):
        vicc_config(f"method.pretrain=[{a},{a}]")
    with pytest.raises(ConfigError, match=r"views_for_assign=\[0, 2\] must list distinct views"):
        vicc_config("method.views_for_assign=[0,2]")
    with pytest.raises(ConfigError, match=r"method\.epsilon=0\.0 is not a positive float"):
        vicc_config("method.epsilon=0")
    with pytest.raises(ConfigError, match=r"smaller than data\.batch_size=4"):
        vicc_config("method.queue_size=3")
    with pytest.raises(ConfigError, match=r"frozen-stream \(B\) checkpoint .*nope does not exist"):
        build_method(vicc_config("method.cross=true", f"method.pretrain=[{a},{tmp_path}/nope]"))
    batch = two_stream_batch()
    del batch["flow_views"]
    method = build_method(vicc_config("method.cross=true", f"method.pretrain=[{a},{a}]"))
    with pytest.raises(ConfigError, match="needs two-stream batches"):
        method.vicc_step(batch)


def test_presets_mirror_the_reference_commands_and_the_optimiser_is_larc_cosine() -> None:
    from vidssl.methods.registry import load_config
    from vidssl.optim import LARC

    single = load_config("vicc/ucf101_rgb_single")
    m = single.method
    assert (m.num_prototypes, m.temperature, m.epsilon, m.sinkhorn_iterations, m.queue_size) == (
        300, 0.1, 0.05, 3, 1920,
    )  # fmt: skip
    assert (m.epoch_queue_starts, m.freeze_prototypes_nepochs, m.cross, m.second_clip_grad) == (
        200, 100, False, False,
    )  # fmt: skip
    assert (single.data.batch_size, single.trainer.epochs, single.model.proj_dim) == (48, 500, 128)
    cross = load_config("vicc/ucf101_flow_cross")
    c = cross.method
    assert (c.cross, c.reverse, c.epoch_queue_starts, c.freeze_prototypes_nepochs) == (
        True, True, 25, 0,
    )  # fmt: skip
    assert c.pretrain == ["runs/vicc_ucf101_flow_single", "runs/vicc_ucf101_rgb_cross"]
    assert (cross.data.batch_size, cross.trainer.epochs, cross.trainer.precision) == (
        24, 100, "16-mixed",
    )  # fmt: skip
    assert load_config("vicc/ucf101_r21d_rgb_cross").method.pretrain == [
        "runs/vicc_ucf101_r21d_rgb_single", "runs/vicc_ucf101_r21d_flow_single",
    ]  # fmt: skip
    # LARC SGD (momentum 0.9, trust 0.001, no clip, wd 1e-6), cosine 0.6 → 0.0006 per iteration
    method = build_method(load_config("vicc/tiny", ["trainer.epochs=2"]))
    method.steps_per_epoch = 5
    optimizers = method.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, LARC) and (optimizer.trust_coefficient, optimizer.clip) == (
        0.001, False,
    )  # fmt: skip
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-6)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [6e-4 + 0.5 * (0.6 - 6e-4) * (1 + math.cos(math.pi * t / 10)) for t in range(10)]
    assert lrs == pytest.approx(expected, rel=1e-9)
