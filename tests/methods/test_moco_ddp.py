"""Two CPU processes (gloo, started by torchrun): gathers, batch shuffle, identical queues, and
equality with one process on the same global batch.

Phase 1 drives `contrastive_step` by hand on a bare process group (no DDP wrapper, so nothing
broadcasts buffers behind our back): each rank takes its half of a global batch of 4, gradients are
averaged with ``all_reduce`` and plain SGD steps. BN runs in eval mode and ``batch_norm=local``,
so every clip's embedding is independent of the rest of its batch. The test then runs the same
steps in this process on the whole global batch and compares.

Phase 2 trains InfoNCE with Lightning DDP (``batch_norm=shuffle``, train-mode BN) for 2 steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_helpers import IMPORT_PATHS, run_two_ranks
from tests.methods.moco_helpers import (
    KeySpy,
    averaged_gradient_step,
    moco_config,
    shard,
    two_view_batch,
)

from vidssl.methods.registry import build_method

STEPS, GLOBAL_BATCH = 6, 4  # K=16: the pointer wraps after 4 steps
METHODS = {"infonce": ("method.mask_siblings=true",), "ubernce": ()}

SCRIPT = """
import sys, torch, torch.distributed as dist
sys.path[:0] = {paths!r}
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
from tests.methods.test_moco_ddp import METHODS, run_steps, shuffle_checks, lightning_phase
out = {{"shuffle": shuffle_checks(rank, world)}}
for name, overrides in METHODS.items():
    out[name] = run_steps(name, overrides, rank, world)
out["lightning"] = lightning_phase({run_dir!r}, rank)
torch.save(out, {run_dir!r} + f"/rank{{rank}}.pt")
"""


def global_batch(step: int) -> dict:
    """The step's global batch; labels repeat so UberNCE has same-class queue entries."""
    labels = [(step + i) % 3 for i in range(GLOBAL_BATCH)]
    groups = [(step * 2 + i) % 5 for i in range(GLOBAL_BATCH)]
    return two_view_batch(GLOBAL_BATCH, seed=step, labels=labels, groups=groups)


def run_steps(name: str, overrides: tuple[str, ...], rank: int, world: int) -> dict:
    """STEPS hand-driven steps with averaged gradients; returns losses, keys and final state."""
    per_rank_batch = GLOBAL_BATCH // world
    cfg = moco_config(
        name, "method.batch_norm=local", f"data.batch_size={per_rank_batch}", *overrides
    )
    method = build_method(cfg).eval()  # same seed on every rank → same initial weights
    spy = KeySpy(method)
    optimizer = torch.optim.SGD([p for _, p in method.learnable_named_parameters()], lr=0.5)
    losses = []
    for step in range(STEPS):
        local = shard(global_batch(step), rank, world, GLOBAL_BATCH)
        losses.append(averaged_gradient_step(method, optimizer, local, world))
    return {
        "losses": losses,
        "local_keys": spy.keys,
        "queue": {k: v.clone() for k, v in method.queue.state_dict().items()},
        "encoder_q": {k: v.clone() for k, v in method.encoder_q.state_dict().items()},
        "encoder_k": {k: v.clone() for k, v in method.encoder_k.state_dict().items()},
    }


def shuffle_checks(rank: int, world: int) -> dict:
    """concat_all_gather order and one batch_shuffle / batch_unshuffle round trip."""
    from vidssl.methods.moco import batch_shuffle, batch_unshuffle, concat_all_gather

    local = torch.arange(3.0) + 10 * rank
    gathered = concat_all_gather(local)
    every = torch.arange(4 * world, dtype=torch.float32)[:, None].repeat(1, 2)
    mine = every[rank * 4 : (rank + 1) * 4]
    shuffled, unshuffle_index = batch_shuffle(mine)
    restored = batch_unshuffle(shuffled, unshuffle_index)
    return {
        "gathered": gathered,
        "shuffled": shuffled,
        "unshuffle_index": unshuffle_index,
        "restored_equal": bool(torch.equal(restored, mine)),
    }


