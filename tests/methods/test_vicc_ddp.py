"""ViCC on two CPU processes (gloo): Sinkhorn with all-reduced marginals equals one process on the
concatenated batch; Lightning DDP keeps one queue (every rank's rows) identical on both ranks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.ddp_helpers import IMPORT_PATHS, run_two_ranks

from vidssl.methods.vicc import sinkhorn

SCRIPT = """
import sys, torch, torch.distributed as dist
sys.path[:0] = {paths!r}
torch.set_num_threads(1)
dist.init_process_group("gloo")
from tests.methods.test_vicc_ddp import rank_outputs
rank = dist.get_rank()
out = rank_outputs(rank, dist.get_world_size(), {run_dir!r})
torch.save(out, {run_dir!r} + f"/rank{{rank}}.pt")
"""

ROWS, PROTOTYPES = 16, 10
SETTINGS = {"default": {}, "stabilized": {"stabilize": True}, "eight": {"iterations": 8}}


def global_scores() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(ROWS, 16, generator=gen), dim=1)
    c = F.normalize(torch.randn(PROTOTYPES, 16, generator=gen), dim=1)
    return z @ c.t()


def rank_outputs(rank: int, world: int, run_dir: str) -> dict:
    """This rank's Sinkhorn codes of its rows, and a short Lightning DDP ViCC run."""
    from tests.methods.moco_helpers import TwoViewVideos, moco_config

    from vidssl.methods.registry import build_method
    from vidssl.train.engine import fit

    size = ROWS // world
    local = global_scores()[rank * size : (rank + 1) * size]
    codes = {name: sinkhorn(local, **kw) for name, kw in SETTINGS.items()}
    cfg = moco_config(
        "vicc", "method.num_prototypes=10", "method.queue_size=8", "method.epoch_queue_starts=0",
        "method.freeze_prototypes_nepochs=0", "data.batch_size=2", "trainer.devices=auto",
        "trainer.epochs=2", run_dir=Path(run_dir),
    )  # fmt: skip
    method = build_method(cfg)
    trainer = fit(method, TwoViewVideos(8), cfg)
    return {
        "codes": codes,
        "world": trainer.world_size,
        "queue": method.queue.clone(),
        "prototypes": method.prototypes.weight.detach().clone(),
    }


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_vicc_ddp")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("vicc_ddp")
    return run_two_ranks(SCRIPT.format(paths=IMPORT_PATHS, run_dir=str(tmp)), tmp, tmp)


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_sinkhorn_equals_one_process_on_the_concatenated_batch(ranks) -> None:
    for name, kwargs in SETTINGS.items():
        single = sinkhorn(global_scores(), **kwargs)
        both = torch.cat([ranks[0]["codes"][name], ranks[1]["codes"][name]])
        torch.testing.assert_close(both, single, atol=1e-6, rtol=1e-5, msg=name)
    # without the all-reduce each half would be balanced on its own: a different answer
    half = sinkhorn(global_scores()[: ROWS // 2])
    assert not torch.allclose(half, ranks[0]["codes"]["default"], atol=1e-4)


@pytest.mark.ddp
@pytest.mark.slow
def test_lightning_ddp_keeps_every_ranks_queue_on_both_ranks(ranks) -> None:
    first, second = ranks
    assert first["world"] == second["world"] == 2
    # 2 views × 2 ranks × (8 // global batch 4 · 4 / 2 = 4 rows) × 16
    assert first["queue"].shape == (2, 2, 4, 16)
    assert torch.equal(first["queue"], second["queue"])
    assert first["queue"][:, :, -1].any(dim=-1).all()  # both ranks' queues filled
    assert not torch.equal(first["queue"][:, 0], first["queue"][:, 1])  # different data per rank
    assert torch.equal(first["prototypes"], second["prototypes"])
