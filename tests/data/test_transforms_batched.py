from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.data.transforms.batched import BatchedVideoAugment, SplitPipeline, split_pipeline
from vidssl.data.transforms.compose import (
    ColorJitter,
    Compose,
    GaussianBlur,
    HorizontalFlip,
    Normalize,
    RandomCrop,
    RandomGrayscale,
    RandomResizedCrop,
)
from vidssl.data.transforms.presets import coclr_base, pcl_train
from vidssl.errors import ConfigError


def _batch(batch_size: int = 8, n_frames: int = 3, size: int = 10, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(
        rng.integers(0, 256, (batch_size, 3, n_frames, size, size), dtype=np.uint8)
    )


def _augment(gray_mode: str, p: float = 0.6) -> BatchedVideoAugment:
    return BatchedVideoAugment(
        [
            ColorJitter(0.4, 0.4, 0.4, 0.1, p=p),
            RandomGrayscale(p, gray_mode),
            GaussianBlur((0.1, 2.0), p=p),
            HorizontalFlip(0.5),
            Normalize("imagenet"),
        ]
    )


def _per_clip(augment: BatchedVideoAugment, batch: torch.Tensor, draws: list[dict]) -> torch.Tensor:
    """The same parameters applied clip by clip with the per-clip pipeline."""
    pipeline = augment.per_clip_pipeline()
    outs = []
    for clip, named in zip(batch, draws):
        params = tuple(named.get(step.name) for step in pipeline.transforms)
        outs.append(pipeline.apply_cthw(clip, params))
    return torch.stack(outs)


@pytest.mark.parametrize("gray_mode", ["luma", "channel", "channel_per_frame"])
def test_batched_equals_per_clip(gray_mode: str) -> None:
    augment = _augment(gray_mode)
    rng = np.random.default_rng(1)
    draws = [augment.sample_clip(rng) for _ in range(8)]
    applied = {
        name: sum(bool(getattr(d[name], "applied", d[name])) for d in draws) for name in draws[0]
    }
    assert all(0 < count < 8 for count in applied.values())  # both branches are exercised
    batch = _batch()
    packed = augment.collate([augment.pack(d) for d in draws])
    out = augment.apply(batch, packed)
    assert out.dtype == torch.float32 and out.shape == batch.shape
    assert torch.allclose(out, _per_clip(augment, batch, draws), atol=1e-5)


def test_batched_sample_matches_sample_clip_sequence() -> None:
    augment = _augment("channel_per_frame")
    packed = augment.sample(np.random.default_rng(3), 4)
    rng = np.random.default_rng(3)
    expected = augment.collate([augment.pack(augment.sample_clip(rng)) for _ in range(4)])
    assert packed.keys() == expected.keys()
    assert all(torch.equal(packed[k], expected[k]) for k in packed)
    assert packed["jitter_factors"].shape == (4, 4) and packed["flip"].dtype == torch.bool


def test_batched_does_not_modify_its_input_and_accepts_float() -> None:
    augment = _augment("luma", p=1.0)
    batch = _batch(4).float() / 255
    before = batch.clone()
    packed = augment.sample(np.random.default_rng(0), 4)
    out = augment.apply(batch, packed)
    assert torch.equal(batch, before)
    assert torch.allclose(
        out, augment.apply((batch * 255).round().to(torch.uint8), packed), atol=1e-6
    )


def test_missing_steps_pack_as_not_applied_and_flow_flag() -> None:
    augment = BatchedVideoAugment(
        [ColorJitter(brightness=(2.0, 2.0)), HorizontalFlip(1.0), Normalize("none")],
        photometric_on_flow=False,
    )
    packed = augment.pack({"flip": True})
    assert not packed["jitter"] and packed["flip"]
    batch = _batch(2)
    packed = augment.collate(
        [augment.pack({"jitter": augment.steps[0].sample(np.random.default_rng(0)), "flip": True})]
        * 2
    )
    plain = batch.float().div(255).flip(-1)
    assert torch.equal(augment.apply(batch, packed, flow=True), plain)
    assert torch.equal(augment.apply(batch, packed), (2 * plain).clamp(0, 1))


def test_split_pipeline_cuts_after_the_geometric_head() -> None:
    cpu, device = split_pipeline(coclr_base(8))
    assert [type(t) for t in cpu.transforms] == [RandomResizedCrop]
    assert [s.name for s in device.steps] == ["jitter", "grayscale", "blur", "flip"]
    assert device.stats is not None
    cpu, device = split_pipeline(pcl_train(8, (10, 12)))
    assert [type(t).__name__ for t in cpu.transforms] == ["Resize", "RandomCrop"]
    with pytest.raises(ConfigError):
        BatchedVideoAugment([RandomCrop(4)])
    with pytest.raises(ConfigError):
        BatchedVideoAugment([Normalize(), HorizontalFlip()])


@pytest.mark.parametrize("seed", range(4))
def test_split_pipeline_equals_the_per_clip_pipeline(seed: int) -> None:
    pipeline = coclr_base(8, gray_mode="channel_per_frame")
    pipeline.transforms[1].p = pipeline.transforms[2].p = pipeline.transforms[3].p = 1.0
    split = SplitPipeline(pipeline)
    rng = np.random.default_rng(seed)
    clips = [
        torch.from_numpy(rng.integers(0, 256, (3, 12, 14, 3), dtype=np.uint8)) for _ in range(3)
    ]
    params = [split.sample(rng, 12, 14) for _ in clips]
    heads = torch.stack([split.apply_cpu(c, p) for c, p in zip(clips, params)])
    assert heads.dtype == torch.uint8 and heads.shape == (3, 3, 3, 8, 8)
    out = split.device.apply(heads, split.device.collate([split.pack(p) for p in params]))
    expected = torch.stack([pipeline.apply(c, p) for c, p in zip(clips, params)])
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.gpu
def test_batched_on_cuda_equals_cpu() -> None:
    augment = _augment("channel_per_frame")
    batch = _batch()
    packed = augment.sample(np.random.default_rng(5), 8)
    on_gpu = augment.apply(batch.cuda(), {k: v.cuda() for k, v in packed.items()})
    assert torch.allclose(on_gpu.cpu(), augment.apply(batch, packed), atol=1e-4)


def test_compose_round_trip_of_per_clip_pipeline() -> None:
    pipeline = _augment("luma").per_clip_pipeline()
    assert isinstance(pipeline, Compose)
    assert [t.name for t in pipeline.transforms] == [
        "jitter",
        "grayscale",
        "blur",
        "flip",
        "normalize",
    ]
