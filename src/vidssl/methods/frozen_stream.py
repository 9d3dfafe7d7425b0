"""The guard of co-training: does the frozen stream see the augmentation it was trained with?

CoCLR/CPR/CVTCL mine with, and ViCC's cross stage predicts codes of, a frozen encoder of the
other stream. A frozen flow model trained on crop + flip only and then fed colour-jittered flow
(the RGB policy applied to both streams) mines at chance (issue 20). `check_frozen_augmentation`
compares what the frozen encoder's own run recorded with what this run feeds it and logs one
warning naming both policies when they differ. A source without a record (a foreign checkpoint,
an encoder exported before the record existed) is not checked.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from vidssl.data.dataset_builder import augmentation_keys, stream_augmentation, trained_augmentation
from vidssl.models.checkpoints.projection import resolve_checkpoint_path

__all__ = ["check_frozen_augmentation", "recorded_augmentation"]

log = logging.getLogger(__name__)


def recorded_augmentation(path: str | Path) -> str | None:
    """The view policy the encoder at ``path`` was trained with, when its run recorded it.

    Reads ``encoder.json`` (``extra.augmentation``) of an exported encoder, or the ``data``
    section of the run's ``config.yaml`` for a run directory or one of its checkpoints.
    """
    path = resolve_checkpoint_path(path)
    info = path / "encoder.json" if path.is_dir() else path.with_name("encoder.json")
    if info.is_file() and (path.is_dir() or path.name.startswith("encoder.")):
        return (json.loads(info.read_text()).get("extra") or {}).get("augmentation")
    candidates = (path, path.parent) if path.is_dir() else (path.parent, path.parent.parent)
    for run_dir in candidates:
        config = run_dir / "config.yaml"
        if config.is_file():
            data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
            return trained_augmentation(**augmentation_keys(data))
    return None


def check_frozen_augmentation(path: str | Path, data: Any, stream: str) -> str | None:
    """Warns when this run feeds the frozen ``stream`` encoder at ``path`` another policy.

    Args:
        path: Where the frozen encoder was loaded from (``method.pretrain`` B).
        data: This run's `DataConfig`.
        stream: The frozen stream (``rgb`` or ``flow``).

    Returns:
        The warning (also logged), or None when the policies agree or nothing was recorded.
    """
    recorded = recorded_augmentation(path)
    keys = augmentation_keys(data)
    fed = stream_augmentation(
        stream,
        augmentation=keys["augmentation"],
        flow_augmentation=keys["flow_augmentation"],
        flow_media=keys["flow_media"],
    )
    if recorded is None or recorded == fed:
        return None
    option = "data.flow_augmentation" if stream == "flow" else "data.augmentation"
    message = (
        f"the frozen {stream} encoder {path} was trained with augmentation {recorded!r} but this "
        f"run feeds it {fed!r}; set {option}={recorded} so it sees its training distribution"
    )
    log.warning(message)
    return message
