from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidssl.models import build_backbone
from vidssl.models.heads import ClassifierHead, ProjectionEncoder, ProjectionHead


def test_projection_encoder_is_pool_then_1x1x1_mlp_then_l2_norm() -> None:
    torch.manual_seed(0)
    encoder = ProjectionEncoder(build_backbone("r3d_10", width_mult=0.0625), out_dim=8).eval()
    state = encoder.state_dict()
    assert state["head.0.weight"].shape == (32, 32, 1, 1, 1)  # hidden defaults to feature_dim
    assert state["head.2.weight"].shape == (8, 32, 1, 1, 1)
    assert any(key.startswith("backbone.") for key in state)
    clips = torch.randn(3, 3, 4, 32, 32)
    with torch.no_grad():
        pooled = encoder.backbone(clips)  # B×F global average
        w0, b0 = state["head.0.weight"].flatten(1), state["head.0.bias"]
        w2, b2 = state["head.2.weight"].flatten(1), state["head.2.bias"]
        expected = F.normalize(F.relu(pooled @ w0.T + b0) @ w2.T + b2, dim=1)
        out = encoder(clips)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert out.dtype == torch.float32 and torch.allclose(out.norm(dim=1), torch.ones(3))
    assert ProjectionHead(16, 24, 4)[0].out_channels == 24


def test_projection_encoder_rejects_a_classifier_backbone() -> None:
    with pytest.raises(ValueError, match="without num_classes"):
        ProjectionEncoder(build_backbone("r3d_10", width_mult=0.0625, num_classes=5))


@pytest.mark.parametrize(("dropout", "linear_key"), [(0.0, "final_fc.0"), (0.9, "final_fc.1")])
def test_classifier_head_uses_coclr_key_names(dropout: float, linear_key: str) -> None:
    head = ClassifierHead(6, 4, dropout=dropout, batch_norm=True)
    keys = set(head.state_dict())
    assert {f"{linear_key}.weight", f"{linear_key}.bias", "final_bn.weight"} <= keys
    assert head.linear is head.final_fc[-1]


def test_classifier_head_normalises_then_batch_norms_then_projects() -> None:
    torch.manual_seed(0)
    head = ClassifierHead(6, 4, l2_norm=True, batch_norm=True).eval()
    features = torch.randn(5, 6)
    normed = F.normalize(features, dim=1)
    bn = head.final_bn
    standardised = (normed - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
    expected = standardised @ head.linear.weight.T + head.linear.bias
    torch.testing.assert_close(head(features), expected)
    with pytest.raises(ValueError, match="dropout"):
        ClassifierHead(6, 4, dropout=1.0)
