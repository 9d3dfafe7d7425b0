"""Key maps from the reference systems' checkpoints to our backbone keys, one per method.

A foreign checkpoint is a (possibly nested) state dict whose backbone lives under some prefix
next to things we do not load (projection heads, queues, momentum encoders, audio networks,
prototypes). A `MethodAdapter` says where the state dict is (`containers`), under which key
prefix the backbone lives (`namespaces`), and how a key below that prefix is renamed to ours
(`rename`). Everything outside the namespace, and namespace keys that ``rename`` drops (heads),
is *ignored* and reported; everything inside must match the backbone exactly (the loader in
`vidssl.models.checkpoints.foreign` checks that).

One leading ``module.`` (``DataParallel``/DDP) is stripped from every key before matching, so
each map accepts files saved with and without it. The per-method facts (SEVERE §4; CoCLR §2.2;
ViCC §1.10; PCL §3.4, §3.7):

* ``coclr`` (also CPR, CVTCL, InfoNCE, UberNCE): ``state_dict``; backbone under
  ``encoder_q.0.``, or ``backbone.`` in eval/classifier checkpoints; S3D ``blockN.i`` aliases →
  ``Conv_*``/``Mixed_*``. Heads ``encoder_q.2/.4``, ``encoder_k``, ``sampler``, queues ignored.
* ``vicc``: as coclr; ``prototypes.weight`` and the frozen ``second.*`` stream ignored.
* ``pcl`` (also VCP): raw; ``base_network.``; children ``0.``/``N.`` → ``stem``/``layerN``
  (torchvision nets wrapped as ``Sequential``); ``fc.*``, ``projector.*`` ignored.
* ``supervised``: raw torchvision state dict; its ``fc`` is a classifier.
* ``selavi``: ``model``; ``video_network.base.``.  ``gdt``: ``model``; ``video_network.base.``.
* ``avid_cma``: ``model``; ``video_model.``.
* ``moco``, ``video_moco``: ``state_dict``; ``encoder_q.`` minus its ``fc.*`` MLP.
* ``pretext_contrast``: raw; ``base_network.`` with ``0.``/``N.`` → ``stem``/``layerN``.
* ``rspnet``: ``model``; ``encoder_q.encoder.base_network.`` with ``0.``/``N.`` renamed.
* ``tclr``: ``state_dict``; ``0.`` (``DataParallel(Sequential(backbone, head))``).
* ``ctp``: ``state_dict``; ``backbone.`` with CtP's names mapped to torchvision's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vidssl.errors import CheckpointError
from vidssl.models.backbones import s3d_alias_to_canonical

# Input normalisation presets (mean, std) on [0, 1] pixels; SEVERE §4 and CoCLR/PCL transforms.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "kinetics": ((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),  # SEVERE's SlowFast fork
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}

DATA_PARALLEL_PREFIX = "module."

Rename = Callable[[str], str | None]


def keep_key(key: str) -> str:
    """Identity rename: the key below the namespace is already ours."""
    return key


def stage_index_to_name(key: str) -> str:
    """Maps ``Sequential`` child indices of a torchvision video ResNet to its attribute names.

    ``nn.Sequential(*list(r2plus1d_18().children())[:-1])`` (PCL, RSPNet) stores the stem as
    child ``0`` and ``layer1..4`` as children ``1..4``. Keys that do not start with such an index
    (the VCOP nets' ``conv1.*``) are returned unchanged.

    Example:
        ``"0.3.weight"`` → ``"stem.3.weight"``; ``"2.0.conv1.0.0.weight"`` →
        ``"layer2.0.conv1.0.0.weight"``.
    """
    head, _, rest = key.partition(".")
    if head == "0":
        return f"stem.{rest}"
    if head in {"1", "2", "3", "4"}:
        return f"layer{head}.{rest}"
    return key


def moco_rename(key: str) -> str | None:
    """MoCo / VideoMoCo: the query encoder's ``fc.*`` is the projection MLP, not the backbone."""
    return None if key.startswith("fc.") else key


# CtP (microsoft/CtP ``pyvrl/models/backbones/r3d.py``) names → torchvision names. R(2+1)D convs
# are ``Sequential(conv_s, bn_s, relu_s, conv_t)`` (SEVERE's map); R3D convs ``Sequential(conv)``
# and the R3D stem ``(conv, bn)`` (same naming scheme, not in SEVERE's map).
_CTP_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^stem\.(conv_s|conv)\.", "stem.0."),
        (r"^stem\.(bn_s|bn)\.", "stem.1."),
        (r"^stem\.conv_t\.", "stem.3."),
        (r"^stem\.bn_t\.", "stem.4."),
        (r"^(layer\d+\.\d+\.conv[12])\.conv_s\.", r"\1.0.0."),
        (r"^(layer\d+\.\d+\.conv[12])\.bn_s\.", r"\1.0.1."),
        (r"^(layer\d+\.\d+\.conv[12])\.conv_t\.", r"\1.0.3."),
        (r"^(layer\d+\.\d+\.conv[12])\.conv\.", r"\1.0."),
        (r"^(layer\d+\.\d+)\.bn([12])\.", r"\1.conv\2.1."),
        (r"^(layer\d+\.\d+)\.downsample\.conv\.", r"\1.downsample.0."),
        (r"^(layer\d+\.\d+)\.downsample_bn\.", r"\1.downsample.1."),
    )
)


