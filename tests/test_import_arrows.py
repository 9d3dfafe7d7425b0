"""The package's rooms import only downwards (docs/internals.md "Where things are")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vidssl.data.transforms import ops
from vidssl.models.checkpoints import export

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vidssl"

# room -> rooms it must never import (directly or lazily inside a function)
FORBIDDEN = {
    "config": ("methods", "data", "models", "train", "eval", "demo", "bench", "commands"),
    "data": ("models", "methods", "train", "eval", "demo", "bench", "commands", "downstream"),
    "models": ("data", "methods", "train", "eval", "demo", "bench", "commands", "downstream"),
    "methods": ("train", "commands", "eval", "demo", "bench"),
    "eval": ("methods", "train", "demo", "bench", "commands"),
    "train": ("commands", "demo", "bench"),
}


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "vidssl" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_point_down(room: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        bad = _imported_rooms(path) & set(FORBIDDEN[room])
        offenders += [f"{path.relative_to(PACKAGE)} imports vidssl.{r}" for r in sorted(bad)]
    assert offenders == []


def test_exported_residual_modes_are_the_data_layer_modes() -> None:
    assert export.RESIDUAL_MODES == ops.RESIDUAL_MODES
