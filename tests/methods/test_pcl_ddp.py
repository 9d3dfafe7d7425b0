"""Two CPU processes (gloo, torchrun): PCL's memory banks stay identical on every rank and equal
the banks of one process fed the whole global batch.

Each rank encodes its half of a global batch of 4 (BN in eval mode, so every clip's embedding
depends on that clip only) and runs `PCL.contrast_terms`, which updates both banks with the
embeddings and indices gathered from all ranks. Indices repeat across steps and within a step
(last occurrence wins), so the order of the gathered update matters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_helpers import IMPORT_PATHS, run_two_ranks
from tests.methods.moco_helpers import shard
from tests.methods.test_pcl import pcl_method, tuple_batch

GLOBAL_BATCH = 4
INDICES = [[0, 3, 5, 9], [3, 1, 8, 3], [11, 0, 9, 2]]

SCRIPT = """
import sys, torch, torch.distributed as dist
sys.path[:0] = {paths!r}
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
from tests.methods.test_pcl_ddp import run_steps
torch.save(run_steps(rank, world), {run_dir!r} + f"/rank{{rank}}.pt")
"""


def run_steps(rank: int, world: int) -> dict:
    """Bank updates of len(INDICES) steps on this rank's share of each global batch."""
    method = pcl_method("pcl/tiny", "method.negatives=4").eval()
    with torch.no_grad():
        for step, index in enumerate(INDICES):
            batch = tuple_batch([step % 5, 1, 4, 2], seed=step, index=index)
            local = shard(batch, rank, world, GLOBAL_BATCH)
            method.contrast_terms(method.clip_features(local), local["index"])
    return {"bank_clip1": method.bank_clip1.clone(), "bank_clip3": method.bank_clip3.clone()}


@pytest.mark.ddp
def test_banks_identical_across_ranks_and_equal_one_process(tmp_path: Path) -> None:
    script = SCRIPT.format(paths=IMPORT_PATHS, run_dir=str(tmp_path))
    rank0, rank1 = run_two_ranks(script, tmp_path, tmp_path)
    single = run_steps(0, 1)
    initial = pcl_method("pcl/tiny").bank_clip1
    for key in ("bank_clip1", "bank_clip3"):
        assert torch.equal(rank0[key], rank1[key])
        assert torch.allclose(rank0[key], single[key], atol=1e-6)
    touched = sorted({i for index in INDICES for i in index})
    untouched = [i for i in range(12) if i not in touched]
    assert not torch.allclose(rank0["bank_clip1"][touched], initial[touched])
    assert torch.equal(rank0["bank_clip1"][untouched], initial[untouched])
