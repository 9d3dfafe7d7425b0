from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from vidssl.data.transforms.compose import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    HorizontalFlip,
    Normalize,
    RandomGrayscale,
    RandomResizedCrop,
    ToFloat,
)
from vidssl.data.transforms.ops import normalize, residual, resize
from vidssl.data.transforms.presets import (
    CoclrViewPolicy,
    coclr_base,
    coclr_eval,
    coclr_multi_crop,
    coclr_null,
    pcl_test,
    pcl_train,
)
from vidssl.errors import ConfigError

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _clip(n_frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n_frames, height, width, 3), dtype=np.uint8))


def test_coclr_base_and_null_recipes() -> None:
    base = coclr_base()
    assert [type(t) for t in base.transforms] == [
        RandomResizedCrop, ColorJitter, RandomGrayscale, GaussianBlur, HorizontalFlip, Normalize,
    ]  # fmt: skip
    crop, jitter, gray, blur, flip, norm = base.transforms
    assert (
        crop.out_size == (128, 128) and crop.scale == (0.2, 1.0) and crop.interpolation == "bicubic"
    )
    assert jitter.p == 0.8 and jitter.ranges == ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    assert (gray.p, gray.mode, blur.p, blur.sigma, flip.p) == (
        0.2,
        "channel_per_frame",
        0.5,
        (0.1, 2.0),
        0.5,
    )
    assert norm.stats == IMAGENET
    assert [type(t) for t in coclr_null().transforms] == [
        RandomResizedCrop,
        HorizontalFlip,
        Normalize,
    ]
    out = coclr_base(16)(_clip(4, 24, 32), np.random.default_rng(0))
    assert out.shape == (3, 4, 16, 16) and out.dtype == torch.float32


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    """Within 4 standard deviations of n·p (fails by chance about once in 15 000 runs)."""
    return abs(hits - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_view_policy_plan_follows_the_reference_probabilities() -> None:
    # CoCLR (shared/reference §pretraining transforms): TransformController picks TwoClip or
    # OneClip 0.5 / 0.5; TwoClip augments clip 0 and clip 1, each with `base` at p 0.3 and `null`
    # otherwise; OneClip keeps one clip (0 or 1 at random) and augments it once with each
    # pipeline, in random order.
    policy = CoclrViewPolicy(coclr_base(8), coclr_null(8))
    rng = np.random.default_rng(123)
    n = 10_000
    plans = [policy.plan(rng) for _ in range(n)]
    two = [p for p in plans if [c for c, _ in p] == [0, 1]]
    one = [p for p in plans if p[0][0] == p[1][0]]
    assert len(two) + len(one) == n  # every plan is one of the two kinds
    assert _binomial_ok(len(two), n, 0.5)
    strong = [s for p in two for _, s in p]
    assert _binomial_ok(sum(strong), len(strong), 0.3)
    both = sum(p[0][1] and p[1][1] for p in two)  # independent draws: 0.3 · 0.3
    assert _binomial_ok(both, len(two), 0.09)
    assert all(p[0][1] != p[1][1] for p in one)  # exactly one strong view
    assert _binomial_ok(sum(p[0][0] == 1 for p in one), len(one), 0.5)
    assert _binomial_ok(sum(p[0][1] for p in one), len(one), 0.5)  # base first half the time


def test_view_policy_picks_the_planned_clips_and_pipelines() -> None:
    # Deterministic "base" (float) and "null" (uint8) pipelines reveal which was used on which clip.
    base = Compose([CenterCrop(4), ToFloat()])
    null = Compose([CenterCrop(4)])
    policy = CoclrViewPolicy(base, null)
    clips = [_clip(2, 6, 6, seed=1), _clip(2, 6, 6, seed=2)]
    kinds = set()
    for seed in range(40):
        views = policy(clips, np.random.default_rng(seed))
        kinds.add("two" if views.clip_ids == (0, 1) else "one")
        for view, clip_id, strong in zip(views.views, views.clip_ids, views.strong):
            expected = clips[clip_id][:, 1:5, 1:5].permute(3, 0, 1, 2)
            assert view.dtype == (torch.float32 if strong else torch.uint8)
            assert torch.equal(view, expected.float() / 255 if strong else expected)
        if views.clip_ids[0] == views.clip_ids[1]:
            assert views.strong[0] != views.strong[1]
        assert views.flow_views is None and views.device_params is None
    assert kinds == {"one", "two"}


def test_view_policy_flow_views_share_every_draw() -> None:
    policy = CoclrViewPolicy(coclr_base(8), coclr_null(8))
    clips = [_clip(3, 12, 14, seed=3), _clip(3, 12, 14, seed=4)]
    for seed in range(6):
        views = policy(clips, np.random.default_rng(seed), flow_clips=clips)
        assert views.flow_views is not None
        for rgb, flow in zip(views.views, views.flow_views):
            assert torch.equal(rgb, flow)  # same input, same draw -> identical, grey/blur included
    with pytest.raises(ConfigError):
        policy([clips[0]], np.random.default_rng(0))


def test_view_policy_on_device_equals_on_cpu() -> None:
    on_cpu = CoclrViewPolicy(coclr_base(8), coclr_null(8))
    on_gpu = CoclrViewPolicy(coclr_base(8), coclr_null(8), on_device=True)
    clips = [_clip(3, 12, 14, seed=5), _clip(3, 12, 14, seed=6)]
    finished, heads, packed = [], [], []
    for seed in range(8):
        finished += on_cpu(clips, np.random.default_rng(seed)).views
        views = on_gpu(clips, np.random.default_rng(seed), flow_clips=clips)
        assert all(v.dtype == torch.uint8 for v in views.views + views.flow_views)
        heads += views.views
        packed += views.device_params
    out = on_gpu.device.apply(torch.stack(heads), on_gpu.device.collate(packed))
    assert torch.allclose(out, torch.stack(finished), atol=1e-5)


def test_coclr_eval_centre_crop_then_resize() -> None:
    clip = _clip(2, 240, 320)
    out = coclr_eval()(clip, np.random.default_rng(0))
    assert out.shape == (3, 2, 128, 128)
    centre = clip[:, 8:232, 48:272].permute(3, 0, 1, 2)  # (240-224)/2 = 8, (320-224)/2 = 48
    expected = normalize(resize(centre, (128, 128), "bicubic").float() / 255, *IMAGENET)
    assert torch.allclose(out, expected)
    assert not any(isinstance(t, ColorJitter) for t in coclr_eval().transforms)  # no test jitter


def test_coclr_ten_crop() -> None:
    views = coclr_multi_crop(crop=20, size=10)(_clip(2, 24, 32))
    assert len(views) == 10 and all(v.shape == (3, 2, 10, 10) for v in views)
    for plain, mirrored in zip(views[:5], views[5:]):
        assert torch.allclose(mirrored, plain.flip(-1), atol=1e-5)  # resize commutes with flip
    assert len(coclr_multi_crop(crop=20, size=10, flips=False)(_clip(2, 24, 32))) == 5


def test_pcl_train_and_test() -> None:
    clip = _clip(4, 60, 80)
    strong = pcl_train(crop=24, resize=(32, 40))
    assert [type(t).__name__ for t in strong.transforms] == [
        "Resize", "RandomCrop", "ColorJitter", "RandomGrayscale", "GaussianBlur", "HorizontalFlip",
        "Normalize",
    ]  # fmt: skip
    assert strong.transforms[3].mode == "luma" and strong.transforms[0].interpolation == "bilinear"
    assert strong(clip, np.random.default_rng(0)).shape == (3, 4, 24, 24)
    plain = pcl_train(crop=24, resize=(32, 40), strong=False)
    params = plain.sample(np.random.default_rng(1), 60, 80)
    out = plain.apply(clip, params)
    box = params[1]
    resized = resize(clip.permute(3, 0, 1, 2), (32, 40), "bilinear")
    cut = resized[..., box.top : box.top + 24, box.left : box.left + 24]
    assert torch.equal(out, cut.float() / 255)  # no normalisation without --aug
    test = pcl_test(crop=24, resize=(32, 41), residual="pcl")
    out = test(clip, np.random.default_rng(0))
    # centre crop of 32×41: top (32-24)/2 = 4, left round(8.5) = 8 (round half to even)
    resized = resize(clip.permute(3, 0, 1, 2), (32, 41), "bilinear")[..., 4:28, 8:32]
    assert torch.allclose(
        out, residual(normalize(resized.float() / 255, *IMAGENET), "pcl"), atol=1e-6
    )


def test_policy_survives_pickling_for_worker_processes() -> None:
    policy = CoclrViewPolicy(coclr_base(8), coclr_null(8), on_device=True)
    clone = pickle.loads(pickle.dumps(policy))
    clips = [_clip(2, 12, 14, seed=7), _clip(2, 12, 14, seed=8)]
    first = policy(clips, np.random.default_rng(0))
    second = clone(clips, np.random.default_rng(0))
    assert all(torch.equal(a, b) for a, b in zip(first.views, second.views))
    assert all(
        torch.equal(a[k], b[k])
        for a, b in zip(first.device_params, second.device_params)
        for k in a
    )
