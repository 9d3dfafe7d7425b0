"""CoCLR on two CPU processes (gloo): the three queues are identical on both ranks and equal to
one process on the global batch; Lightning DDP runs through the no-step warm-up without hanging.

Phase 1 drives `contrastive_step` by hand (eval-mode BN, ``batch_norm=local``, averaged
gradients; see test_moco_ddp.py); phase 2 trains with Lightning DDP and batch-shuffle BN for 6
steps, the first 4 of which fill the queue (K=16, global batch 4) without optimiser steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_helpers import IMPORT_PATHS, run_two_ranks
from tests.methods.coclr_helpers import (
    TwoStreamVideos,
    coclr_config,
    pretrain_pair,
    two_stream_batch,
)
from tests.methods.moco_helpers import averaged_gradient_step, shard
from tests.methods.test_moco_ddp import GLOBAL_BATCH, STEPS

from vidssl.methods.registry import build_method

SCRIPT = """
import sys, torch, torch.distributed as dist
sys.path[:0] = {paths!r}
torch.set_num_threads(1)
dist.init_process_group("gloo")
from pathlib import Path
from tests.methods.test_coclr_ddp import run_steps, lightning_phase
rank, world = dist.get_rank(), dist.get_world_size()
pair = (Path({a!r}), Path({b!r}))
out = {{"steps": run_steps(pair, rank, world), "lightning": lightning_phase(pair, {run_dir!r})}}
torch.save(out, {run_dir!r} + f"/rank{{rank}}.pt")
"""


def global_batch(step: int) -> dict:
    labels = [(step + i) % 3 for i in range(GLOBAL_BATCH)]
    groups = [(step * 2 + i) % 5 for i in range(GLOBAL_BATCH)]
    return two_stream_batch(GLOBAL_BATCH, seed=step, labels=labels, groups=groups)


def run_steps(pair, rank: int, world: int) -> dict:
    """STEPS hand-driven CoCLR steps on this rank's share of each global batch."""
    size = GLOBAL_BATCH // world
    cfg = coclr_config(
        "coclr", pair, "method.batch_norm=local", f"data.batch_size={size}", "method.topk=3"
    )
    method = build_method(cfg).eval()
    optimizer = torch.optim.SGD([p for _, p in method.learnable_named_parameters()], lr=0.5)
    losses = []
    for step in range(STEPS):
        local = shard(global_batch(step), rank, world, GLOBAL_BATCH)
        losses.append(averaged_gradient_step(method, optimizer, local, world))
    queues = {f"queue.{k}": v.clone() for k, v in method.queue.state_dict().items()}
    queues.update({f"second.{k}": v.clone() for k, v in method.queue_second.state_dict().items()})
    return {"losses": losses, "queues": queues}


def lightning_phase(pair, run_dir: str) -> dict:
    from vidssl.train.engine import fit

    cfg = coclr_config(
        "coclr", pair, "data.batch_size=2", "trainer.devices=auto", "trainer.max_steps=6",
        "trainer.epochs=6", "optim.name=adam", run_dir=Path(run_dir),
    )  # fmt: skip
    method = build_method(cfg)
    before = [p.detach().clone() for p in method.encoder_q.parameters()]
    trainer = fit(method, TwoStreamVideos(8), cfg)
    queues = {f"queue.{k}": v.clone() for k, v in method.queue.state_dict().items()}
    queues.update({f"second.{k}": v.clone() for k, v in method.queue_second.state_dict().items()})
    changed = any(not torch.equal(a, b) for a, b in zip(before, method.encoder_q.parameters()))
    return {"world": trainer.world_size, "queues": queues, "changed": changed}


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_coclr_ddp")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("coclr_ddp")
    a, b = pretrain_pair(tmp)
    script = SCRIPT.format(paths=IMPORT_PATHS, a=str(a), b=str(b), run_dir=str(tmp))
    out = run_two_ranks(script, tmp, tmp)
    out.append(run_steps((a, b), rank=0, world=1))
    return out


@pytest.mark.ddp
@pytest.mark.slow
def test_queues_identical_across_ranks_and_equal_to_one_process(ranks: list[dict]) -> None:
    first, second, single = ranks[0]["steps"], ranks[1]["steps"], ranks[2]
    assert sorted(first["queues"]) == sorted(single["queues"])
    for key in first["queues"]:  # keys, queue_second, groups (source ids), labels, ptr, count
        assert torch.equal(first["queues"][key], second["queues"][key]), key
    for key in ("queue.groups", "queue.labels", "queue.ptr", "second.ptr", "second.count"):
        assert torch.equal(single["queues"][key], first["queues"][key]), key
    for key in ("queue.keys", "second.keys"):
        torch.testing.assert_close(single["queues"][key], first["queues"][key], atol=2e-5, rtol=0)
    mean = [(x + y) / 2 for x, y in zip(first["losses"], second["losses"])]
    assert single["losses"] == pytest.approx(mean, abs=1e-5)


@pytest.mark.ddp
@pytest.mark.slow
def test_lightning_ddp_runs_the_warm_up_and_keeps_one_queue(ranks: list[dict]) -> None:
    first, second = ranks[0]["lightning"], ranks[1]["lightning"]
    assert first["world"] == second["world"] == 2
    for key in first["queues"]:
        assert torch.equal(first["queues"][key], second["queues"][key]), key
    assert int(first["queues"]["queue.count"]) == int(first["queues"]["second.count"]) == 24
    assert first["changed"] and second["changed"]  # steps 5-6 trained after the warm-up
