"""PCL/VCP retrieval features: the VCOP nets' 9216-d conv feature on residual clips."""

from __future__ import annotations

import pytest
import torch
from tests.eval.eval_helpers import video_table

from vidssl.data.sampling import UniformClips
from vidssl.eval.encoders import EvalEncoder, InputSpec
from vidssl.eval.features import extract_features, protocol_clips
from vidssl.models import build_backbone


@pytest.mark.parametrize("arch", ["r3d_10", "c3d"])
def test_pcl_protocol_features_are_9216_d(make_video, arch) -> None:
    torch.manual_seed(0)
    backbone = build_backbone(arch)
    encoder = EvalEncoder(backbone, InputSpec(residual="pcl"), {"sha256": None})
    table = video_table(make_video, [20], [0])
    _, transform = protocol_clips("pcl", "query", seq_len=16, img_size=112)
    sampler = UniformClips(1, 16)  # one of the 10 clips is enough for the shape
    conv = extract_features(
        encoder, table, sampler, transform, conv_features=True, progress=False
    )
    assert conv.values.shape == (1, 1, 512 * 2 * 3 * 3) == (1, 1, 9216)
    pooled = extract_features(encoder, table, sampler, transform, progress=False)
    assert pooled.values.shape == (1, 1, 512)
    # the conv feature is the max-pooled conv5 map of the residual clip, flattened
    clip = transform(table.source(0).read(sampler(20, None)[0].indices), None)[None]
    with torch.no_grad():
        backbone.eval()
        diff = torch.roll(clip, 1, dims=2) - clip
        expected = torch.nn.functional.max_pool3d(backbone.forward_map(diff), (1, 2, 2)).flatten(1)
    assert torch.allclose(conv.values[:, 0], expected, atol=1e-4)
