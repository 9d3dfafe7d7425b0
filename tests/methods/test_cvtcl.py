"""CVTCL: sub-clip split, loss composition against the pure losses, batch-shuffle fix, presets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.methods.coclr_helpers import two_stream_batch
from tests.methods.moco_helpers import TwoViewVideos, expected_ema, moco_config

from vidssl.errors import ConfigError
from vidssl.methods import losses, moco
from vidssl.methods.cvtcl import split_subclips
from vidssl.methods.registry import build_method, load_config
from vidssl.train.engine import fit


def test_split_subclips_gives_consecutive_equal_segments() -> None:
    clips = torch.arange(2 * 1 * 8 * 1 * 1, dtype=torch.float32).view(2, 1, 8, 1, 1)
    parts = split_subclips(clips, 4)
    assert [p[0, 0, :, 0, 0].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert all(p.shape == (2, 1, 2, 1, 1) for p in parts)
    with pytest.raises(ValueError, match="cannot split 8 frames into 3"):
        split_subclips(clips, 3)


def independent_terms(method, views, queue, temperature):
    """q, k (EMA applied), q_11 and the four k_2j from copies taken before the step."""
    import copy

    encoder_q, encoder_k = copy.deepcopy(method.encoder_q), copy.deepcopy(method.encoder_k)
    with torch.no_grad():
        for param, value in zip(encoder_k.parameters(), expected_ema(method)):
            param.copy_(value)
        k = encoder_k(views[1])
        sub_keys = torch.stack([encoder_k(views[1][:, :, 2 * j : 2 * j + 2]) for j in range(4)], 1)
    q = encoder_q(views[0])
    q_11 = encoder_q(views[0][:, :, :2])
    inter = losses.local_inter_nce(q_11, sub_keys, queue, temperature)
    intra = losses.local_intra_nce(q_11, sub_keys, temperature)
    return q, k, inter, intra


def test_local_stage_loss_is_global_plus_inter_over_3_plus_intra() -> None:
    method = build_method(moco_config("cvtcl_local", "data.seq_len=8"))
    assert method.cfg.method.temperature == 0.1
    batch = two_stream_batch(seed=3, frames=8)
    queue = method.queue.keys.clone()
    q, k, inter, intra = independent_terms(method, batch["views"], queue, 0.1)
    out = method.contrastive_step(batch)
    expected_global = losses.infonce(q, k, queue, 0.1)
    torch.testing.assert_close(out["loss_global"], expected_global, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_inter"], inter, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_intra"], intra, rtol=1e-5, atol=1e-6)
    expected = expected_global + inter / 3 + intra
    torch.testing.assert_close(out["loss"], expected, rtol=1e-5, atol=1e-6)
    assert not torch.isclose(inter, intra)
    torch.testing.assert_close(method.queue.keys[:4], k, rtol=0, atol=1e-6)  # whole-clip keys


def test_cross_view_stage_weights_and_local_terms_on_the_trained_stream(tmp_path: Path) -> None:
    from tests.methods.coclr_helpers import coclr_config, pretrain_pair

    overrides = ("data.seq_len=8", "method.reverse=true", "data.modality=flow")
    cfg = coclr_config("cvtcl", pretrain_pair(tmp_path), *overrides)
    method = build_method(cfg)
    batch = two_stream_batch(seed=4, frames=8)
    queue = method.queue.keys.clone()
    _, _, inter, intra = independent_terms(method, batch["flow_views"], queue, 0.07)
    out = method.contrastive_step(batch)
    torch.testing.assert_close(out["loss_inter"], inter, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_intra"], intra, rtol=1e-5, atol=1e-6)
    expected = (out["loss_global"] + inter + intra) / 3
    torch.testing.assert_close(out["loss"], expected, rtol=1e-5, atol=1e-6)


def test_subclip_keys_belong_to_their_own_videos_under_a_real_batch_shuffle(monkeypatch) -> None:
    """CVTCL's reference encoded the unshuffled sub-clips after shuffling; here a permutation
    that really moves rows (as across ranks) must not change any key or loss term."""
    method = build_method(moco_config("cvtcl_local", "data.seq_len=8")).eval()  # row-independent BN
    batch = two_stream_batch(seed=5, frames=8)
    queue = method.queue.keys.clone()
    plain = method.local_losses(batch["views"], queue)
    permutation = torch.tensor([2, 0, 3, 1])
    monkeypatch.setattr(
        moco, "batch_shuffle", lambda x: (x[permutation], torch.argsort(permutation))
    )
    monkeypatch.setattr(moco, "batch_unshuffle", lambda y, index: y[index])
    sub = batch["views"][1][:, :, 4:6]
    with torch.no_grad():
        torch.testing.assert_close(
            method.encode_keys(sub), method.encoder_k(sub), rtol=0, atol=1e-6
        )
    shuffled = method.local_losses(batch["views"], queue)
    torch.testing.assert_close(shuffled[0], plain[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(shuffled[1], plain[1], rtol=1e-6, atol=1e-6)


def test_subclip_count_must_divide_the_clip() -> None:
    with pytest.raises(
        ConfigError, match=r"method.num_subclips=3 must be ≥ 2 and divide data.seq_len=8"
    ):
        moco_config("cvtcl_local", "data.seq_len=8", "method.num_subclips=3")


def test_local_stage_trains_through_fit(tmp_path: Path) -> None:
    cfg = moco_config(
        "cvtcl_local", "data.seq_len=8", "trainer.max_steps=3", "trainer.epochs=2", run_dir=tmp_path
    )
    method = build_method(cfg)
    fit(method, TwoViewVideos(8, frames=8), cfg)
    assert int(method.queue.count) == 12


def test_presets_mirror_the_reference_commands() -> None:
    local = load_config("cvtcl/ucf101_rgb_local")
    assert (local.method.name, local.method.temperature, local.optim.lr) == (
        "cvtcl_local",
        0.1,
        5e-4,
    )
    assert local.schedule.warmup_multipliers == []  # the reference's effective schedule
    assert (local.data.batch_size, local.schedule.milestones, local.trainer.epochs) == (
        8,
        [250, 280],
        300,
    )
    assert (local.method.global_weight, local.method.inter_weight, local.method.intra_weight) == (
        1.0, pytest.approx(1 / 3), 1.0,
    )  # fmt: skip
    assert load_config("cvtcl/ucf101_flow_local").data.media == "data/ucf101/tvl1_flow"
    cross = load_config("cvtcl/ucf101_flow")
    assert (cross.method.name, cross.method.reverse, cross.method.temperature) == (
        "cvtcl",
        True,
        0.07,
    )
    assert cross.method.pretrain == ["runs/cvtcl_ucf101_flow_local", "runs/cvtcl_ucf101_rgb"]
    assert cross.method.global_weight == cross.method.inter_weight == pytest.approx(1 / 3)
    assert (cross.data.batch_size, cross.schedule.milestones, cross.trainer.epochs) == (
        32,
        [80],
        100,
    )


def test_per_sub_clip_views_feed_the_local_terms_of_the_trained_stream(tmp_path: Path) -> None:
    import copy

    from tests.methods.coclr_helpers import SIZE, coclr_config, pretrain_pair

    overrides = ("data.seq_len=8", "data.subclip_views=4", "method.reverse=true")
    cfg = coclr_config("cvtcl", pretrain_pair(tmp_path), *overrides, "data.modality=flow")
    method = build_method(cfg)
    batch = two_stream_batch(seed=5, frames=8)
    gen = torch.Generator().manual_seed(9)
    pair = lambda: [torch.randn(4, 3, 2, SIZE, SIZE, generator=gen) for _ in range(2)]  # noqa: E731
    batch["subclip_views"] = [pair() for _ in range(4)]  # RGB: not the trained stream
    batch["subclip_flow_views"] = flow_pairs = [pair() for _ in range(4)]
    queue = method.queue.keys.clone()
    encoder_q, encoder_k = copy.deepcopy(method.encoder_q), copy.deepcopy(method.encoder_k)
    with torch.no_grad():
        for param, value in zip(encoder_k.parameters(), expected_ema(method)):
            param.copy_(value)
        sub_keys = torch.stack([encoder_k(p[1]) for p in flow_pairs], 1)
    q_11 = encoder_q(flow_pairs[0][0])
    out = method.contrastive_step(batch)
    inter = losses.local_inter_nce(q_11, sub_keys, queue, 0.07)
    intra = losses.local_intra_nce(q_11, sub_keys, 0.07)
    torch.testing.assert_close(out["loss_inter"], inter, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_intra"], intra, rtol=1e-5, atol=1e-6)