def ctp_rename(key: str) -> str:
    """Renames a CtP backbone key (``backbone.`` already stripped) to torchvision's layout.

    Keys no pattern matches are returned unchanged (the strict check then names them).

    Example:
        ``"layer2.0.conv1.conv_t.weight"`` → ``"layer2.0.conv1.0.3.weight"``;
        ``"layer2.0.downsample_bn.running_mean"`` → ``"layer2.0.downsample.1.running_mean"``.
    """
    for pattern, replacement in _CTP_PATTERNS:
        renamed, count = pattern.subn(replacement, key, count=1)
        if count:
            return renamed
    return key


@dataclass(frozen=True)
class MethodAdapter:
    """How one reference method stores its backbone.

    Attributes:
        name: Canonical method name.
        containers: Top-level dict keys to look for the state dict in, in order (``""`` = the
            file is the state dict); common other containers are tried after these.
        namespaces: Backbone key prefixes (after stripping one ``module.``), tried in order; the
            first one that any key starts with is used. ``""`` = every key is a backbone key.
        rename: Maps a key below the namespace to our key, or None for a head key.
        s3d_aliases: Map CoCLR's ``blockN.i.*`` S3D aliases to ``Conv_*``/``Mixed_*`` and keep
            one copy (both names hold the same tensor).
        normalization: Name of the input normalisation the method's evaluation code uses.
        channel_order: ``"rgb"``, or ``"bgr"`` (TCLR's action-recognition configs).
        default_arch: Architecture for methods without a file (scratch).
        reference: Where the rules come from.
    """

    name: str
    containers: tuple[str, ...]
    namespaces: tuple[str, ...]
    rename: Rename = keep_key
    s3d_aliases: bool = False
    normalization: str = "imagenet"
    channel_order: str = "rgb"
    default_arch: str | None = None
    reference: str = ""

    @property
    def needs_file(self) -> bool:
        """False only for ``scratch`` (no weights to read)."""
        return bool(self.namespaces)


_COCLR_LIKE = {
    "containers": ("state_dict", ""),
    "namespaces": ("encoder_q.0.", "backbone."),
    "s3d_aliases": True,
}

ADAPTERS: dict[str, MethodAdapter] = {
    adapter.name: adapter
    for adapter in (
        MethodAdapter("coclr", **_COCLR_LIKE, reference="CoCLR model/pretrain.py, eval loader"),
        MethodAdapter("vicc", **_COCLR_LIKE, reference="ViCC checkpoints (encoder_q.0, eval)"),
        MethodAdapter(
            "pcl",
            ("", "state_dict", "model"),
            ("base_network.",),
            stage_index_to_name,
            reference="PCL/VCP raw state dicts (base_network.*; R18 as Sequential children)",
        ),
        MethodAdapter("supervised", ("", "state_dict", "model"), ("",), reference="SEVERE §4"),
        MethodAdapter("scratch", (), (), default_arch="r2plus1d_18", reference="torchvision init"),
        MethodAdapter("selavi", ("model",), ("video_network.base.",), reference="SEVERE §4"),
        MethodAdapter("avid_cma", ("model",), ("video_model.",), reference="SEVERE §4"),
        MethodAdapter("moco", ("state_dict",), ("encoder_q.",), moco_rename, reference="SEVERE"),
        MethodAdapter(
            "video_moco", ("state_dict",), ("encoder_q.",), moco_rename, reference="SEVERE §4"
        ),
        MethodAdapter(
            "pretext_contrast",
            ("", "state_dict"),
            ("base_network.",),
            stage_index_to_name,
            reference="SEVERE §4",
        ),
        MethodAdapter(
            "rspnet",
            ("model",),
            ("encoder_q.encoder.base_network.",),
            stage_index_to_name,
            reference="SEVERE §4",
        ),
        MethodAdapter("gdt", ("model",), ("video_network.base.",), reference="SEVERE §4"),
        MethodAdapter(
            "tclr",
            ("state_dict",),
            ("0.",),
            normalization="none",
            channel_order="bgr",
            reference="SEVERE §4 (DataParallel(Sequential(backbone, head)))",
        ),
        MethodAdapter("ctp", ("state_dict",), ("backbone.",), ctp_rename, reference="SEVERE §4"),
    )
}

