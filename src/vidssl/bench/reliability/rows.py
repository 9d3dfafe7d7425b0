"""One row of the reliability report: a scenario, what was injected and what the user got.

Every scenario group of ``vidssl bench reliability`` (`vidssl.bench.reliability.GROUPS`) returns
a list of `Row`; the command writes them as JSON and as the table of
``benchmarks/RELIABILITY.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Row", "markdown_table", "row_from_dict"]


@dataclass(frozen=True)
class Row:
    """The outcome of one injected fault.

    Attributes:
        group: Scenario group (``data``, ``recovery``, ``cluster``, ``ddp``, ``disk``,
            ``hostile``, ``scale``).
        scenario: What the row is about, short (``10 % zero-byte videos, LMDB store``).
        injected: What was done to the run or its inputs.
        outcome: What vidssl did (``training completed, 12 videos skipped``).
        user_saw: The message the user got (one line, quoted), or ``""``.
        data_lost: ``"none"``, or what was lost (any other value fails the row).
        recovery_s: Seconds from the fault to a running (or finished) job again; None when
            nothing had to recover.
        figures: Measured numbers (throughput ratio, peak RSS, steps, ...).
        passed: Whether every expectation of the scenario held.
    """

    group: str
    scenario: str
    injected: str
    outcome: str
    user_saw: str = ""
    data_lost: str = "none"
    recovery_s: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    passed: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict."""
        return dataclasses.asdict(self)


def row_from_dict(values: dict[str, Any]) -> Row:
    """The `Row` that `Row.to_dict` wrote."""
    return Row(**values)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _figures(figures: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{key} {show(value)}" for key, value in figures.items())


def markdown_table(rows: list[Row]) -> str:
    """The report table: one line per row, in the given order."""
    head = (
        "| group | scenario | injected | what happened | what the user saw | data lost "
        "| recovery s | figures | ok |\n|---|---|---|---|---|---|---:|---|:-:|"
    )
    lines = [head]
    for row in rows:
        recovery = "–" if row.recovery_s is None else f"{row.recovery_s:.2f}"
        cells = [
            row.group, row.scenario, row.injected, row.outcome,
            f"`{row.user_saw}`" if row.user_saw else "–", row.data_lost, recovery,
            _figures(row.figures) or "–", "✓" if row.passed else "✗",
        ]  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
