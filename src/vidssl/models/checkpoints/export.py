"""Exporting encoders: ``encoder.safetensors`` + ``encoder.json``, and torchvision ``.pth``.

``encoder.json`` says everything needed to use the weights without vidssl's training code:

.. code-block:: json

    {"format": "vidssl-encoder", "format_version": 1,
     "arch": "r2plus1d_18", "variant": null,
     "backbone": {"name": "r2plus1d_18", "in_channels": 3, "width_mult": 1.0,
                  "num_classes": null, "feature_dim": 512},
     "width_mult": 1.0, "in_channels": 3, "feature_dim": 512,
     "modality": "rgb", "channel_order": "rgb",
     "normalization": {"name": "imagenet", "mean": [...], "std": [...]},
     "input_size": [16, 112, 112],
     "source": {"method": "moco", "path": "...", "sha256": "..."},
     "weights_sha256": "...", "vidssl_version": "0.1.0", "extra": {}}

``backbone`` holds exactly `VideoBackbone.config()` (the `build_backbone` arguments plus
``feature_dim``); ``variant`` is ``"tclr_layer4"`` for TCLR's layer-4 layout. `load_encoder`
rebuilds the backbone from it and loads the weights strictly.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vidssl import __version__
from vidssl.errors import CheckpointError
from vidssl.models.backbones import VideoBackbone, backbone_spec
from vidssl.models.checkpoints.adapters import NORMALIZATIONS
from vidssl.models.checkpoints.arch import TCLR_VARIANT, arch_of, build_encoder_backbone
from vidssl.utils.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_JSON = "encoder.json"
FORMAT_NAME = "vidssl-encoder"
FORMAT_VERSION = 1
MODALITIES = ("rgb", "flow")
#: Residual-clip modes an ``encoder.json`` can record. The modes are data (their arithmetic lives
#: in `vidssl.data.transforms.ops.residual`, which the evaluation side applies); models import no
#: data code, and a test checks that the two lists agree.
RESIDUAL_MODES = ("pcl", "vcp", "iic")
CHANNEL_ORDERS = ("rgb", "bgr")
TORCHVISION_ARCHS = ("r3d_18", "r2plus1d_18")

Normalization = str | Mapping[str, Sequence[float]]


def _normalization_record(normalization: Normalization, in_channels: int) -> dict[str, Any]:
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise CheckpointError(
                f"normalization {normalization!r}: expected one of {', '.join(NORMALIZATIONS)} "
                "or a {'mean': [...], 'std': [...]} mapping"
            )
        mean, std = NORMALIZATIONS[normalization]
        record: dict[str, Any] = {"name": normalization, "mean": list(mean), "std": list(std)}
    else:
        try:
            mean = [float(x) for x in normalization["mean"]]
            std = [float(x) for x in normalization["std"]]
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(
                f"normalization {normalization!r}: expected {{'mean': [...], 'std': [...]}}"
            ) from error
        record = {"name": "custom", "mean": mean, "std": std}
    if any(s <= 0 for s in record["std"]) or len(record["mean"]) != len(record["std"]):
        raise CheckpointError(f"normalization {record}: std must be positive, sizes equal")
    if len(record["mean"]) != in_channels:
        if len(set(record["mean"])) == 1 and len(set(record["std"])) == 1:  # per-value preset
            record["mean"] = record["mean"][:1] * in_channels
            record["std"] = record["std"][:1] * in_channels
        else:
            raise CheckpointError(
                f"normalization has {len(record['mean'])} channels, the encoder {in_channels}"
            )
    return record


def _default_normalization(backbone: VideoBackbone) -> str:
    return "imagenet" if backbone.in_channels == 3 else "none"


def _input_size(backbone: VideoBackbone, input_size: Sequence[int] | None) -> list[int]:
    if input_size is None:
        return list(backbone_spec(backbone.name).reference_inputs[0])
    size = [int(x) for x in input_size]
    if len(size) != 3 or min(size) < 1:
        raise CheckpointError(f"input_size {input_size!r}: expected (frames, height, width)")
    return size


def export_encoder(
    backbone: VideoBackbone,
    out_dir: str | Path,
    *,
    modality: str = "rgb",
    normalization: Normalization | None = None,
    input_size: Sequence[int] | None = None,
    channel_order: str = "rgb",
    residual: str | None = None,
    source: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes ``out_dir/encoder.safetensors`` and ``out_dir/encoder.json``.

    Args:
        backbone: A built backbone (its classifier, if any, is exported too).
        out_dir: Output directory (created).
        modality: ``"rgb"`` or ``"flow"`` (what the encoder expects as input).
        normalization: A preset name (``imagenet``, ``kinetics``, ``none``) or a mapping with
            ``mean`` and ``std`` per input channel, applied to [0, 1] pixels. None records
            ``imagenet`` for 3-channel encoders and ``none`` (identity) for others.
        input_size: ``(frames, height, width)`` the encoder was trained at; defaults to the
            backbone's reference input.
        channel_order: ``"rgb"``, or ``"bgr"`` for encoders trained on BGR input (TCLR).
        residual: The residual-clip mode the encoder was trained on (``pcl``, ``vcp``, ``iic``;
            `vidssl.data.transforms.ops.residual` of the normalised clip), or None for frames.
        source: Where the weights came from, e.g. ``{"method", "path", "sha256"}``; the
            `LoadReport` of `load_foreign` fills it in ``vidssl convert``.
        extra: Any further JSON-serialisable metadata.

    Returns:
        The path of ``encoder.json``.

    Raises:
        CheckpointError: Invalid modality, normalisation, channel order or input size.
    """
    if modality not in MODALITIES:
        raise CheckpointError(f"modality {modality!r}: expected one of {', '.join(MODALITIES)}")
    if channel_order not in CHANNEL_ORDERS:
        raise CheckpointError(f"channel_order {channel_order!r}: expected 'rgb' or 'bgr'")
    if residual is not None and residual not in RESIDUAL_MODES:
        raise CheckpointError(f"residual {residual!r}: expected None or one of {RESIDUAL_MODES}")
    from safetensors.torch import save

    out_dir = Path(out_dir)
    tensors = {
        key: value.detach().cpu().contiguous() for key, value in backbone.state_dict().items()
    }
    weights = save(tensors, metadata={"format": "pt", "producer": f"vidssl {__version__}"})
    config = backbone.config()
    record = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": arch_of(backbone),
        "variant": getattr(backbone, "variant", None),
        "backbone": config,
        "width_mult": config["width_mult"],
        "in_channels": config["in_channels"],
        "feature_dim": config["feature_dim"],
        "modality": modality,
        "channel_order": channel_order,
        "residual": residual,
        "normalization": _normalization_record(
            _default_normalization(backbone) if normalization is None else normalization,
            backbone.in_channels,
        ),
        "input_size": _input_size(backbone, input_size),
        "source": dict(source) if source else None,
        "weights_sha256": _sha256(weights),
        "vidssl_version": __version__,
        "extra": dict(extra) if extra else {},
    }
    text = json.dumps(record, indent=2) + "\n"
    atomic_write_bytes(out_dir / ENCODER_WEIGHTS, weights)
    atomic_write_text(out_dir / ENCODER_JSON, text)
    logger.info("exported %s (%d tensors) to %s", record["arch"], len(tensors), out_dir)
    return out_dir / ENCODER_JSON


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encoder_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        return path / ENCODER_JSON, path / ENCODER_WEIGHTS
    if path.suffix == ".json":
        return path, path.with_name(ENCODER_WEIGHTS)
    if path.suffix == ".safetensors":
        return path.with_name(ENCODER_JSON), path
    raise CheckpointError(
        f"encoder {path}: expected a directory with {ENCODER_JSON} and {ENCODER_WEIGHTS}"
    )