def lightning_phase(run_dir: str, rank: int) -> dict:
    """Two Lightning DDP steps of InfoNCE with batch-shuffle BN on the running process group."""
    from tests.methods.moco_helpers import TwoViewVideos

    from vidssl.train.engine import fit

    cfg = moco_config(
        "infonce", "data.batch_size=2", "trainer.devices=auto", "trainer.max_steps=2",
        "method.mask_siblings=true", run_dir=Path(run_dir),
    )  # fmt: skip
    method = build_method(cfg)
    trainer = fit(method, TwoViewVideos(8), cfg)
    return {
        "world": trainer.world_size,
        "queue": {k: v.clone() for k, v in method.queue.state_dict().items()},
    }


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_moco_ddp")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("moco_ddp")
    return run_two_ranks(SCRIPT.format(paths=IMPORT_PATHS, run_dir=str(tmp)), tmp, tmp)


@pytest.mark.ddp
@pytest.mark.slow
def test_gather_and_batch_shuffle_across_two_ranks(ranks: list[dict]) -> None:
    for rank, result in enumerate(ranks):
        shuffle = result["shuffle"]
        assert shuffle["gathered"].tolist() == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]  # rank order
        permutation = torch.argsort(shuffle["unshuffle_index"])
        assert sorted(permutation.tolist()) == list(range(8))
        expected_rows = permutation[rank * 4 : (rank + 1) * 4].float()
        assert shuffle["shuffled"][:, 0].tolist() == expected_rows.tolist()
        assert shuffle["restored_equal"]
    assert torch.equal(
        ranks[0]["shuffle"]["unshuffle_index"], ranks[1]["shuffle"]["unshuffle_index"]
    )


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize("name", list(METHODS))
def test_two_ranks_hold_one_queue_equal_to_a_single_process_run(
    ranks: list[dict], name: str
) -> None:
    rank0, rank1 = ranks[0][name], ranks[1][name]
    # identical queues (keys, ptr, count, labels or groups) on both ranks
    assert rank0["queue"].keys() == rank1["queue"].keys()
    for key in rank0["queue"]:
        assert torch.equal(rank0["queue"][key], rank1["queue"][key]), key
    # gathered keys are complete and in rank order: slots 0-3 were written at step 5 (wrap)
    step5 = torch.cat([rank0["local_keys"][4], rank1["local_keys"][4]])
    assert torch.equal(rank0["queue"]["keys"][:4], step5)
    single = run_steps(name, METHODS[name], rank=0, world=1)
    # one process on the global batch: queue, labels/groups and pointer as the two ranks
    assert int(single["queue"]["ptr"]) == int(rank0["queue"]["ptr"]) == (STEPS * 4) % 16
    for key in ("labels", "groups", "count"):
        if key in single["queue"]:
            assert torch.equal(single["queue"][key], rank0["queue"][key]), key
    torch.testing.assert_close(single["queue"]["keys"], rank0["queue"]["keys"], atol=2e-5, rtol=0)
    # the single-process loss is the mean of the two ranks' losses at every step
    mean_losses = [(a + b) / 2 for a, b in zip(rank0["losses"], rank1["losses"])]
    assert single["losses"] == pytest.approx(mean_losses, abs=1e-5)
    # and the averaged-gradient updates end at the same query and key encoders
    for part in ("encoder_q", "encoder_k"):
        for key, value in single[part].items():
            torch.testing.assert_close(value, rank0[part][key], atol=2e-5, rtol=1e-5)
            assert torch.equal(rank0[part][key], rank1[part][key])


@pytest.mark.ddp
@pytest.mark.slow
def test_lightning_ddp_with_batch_shuffle_fills_one_queue_per_global_batch(
    ranks: list[dict],
) -> None:
    first, second = ranks[0]["lightning"], ranks[1]["lightning"]
    assert first["world"] == second["world"] == 2
    for key in first["queue"]:
        assert torch.equal(first["queue"][key], second["queue"][key]), key
    # 2 steps × global batch 4 (2 per rank): the pointer moved by 8, not 4
    assert int(first["queue"]["ptr"]) == 8 and int(first["queue"]["count"]) == 8
    groups = first["queue"]["groups"]
    assert sorted(groups[:8].tolist()) == list(range(8))  # each video of the epoch exactly once
    assert groups[8:].tolist() == [-1] * 8
