"""Reading checkpoint files safely: PyTorch pickles with ``weights_only=True``, or safetensors.

``torch.load(weights_only=True)`` rebuilds only tensors and plain containers. Old reference
checkpoints also store ``argparse.Namespace`` arguments and numpy scalars/arrays as metadata;
those types are allow-listed (they run no code). Anything else (a pickled model class, or a
payload such as ``os.system``) is refused with one `CheckpointError` line that names the Python
object and points to ``--trust-checkpoint`` / ``trust=True``, which uses ``weights_only=False``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import pickle
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidssl.errors import CheckpointError

StateDict = dict[str, torch.Tensor]

# Containers tried after the method's own ones.
GENERIC_CONTAINERS = ("state_dict", "model", "model_state", "model_state_dict", "net", "network")


def file_sha256(path: str | Path) -> str:
    """Returns the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _metadata_globals() -> list[Any]:
    """Harmless non-tensor types old checkpoints carry: argparse args and numpy values."""
    numpy_core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [argparse.Namespace, np.dtype, np.ndarray]
    allowed += [numpy_core.multiarray.scalar, numpy_core.multiarray._reconstruct]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")]
    return allowed


@contextlib.contextmanager
def _allow_metadata_globals() -> Iterator[None]:
    safe_globals = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    with safe_globals(_metadata_globals()) if safe_globals else contextlib.nullcontext():
        yield


def _looks_like_safetensors(path: Path, size: int) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as handle:
        head = handle.read(9)
    return (
        len(head) == 9 and 0 < int.from_bytes(head[:8], "little") <= size - 8 and head[8:] == b"{"
    )


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = str(error).strip().splitlines()
    line = text[0].strip() if text else ""
    return f"{type(error).__name__}: {line[:limit]}" if line else type(error).__name__


def read_checkpoint(path: str | Path, *, trust: bool = False) -> Any:
    """Reads a checkpoint file (PyTorch pickle/zip or safetensors) onto the CPU.

    Args:
        path: The file.
        trust: Allow arbitrary unpickling (``weights_only=False``); only for trusted files.

    Returns:
        Whatever the file holds (usually a dict; a state dict for safetensors files).

    Raises:
        CheckpointError: Missing, empty, truncated or non-checkpoint file, or one that needs
            arbitrary Python objects while ``trust`` is False.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path}: {what}; expected a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path}: the file is empty")
    if _looks_like_safetensors(path, size):
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # any failure means an unreadable file
            raise CheckpointError(
                f"checkpoint {path}: not a readable safetensors file ({_first_line(error)})"
            ) from error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notices from the safe unpickler
            if trust:
                return torch.load(path, map_location="cpu", weights_only=False)
            with _allow_metadata_globals():
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        needed = re.search(r"GLOBAL ([\w.]+)", str(error))
        if needed and not trust:
            raise CheckpointError(
                f"checkpoint {path}: refusing to unpickle the Python object "
                f"{needed.group(1)!r} (it could run code); if you trust this file, pass "
                "--trust-checkpoint (trust=True)"
            ) from error
        raise CheckpointError(
            f"checkpoint {path}: not a PyTorch checkpoint (unreadable pickle data)"
        ) from error
    except Exception as error:  # any failure means an unreadable file
        raise CheckpointError(
            f"checkpoint {path}: cannot be read, truncated or not a PyTorch checkpoint "
            f"({_first_line(error)})"
        ) from error


def _as_state_dict(value: Any) -> StateDict | None:
    if isinstance(value, nn.Module):
        return dict(value.state_dict())
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(key, str) and isinstance(v, torch.Tensor) for key, v in value.items())
    ):
        return dict(value)
    return None


def find_state_dict(
    checkpoint: Any, containers: tuple[str, ...], path: str | Path = "checkpoint"
) -> tuple[StateDict, str]:
    """Finds the state dict inside a loaded checkpoint.

    Args:
        checkpoint: What `read_checkpoint` returned.
        containers: Top-level keys to try first (``""`` = the checkpoint itself); then
            `GENERIC_CONTAINERS`, then the checkpoint itself.
        path: For messages.

    Returns:
        ``(state dict, container)``, container ``""`` for a raw state dict.

    Raises:
        CheckpointError: No dict of tensors found; names the top-level keys.
    """
    for container in (*containers, *GENERIC_CONTAINERS, ""):
        if container == "":
            state = _as_state_dict(checkpoint)
        elif isinstance(checkpoint, Mapping) and container in checkpoint:
            state = _as_state_dict(checkpoint[container])
        else:
            state = None
        if state is not None:
            return state, container
    if isinstance(checkpoint, Mapping):
        found = f"top-level keys {[str(k) for k in list(checkpoint)[:8]]}"
    else:
        found = f"a {type(checkpoint).__name__}"
    raise CheckpointError(
        f"checkpoint {path}: no state dict found ({found}); expected a dict of tensors or one "
        "under 'state_dict' or 'model'"
    )
