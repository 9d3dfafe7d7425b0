"""Finishing on-device views: the batch side of ``data.augment_on=device``.

With an ``on_device`` view policy (`vidssl.data.transforms.presets.CoclrViewPolicy`) the data
loader's workers only decode, crop and resize; items carry uint8 ``"views"`` (and
``"flow_views"``) plus ``"device_params"``, one packed parameter dict per view, which the default
collate turns into a list (per view) of dicts of ``[B, ...]`` tensors. `augment_batch` runs the
photometric tail (`BatchedVideoAugment`) on whatever device the views are on and returns the
batch in the layout of the CPU path: ``"views"``/``"flow_views"`` lists of float normalised
``B×C×T×H×W`` tensors, no ``"device_params"``.

`vidssl.methods.base.BaseMethod` calls this from its batch-transfer hooks; the packed
parameters stay on the host (`hold_params` / `restore_params` around the transfer), because
`BatchedVideoAugment.apply` does its index maths there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from vidssl.data.transforms.batched import BatchedVideoAugment
from vidssl.errors import DataError

if TYPE_CHECKING:
    from vidssl.config.schema import DataConfig

__all__ = [
    "DEVICE_PARAMS",
    "augment_batch",
    "augment_from_config",
    "augment_of",
    "has_params",
    "hold_params",
    "restore_params",
]

#: The batch key of the packed per-view parameters.
DEVICE_PARAMS = "device_params"

_Params = Sequence[Mapping[str, torch.Tensor]]


def has_params(batch: Any) -> bool:
    """Whether ``batch`` is a dict batch still waiting for its on-device augmentation."""
    return isinstance(batch, Mapping) and DEVICE_PARAMS in batch


def hold_params(batch: Any) -> tuple[Any, _Params | None]:
    """Splits the packed parameters off a batch (so they are not moved to the device)."""
    if not has_params(batch):
        return batch, None
    rest = {key: value for key, value in batch.items() if key != DEVICE_PARAMS}
    return rest, batch[DEVICE_PARAMS]


def restore_params(batch: Any, params: _Params | None) -> Any:
    """Puts back what `hold_params` split off (the batch is a new dict)."""
    if params is None:
        return batch
    return {**batch, DEVICE_PARAMS: params}


def augment_of(dataset: Any) -> BatchedVideoAugment | None:
    """The batched augmentation of a dataset whose view policy runs ``on_device``, else None."""
    views = getattr(dataset, "views", None)
    if getattr(views, "on_device", False):
        return views.device  # type: ignore[union-attr]
    return None


def augment_from_config(data: DataConfig) -> BatchedVideoAugment:
    """The batched augmentation of the view policy that ``data`` describes."""
    from vidssl.data.dataset_builder import build_view_policy, flow_photometric

    policy = build_view_policy(
        data.augmentation,
        data.num_views,
        data.img_size,
        on_device=True,
        photometric_on_flow=flow_photometric(data.augmentation, data.flow_augmentation),
    )
    return policy.device  # type: ignore[attr-defined]


def _finish(
    views: Sequence[torch.Tensor],
    packed: Mapping[str, torch.Tensor],
    augment: BatchedVideoAugment,
    *,
    flow: bool,
) -> list[torch.Tensor]:
    """Augments all views in one batched call (per view when their shapes differ)."""
    sizes = [int(view.shape[0]) for view in views]
    if len({tuple(view.shape) for view in views}) == 1:
        return list(augment.apply(torch.cat(list(views)), packed, flow=flow).split(sizes))
    out, start = [], 0
    for view, size in zip(views, sizes, strict=True):
        rows = {key: value[start : start + size] for key, value in packed.items()}
        out.append(augment.apply(view, rows, flow=flow))
        start += size
    return out


def augment_batch(batch: Mapping[str, Any], augment: BatchedVideoAugment) -> dict[str, Any]:
    """Finishes the views of a collated on-device batch.

    Args:
        batch: collated items with uint8 ``"views"`` (list of ``B×C×T×h×w``), optional
            ``"flow_views"`` (same draws, so the same parameters; ``flow=True`` skips the
            photometric steps unless the pipeline runs them on flow) and ``"device_params"``
            (list per view of dicts of ``[B, ...]`` tensors, preferably on the host).
        augment: the policy's `BatchedVideoAugment`.

    Returns:
        A new dict: the batch with float views and without ``"device_params"``.

    Raises:
        DataError: the parameters do not match the views.
    """
    params = batch[DEVICE_PARAMS]
    views = batch["views"]
    if len(params) != len(views) or not views:
        raise DataError(
            f"batch has {len(views)} views but {len(params)} device_params; expected one per view"
        )
    packed = {key: torch.cat([p[key] for p in params]) for key in params[0]}
    out = {key: value for key, value in batch.items() if key != DEVICE_PARAMS}
    out["views"] = _finish(views, packed, augment, flow=False)
    if "flow_views" in batch:
        out["flow_views"] = _finish(batch["flow_views"], packed, augment, flow=True)
    return out
