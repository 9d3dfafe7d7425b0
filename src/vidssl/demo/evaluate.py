"""The demo's evaluation: retrieval R@k and a linear probe for several encoders per stream.

Every encoder of a stream (random init, InfoNCE, CoCLR, ...) sees the same clips, so each split
of each stream is decoded once and all its encoders run on every batch (`stream_features`). The
numbers follow the evaluation runners' building blocks (`vidssl.eval`): retrieval on the mean of
the L2-normalised clip features per video, centred and re-normalised per set (CoCLR protocol
arithmetic), test-split queries against the train-split gallery, two-stream retrieval by summed
cosine similarities; the linear probe (L2 → BN → Linear, SGD) is trained on the train clips and
tested on the softmax averaged over each test video's clips, two-stream by averaged
probabilities. Unlike the CoCLR protocol, both splits use ``n_clips`` evenly spread clips per
video (`UniformClips`) instead of every sliding window: same arithmetic, a fraction of the
decoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidssl.data.catalogs import VideoTable
from vidssl.data.sampling import UniformClips
from vidssl.data.transforms.presets import coclr_eval
from vidssl.eval.clips import VideoClips
from vidssl.eval.config import LinearSettings
from vidssl.eval.encoders import EvalEncoder, adapt_input, load_eval_encoder
from vidssl.eval.features import ClipOutputs, run_on_clips
from vidssl.eval.fusion import fuse_probabilities, fuse_similarities
from vidssl.eval.linear import mean_probabilities, topk_accuracy, train_linear_probe
from vidssl.eval.retrieval import cosine_similarity, recall_at_k_from_similarity, video_features

__all__ = ["ClipSettings", "StreamFeatures", "evaluate_inits", "stream_features"]

RECALL_KS = (1, 5, 10, 20, 50)
FUSED = "rgb+flow"


@dataclass(frozen=True)
class ClipSettings:
    """Which clips the encoders see.

    ``n_clips`` uniform clips of ``seq_len`` frames every ``ds``, centre ``crop_size`` crop
    resized to ``img_size``; ``batch_size`` videos per loader batch.
    """

    n_clips: int
    seq_len: int
    ds: int
    img_size: int
    crop_size: int
    batch_size: int = 8


@dataclass
class StreamFeatures:
    """Per-clip features of one stream's train and test split, for each encoder (init)."""

    train: dict[str, ClipOutputs]
    test: dict[str, ClipOutputs]
    train_table: VideoTable
    test_table: VideoTable


def _multi_encoder_fn(encoders: Sequence[EvalEncoder]) -> Any:
    for encoder in encoders:
        encoder.model.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([enc.model(adapt_input(x, enc.spec)) for enc in encoders], dim=1)

    return forward


def _split_outputs(outputs: ClipOutputs, names: Sequence[str], dims: Sequence[int]) -> dict:
    parts = torch.split(outputs.values, list(dims), dim=-1)
    return {
        name: ClipOutputs(
            part.contiguous(),
            outputs.video,
            outputs.window,
            outputs.labels,
            outputs.paths,
            outputs.failed,
        )
        for name, part in zip(names, parts)
    }


def stream_features(
    encoders: Mapping[str, str | Path | EvalEncoder],
    tables: tuple[VideoTable, VideoTable],
    clips: ClipSettings,
    *,
    modality: str = "rgb",
) -> StreamFeatures:
    """Runs every encoder of one stream on the same clips of the train and test tables.

    Args:
        encoders: Init name → export directory or loaded encoder (same modality and
            normalisation; the clips are normalised with the first encoder's statistics).
        tables: ``(train, test)`` tables of the stream.
        clips: Clip geometry.
        modality: ``rgb`` or ``flow``.
    """
    loaded = {
        name: enc if isinstance(enc, EvalEncoder) else load_eval_encoder(enc, modality=modality)
        for name, enc in encoders.items()
    }
    names = list(loaded)
    first = loaded[names[0]]
    dims = [int(enc.model.feature_dim) for enc in loaded.values()]
    sampler = UniformClips(clips.n_clips, clips.seq_len, clips.ds)
    transform = coclr_eval(clips.crop_size, clips.img_size, normalization=first.spec.normalization)
    fn = _multi_encoder_fn(list(loaded.values()))
    per_split = []
    for table in tables:
        dataset = VideoClips(table, sampler, transform)
        outputs = run_on_clips(
            fn, dataset, batch_size=clips.batch_size, progress=False, desc=table.split
        )
        per_split.append(_split_outputs(outputs, names, dims))
    return StreamFeatures(per_split[0], per_split[1], tables[0], tables[1])


