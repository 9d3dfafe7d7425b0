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
from tests.methods.test_pcl_ddp import run_steps, lightning_phase
out = run_steps(rank, world)
out["lightning"] = lightning_phase({run_dir!r}, {synth!r})
torch.save(out, {run_dir!r} + f"/rank{{rank}}.pt")
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


def lightning_phase(run_dir: str, synth: str) -> dict:
    """Two epochs of pcl/tiny under Lightning DDP (train-mode BN, validation, plateau)."""
    from vidssl.methods.registry import build_method, load_config
    from vidssl.train.engine import fit

    cfg = load_config("pcl/tiny", [
        f"data.root={synth}", f"trainer.run_dir={run_dir}/lightning", "trainer.devices=auto",
        "trainer.epochs=2", "data.batch_size=2", "trainer.progress_bar_refresh=0",
    ])  # fmt: skip
    train, val = type(build_method(cfg)).build_datasets(cfg)
    method = build_method(cfg)
    trainer = fit(method, train, cfg, val_data=val)
    return {
        "world": trainer.world_size,
        "steps": trainer.global_step,
        "plateau": method.plateau.state_dict(),
        "bank_clip1": method.bank_clip1.clone(),
        "bank_clip3": method.bank_clip3.clone(),
        "head": method.head.weight.detach().clone(),
    }


@pytest.mark.ddp
@pytest.mark.slow
def test_banks_identical_across_ranks_and_equal_one_process(tmp_path: Path) -> None:
    from vidssl.data.synthetic import make_synthetic_dataset

    synth = tmp_path / "synth"
    make_synthetic_dataset(synth, classes=2, videos_per_class=6, frames=48, size=40, workers=1)
    script = SCRIPT.format(paths=IMPORT_PATHS, run_dir=str(tmp_path), synth=str(synth))
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
    # Lightning DDP: the banks, weights and plateau state agree on both ranks after training
    lit0, lit1 = rank0["lightning"], rank1["lightning"]
    assert lit0["world"] == 2 and lit0["steps"] == lit1["steps"] == 2
    for key in ("bank_clip1", "bank_clip3", "head"):
        assert torch.equal(lit0[key], lit1[key]), key
    assert lit0["plateau"] == lit1["plateau"] and lit0["plateau"]["last_epoch"] == 2
