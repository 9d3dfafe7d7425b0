"""Datasets from a run config: `build_pretrain_dataset(cfg)` reads ``cfg.data``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vidssl.data.catalogs import table as catalogs
from vidssl.data.datasets import MultiViewDataset, ViewPolicy
from vidssl.data.sampling import MultiRandomClips
from vidssl.data.transforms.presets import CoclrViewPolicy, PerClipViews, coclr_base, coclr_null
from vidssl.errors import ConfigError

if TYPE_CHECKING:
    from vidssl.config.schema import Config

logger = logging.getLogger(__name__)

#: ``data.augmentation`` names: how the views of a pretraining sample are augmented.
AUGMENTATIONS = ("coclr", "base", "null")

__all__ = [
    "AUGMENTATIONS",
    "augmentation_keys",
    "build_pretrain_dataset",
    "build_view_policy",
    "flow_photometric",
    "stream_augmentation",
    "trained_augmentation",
]


def stream_augmentation(
    stream: str,
    *,
    augmentation: str,
    flow_augmentation: str = "",
    flow_media: str | None = None,
) -> str:
    """The view policy a stream's clips get in a run (``stream``: ``rgb`` or ``flow``).

    In two-stream data (``flow_media``) the flow views get ``flow_augmentation`` (empty: the
    same as ``augmentation``); everything else gets ``augmentation``.
    """
    if stream == "flow" and flow_media:
        return flow_augmentation or augmentation
    return augmentation


def augmentation_keys(data: Any) -> dict[str, Any]:
    """The keys `trained_augmentation` reads, from a `DataConfig` or a saved ``data`` section."""
    get = data.get if isinstance(data, dict) else lambda key, default: getattr(data, key, default)
    return {
        "augmentation": get("augmentation", "coclr"),
        "flow_augmentation": get("flow_augmentation", "") or "",
        "modality": get("modality", "rgb"),
        "flow_media": get("flow_media", None),
    }


def trained_augmentation(
    *, augmentation: str, flow_augmentation: str = "", modality: str = "rgb", flow_media=None
) -> str:
    """The view policy of the stream a run trains (a reverse two-stream stage trains flow)."""
    return stream_augmentation(
        modality, augmentation=augmentation, flow_augmentation=flow_augmentation,
        flow_media=flow_media,
    )  # fmt: skip


def flow_photometric(augmentation: str, flow_augmentation: str) -> bool:
    """Whether flow views get the photometric steps of the RGB views' draws.

    ``flow_augmentation`` empty or equal to ``augmentation``: yes (the references). ``null``: no;
    the flow views keep the shared geometric draws (crop, flip) only.

    Raises:
        ConfigError: a flow policy with photometric steps the RGB policy does not draw.
    """
    if flow_augmentation in ("", augmentation):
        return True
    if flow_augmentation == "null":
        return False
    raise ConfigError(
        f"data.flow_augmentation={flow_augmentation!r} with data.augmentation={augmentation!r} "
        "is not supported: flow shares the RGB views' draws, so it can get the same policy or "
        "'null' (no photometric change)"
    )


def build_view_policy(
    name: str,
    num_views: int,
    img_size: int,
    *,
    on_device: bool = False,
    crop_draw: str = "once",
    photometric_on_flow: bool = True,
) -> ViewPolicy:
    """The view policy of an augmentation preset.

    Args:
        name: ``coclr``: CoCLR's ``TransformController`` (`CoclrViewPolicy`) for 2 views, and
            its *TwoClip* rule (each clip ``base`` with p=0.3, else ``null``; `PerClipViews`) for
            any other number; ``base``: every view `coclr_base`; ``null``: every view
            `coclr_null` (crop + flip).
        num_views: clips (= views) per sample.
        img_size: output frame size.
        on_device: return uint8 crops and packed parameters (batched augmentation on device).
        crop_draw: ``once`` (CoCLR's pretraining crop: one box, else the squashed whole frame)
            or ``retry`` (10 tries, then a centred box); see `RandomResizedCrop`.
        photometric_on_flow: whether flow views also get the photometric steps (see
            `flow_photometric`).

    Raises:
        ConfigError: an unknown ``name``.
    """
    base = coclr_base(img_size, crop_draw=crop_draw, photometric_on_flow=photometric_on_flow)
    null = coclr_null(img_size, crop_draw=crop_draw, photometric_on_flow=photometric_on_flow)
    if name == "coclr" and num_views == 2:
        return CoclrViewPolicy(base, null, on_device=on_device)
    p_base = {"coclr": 0.3, "base": 1.0, "null": 0.0}.get(name)
    if p_base is None:
        raise ConfigError(f"data.augmentation={name!r} is not one of {', '.join(AUGMENTATIONS)}")
    return PerClipViews(num_views, base, null, p_base=p_base, on_device=on_device)


def build_pretrain_dataset(cfg: Config) -> MultiViewDataset:
    """The self-supervised training dataset described by ``cfg.data``.

    ``data.num_views`` random clips of ``data.seq_len`` frames (stride ``data.ds``) per video
    (CoCLR's ``double_sampler`` for 2), augmented per ``data.augmentation`` to
    ``data.img_size``. The videos are split ``data.split`` / ``data.split_id`` of catalog
    ``data.dataset`` under ``data.root``, read from ``data.media`` (default per catalog). With
    ``data.flow_media`` the dataset is two-stream: the flow table is aligned with the RGB one
    and items carry ``"flow_views"``. With ``data.augment_on=device`` the views are uint8 crops
    and items carry ``"device_params"`` (finished by `vidssl.data.transforms.device`). With
    ``data.residual`` the (RGB) views are residual clips. With ``data.subclip_views=S`` items
    also carry CVTCL's per-sub-clip view pairs (`MultiViewDataset`).

    Raises:
        DataError: missing root, split files or media.
        UserError: unknown dataset, split or split id.
    """
    d = cfg.data
    table = catalogs.load(d.dataset, d.root, d.split, split_id=d.split_id, media=d.media)
    flow_table = None
    if d.flow_media:
        flow_table = catalogs.load(
            d.dataset, d.root, d.split, split_id=d.split_id, media=d.flow_media
        )
        table, flow_table = catalogs.align(table, flow_table)
    views = build_view_policy(
        d.augmentation,
        d.num_views,
        d.img_size,
        on_device=d.augment_on == "device",
        crop_draw=d.crop_draw,
        photometric_on_flow=flow_photometric(d.augmentation, d.flow_augmentation),
    )
    sampler = MultiRandomClips(d.num_views, d.seq_len, d.ds)
    residual = None if d.residual == "none" else d.residual
    if d.subclip_views and (d.augment_on != "cpu" or d.seq_len % d.subclip_views):
        raise ConfigError(
            f"data.subclip_views={d.subclip_views} needs data.augment_on=cpu and a data.seq_len "
            f"({d.seq_len}) it divides"
        )
    return MultiViewDataset(
        table, sampler, views, flow_table=flow_table, residual=residual, subclips=d.subclip_views
    )