# Spellings users and the reference configs use ("AVID_CMA", "VideoMoCo", "PretextContrast").
_METHOD_ALIASES: dict[str, str] = {
    "cpr": "coclr",
    "cvtcl": "coclr",
    "infonce": "coclr",
    "ubernce": "coclr",
    "vcp": "pcl",
    "avidcma": "avid_cma",
    "videomoco": "video_moco",
    "pretextcontrast": "pretext_contrast",
}

METHOD_NAMES: tuple[str, ...] = tuple(ADAPTERS)


def canonical_method(method: str) -> str:
    """Returns the canonical adapter name for ``method``, case- and separator-insensitively.

    Raises:
        CheckpointError: Unknown method; the message lists the known names.

    Example:
        ``canonical_method("TCLR") == "tclr"``; ``canonical_method("AVID-CMA") == "avid_cma"``.
    """
    squashed = re.sub(r"[\s_\-]", "", method.lower()) if isinstance(method, str) else ""
    for name in ADAPTERS:
        if squashed == name.replace("_", ""):
            return name
    if squashed in _METHOD_ALIASES:
        return _METHOD_ALIASES[squashed]
    names = ", ".join((*ADAPTERS, *_METHOD_ALIASES))
    raise CheckpointError(f"checkpoint method {method!r}: expected one of {names}")


def adapter_for(method: str) -> MethodAdapter:
    """Returns the `MethodAdapter` for ``method`` (any case; see `canonical_method`)."""
    return ADAPTERS[canonical_method(method)]


@dataclass
class KeyMapping:
    """Result of applying an adapter to a state dict.

    Attributes:
        namespace: The backbone prefix that was used.
        backbone: Our key → source key, for every key mapped into the backbone.
        ignored: Source keys outside the namespace or dropped as heads, in file order.
        aliases: Source key → our key, for S3D alias keys whose tensor is also stored under the
            canonical name (the loader checks the two tensors are equal and loads one).
    """

    namespace: str
    backbone: dict[str, str]
    ignored: list[str]
    aliases: dict[str, str]


def strip_data_parallel(key: str) -> str:
    """Removes one leading ``module.`` (DataParallel/DDP) from ``key``."""
    return key[len(DATA_PARALLEL_PREFIX) :] if key.startswith(DATA_PARALLEL_PREFIX) else key


def select_namespace(adapter: MethodAdapter, keys: list[str]) -> str:
    """Returns the first of the adapter's namespaces that some (module-stripped) key starts with.

    Raises:
        CheckpointError: No key is under any of the namespaces; names the prefixes found.
    """
    stripped = [strip_data_parallel(key) for key in keys]
    for namespace in adapter.namespaces:
        if any(key.startswith(namespace) for key in stripped):
            return namespace
    found = sorted({key.split(".", 1)[0] for key in stripped})
    wanted = " or ".join(repr(f"[module.]{ns}") for ns in adapter.namespaces)
    raise CheckpointError(
        f"no backbone keys for method {adapter.name!r}: expected keys under {wanted}, "
        f"found top-level prefixes {found[:8]}"
    )


def map_keys(adapter: MethodAdapter, keys: list[str]) -> KeyMapping:
    """Maps source state-dict keys to our backbone keys with ``adapter``'s rules.

    Args:
        adapter: The method's rules.
        keys: Source keys, in file order.

    Returns:
        A `KeyMapping`. When an S3D tensor is stored under both names, the canonical
        (``Conv_*``/``Mixed_*``) key is the source and the ``block*`` key is listed in
        ``aliases``, whatever their order in the file.

    Raises:
        CheckpointError: No key under the namespace, or two non-alias keys map to one key
            (e.g. ``module.x`` next to ``x``).
    """
    namespace = select_namespace(adapter, keys)
    backbone: dict[str, str] = {}
    ignored: list[str] = []
    aliases: dict[str, str] = {}
    via_alias: set[str] = set()
    for key in keys:
        stripped = strip_data_parallel(key)
        target = (
            adapter.rename(stripped[len(namespace) :]) if stripped.startswith(namespace) else None
        )
        if target is None:
            ignored.append(key)
            continue
        canonical = s3d_alias_to_canonical(target) if adapter.s3d_aliases else target
        is_alias = canonical != target
        previous = backbone.get(canonical)
        if previous is None:
            backbone[canonical] = key
            if is_alias:
                via_alias.add(key)
        elif is_alias:
            aliases[key] = canonical
        elif previous in via_alias:
            aliases[previous] = canonical
            backbone[canonical] = key
        else:
            raise CheckpointError(
                f"checkpoint keys {previous!r} and {key!r} both map to backbone key "
                f"{canonical!r} for method {adapter.name!r}"
            )
    return KeyMapping(namespace, backbone, ignored, aliases)
