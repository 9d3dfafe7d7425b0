"""Foreign checkpoints: safe reading and strict loading into our backbones, with a report.

`load_foreign` reads a checkpoint written by one of the reference systems (CoCLR/CPR/CVTCL,
ViCC, PCL/VCP, the ten SEVERE methods, torchvision-layout supervised weights), maps its keys with
the method's `MethodAdapter` (`vidssl.models.checkpoints.adapters`), infers the architecture
(`vidssl.models.checkpoints.arch`) and loads **strictly**: every backbone tensor must be present
with the right shape; only keys outside the backbone (heads, queues, momentum/sampler encoders,
prototypes, audio networks) may be left over, and they are listed in the `LoadReport` and
logged. The reference loaders use ``strict=False`` everywhere, so a renamed key silently leaves
a layer random there; here it is one `CheckpointError` line naming the keys.

Files are read with ``torch.load(weights_only=True)`` (plus ``argparse.Namespace`` and numpy
scalars/arrays, which old checkpoints store as metadata and which run no code). Anything that
needs other Python objects is refused unless ``trust=True`` (CLI ``--trust-checkpoint``).
``.safetensors`` files are read as well. Export lives in `vidssl.models.checkpoints.export`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidssl.errors import CheckpointError
from vidssl.models.backbones import VideoBackbone
from vidssl.models.checkpoints.adapters import (
    MethodAdapter,
    adapter_for,
    map_keys,
    strip_data_parallel,
)
from vidssl.models.checkpoints.arch import (
    ARCH_NAMES,
    arch_of,
    build_encoder_backbone,
    expected_shapes,
    guess_architecture,
    guess_in_channels,
    guess_width_mult,
)
from vidssl.models.checkpoints.io import StateDict, file_sha256, find_state_dict, read_checkpoint

__all__ = [
    "LoadReport",
    "file_sha256",
    "find_state_dict",
    "load_foreign",
    "load_foreign_with_report",
    "read_checkpoint",
]

logger = logging.getLogger(__name__)

_MAX_LISTED = 4


# ------------------------------------------------------------------------------------ report


@dataclass
class LoadReport:
    """What `load_foreign` did with a checkpoint.

    Attributes:
        method: Canonical method name the file was read as.
        arch: Architecture built (``r2plus1d_18_tclr`` for TCLR's layer-4 variant).
        in_channels: Input channels of the built backbone.
        width_mult: Channel multiplier of the built backbone.
        path: The file (None for ``scratch``).
        sha256: SHA-256 of the file's bytes (None for ``scratch``).
        container: Top-level key the state dict came from (``""`` = the file itself).
        namespace: Backbone key prefix used (after stripping ``module.``).
        loaded: Our key → source key, for every loaded tensor.
        ignored: Source keys not loaded (heads, queues, other encoders, ...).
        aliases: Duplicate S3D alias source keys → our key (same tensor, loaded once).
        missing_head: Classifier keys left at their initialisation (when ``num_classes`` was
            given but the file has no matching classifier).
    """

    method: str
    arch: str
    in_channels: int
    width_mult: float
    path: str | None = None
    sha256: str | None = None
    container: str | None = None
    namespace: str | None = None
    loaded: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    missing_head: list[str] = field(default_factory=list)

    def ignored_groups(self) -> dict[str, int]:
        """Counts ignored keys per prefix (e.g. ``{'encoder_k': 462, 'queue': 1}``).

        A group is the key's first component (``module.`` stripped), or its first two when the
        first one is shared with the backbone namespace (``encoder_q.2`` next to ``encoder_q.0``).
        """
        namespace_parts = (self.namespace or "").split(".")[:-1]
        counts: Counter[str] = Counter()
        for key in self.ignored:
            parts = strip_data_parallel(key).split(".")
            shared = 0
            while shared < min(len(namespace_parts), len(parts) - 1):
                if parts[shared] != namespace_parts[shared]:
                    break
                shared += 1
            counts[".".join(parts[: shared + 1])] += 1
        return dict(counts)

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the CLI and logs."""
        lines = [
            f"method {self.method}, arch {self.arch}, in_channels {self.in_channels}, "
            f"width_mult {self.width_mult:g}",
        ]
        if self.path is not None:
            container = repr(self.container) if self.container else "the file itself"
            lines.append(f"file {self.path} (sha256 {self.sha256}); state dict: {container}")
        lines.append(f"loaded {len(self.loaded)} tensors from keys under {self.namespace!r}")
        if self.aliases:
            lines.append(f"deduplicated {len(self.aliases)} S3D alias keys (block*)")
        groups = self.ignored_groups()
        lines.append(f"ignored {len(self.ignored)} keys in {len(groups)} groups")
        lines += [f"  {prefix}: {count}" for prefix, count in groups.items()]
        if self.missing_head:
            lines.append(f"classifier left at init: {', '.join(self.missing_head)}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the report."""
        return asdict(self)


# ------------------------------------------------------------------------------------ loading


def _listed(keys: list[str]) -> str:
    more = f", ... (+{len(keys) - _MAX_LISTED})" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def _check_aliases(state: StateDict, aliases: dict[str, str], sources: dict[str, str]) -> None:
    for alias, ours in aliases.items():
        if not torch.equal(state[alias], state[sources[ours]]):
            raise CheckpointError(
                f"S3D alias {alias!r} holds a different tensor than {sources[ours]!r}; "
                "the checkpoint is inconsistent"
            )


def _resolve_arch(
    mapped: StateDict, arch: str | None, in_channels: int | None, width_mult: float | None
) -> tuple[str, int, float, str | None]:
    guess = guess_architecture(mapped)
    if arch is None:
        if guess is None:
            raise CheckpointError(
                f"cannot tell the architecture from the backbone keys ({_listed(list(mapped))}); "
                f"pass --arch (one of {', '.join(ARCH_NAMES)})"
            )
        arch = guess
    elif arch not in ARCH_NAMES:
        raise CheckpointError(f"architecture {arch!r}: expected one of {', '.join(ARCH_NAMES)}")
    file_channels = guess_in_channels(arch, mapped)
    channels = in_channels or file_channels or 3
    width = width_mult or guess_width_mult(arch, mapped, file_channels or channels) or 1.0
    return arch, channels, width, guess


def _check_layout(
    mapped: StateDict, model: VideoBackbone, arch: str, guess: str | None, context: str
) -> None:
    shapes = expected_shapes(arch, model.in_channels, model.width_mult)
    missing = [k for k in shapes if k not in mapped and not k.endswith("num_batches_tracked")]
    unexpected = [key for key in mapped if key not in shapes]
    mismatched = [
        f"{key} {tuple(mapped[key].shape)} vs {shapes[key]}"
        for key in mapped
        if key in shapes and tuple(mapped[key].shape) != shapes[key]
    ]
    if not (missing or unexpected or mismatched):
        return
    problems = [
        f"{len(found)} {what} [{_listed(found)}]"
        for what, found in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatches (checkpoint vs model)", mismatched),
        )
        if found
    ]
    hint = f"; the keys look like {guess!r}" if guess and guess != arch else ""
    raise CheckpointError(
        f"{context} does not fit {arch} (in_channels {model.in_channels}, width_mult "
        f"{model.width_mult:g}): {'; '.join(problems)}{hint}"
    )


def _classifier_shapes(model: VideoBackbone) -> dict[str, torch.Size]:
    classifier = model.classifier
    if classifier is None:
        return {}
    prefix = f"{model.classifier_name}."
    return {f"{prefix}{key}": value.shape for key, value in classifier.state_dict().items()}


def _fits_classifier(model: VideoBackbone, head: StateDict) -> bool:
    """True when the model has a classifier and ``head`` holds exactly its tensors."""
    wanted = _classifier_shapes(model)
    return bool(wanted) and {key: value.shape for key, value in head.items()} == wanted


def _scratch(
    adapter: MethodAdapter,
    arch: str | None,
    in_channels: int | None,
    width_mult: float | None,
    num_classes: int | None,
) -> tuple[VideoBackbone, LoadReport]:
    arch = arch or adapter.default_arch or "r2plus1d_18"
    model = build_encoder_backbone(
        arch, in_channels=in_channels or 3, width_mult=width_mult or 1.0, num_classes=num_classes
    )
    report = LoadReport(adapter.name, arch_of(model), model.in_channels, model.width_mult)
    logger.info("scratch: %s with its own initialisation, no weights loaded", report.arch)
    return model.eval(), report


def load_foreign_with_report(
    path: str | Path | None,
    method: str,
    arch: str | None = None,
    *,
    trust: bool = False,
    in_channels: int | None = None,
    width_mult: float | None = None,
    num_classes: int | None = None,
) -> tuple[VideoBackbone, LoadReport]:
    """Loads a reference system's checkpoint into our backbone and says what was loaded.

    Args:
        path: The checkpoint (None for ``scratch``).
        method: How the file was written, any case: ``coclr`` (also CPR, CVTCL, InfoNCE,
            UberNCE), ``vicc``, ``pcl`` (also VCP), ``supervised``, ``scratch``, ``selavi``,
            ``avid_cma``, ``moco``, ``video_moco``, ``pretext_contrast``, ``rspnet``, ``gdt``,
            ``tclr``, ``ctp``.
        arch: Architecture; None infers it from the keys (``r2plus1d_18_tclr`` included).
        trust: Allow arbitrary unpickling (only for files from a trusted source).
        in_channels: Input channels; None reads them from the first conv.
        width_mult: Channel multiplier; None infers it from the BatchNorm widths.
        num_classes: Also build a classifier; it is loaded when the file has a matching one
            (e.g. torchvision's 400-way ``fc``), else left at init and listed as missing.

    Returns:
        ``(backbone in eval mode, report)``.

    Raises:
        CheckpointError: Unreadable or untrusted file, unknown method/architecture, or a
            backbone that does not match the file (one line naming missing/unexpected keys
            and shape mismatches).
    """
    adapter = adapter_for(method)
    if not adapter.needs_file:
        if path is not None:
            raise CheckpointError(f"method {adapter.name!r} takes no checkpoint file, got {path}")
        return _scratch(adapter, arch, in_channels, width_mult, num_classes)
    if path is None:
        raise CheckpointError(f"method {adapter.name!r} needs a checkpoint file")
    state, container = find_state_dict(read_checkpoint(path, trust=trust), adapter.containers, path)
    mapping = map_keys(adapter, list(state))
    _check_aliases(state, mapping.aliases, mapping.backbone)
    mapped = {ours: state[source] for ours, source in mapping.backbone.items()}
    arch, channels, width, guess = _resolve_arch(mapped, arch, in_channels, width_mult)
    model = build_encoder_backbone(
        arch, in_channels=channels, width_mult=width, num_classes=num_classes
    )
    head_prefix = f"{model.classifier_name}."
    head = {key: mapped.pop(key) for key in list(mapped) if key.startswith(head_prefix)}
    _check_layout(mapped, model, arch, guess, f"checkpoint {path} read as {adapter.name}")

    report = LoadReport(
        adapter.name,
        arch,
        channels,
        width,
        str(path),
        file_sha256(path),
        container,
        mapping.namespace,
        aliases=mapping.aliases,
    )
    if _fits_classifier(model, head):
        mapped.update(head)
    else:
        report.missing_head = list(_classifier_shapes(model))
        mapping.ignored.extend(mapping.backbone[key] for key in head)
    result = model.load_state_dict(mapped, strict=False)
    leftover = set(result.missing_keys) - set(report.missing_head)
    if result.unexpected_keys or any(not k.endswith("num_batches_tracked") for k in leftover):
        raise RuntimeError(f"internal key check missed {result}")  # _check_layout covers these
    report.loaded = {ours: mapping.backbone[ours] for ours in mapped}
    ignored = set(mapping.ignored)
    report.ignored = [key for key in state if key in ignored]
    for line in report.summary_lines():
        logger.info("%s", line)
    return model.eval(), report


def load_foreign(
    path: str | Path | None,
    method: str,
    arch: str | None = None,
    *,
    trust: bool = False,
    in_channels: int | None = None,
    width_mult: float | None = None,
    num_classes: int | None = None,
) -> VideoBackbone:
    """`load_foreign_with_report` returning only the backbone; the report is ``.load_report``.

    Args:
        path: The checkpoint (None for ``scratch``).
        method: The method that wrote it, any case (see `load_foreign_with_report`).
        arch: Architecture, or None to infer it.
        trust: Allow arbitrary unpickling.
        in_channels: Input channels, or None to infer them.
        width_mult: Channel multiplier, or None to infer it.
        num_classes: Also build (and load, if present) a classifier.

    Returns:
        The backbone in eval mode, with a `LoadReport` as ``model.load_report``.
    """
    model, report = load_foreign_with_report(
        path,
        method,
        arch,
        trust=trust,
        in_channels=in_channels,
        width_mult=width_mult,
        num_classes=num_classes,
    )
    model.load_report = report
    return model