def read_encoder_info(path: str | Path) -> dict[str, Any]:
    """Reads and checks ``encoder.json`` (given the directory, the JSON or the weights file)."""
    json_path, _ = _encoder_paths(path)
    try:
        info = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"encoder {path}: {json_path.name} not found") from error
    except (OSError, ValueError) as error:
        raise CheckpointError(f"encoder {json_path}: not valid JSON ({error})") from error
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise CheckpointError(f"encoder {json_path}: not a {FORMAT_NAME} description")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"encoder {json_path}: format version {info['format_version']} is newer than this "
            f"vidssl reads ({FORMAT_VERSION}); upgrade vidssl"
        )
    return info


def load_encoder(path: str | Path) -> VideoBackbone:
    """Rebuilds an exported encoder and loads its weights strictly.

    Args:
        path: The export directory, its ``encoder.json`` or its ``encoder.safetensors``.

    Returns:
        The backbone in eval mode; ``model.encoder_info`` holds the JSON record.

    Raises:
        CheckpointError: Missing/invalid files, or weights that do not fit the description.
    """
    from safetensors.torch import load_file

    info = read_encoder_info(path)
    _, weights_path = _encoder_paths(path)
    config = dict(info["backbone"])
    feature_dim = config.pop("feature_dim", None)
    arch = "r2plus1d_18_tclr" if info.get("variant") == TCLR_VARIANT else config.pop("name")
    config.pop("name", None)
    model = build_encoder_backbone(arch, **config)
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except FileNotFoundError as error:
        raise CheckpointError(f"encoder {path}: {weights_path.name} not found") from error
    except Exception as error:  # any failure means unreadable weights
        raise CheckpointError(f"encoder weights {weights_path}: unreadable ({error})") from error
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise CheckpointError(
            f"encoder weights {weights_path} do not fit {arch}: "
            f"{' '.join(line.strip() for line in first[1:3])}"
        ) from error
    if feature_dim is not None and model.feature_dim != feature_dim:
        raise CheckpointError(
            f"encoder {path}: rebuilt feature_dim {model.feature_dim}, the JSON says {feature_dim}"
        )
    model.encoder_info = info
    return model.eval()


