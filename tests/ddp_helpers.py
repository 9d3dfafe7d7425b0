"""Running a test script in 2 CPU processes (gloo) and collecting what each rank saved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
#: ``sys.path`` entries a script needs to import ``vidssl`` and ``tests`` from this checkout.
IMPORT_PATHS = [str(REPO / "src"), str(REPO)]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run_two_ranks(script: str, workdir: Path, results: Path, *, torchrun: bool = True) -> list:
    """Writes ``script`` into ``workdir`` and runs it with one thread per process.

    With ``torchrun`` it is started by ``torch.distributed.run`` as 2 processes; without, it
    is run once (it starts its own processes, e.g. a Lightning ``ddp`` trainer). Fails the test
    with the end of stderr unless it exits 0, then returns ``results/rank{0,1}.pt``.
    """
    path = workdir / "ddp_script.py"
    path.write_text(script)
    command = [*TORCHRUN, str(path)] if torchrun else [sys.executable, str(path)]
    result = subprocess.run(
        command,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [torch.load(results / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
