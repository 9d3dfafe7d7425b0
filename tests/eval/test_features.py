import numpy as np
import pytest
import torch
from tests.eval.eval_helpers import IDENTITY, fake_encoder, video_table

from vidssl.data.sampling import SlidingWindows
from vidssl.eval.features import (
    DEGENERATE_SPREAD,
    ClipOutputs,
    check_degenerate,
    extract_features,
    feature_spread,
    protocol_clips,
)

SIZES = {"seq_len": 8, "img_size": 16, "crop_size": 32, "normalization": "none"}


@pytest.fixture
def table(make_video, tmp_path):
    t = video_table(make_video, [20, 8, 30], [0, 1, 0])
    (tmp_path / "bad.avi").write_bytes(b"not a video at all" * 10)
    import dataclasses

    return dataclasses.replace(
        t,
        paths=np.append(t.paths, "bad.avi"),
        labels=np.append(t.labels, 1),
        n_frames=np.append(t.n_frames, -1),
        groups=np.append(t.groups, -1),
    )


def test_sliding_window_counts_values_and_skipped_video(table):
    sampler, transform = protocol_clips("coclr", "query", **SIZES)
    assert sampler == SlidingWindows(8, 1)  # stride 8//2-1 = 3
    out = extract_features(fake_encoder(), table, sampler, transform, batch_size=2, progress=False)
    # 20 frames: starts 0,3,6,9,12 -> 5; 8 frames (<= span) -> 1 padded; 30: starts 0..21 -> 8
    assert out.windows_per_video() == {0: 5, 1: 1, 2: 8}
    assert out.features.shape == (14, 3)
    assert out.window.tolist() == [0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert out.clip_labels.tolist() == [0] * 5 + [1] + [0] * 8
    assert list(out.failed) == [3] and out.skipped() == ["bad.avi"]
    # window 2 of video 2 = frames 6..13, recomputed from the decoded frames directly
    frames = table.source(2).read(np.arange(6, 14))
    expected = transform(frames, np.random.default_rng(0)).mean(dim=(1, 2, 3)) + 0.1
    torch.testing.assert_close(out.features[8], expected)  # 5 + 1 + window 2


def test_gallery_random_clip_is_seeded_and_cache_is_reused(table, tmp_path):
    sampler, transform = protocol_clips("coclr", "gallery", **SIZES)
    kwargs = {"progress": False, "batch_size": 3}
    first = extract_features(fake_encoder(), table, sampler, transform, seed=5, **kwargs)
    again = extract_features(fake_encoder(), table, sampler, transform, seed=5, **kwargs)
    assert first.windows_per_video() == {0: 1, 1: 1, 2: 1}
    torch.testing.assert_close(first.values, again.values)
    cache = tmp_path / "cache.pt"
    made = extract_features(fake_encoder(), table, sampler, transform, cache=cache, **kwargs)
    model = fake_encoder()
    model.model.scale.data.fill_(7.0)  # a cache hit ignores the model
    hit = extract_features(model, table, sampler, transform, cache=cache, **kwargs)
    torch.testing.assert_close(made.values, hit.values)
    miss = extract_features(model, table, sampler, transform, cache=cache, seed=1, **kwargs)
    assert not torch.allclose(miss.values, made.values)


def test_pcl_protocol_gives_ten_clips_per_video(table):
    sampler, transform = protocol_clips("pcl", "query", **SIZES)
    out = extract_features(fake_encoder(), table, sampler, transform, progress=False)
    assert out.windows_per_video() == {0: 10, 1: 10, 2: 10}
    assert IDENTITY.in_channels == 3


def test_feature_spread_is_the_largest_std_of_normalised_per_video_means():
    feats = torch.tensor([[3.0, 4.0], [6.0, 8.0], [0.0, 1.0], [1.0, 0.0]])
    # L2 rows: (.6, .8) twice for video 0, (0, 1), (1, 0): per-video means (.6, .8), (0, 1),
    # (1, 0); unbiased std over videos: dim 0 sqrt(.50667 / 2), dim 1 sqrt(.56 / 2) (the max).
    spread = feature_spread(feats, np.array([5, 5, 2, 9]))
    assert spread == pytest.approx(np.sqrt(0.28), rel=1e-6)
    # the same direction at any scale is one constant vector
    assert feature_spread(torch.tensor([[1.0, 2.0], [3.0, 6.0]]), np.array([0, 1])) < 1e-7
    assert np.isnan(feature_spread(feats, np.zeros(4, dtype=np.int64)))  # one video


def test_tiny_features_are_degenerate_and_warned_about(caplog):
    # eval-mode S3D at init outputs ~1e-22: F.normalize (eps 1e-12) leaves them ~1e-10, and the
    # probe's BatchNorm (eps 1e-5) maps them to ~0: the same prediction for every video
    tiny = torch.tensor([[1e-22, 2e-22], [3e-22, 1e-22], [2e-22, 2e-22]])
    labels, paths = np.array([0, 1, 0]), np.array(["a", "b", "c"])
    outputs = ClipOutputs(tiny[:, None], np.arange(3), np.zeros(3, dtype=np.int64), labels, paths)
    assert feature_spread(tiny, np.arange(3)) < 1e-9
    with caplog.at_level("WARNING", logger="vidssl.eval.features"):
        assert check_degenerate(outputs, "linear probe rgb train") is True
    assert "linear probe rgb train: features are the same for every video" in caplog.text
    caplog.clear()
    outputs.values = outputs.values * 1e20  # unit-scale features with different directions
    assert check_degenerate(outputs, "x") is False and caplog.text == ""


def test_initial_s3d_in_eval_mode_gives_degenerate_features_and_r3d_does_not():
    from vidssl.models import build_backbone

    clips = torch.randn(3, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    spreads = {}
    for arch, width in (("s3d", 0.0625), ("r3d_18", 0.125)):
        torch.manual_seed(0)
        with torch.no_grad():
            feats = build_backbone(arch, width_mult=width).eval()(clips)
        spreads[arch] = feature_spread(feats, np.arange(3))
    assert spreads["s3d"] < DEGENERATE_SPREAD < spreads["r3d_18"]
