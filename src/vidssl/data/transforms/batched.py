"""Batched, on-device augmentation of ``B×C×T×H×W`` clips.

`BatchedVideoAugment` runs the photometric tail of a clip pipeline — colour jitter, random grey,
Gaussian blur, horizontal flip, normalisation — on a whole batch with tensor ops (per-clip
parameters are ``[B]`` tensors; no Python loop touches pixels). Its steps are the same
`ColorJitter`, `RandomGrayscale`, `GaussianBlur` and `HorizontalFlip` objects as the per-clip
pipeline, and for the same parameters it gives the same result as running that pipeline clip by
clip (``BatchedVideoAugment.per_clip_pipeline``).

Typical split (`SplitPipeline`): data-loader workers decode, crop and resize (uint8, small),
draw the *whole* pipeline's parameters per clip, and ship the device part's parameters packed as
a dict of small tensors next to the uint8 clip; after collation the GPU applies them::

    split = SplitPipeline(coclr_base(128))
    params = split.sample(rng, H, W)
    item = {"clip": split.apply_cpu(clip, params), "aug": split.pack(params)}
    ...  # default collate stacks both
    x = split.device.apply(batch["clip"].cuda(), batch["aug"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from vidssl.data.transforms import ops
from vidssl.data.transforms.color import (
    JITTER_FUNCTIONS,
    BlurParams,
    ColorJitter,
    GaussianBlur,
    GrayParams,
    JitterParams,
    RandomGrayscale,
    per_frame_channels,
)
from vidssl.data.transforms.compose import Normalize, ToFloat
from vidssl.data.transforms.core import ClipTransform, Compose
from vidssl.data.transforms.geometric import HorizontalFlip
from vidssl.errors import ConfigError

__all__ = ["DEVICE_STEPS", "BatchedVideoAugment", "SplitPipeline", "split_pipeline"]

#: The packed key holding each step's "applied" flags.
_APPLIED_KEYS = {"jitter": "jitter", "grayscale": "gray", "blur": "blur", "flip": "flip"}

#: Step types the batched augmentation can run (plus `ToFloat` and a final `Normalize`).
DEVICE_STEPS = (ColorJitter, RandomGrayscale, GaussianBlur, HorizontalFlip)


def _indices(mask: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1).nonzero().reshape(-1)


class BatchedVideoAugment:
    """The photometric steps of a pipeline, applied to a whole batch at once.

    Args:
        steps: `ColorJitter`, `RandomGrayscale`, `GaussianBlur`, `HorizontalFlip` in the order
            to run them (each at most once), optionally with `ToFloat` (implicit anyway) and a
            final `Normalize`.
        photometric_on_flow: whether ``apply(..., flow=True)`` runs the photometric steps (flip
            and normalisation always run); see `Compose`.
    """

    def __init__(self, steps: Sequence[ClipTransform], *, photometric_on_flow: bool = True) -> None:
        self.steps: list[ClipTransform] = []
        self.stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        for position, step in enumerate(steps):
            if isinstance(step, Normalize) and position == len(steps) - 1:
                self.stats = step.stats
            elif isinstance(step, DEVICE_STEPS):
                self.steps.append(step)
            elif not isinstance(step, ToFloat):
                raise ConfigError(
                    f"batched augmentation cannot run {type(step).__name__}; it takes ColorJitter, "
                    "RandomGrayscale, GaussianBlur, HorizontalFlip and a final Normalize"
                )
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ConfigError(f"batched augmentation steps must be distinct, got {names}")
        self.photometric_on_flow = photometric_on_flow

    def per_clip_pipeline(self) -> Compose:
        """The equivalent per-clip pipeline (same steps, then the normalisation)."""
        tail: list[ClipTransform] = [ToFloat() if self.stats is None else Normalize(self.stats)]
        return Compose([*self.steps, *tail], photometric_on_flow=self.photometric_on_flow)

    def pack(self, named_params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """One clip's step parameters (keyed by step name) as a dict of small tensors.

        A step missing from ``named_params`` is packed as "not applied", so clips augmented by a
        weaker pipeline (e.g. CoCLR's ``null``: crop + flip) batch with stronger ones.
        """
        packed: dict[str, torch.Tensor] = {}
        for step in self.steps:
            params = named_params.get(step.name)
            if isinstance(step, HorizontalFlip):
                packed["flip"] = torch.tensor(bool(params))
            elif isinstance(step, ColorJitter):
                params = params or JitterParams(False)
                packed["jitter"] = torch.tensor(params.applied)
                packed["jitter_factors"] = torch.tensor(params.factors, dtype=torch.float32)
                packed["jitter_order"] = torch.tensor(params.order, dtype=torch.int64)
            elif isinstance(step, RandomGrayscale):
                params = params or GrayParams(False)
                packed["gray"] = torch.tensor(params.applied)
                packed["gray_channel"] = torch.tensor(params.channel, dtype=torch.int64)
                packed["gray_seed"] = torch.tensor(params.seed, dtype=torch.int64)
            else:
                params = params or BlurParams(False)
                packed["blur"] = torch.tensor(params.applied)
                packed["blur_sigma"] = torch.tensor(params.sigma, dtype=torch.float32)
        return packed

    @staticmethod
    def collate(packed: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Stacks per-clip packed parameters into ``[B, ...]`` tensors (as default collate does)."""
        return {key: torch.stack([p[key] for p in packed]) for key in packed[0]}

    def sample_clip(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draws one clip's parameters for every step, keyed by step name."""
        return {step.name: step.sample(rng, 0, 0) for step in self.steps}

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Draws and packs parameters for ``batch_size`` clips (one host-side draw per clip)."""
        return self.collate([self.pack(self.sample_clip(rng)) for _ in range(batch_size)])

    def apply(
        self, x: torch.Tensor, params: Mapping[str, torch.Tensor], *, flow: bool = False
    ) -> torch.Tensor:
        """Augments a ``B×C×T×H×W`` batch (uint8, or float in ``[0, 1]``) on its device.

        Args:
            x: the batch; uint8 is converted to float ``[0, 1]``; the input is not modified.
            params: packed parameters, ``[B, ...]`` tensors. The index maths runs on the host:
                keep them on the CPU (as the data loader delivers them) to avoid a device sync.
            flow: the batch is flow (skips photometric steps unless ``photometric_on_flow``).

        Returns:
            float ``B×C×T×H×W``.
        """
        x = ops.to_float(x)
        host = {key: value.detach().cpu() for key, value in params.items()}
        for step in self.steps:
            if flow and not self.photometric_on_flow and step.kind == "photometric":
                continue
            rows = _indices(host[_APPLIED_KEYS[step.name]])
            if rows.numel() == 0:
                continue
            if rows.numel() == x.shape[0]:  # every clip: no gather/scatter copies
                x = self._run_step(step, x, rows, host)
                continue
            on_device = rows.to(x.device)
            subset = self._run_step(step, x.index_select(0, on_device), rows, host)
            x = x.index_copy(0, on_device, subset)
        if self.stats is not None:
            x = ops.normalize(x, *self.stats)
        return x

    def _run_step(
        self,
        step: ClipTransform,
        x: torch.Tensor,
        rows: torch.Tensor,
        host: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        """Runs one step on the selected clips ``x`` (rows ``rows`` of the batch)."""
        device = x.device
        if isinstance(step, HorizontalFlip):
            return ops.hflip(x)
        if isinstance(step, GaussianBlur):
            return ops.gaussian_blur(x, host["blur_sigma"][rows].to(device), step.radius)
        if isinstance(step, RandomGrayscale):
            if step.mode == "luma":
                return ops.grayscale_luma(x)
            n_frames = int(x.shape[-3])
            if step.mode == "channel":
                channels = host["gray_channel"][rows][:, None].expand(-1, n_frames)
            else:
                seeds = host["gray_seed"][rows].tolist()
                per_clip = [per_frame_channels(seed, n_frames) for seed in seeds]
                channels = torch.from_numpy(np.stack(per_clip))
            return ops.grayscale_channel(x, channels.to(device))
        assert isinstance(step, ColorJitter)
        factors = host["jitter_factors"][rows]
        order = host["jitter_order"][rows]
        for slot in range(4):
            for op_id, function in enumerate(JITTER_FUNCTIONS):
                if step.ranges[op_id] is None:
                    continue
                chosen = _indices(order[:, slot] == op_id)
                if chosen.numel() == 0:
                    continue
                on_device = chosen.to(device)
                changed = function(x.index_select(0, on_device), factors[chosen, op_id].to(device))
                x = x.index_copy(0, on_device, changed)
        return x

    def __call__(
        self, x: torch.Tensor, rng: np.random.Generator, *, flow: bool = False
    ) -> torch.Tensor:
        """``apply(x, sample(rng, B))``."""
        return self.apply(x, self.sample(rng, int(x.shape[0])), flow=flow)


def split_pipeline(pipeline: Compose) -> tuple[Compose, BatchedVideoAugment]:
    """Cuts a pipeline into its per-clip head and the longest tail the device can run."""
    steps = pipeline.transforms
    cut = len(steps)
    while cut > 0 and isinstance(steps[cut - 1], (*DEVICE_STEPS, ToFloat, Normalize)):
        cut -= 1
    flag = pipeline.photometric_on_flow
    return (
        Compose(steps[:cut], photometric_on_flow=flag),
        BatchedVideoAugment(steps[cut:], photometric_on_flow=flag),
    )


class SplitPipeline:
    """A clip pipeline whose head runs per clip (CPU worker) and whose tail runs batched.

    Parameters are drawn for the whole pipeline (`sample`), so the result equals the per-clip
    pipeline with the same draw; `apply_cpu` returns the uint8 head output and `pack` the tail's
    parameters for `BatchedVideoAugment.apply`.
    """

    def __init__(self, pipeline: Compose) -> None:
        self.pipeline = pipeline
        self.cpu, self.device = split_pipeline(pipeline)
        self._cut = len(self.cpu.transforms)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[Any, ...]:
        """Draws the whole pipeline's parameters for one clip."""
        return self.pipeline.sample(rng, height, width)

    def apply_cpu(
        self, clip: torch.Tensor | np.ndarray, params: tuple[Any, ...], *, flow: bool = False
    ) -> torch.Tensor:
        """Runs the head on a ``T×H×W×C`` clip (``C×T×h×w``, uint8 for crop/resize heads)."""
        return self.cpu.apply(clip, params[: self._cut], flow=flow)

    def pack(
        self, params: tuple[Any, ...], augment: BatchedVideoAugment | None = None
    ) -> dict[str, torch.Tensor]:
        """Packs the tail's parameters for ``augment`` (default: this pipeline's device part)."""
        tail = zip(self.pipeline.transforms[self._cut :], params[self._cut :], strict=True)
        return (augment or self.device).pack({step.name: p for step, p in tail})
