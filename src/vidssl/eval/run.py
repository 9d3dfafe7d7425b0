"""Evaluation runners shared by the CLI and Python callers, and the retrieval runner.

`run_retrieval(encoder, config, ...)` evaluates test-split queries against the train-split gallery
and returns the result record (see `vidssl.eval.results`) with ``record["results"][stream]
["R@k"]``; `vidssl.eval.linear.run_linear_probe` and `vidssl.eval.finetune.run_finetune` follow
the same pattern. An optional flow encoder adds a ``flow`` stream and a ``fused`` entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.data.catalogs import VideoTable, align, load
from vidssl.data.sampling import SlidingWindows
from vidssl.eval.config import EvalConfig, load_eval_config
from vidssl.eval.encoders import EvalEncoder, load_eval_encoder
from vidssl.eval.features import (
    ClipOutputs,
    check_degenerate,
    extract_features,
    protocol_clips,
)
from vidssl.eval.fusion import fuse_similarities
from vidssl.eval.results import make_record, write_results
from vidssl.eval.retrieval import (
    cosine_similarity,
    recall_at_k,
    recall_at_k_from_similarity,
    video_features,
)

__all__ = ["EncoderLike", "Stream", "as_config", "load_streams", "run_retrieval"]

logger = logging.getLogger(__name__)

EncoderLike = str | Path | EvalEncoder


@dataclass
class Stream:
    """One stream under evaluation: its encoder and its train/test tables (row-aligned)."""

    name: str
    encoder: EvalEncoder
    train: VideoTable
    test: VideoTable


def as_config(config: EvalConfig | str | Path | None, overrides: Sequence[str] = ()) -> EvalConfig:
    """An `EvalConfig` from a config, a preset name or a YAML path (plus overrides)."""
    if isinstance(config, EvalConfig):
        if overrides:
            return load_eval_config(None, [*_flat_overrides(config), *overrides])
        return config
    return load_eval_config(config, overrides)


def _flat_overrides(cfg: EvalConfig) -> list[str]:
    import json

    from vidssl.config.parse import flatten_tree

    return [f"{k}={json.dumps(v)}" for k, v in flatten_tree(cfg.to_dict()).items()]


def _encoder(value: EncoderLike, modality: str | None = None) -> EvalEncoder:
    if isinstance(value, EvalEncoder):
        return value
    return load_eval_encoder(value, modality=modality)


def load_streams(
    cfg: EvalConfig, encoder: EncoderLike, flow_encoder: EncoderLike | None = None
) -> list[Stream]:
    """Loads the encoder(s) and the train/test tables of each stream (RGB and flow aligned)."""
    data = cfg.data
    rgb = _encoder(encoder)
    splits = {
        split: load(data.dataset, data.root, split, split_id=data.split_id, media=data.media)
        for split in (data.train_split, data.test_split)
    }
    streams = [Stream(rgb.spec.modality, rgb, splits[data.train_split], splits[data.test_split])]
    if flow_encoder is None:
        return streams
    from vidssl.errors import ConfigError

    if data.flow_media is None:
        raise ConfigError("a flow encoder needs data.flow_media (--flow-media DIR)")
    flow = _encoder(flow_encoder, "flow")
    tables = {}
    for split in (data.train_split, data.test_split):
        flow_table = load(
            data.dataset, data.root, split, split_id=data.split_id, media=data.flow_media
        )
        tables[split] = align(splits[split], flow_table)
    train, test = tables[data.train_split], tables[data.test_split]
    streams[0] = Stream(rgb.spec.modality, rgb, train[0], test[0])
    streams.append(Stream("flow", flow, train[1], test[1]))
    return streams


def extract(
    cfg: EvalConfig,
    stream: Stream,
    table: VideoTable,
    protocol: str,
    side: str,
    *,
    transform: Any = None,
    sampler: Any = None,
) -> ClipOutputs:
    """Features of ``table`` for one side of ``protocol`` with the settings of ``cfg``."""
    data, runtime = cfg.data, cfg.runtime
    default_sampler, default_transform = protocol_clips(
        protocol,
        side,
        seq_len=data.seq_len,
        ds=data.ds,
        img_size=data.img_size,
        crop_size=data.crop_size,
        normalization=stream.encoder.spec.normalization,
    )
    cache = None
    if runtime.cache_features:
        sha = (stream.encoder.record.get("sha256") or "nohash")[:12]
        cache = (
            Path(runtime.out)
            / "features"
            / f"{stream.name}_{table.split}_{protocol}_{side}_s{runtime.seed}_{sha}.pt"
        )
    return extract_features(
        stream.encoder,
        table,
        sampler or default_sampler,
        transform or default_transform,
        seed=runtime.seed,
        batch_size=data.batch_size,
        workers=data.workers,
        device=runtime.device,
        amp=runtime.amp,
        forward_batch=runtime.forward_batch,
        progress=runtime.progress,
        cache=cache,
        cache_key={"encoder": stream.encoder.record.get("sha256"), "protocol": protocol},
        conv_features=protocol == "pcl",
    )


def dataset_record(cfg: EvalConfig) -> dict[str, Any]:
    """The ``dataset`` entry of a result record."""
    data = cfg.data
    return {
        "name": data.dataset,
        "root": data.root,
        "media": data.media,
        "flow_media": data.flow_media,
        "split_id": data.split_id,
    }


def clip_protocol_record(cfg: EvalConfig, protocol: str) -> dict[str, Any]:
    """``protocol`` entry: splits, clips, crops, resolution, seq_len."""
    data = cfg.data
    stride = SlidingWindows(data.seq_len, data.ds).window_stride
    windows = f"all sliding windows (stride {stride})"
    clips = {
        "coclr": (windows, "one random clip per video (seeded)"),
        "full": (windows, windows),
        "pcl": ("10 uniform clips", "10 uniform clips"),
    }[protocol]
    crops = (
        f"resize {round(data.img_size * 128 / 112)}x{round(data.img_size * 171 / 112)}, centre "
        f"{data.img_size}"
        if protocol == "pcl"
        else f"centre {data.crop_size} -> {data.img_size}"
    )
    return {
        "name": protocol,
        "query_split": data.test_split,
        "gallery_split": data.train_split,
        "query_clips": clips[0],
        "gallery_clips": clips[1],
        "crops": crops,
        "resolution": data.img_size,
        "seq_len": data.seq_len,
        "ds": data.ds,
    }


def _recall_dict(recall: dict[int, float]) -> dict[str, float]:
    return {f"R@{k}": v for k, v in recall.items()}


def finish(
    cfg: EvalConfig,
    task: str,
    streams: list[Stream],
    protocol: dict[str, Any],
    results: dict[str, Any],
    skipped: dict[str, list[str]],
    out: str | Path | None,
    name: str,
) -> dict[str, Any]:
    """Builds the record, writes JSON + markdown under ``out`` (default ``runtime.out``)."""
    record = make_record(
        task,
        dataset=dataset_record(cfg),
        protocol=protocol,
        encoders={s.name: s.encoder.record for s in streams},
        results=results,
        skipped=skipped,
        settings=cfg.to_dict(),
    )
    json_path, md_path = write_results(record, out or cfg.runtime.out, name)
    logger.info("wrote %s and %s", json_path, md_path)
    record["files"] = {"json": str(json_path), "markdown": str(md_path)}
    return record


def run_retrieval(
    encoder: EncoderLike,
    config: EvalConfig | str | Path | None = "coclr_retrieval",
    *,
    overrides: Sequence[str] = (),
    flow_encoder: EncoderLike | None = None,
    out: str | Path | None = None,
    name: str = "retrieval",
) -> dict[str, Any]:
    """Nearest-neighbour retrieval: test-split queries vs the train-split gallery.

    Args:
        encoder: Our export directory, or a loaded `EvalEncoder` (foreign checkpoints:
            ``load_eval_encoder(checkpoint=..., method=...)``).
        config: An `EvalConfig`, an eval preset name or a YAML path.
        overrides: ``key=value`` settings (``data.root=...``, ``retrieval.protocol=pcl``).
        flow_encoder: A flow encoder for two-stream retrieval (needs ``data.flow_media``).
        out: Output directory (default ``runtime.out``).
        name: File stem of the JSON / markdown results.

    Returns:
        The result record: ``record["results"]["rgb"]["R@1"]`` (fractions), ``"flow"`` and
        ``"fused"`` with a flow encoder; ``record["skipped"]``, ``record["files"]``.
    """
    cfg = as_config(config, overrides)
    protocol = cfg.retrieval.protocol
    streams = load_streams(cfg, encoder, flow_encoder)
    results: dict[str, Any] = {}
    skipped: dict[str, list[str]] = {}
    sims = []
    for stream in streams:
        query = extract(cfg, stream, stream.test, protocol, "query")
        gallery = extract(cfg, stream, stream.train, protocol, "gallery")
        skipped[f"{stream.name}_{stream.test.split}"] = query.skipped()
        skipped[f"{stream.name}_{stream.train.split}"] = gallery.skipped()
        q_feats, q_rows = video_features(query.features, query.video, protocol)
        g_feats, g_rows = video_features(gallery.features, gallery.video, protocol)
        q_labels, g_labels = query.labels[q_rows], gallery.labels[g_rows]
        recall = recall_at_k(q_feats, q_labels, g_feats, g_labels, cfg.retrieval.ks)
        results[stream.name] = _recall_dict(recall)
        results[stream.name]["queries"] = len(q_rows)
        results[stream.name]["gallery"] = len(g_rows)
        degenerate = [
            check_degenerate(outputs, f"retrieval {stream.name} {table.split}")
            for outputs, table in ((query, stream.test), (gallery, stream.train))
        ]
        results[stream.name]["degenerate_features"] = any(degenerate)
        keys = (stream.test.video_keys()[q_rows], stream.train.video_keys()[g_rows])
        labels = (dict(zip(keys[0].tolist(), q_labels)), dict(zip(keys[1].tolist(), g_labels)))
        sims.append((cosine_similarity(q_feats, g_feats), keys, labels))
    if len(sims) == 2:
        (sim_a, keys_a, labels), (sim_b, keys_b, _) = sims
        fused, q_ids, g_ids = fuse_similarities(
            sim_a, sim_b, (keys_a[0], keys_b[0]), (keys_a[1], keys_b[1])
        )
        q_labels = np.array([labels[0][k] for k in q_ids.tolist()])
        g_labels = np.array([labels[1][k] for k in g_ids.tolist()])
        recall = recall_at_k_from_similarity(fused, q_labels, g_labels, cfg.retrieval.ks)
        results["fused"] = {**_recall_dict(recall), "queries": len(q_ids), "gallery": len(g_ids)}
    record = finish(
        cfg,
        "retrieval",
        streams,
        clip_protocol_record(cfg, protocol),
        results,
        skipped,
        out,
        name,
    )
    for stream_name, values in results.items():
        shown = ", ".join(f"{k} {100 * v:.1f}" for k, v in values.items() if k.startswith("R@"))
        logger.info("retrieval %s: %s", stream_name, shown)
    return record
