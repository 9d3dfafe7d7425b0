"""Pieces shared by ``vidssl bench backbone`` and ``vidssl bench train`` (not a command itself).

Option checks, running with a given number of torch CPU threads, the machine description that
goes into a report, and writing the report JSON.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidssl.errors import UserError

logger = logging.getLogger(__name__)


def int_option(value: int | None, default: int, option: str, minimum: int = 1) -> int:
    """``value`` of command-line option ``option``, or ``default`` when it was not given.

    Args:
        value: The parsed option (None when absent).
        default: Used when ``value`` is None (not checked).
        option: The flag, for the error message (``--iters``).
        minimum: The smallest accepted value.

    Raises:
        UserError: ``value`` is below ``minimum``.
    """
    if value is None:
        return default
    if value < minimum:
        raise UserError(f"{option}: expected an integer ≥ {minimum}, got {value}")
    return value


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Runs the body with ``torch.set_num_threads(threads)`` and restores the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def environment(**versions: str) -> dict[str, Any]:
    """Torch version, ``versions`` (``lightning=...``), threads, platform, CPU and GPU name."""
    import torch

    return {
        "torch": torch.__version__,
        **versions,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_report(path: Path | None, report: dict[str, Any]) -> None:
    """Writes ``report`` as indented JSON to ``path`` (parents created); nothing when None."""
    if path is None:
        return
    from vidssl.utils.io import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    logger.info("wrote %s", path)
