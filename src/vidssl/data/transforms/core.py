"""The clip-transform protocol (`ClipTransform`) and `Compose`.

A transform draws all of its random parameters once per clip with `ClipTransform.sample` and
applies them to every frame with `ClipTransform.apply`, so a clip is augmented consistently and an
RGB clip and its flow clip can share one draw (``apply`` both with the same ``params``). Input
clips are uint8 ``T×H×W×C`` as sources return them; output is ``C×T×H×W``. Inside a pipeline the
clip stays ``C×T×H×W`` (`ClipTransform.apply_cthw`), so the layout changes once, as a view.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from vidssl.data.transforms.ops import clip_to_cthw, to_float
from vidssl.errors import DataError

__all__ = ["ClipTransform", "Compose"]


class ClipTransform(ABC):
    """Base class of every clip transform.

    Attributes:
        kind: ``"geometric"`` (crop, resize, flip: applied to flow too), ``"photometric"``
            (colour jitter, grey, blur: applied to flow only if the pipeline says so) or
            ``"format"`` (dtype, normalisation, residual: always applied).
        name: short identifier used when parameters are packed for the batched version.
    """

    kind: ClassVar[str] = "geometric"
    name: ClassVar[str] = ""

    def sample(self, rng: np.random.Generator, height: int, width: int) -> Any:
        """Draws this transform's parameters for one clip of ``height×width`` frames."""
        return None

    def output_size(self, params: Any, height: int, width: int) -> tuple[int, int]:
        """Frame size after the transform, for an input of ``height×width``."""
        return height, width

    @abstractmethod
    def apply_cthw(self, x: torch.Tensor, params: Any) -> torch.Tensor:
        """Applies the transform with ``params`` to a ``C×T×H×W`` clip."""

    def apply(self, clip: torch.Tensor | np.ndarray, params: Any) -> torch.Tensor:
        """Applies the transform to a uint8 ``T×H×W×C`` clip; returns ``C×T×H×W``."""
        return self.apply_cthw(clip_to_cthw(clip), params)

    def __call__(self, clip: torch.Tensor | np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """``apply(clip, sample(rng, H, W))`` for a ``T×H×W×C`` clip."""
        clip = torch.as_tensor(clip)
        return self.apply(clip, self.sample(rng, int(clip.shape[1]), int(clip.shape[2])))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose(ClipTransform):
    """Transforms applied in order; the parameters are one tuple with an entry per transform.

    Args:
        transforms: the steps, in order.
        photometric_on_flow: whether photometric steps also change a flow clip
            (``apply(..., flow=True)``). The references (CoCLR, ViCC) run their whole pipeline
            on the flow JPEGs, colour jitter, channel-grey and blur included, so the default is
            True; with False a flow clip only gets the geometric and format steps.
    """

    kind: ClassVar[str] = "format"
    name: ClassVar[str] = "compose"

    def __init__(
        self, transforms: Sequence[ClipTransform], *, photometric_on_flow: bool = True
    ) -> None:
        self.transforms = list(transforms)
        self.photometric_on_flow = photometric_on_flow

    def sample(self, rng: np.random.Generator, height: int, width: int) -> tuple[Any, ...]:
        """Draws each step's parameters in order, tracking the frame size through the steps."""
        params = []
        for transform in self.transforms:
            step = transform.sample(rng, height, width)
            height, width = transform.output_size(step, height, width)
            params.append(step)
        return tuple(params)

    def output_size(self, params: tuple[Any, ...], height: int, width: int) -> tuple[int, int]:
        """Frame size after all steps."""
        for transform, step in zip(self.transforms, params, strict=True):
            height, width = transform.output_size(step, height, width)
        return height, width

    def apply_cthw(
        self, x: torch.Tensor, params: tuple[Any, ...], *, flow: bool = False
    ) -> torch.Tensor:
        """Runs the steps on a ``C×T×H×W`` clip (``flow=True``: see ``photometric_on_flow``)."""
        for transform, step in zip(self.transforms, params, strict=True):
            if flow and not self.photometric_on_flow and transform.kind == "photometric":
                x = to_float(x)  # skipped, but the output dtype matches the RGB clip's
                continue
            if isinstance(transform, Compose):
                x = transform.apply_cthw(x, step, flow=flow)
            else:
                x = transform.apply_cthw(x, step)
        return x

    def apply(
        self, clip: torch.Tensor | np.ndarray, params: tuple[Any, ...], *, flow: bool = False
    ) -> torch.Tensor:
        """Runs the steps on a uint8 ``T×H×W×C`` clip; returns ``C×T×H×W``."""
        return self.apply_cthw(clip_to_cthw(clip), params, flow=flow)

    def apply_pair(
        self,
        rgb_clip: torch.Tensor | np.ndarray,
        flow_clip: torch.Tensor | np.ndarray,
        params: tuple[Any, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Applies one draw to an RGB clip and its flow clip (same crop, flip, …)."""
        rgb, flow = torch.as_tensor(rgb_clip), torch.as_tensor(flow_clip)
        if rgb.shape[:3] != flow.shape[:3]:
            raise DataError(
                f"RGB clip {tuple(rgb.shape[:3])} and flow clip {tuple(flow.shape[:3])} "
                "must have the same T×H×W to share augmentation"
            )
        return self.apply(rgb, params), self.apply(flow, params, flow=True)

    def __call__(self, clip: torch.Tensor | np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """``apply(clip, sample(rng, H, W))`` for a ``T×H×W×C`` clip."""
        clip = torch.as_tensor(clip)
        return self.apply(clip, self.sample(rng, int(clip.shape[1]), int(clip.shape[2])))

    def __repr__(self) -> str:
        steps = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{steps}], photometric_on_flow={self.photometric_on_flow})"