def export_torchvision(
    backbone: VideoBackbone, path: str | Path, *, allow_nonstandard: bool = False
) -> Path:
    """Writes a plain state dict loadable by ``torchvision.models.video.<arch>()``.

    The key names are torchvision's (ours are identical); ``fc.*`` is included only if the
    backbone has a classifier, so a trunk-only export loads with ``strict=False`` (or after
    replacing ``fc``). No vidssl types are pickled: ``torch.load(weights_only=True)`` reads it.

    Args:
        backbone: An ``r3d_18`` or ``r2plus1d_18`` backbone.
        path: Output ``.pth`` file.
        allow_nonstandard: Also write widths/input channels torchvision cannot build (the
            keys stay torchvision's; useful for tests and custom torchvision subclasses).

    Raises:
        CheckpointError: Another architecture, TCLR's variant, or a width/input-channel count
            torchvision's constructor does not make (unless ``allow_nonstandard``).
    """
    if backbone.name not in TORCHVISION_ARCHS or getattr(backbone, "variant", None):
        raise CheckpointError(
            f"torchvision export supports {', '.join(TORCHVISION_ARCHS)}, got {arch_of(backbone)}"
        )
    standard = backbone.width_mult == 1.0 and backbone.in_channels == 3
    if not standard and not allow_nonstandard:
        raise CheckpointError(
            f"torchvision's {backbone.name} has width_mult 1 and 3 input channels, this one "
            f"{backbone.width_mult:g} and {backbone.in_channels}; export with --format vidssl"
        )
    state = {key: value.detach().cpu().clone() for key, value in backbone.state_dict().items()}
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    logger.info(
        "exported %s in torchvision layout (%d tensors) to %s", backbone.name, len(state), path
    )
    return path
