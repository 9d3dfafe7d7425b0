"""Evaluation runners against answers computed by hand from known per-video features.

Each video of a hand-made UCF101-layout dataset shows one grey level in its central 32×32 square
(video k: level 40 + 18·k) between two bright strips. A stub encoder reads the level back from the
clip and returns a fixed feature vector for that video (RGB table ``RGB[k]``, flow table
``FLOW[k]``), and refuses a clip whose mean is not one of the levels — which is what a clip cropped
anywhere but the centre gives. The expected R@k and fused R@k are computed here, independently,
from the protocol's definition (L2 per clip, mean per video, per-set centring, cosine, ties to the
lower gallery index), on data built so that a swapped query/gallery, the wrong split or misaligned
fusion rows give different numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.eval.eval_helpers import IDENTITY
from torch import nn

from vidssl.data.sources.video_io import write_video
from vidssl.eval.encoders import EvalEncoder
from vidssl.eval.run import run_retrieval

pytestmark = pytest.mark.xdist_group("test_orchestration")

CLASSES = ("Alpha", "Beta", "Gamma")
N_VIDEOS = 9  # video k = 3·class + group; split 1 tests group 2, split 2 tests group 0
LEVELS = 40 + 18 * np.arange(N_VIDEOS)
RGB = np.random.default_rng(5).normal(size=(N_VIDEOS, 4))
FLOW = np.random.default_rng(1).normal(size=(N_VIDEOS, 4))
CORRUPT_FLOW = 5  # this flow video is unreadable: fused numbers cover the others only


def _name(k: int) -> str:
    return f"v_{CLASSES[k // 3]}_g{k % 3 + 1:02d}_c01.avi"


def _frames(k: int) -> np.ndarray:
    frame = np.full((32, 48, 3), 240, np.uint8)  # bright strips at the sides
    frame[:, 8:40] = LEVELS[k]  # the centre crop of 32 sees only the level
    return np.repeat(frame[None], 16, axis=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("orchestration")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    for split, test_group in ((1, 2), (2, 0)):
        train = [k for k in range(N_VIDEOS) if k % 3 != test_group]
        test = [k for k in range(N_VIDEOS) if k % 3 == test_group]
        (lists / f"trainlist0{split}.txt").write_text(
            "".join(f"{CLASSES[k // 3]}/{_name(k)} {k // 3 + 1}\n" for k in train)
        )
        (lists / f"testlist0{split}.txt").write_text(
            "".join(f"{CLASSES[k // 3]}/{_name(k)}\n" for k in test)
        )
    for media in ("UCF-101", "flow/UCF-101"):
        for k in range(N_VIDEOS):
            path = root / media / CLASSES[k // 3] / _name(k)
            path.parent.mkdir(parents=True, exist_ok=True)
            if media.startswith("flow") and k == CORRUPT_FLOW:
                path.write_bytes(b"not a video")
            else:
                write_video(path, _frames(k), crf=0)
    return root


class LevelLookup(nn.Module):
    """Feature = ``table[k]`` for the video whose level the clip shows."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))
        self.feature_dim = table.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = x.mean(dim=(1, 2, 3, 4)) * 255
        k = ((level - 40) / 18).round().long()
        off = (level - torch.as_tensor(LEVELS, dtype=torch.float32)[k.clamp(0, N_VIDEOS - 1)]).abs()
        if bool((k < 0).any() or (k >= N_VIDEOS).any() or (off > 5).any()):
            raise AssertionError(f"clip levels {level.tolist()} are not video levels: wrong crop")
        return self.table[k]


def _encoder(table: np.ndarray) -> EvalEncoder:
    return EvalEncoder(LevelLookup(table), IDENTITY, {"kind": "test", "sha256": None})


def _prepared(table: np.ndarray, videos: list[int]) -> np.ndarray:
    """Protocol 'coclr' by its definition: unit rows, centred per set, unit rows again."""
    feats = table[videos] / np.linalg.norm(table[videos], axis=1, keepdims=True)
    feats = feats - feats.mean(axis=0, keepdims=True)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def _recall(sim: np.ndarray, queries: list[int], gallery: list[int], k: int) -> float:
    hits = 0
    for row, q in enumerate(queries):
        order = sorted(range(len(gallery)), key=lambda g: (-sim[row, g], g))[:k]
        hits += any(gallery[g] // 3 == q // 3 for g in order)
    return hits / len(queries)


def _split(split: int) -> tuple[list[int], list[int]]:
    test_group = 2 if split == 1 else 0
    test = [k for k in range(N_VIDEOS) if k % 3 == test_group]
    return test, [k for k in range(N_VIDEOS) if k % 3 != test_group]


def _expected(split: int, ks=(1, 5)) -> dict[str, float]:
    queries, gallery = _split(split)
    sim = _prepared(RGB, queries) @ _prepared(RGB, gallery).T
    return {f"R@{k}": _recall(sim, queries, gallery, k) for k in ks}


def _expected_fused(split: int, ks=(1, 5)) -> dict[str, float]:
    queries, gallery = _split(split)
    flow_q = [k for k in queries if k != CORRUPT_FLOW]
    flow_g = [k for k in gallery if k != CORRUPT_FLOW]
    sim_rgb = _prepared(RGB, queries) @ _prepared(RGB, gallery).T
    sim_flow = _prepared(FLOW, flow_q) @ _prepared(FLOW, flow_g).T
    rows = [queries.index(k) for k in flow_q]
    cols = [gallery.index(k) for k in flow_g]
    fused = sim_rgb[np.ix_(rows, cols)] + sim_flow
    return {f"R@{k}": _recall(fused, flow_q, flow_g, k) for k in ks}


def test_the_data_tells_the_mistakes_apart():
    # preconditions of the checks below: each mistake gives other numbers (the tables' seeds were
    # chosen for that): split 1 R@1 2/3, split 2 1/3, swapped query/gallery 1/3, fused 1/2
    queries, gallery = _split(1)
    swapped_sim = _prepared(RGB, gallery) @ _prepared(RGB, queries).T
    assert _expected(1)["R@1"] == pytest.approx(2 / 3)
    assert _expected(2)["R@1"] == pytest.approx(1 / 3)
    assert _recall(swapped_sim, gallery, queries, 1) == pytest.approx(1 / 3)
    assert _expected_fused(1)["R@1"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("split", [1, 2])
def test_retrieval_equals_the_hand_computation(dataset, tmp_path, split):
    overrides = [f"data.root={dataset}", f"data.split_id={split}", "retrieval.ks=[1,5]"]
    record = run_retrieval(_encoder(RGB), "tiny", overrides=overrides, out=tmp_path)
    rgb = record["results"]["rgb"]
    assert (rgb["queries"], rgb["gallery"]) == (3, 6)
    assert {k: rgb[k] for k in ("R@1", "R@5")} == pytest.approx(_expected(split))


def test_fused_retrieval_aligns_streams_by_video(dataset, tmp_path):
    overrides = [
        f"data.root={dataset}",
        f"data.flow_media={dataset / 'flow' / 'UCF-101'}",
        "retrieval.ks=[1,5]",
    ]
    record = run_retrieval(
        _encoder(RGB), "tiny", overrides=overrides, flow_encoder=_encoder(FLOW), out=tmp_path
    )
    fused = record["results"]["fused"]
    assert {k: fused[k] for k in ("R@1", "R@5")} == pytest.approx(_expected_fused(1))
    assert record["results"]["rgb"]["queries"] == 3
    assert record["skipped"]["count"] == 1
