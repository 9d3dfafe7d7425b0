"""Augmentation recipes of the reference systems, built from the clip transforms.

- CoCLR/CPR/CVTCL/ViCC pretraining: `coclr_base`, `coclr_null` and the view policy
  `CoclrViewPolicy` (TwoClip p=0.3 / OneClip, 50/50);
- CoCLR/ViCC evaluation: `coclr_eval` (centre 224 → 128), `coclr_multi_crop` (five/ten crop),
  `coclr_finetune` (fine-tuning train clips);
- PCL/VCP: `pcl_train` (resize 128×171 → random 112 crop, strong or plain) and `pcl_test`.

Deliberate differences from the references, all documented where they occur: no colour jitter at
test time (CoCLR jitters eval clips with p=0.3, which makes retrieval and 10-crop random); one
resize from the crop box to the output size instead of CoCLR's crop → 224 → 128 double resize in
fine-tuning; fine-tuning flips per clip instead of flipping the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidssl.data.transforms.batched import BatchedVideoAugment, SplitPipeline
from vidssl.data.transforms.compose import (
    CenterCrop,
    ClipTransform,
    ColorJitter,
    Compose,
    GaussianBlur,
    HorizontalFlip,
    MultiCrop,
    Normalize,
    RandomCrop,
    RandomGrayscale,
    RandomResizedCrop,
    ResidualClip,
    Resize,
)
from vidssl.errors import ConfigError

__all__ = [
    "CoclrViewPolicy",
    "PerClipViews",
    "ViewSet",
    "coclr_base",
    "coclr_eval",
    "coclr_finetune",
    "coclr_multi_crop",
    "coclr_null",
    "pcl_test",
    "pcl_train",
]


def coclr_null(
    size: int = 128,
    *,
    normalization: str = "imagenet",
    photometric_on_flow: bool = True,
    crop_draw: str = "once",
) -> Compose:
    """CoCLR's ``null_transform``: random resized crop (area ≥ 0.2, bicubic) + flip.

    ``crop_draw="once"`` is the reference's pretraining crop (one box; the squashed whole frame
    when it does not fit), ``"retry"`` the 10-tries draw (see `RandomResizedCrop`).
    """
    crop = RandomResizedCrop(size, (0.2, 1.0), draw=crop_draw)
    steps = [crop, HorizontalFlip(0.5), Normalize(normalization)]
    return Compose(steps, photometric_on_flow=photometric_on_flow)


def coclr_base(
    size: int = 128,
    *,
    gray_mode: str = "channel_per_frame",
    normalization: str = "imagenet",
    photometric_on_flow: bool = True,
    crop_draw: str = "once",
) -> Compose:
    """CoCLR's ``base_transform``.

    Crop as `coclr_null` (``crop_draw``), ``ColorJitter(0.4, 0.4, 0.4, 0.1)`` with p=0.8
    (random op order),
    ``RandomGrayscale(p=0.2)`` (channel splitting per frame by default, see `RandomGrayscale`),
    Gaussian blur σ ∈ [0.1, 2] with p=0.5, flip, then the normalisation (the reference does it on
    the GPU; it is the same per-clip operation).
    """
    steps: list[ClipTransform] = [
        RandomResizedCrop(size, (0.2, 1.0), draw=crop_draw),
        ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        RandomGrayscale(0.2, gray_mode),
        GaussianBlur((0.1, 2.0), p=0.5),
        HorizontalFlip(0.5),
        Normalize(normalization),
    ]
    return Compose(steps, photometric_on_flow=photometric_on_flow)


@dataclass
class ViewSet:
    """The views made from a sample's clips.

    Attributes:
        views: ``C×T×H×W`` per view (float; uint8 crops when the policy runs ``on_device``).
        flow_views: the flow views with the same draws, or None without flow clips.
        clip_ids: which input clip each view was made from.
        strong: whether each view got the strong (``base``) pipeline.
        device_params: per view, packed parameters for `CoclrViewPolicy.device` (``on_device``).
    """

    views: list[torch.Tensor]
    flow_views: list[torch.Tensor] | None
    clip_ids: tuple[int, ...]
    strong: tuple[bool, ...]
    device_params: list[dict[str, torch.Tensor]] | None = None


class CoclrViewPolicy:
    """CoCLR's ``TransformController``: two views from two temporal clips.

    With probability ``p_two_clip`` (0.5) *TwoClip*: view i is clip i under ``base`` with
    probability ``p_base`` (0.3), else ``null``. Otherwise *OneClip*: one clip (0 or 1 with
    probability 1/2) is augmented twice, once by ``base`` and once by ``null``, base first with
    probability 1/2 — both views then show the same frames. Draw order: mode, then (TwoClip) the two
    strengths or (OneClip) base-first then the clip, then each view's pipeline parameters.

    With flow clips, each flow clip gets exactly its RGB clip's draw (CoCLR/ViCC two-stream).

    Args:
        base: the strong pipeline (`coclr_base`).
        null: the weak pipeline (`coclr_null`).
        p_base: TwoClip's probability of ``base`` per clip.
        p_two_clip: probability of TwoClip (vs OneClip).
        on_device: return uint8 crops plus packed parameters for `device` (a
            `BatchedVideoAugment` built from ``base``) instead of finished float views.
    """

    def __init__(
        self,
        base: Compose | None = None,
        null: Compose | None = None,
        *,
        p_base: float = 0.3,
        p_two_clip: float = 0.5,
        on_device: bool = False,
    ) -> None:
        self.base = base if base is not None else coclr_base()
        self.null = null if null is not None else coclr_null()
        self.p_base = p_base
        self.p_two_clip = p_two_clip
        self.on_device = on_device
        self._splits = {True: SplitPipeline(self.base), False: SplitPipeline(self.null)}
        self.device: BatchedVideoAugment = self._splits[True].device
        if on_device and self._splits[False].device.stats != self.device.stats:
            raise ConfigError("CoCLR base and null pipelines must use the same normalisation")

    n_clips: int = 2

    def plan(self, rng: np.random.Generator) -> list[tuple[int, bool]]:
        """Draws ``(clip_id, strong)`` for the two views."""
        if rng.random() < self.p_two_clip:
            return [(0, bool(rng.random() < self.p_base)), (1, bool(rng.random() < self.p_base))]
        base_first = bool(rng.random() < 0.5)
        clip_id = 0 if rng.random() < 0.5 else 1
        return [(clip_id, base_first), (clip_id, not base_first)]

    def __call__(
        self,
        clips: Sequence[torch.Tensor | np.ndarray],
        rng: np.random.Generator,
        flow_clips: Sequence[torch.Tensor | np.ndarray] | None = None,
    ) -> ViewSet:
        """Makes the two views of two ``T×H×W×C`` clips (and of their flow clips, if given)."""
        n_clips = self.n_clips
        if len(clips) != n_clips or (flow_clips is not None and len(flow_clips) != n_clips):
            raise ConfigError(f"{type(self).__name__} takes exactly {n_clips} clips per sample")
        plan = self.plan(rng)
        views: list[torch.Tensor] = []
        flow_views: list[torch.Tensor] | None = [] if flow_clips is not None else None
        packed: list[dict[str, torch.Tensor]] = []
        for clip_id, strong in plan:
            clip = torch.as_tensor(clips[clip_id])
            pipeline = self.base if strong else self.null
            params = pipeline.sample(rng, int(clip.shape[1]), int(clip.shape[2]))
            split = self._splits[strong]
            if self.on_device:
                views.append(split.apply_cpu(clip, params))
                packed.append(split.pack(params, self.device))
            else:
                views.append(pipeline.apply(clip, params))
            if flow_views is not None:
                flow = flow_clips[clip_id]  # type: ignore[index]
                if self.on_device:
                    flow_views.append(split.apply_cpu(flow, params, flow=True))
                else:
                    flow_views.append(pipeline.apply(flow, params, flow=True))
        return ViewSet(
            views,
            flow_views,
            tuple(c for c, _ in plan),
            tuple(s for _, s in plan),
            packed if self.on_device else None,
        )


class PerClipViews(CoclrViewPolicy):
    """One view per clip, each independently ``base`` with probability ``p_base``, else ``null``.

    CoCLR's *TwoClip* rule for any number of clips: view ``i`` is clip ``i``. ``p_base=1`` gives
    every view the strong pipeline, ``p_base=0`` only crop + flip. One ``rng.random()`` is drawn
    per clip (in clip order) before the pipelines' parameters, even when ``p_base`` is 0 or 1.

    Args:
        n_clips: clips (= views) per sample.
        base: the strong pipeline (`coclr_base`).
        null: the weak pipeline (`coclr_null`).
        p_base: probability of ``base`` per clip.
        on_device: as in `CoclrViewPolicy`.
    """

    def __init__(
        self,
        n_clips: int,
        base: Compose | None = None,
        null: Compose | None = None,
        *,
        p_base: float = 0.3,
        on_device: bool = False,
    ) -> None:
        super().__init__(base, null, p_base=p_base, p_two_clip=1.0, on_device=on_device)
        if n_clips < 1:
            raise ConfigError(f"PerClipViews needs at least one clip, got {n_clips}")
        self.n_clips = n_clips

    def plan(self, rng: np.random.Generator) -> list[tuple[int, bool]]:
        """Draws ``(clip_id, strong)`` for every clip."""
        return [(i, bool(rng.random() < self.p_base)) for i in range(self.n_clips)]


def coclr_eval(crop: int = 224, size: int = 128, *, normalization: str = "imagenet") -> Compose:
    """CoCLR/ViCC evaluation clips: centre ``crop`` of the raw frame, resized to ``size``.

    The reference adds ``ColorJitter(0.2, 0.2, 0.2, 0.1, p=0.3)`` at test time, which makes
    retrieval and test accuracy random; it is left out on purpose.
    """
    return Compose([CenterCrop(crop), Resize(size, "bicubic"), Normalize(normalization)])


def coclr_multi_crop(
    crop: int = 224, size: int = 128, *, flips: bool = True, normalization: str = "imagenet"
) -> MultiCrop:
    """CoCLR ``--ten_crop`` (``flips=True``) / ``--five_crop``: 5 crops (× flip) → ``size``."""
    then = Compose([Resize(size, "bicubic"), Normalize(normalization)])
    return MultiCrop(crop, flips=flips, then=then)


def coclr_finetune(size: int = 128, *, normalization: str = "imagenet") -> Compose:
    """CoCLR fine-tuning train clips: random resized crop (area ≥ 0.2), jitter p=0.3, flip.

    The reference crops to 224 and then rescales to 128 (two bicubic resizes) and flips the whole
    batch at once on the GPU; here the box is resized once to ``size`` and each clip is flipped
    with probability 1/2.
    """
    steps: list[ClipTransform] = [
        RandomResizedCrop(size, (0.2, 1.0)),
        ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.3),
        HorizontalFlip(0.5),
        Normalize(normalization),
    ]
    return Compose(steps)


def _pcl_tail(normalization: str, residual: str | None) -> list[ClipTransform]:
    tail: list[ClipTransform] = [Normalize(normalization)]
    if residual is not None:
        tail.append(ResidualClip(residual))
    return tail


def pcl_train(
    crop: int = 112,
    resize: tuple[int, int] = (128, 171),
    *,
    strong: bool = True,
    normalization: str | None = None,
    residual: str | None = None,
) -> Compose:
    """PCL training clips (``--aug True``): resize to 128×171, random 112 crop, then strong aug.

    Strong: ``ColorJitter(0.4, 0.4, 0.4, 0.1)`` p=0.8, luma ``RandomGrayscale`` p=0.2, blur
    σ ∈ [0.1, 2] p=0.5, flip, ImageNet normalisation. ``strong=False`` is PCL ``--aug False``, VCP
    and PCL fine-tuning: resize, crop and ``ToTensor`` only (normalisation ``"none"`` unless
    given). ``residual`` appends a `ResidualClip` (PCL computes it in the model).

    PCL ran per-frame torchvision transforms re-seeded per clip (torchvision 0.5 used Python's
    ``random``, so the draw was per clip); here the draw is per clip by construction.
    """
    normalization = normalization or ("imagenet" if strong else "none")
    head: list[ClipTransform] = [Resize(resize, "bilinear"), RandomCrop(crop)]
    strong_steps: list[ClipTransform] = [
        ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        RandomGrayscale(0.2, "luma"),
        GaussianBlur((0.1, 2.0), p=0.5),
        HorizontalFlip(0.5),
    ]
    return Compose(head + (strong_steps if strong else []) + _pcl_tail(normalization, residual))


def pcl_test(
    crop: int = 112,
    resize: tuple[int, int] = (128, 171),
    *,
    normalization: str = "imagenet",
    residual: str | None = None,
) -> Compose:
    """PCL retrieval/test clips: resize to 128×171, centre 112 crop, normalisation."""
    head: list[ClipTransform] = [Resize(resize, "bilinear"), CenterCrop(crop)]
    return Compose(head + _pcl_tail(normalization, residual))