def _retrieval_inputs(train: ClipOutputs, test: ClipOutputs, keys: tuple) -> tuple:
    q_feats, q_rows = video_features(test.features, test.video, "coclr")
    g_feats, g_rows = video_features(train.features, train.video, "coclr")
    similarity = cosine_similarity(q_feats, g_feats)
    ids = (keys[1][q_rows], keys[0][g_rows])
    labels = (test.labels[q_rows], train.labels[g_rows])
    return similarity, ids, labels


def _linear(train: ClipOutputs, test: ClipOutputs, num_classes: int, settings, seed: int):
    probe, _ = train_linear_probe(
        train.features, train.clip_labels, num_classes, settings, seed=seed
    )
    with torch.no_grad():
        logits = probe(test.features)
    probs, rows = mean_probabilities(logits, test.video)
    return probs, rows


def _recall(similarity: torch.Tensor, labels: tuple) -> dict[str, float]:
    recall = recall_at_k_from_similarity(similarity, labels[0], labels[1], RECALL_KS)
    return {f"R@{k}": float(v) for k, v in recall.items()}


def evaluate_inits(
    rgb: StreamFeatures,
    flow: StreamFeatures,
    linear: LinearSettings,
    *,
    seed: int = 0,
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, Any]]:
    """Retrieval and linear probe of every init on ``rgb``, ``flow`` and ``rgb+flow``.

    Args:
        rgb: RGB features (inits as keys of ``.train`` / ``.test``).
        flow: Flow features of the same inits (an init missing here is evaluated on RGB only),
            on row-aligned tables.
        linear: Linear-probe settings.
        seed: Seeds the probe.

    Returns:
        ``(results[stream][init] = {"R@1", ..., "R@50", "linear_top1"}, similarities)`` where
        ``similarities[init]`` holds the fused ``[Q, G]`` similarity with its query and gallery
        ids and labels (for the retrieval grid).
    """
    results: dict[str, dict[str, dict[str, float]]] = {"rgb": {}, "flow": {}, FUSED: {}}
    sims: dict[str, Any] = {}
    for init in rgb.train:
        retrieval, probs = {}, {}
        for stream, feats in (("rgb", rgb), ("flow", flow)):
            if init not in feats.train:
                continue  # an RGB-only init (PCL): no flow or rgb+flow rows
            keys = (feats.train_table.video_keys(), feats.test_table.video_keys())
            train, test = feats.train[init], feats.test[init]
            retrieval[stream] = _retrieval_inputs(train, test, keys)
            num_classes = len(feats.train_table.class_names)
            p, rows = _linear(train, test, num_classes, linear, seed)
            probs[stream] = (p, keys[1][rows], test.labels[rows])
            results[stream][init] = {
                **_recall(retrieval[stream][0], retrieval[stream][2]),
                "linear_top1": topk_accuracy(p, test.labels[rows], ks=(1,))["top1"],
            }
        if "flow" not in retrieval:
            continue
        (sim_r, ids_r, lab_r), (sim_f, ids_f, _) = retrieval["rgb"], retrieval["flow"]
        fused, q_ids, g_ids = fuse_similarities(
            sim_r, sim_f, (ids_r[0], ids_f[0]), (ids_r[1], ids_f[1])
        )
        q_label = dict(zip(ids_r[0].tolist(), lab_r[0]))
        g_label = dict(zip(ids_r[1].tolist(), lab_r[1]))
        labels = (
            np.array([q_label[k] for k in q_ids.tolist()]),
            np.array([g_label[k] for k in g_ids.tolist()]),
        )
        fused_probs, ids = fuse_probabilities(
            probs["rgb"][0], probs["flow"][0], probs["rgb"][1], probs["flow"][1]
        )
        label_of = dict(zip(probs["rgb"][1].tolist(), probs["rgb"][2]))
        fused_labels = np.array([label_of[k] for k in ids.tolist()])
        results[FUSED][init] = {
            **_recall(fused, labels),
            "linear_top1": topk_accuracy(fused_probs, fused_labels, ks=(1,))["top1"],
        }
        sims[init] = {
            "similarity": fused,
            "query_ids": q_ids,
            "gallery_ids": g_ids,
            "labels": labels,
        }
    return results, sims
