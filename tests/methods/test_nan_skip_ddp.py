"""``trainer.nan_policy=skip`` under Lightning DDP (2 gloo processes): a non-finite loss on one
rank makes every rank drop that step (no hang, no "returning None in distributed training"
error), and the parameters stay identical across ranks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_helpers import IMPORT_PATHS, run_two_ranks

SCRIPT = """
import sys, torch
sys.path[:0] = {paths!r}
torch.set_num_threads(1)
from pathlib import Path
from tests.engine_toy import ToyDataset, toy_config
from vidssl.train.engine import fit
from vidssl.methods.registry import build_method
cfg = toy_config(Path({run_dir!r}), "trainer.devices=2", "trainer.strategy=ddp",
                 "method.nan_steps=[2]", "method.nan_rank=1", "trainer.nan_policy=skip",
                 "trainer.epochs=1")
method = build_method(cfg)
trainer = fit(method, ToyDataset(), cfg)
torch.save({{"skipped": method.skipped_steps, "step": trainer.global_step,
            "weights": {{k: v.detach().clone() for k, v in method.named_parameters()}}}},
           {run_dir!r} + f"/rank{{trainer.global_rank}}.pt")
"""


@pytest.mark.ddp
@pytest.mark.slow
def test_nan_skip_under_ddp_drops_the_step_on_every_rank(tmp_path: Path) -> None:
    script = SCRIPT.format(paths=IMPORT_PATHS, run_dir=str(tmp_path))
    ranks = run_two_ranks(script, tmp_path, tmp_path, torchrun=False)
    # 24 samples, batch 4 per rank, 2 ranks → 3 steps; step 2 is dropped on both ranks
    assert [r["step"] for r in ranks] == [3, 3]
    assert [r["skipped"] for r in ranks] == [1, 1]
    for key, value in ranks[0]["weights"].items():
        assert torch.equal(value, ranks[1]["weights"][key]), key
    assert all(
        torch.isfinite(v).all() for v in ranks[0]["weights"].values() if v.is_floating_point()
    )
