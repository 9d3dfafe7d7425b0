"""CoCLR / CPR: loss and positives on hand-built queues, warm-up, frozen stream, loading, resume."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from tests.methods.coclr_helpers import (
    TwoStreamVideos,
    coclr_config,
    pretrain_pair,
    two_stream_batch,
    write_infonce_checkpoint,
)
from tests.methods.moco_helpers import independent_q_k, moco_config
from tests.methods.test_mining import brute_force_cascade, mask_rows
from tests.models.test_checkpoints_fixtures import to_coclr_alias

from vidssl.errors import CheckpointError, ConfigError
from vidssl.methods import coclr, losses, mining
from vidssl.methods.registry import build_method
from vidssl.models.checkpoints.export import export_encoder
from vidssl.train.engine import fit

K = 16


def prefixed_state(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.clone() for k, v in module.state_dict().items()}


def assert_module_equals(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = module.state_dict()
    assert sorted(state) == sorted(expected)
    assert [k for k in state if not torch.equal(state[k], expected[k])] == []


def spy_mining(method: coclr.CoCLR) -> list[torch.Tensor]:
    """Records every mined mask the method produces."""
    record: list[torch.Tensor] = []
    original = method.mine

    def mine(*args, **kwargs):
        mined = original(*args, **kwargs)
        record.append(mined.clone())
        return mined

    method.mine = mine  # type: ignore[method-assign]
    return record


def planted_queue(method: coclr.CoCLR, kf: torch.Tensor) -> dict[str, torch.Tensor]:
    """A full queue whose other-view slots 3i..3i+2 equal ``kf[i]`` (row i's best matches).

    Slot 3 shares row 1's source group (a sibling); labels make the per-row class recall of the
    top-2 mining 1/2, 1, 0, 1.
    """
    gen = torch.Generator().manual_seed(5)
    queue_second = F.normalize(torch.randn(K, kf.shape[1], generator=gen), dim=1)
    for row in range(4):
        queue_second[3 * row : 3 * row + 3] = kf[row]
    state = {
        "keys": F.normalize(torch.randn(K, kf.shape[1], generator=gen), dim=1),
        "groups": torch.arange(200, 200 + K),
        "labels": torch.tensor([0, 5, 0, 1, 1, 1, 9, 9, 2, 3, 3, 7, 0, 0, 0, 0]),
    }
    state["groups"][3] = 101
    for name, value in state.items():
        getattr(method.queue, name).copy_(value)
    method.queue.count.fill_(K)
    method.queue_second.keys.copy_(queue_second)
    return state


def hand_mask(drop: bool) -> torch.Tensor:
    """Expected positives ``[4, 1+K]``: instance, sibling slot 3 of row 1, top-2 planted slots."""
    mask = torch.zeros(4, 1 + K, dtype=torch.bool)
    mask[:, 0] = not drop
    for row, slots in enumerate([[0, 1], [3, 4, 5], [6, 7], [9, 10]]):
        mask[row, [1 + s for s in slots]] = True
    return mask


@pytest.mark.parametrize(
    ("name", "reverse", "drop"),
    [("coclr", False, 1.0), ("coclr", True, 0.0), ("cvtcl", False, 1.0)],
)
def test_loss_on_a_hand_built_queue_equals_multi_positive_nce(
    tmp_path: Path, name: str, reverse: bool, drop: float
) -> None:
    pair = pretrain_pair(tmp_path)
    overrides = ["method.topk=2", f"method.instance_drop={drop}", f"method.reverse={reverse}"]
    overrides.append(f"data.modality={'flow' if reverse else 'rgb'}")
    frames = 8 if name == "cvtcl" else 4
    method = build_method(coclr_config(name, pair, *overrides, f"data.seq_len={frames}"))
    batch = two_stream_batch(
        seed=1, frames=frames, groups=[100, 101, 102, 103], labels=[0, 1, 2, 3]
    )
    main, other = (
        (batch["flow_views"], batch["views"]) if reverse else (batch["views"], batch["flow_views"])
    )
    q, k = independent_q_k(method, {"views": main})
    with torch.no_grad():
        kf = copy.deepcopy(method.sampler)(other[1])
    queue = planted_queue(method, kf)
    second_before = method.queue_second.keys.clone()
    mined = spy_mining(method)
    out = method.contrastive_step(batch)

    expected_mined = hand_mask(drop=False)[:, 1:].clone()
    expected_mined[1, 3] = False  # the sibling is a positive but never mined
    assert torch.equal(mined[0], expected_mined)
    logits = losses.contrastive_logits(q, k, queue["keys"], 0.07)
    expected = losses.multi_positive_nce(logits, hand_mask(drop == 1.0), "sum")
    loss = out["loss_global"] if name == "cvtcl" else out["loss"]
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert out["instance_dropped"] == drop
    assert out["mining_recall"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert out["mining_recall_median"] == pytest.approx(0.75)
    assert float(out["mined"]) == 2.0 and out["queue_warmup"] == 0.0
    # this step's k, kf, groups and labels were written at slots 0-3 of the three queues
    torch.testing.assert_close(method.queue.keys[:4], k, rtol=0, atol=1e-6)
    torch.testing.assert_close(method.queue_second.keys[:4], kf, rtol=0, atol=1e-6)
    assert method.queue.groups[:4].tolist() == [100, 101, 102, 103]
    assert method.queue.labels[:4].tolist() == [0, 1, 2, 3]
    assert torch.equal(method.queue_second.keys[4:], second_before[4:])


def test_mined_positives_never_include_self_or_siblings(tmp_path: Path) -> None:
    method = build_method(coclr_config("coclr", pretrain_pair(tmp_path), "method.topk=3"))
    mined = spy_mining(method)
    groups_before = []
    for step in range(8):  # groups repeat across steps: earlier clips of a video are in the queue
        groups_before.append(method.queue.groups.clone())
        method.contrastive_step(two_stream_batch(seed=step, groups=[step % 3, 7, 8, step % 2]))
    for step, (mask, queue_groups) in enumerate(zip(mined, groups_before)):
        batch_groups = torch.tensor([step % 3, 7, 8, step % 2])
        assert not (mask & mining.sibling_mask(batch_groups, queue_groups)).any()
        assert not (mask & (queue_groups[None, :] < 0)).any()  # never-written slots
        allowed = (~mining.sibling_mask(batch_groups, queue_groups) & (queue_groups >= 0)).sum(1)
        assert mask.sum(1).tolist() == allowed.clamp(max=3).tolist()


def test_cpr_cascade_in_the_method_equals_brute_force(tmp_path: Path) -> None:
    cfg = coclr_config(
        "coclr", pretrain_pair(tmp_path), "method.cascade=true", "method.stages=3",
        "method.ratio=0.5", "method.topk=2",
    )  # fmt: skip
    method = build_method(cfg)
    mined = spy_mining(method)
    for step in range(6):
        if step == 5:
            queue = (method.queue.keys.clone(), method.queue_second.keys.clone())
            groups = method.queue.groups.clone()
            batch = two_stream_batch(seed=step, groups=[1, 2, 3, 4])
            q, _ = independent_q_k(method, batch)
            with torch.no_grad():
                kf = copy.deepcopy(method.sampler)(batch["flow_views"][1])
        method.contrastive_step(two_stream_batch(seed=step, groups=[1, 2, 3, 4]))
    exclude = mining.sibling_mask(torch.tensor([1, 2, 3, 4]), groups)
    expected = brute_force_cascade(kf, q, queue[1], queue[0], exclude, 2, 0.5, 3)
    assert mask_rows(mined[-1]) == expected
    assert coclr.cascade_positives is mining.cascade_positives


def test_cpr_config_error_when_the_last_pool_is_smaller_than_topk(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"int\(16\*0.5\*\*6\) = 0 candidates .* topk=5"):
        coclr_config("coclr", pretrain_pair(tmp_path), "method.cascade=true")


def test_each_step_takes_one_instance_drop_draw_from_the_seeded_stream(tmp_path: Path) -> None:
    # The 0.9 rate itself is checked within a binomial bound over many draws in test_mining.py;
    # here: the method takes exactly one draw per step from its generator seeded by trainer.seed.
    method = build_method(coclr_config("coclr", pretrain_pair(tmp_path), "data.batch_size=2"))
    draws = []
    batch = two_stream_batch(batch_size=2, seed=0)
    for _ in range(40):
        with torch.no_grad():
            draws.append(method.contrastive_step(batch)["instance_dropped"])
    generator = torch.Generator().manual_seed(method.cfg.trainer.seed)
    assert draws == [float(mining.draw_instance_drop(generator, 0.9)) for _ in draws]
    assert 0.0 in draws and 1.0 in draws


class Recorder(Callback):
    """Copies the query encoder's parameters and the frozen encoder's state after every step."""

    def __init__(self) -> None:
        self.query: list[list[torch.Tensor]] = []
        self.sampler: list[dict[str, torch.Tensor]] = []
        self.sampler_training: list[bool] = []

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.query.append([p.detach().clone() for p in module.encoder_q.parameters()])
        self.sampler.append(copy.deepcopy(module.sampler.state_dict()))
        self.sampler_training.append(any(m.training for m in module.sampler.modules()))


def test_no_step_while_the_queue_fills_and_the_frozen_stream_never_changes(tmp_path: Path) -> None:
    cfg = coclr_config(
        "coclr", pretrain_pair(tmp_path), "optim.name=adam", "optim.lr=0.01",
        "optim.weight_decay=1e-3", "trainer.max_steps=6", "trainer.epochs=3",
        run_dir=tmp_path / "run",
    )  # fmt: skip
    method = build_method(cfg)
    initial_query = [p.detach().clone() for p in method.encoder_q.parameters()]
    initial_sampler = copy.deepcopy(method.sampler.state_dict())
    recorder = Recorder()
    fit(method, TwoStreamVideos(8), cfg, callbacks=[recorder])
    unchanged = [
        all(torch.equal(a, b) for a, b in zip(step, initial_query)) for step in recorder.query
    ]
    assert unchanged == [True] * 4 + [False] * 2  # K=16 / batch 4: four warm-up steps
    assert_module_equals(method.sampler, initial_sampler)
    for state in recorder.sampler:  # weights and BN statistics (running_*, num_batches_tracked)
        assert all(torch.equal(state[k], initial_sampler[k]) for k in state)
    assert recorder.sampler_training == [False] * 6
    assert int(method.queue.count) == 24 and int(method.queue_second.count) == 24


def test_pretrain_loading_from_vidssl_checkpoints_and_run_directories(tmp_path: Path) -> None:
    a, b = pretrain_pair(tmp_path)
    run_dir = tmp_path / "run_b" / "checkpoints"
    run_dir.mkdir(parents=True)
    b.rename(run_dir / "last.ckpt")
    method = build_method(coclr_config("coclr", (a, tmp_path / "run_b")))
    state_a = torch.load(a, weights_only=True)["state_dict"]
    state_b = torch.load(run_dir / "last.ckpt", weights_only=True)["state_dict"]

    def query(state: dict) -> dict:
        return {k[10:]: v for k, v in state.items() if k.startswith("encoder_q.")}

    assert_module_equals(method.encoder_q, query(state_a))
    assert_module_equals(method.encoder_k, query(state_a))  # not A's encoder_k
    assert_module_equals(method.sampler, query(state_b))
    assert int(method.queue.count) == 0 and int(method.queue_second.count) == 0
    assert (method.queue.groups == -1).all() and (method.queue.labels == -1).all()
    assert not any(p.requires_grad for p in method.sampler.parameters())
    learnable = [name for name, _ in method.learnable_named_parameters()]
    assert learnable and all(name.startswith("encoder_q.") for name in learnable)


def coclr_format(method: torch.nn.Module) -> dict:
    """A CoCLR ``main_nce.py`` checkpoint of ``method``'s encoders (S3D aliases, conv heads)."""
    state: dict[str, torch.Tensor] = {}
    for encoder in ("encoder_q", "encoder_k"):
        module = getattr(method, encoder)
        for key, value in module.backbone.state_dict().items():
            for name in (key, to_coclr_alias(key)):
                if name is not None:
                    state[f"{encoder}.0.{name}"] = value.clone() + (encoder == "encoder_k")
        for ours, theirs in (("head.0.", "2."), ("head.2.", "4.")):
            for suffix in ("weight", "bias"):
                state[f"{encoder}.{theirs}{suffix}"] = module.state_dict()[ours + suffix].clone()
    state["queue"] = torch.randn(16, K)
    state["queue_ptr"] = torch.zeros(1, dtype=torch.long)
    return {"epoch": 399, "state_dict": state, "best_acc": 0.5, "iteration": 1}


def test_pretrain_loading_from_coclr_files_and_exported_encoders(tmp_path: Path) -> None:
    s3d = ("model.backbone=s3d", "data.seq_len=8")
    source = build_method(moco_config("infonce", "trainer.seed=3", *s3d))
    torch.save(coclr_format(source), tmp_path / "a.pth.tar")
    other = build_method(moco_config("infonce", "trainer.seed=4", *s3d))
    export_encoder(other.encoder_q.backbone, tmp_path / "exported")
    method = build_method(
        coclr_config("coclr", (tmp_path / "a.pth.tar", tmp_path / "exported"), *s3d)
    )
    assert_module_equals(method.encoder_q, source.encoder_q.state_dict())
    assert_module_equals(method.encoder_k, source.encoder_q.state_dict())
    assert_module_equals(method.sampler.backbone, other.encoder_q.backbone.state_dict())
    fresh = build_method(moco_config("infonce", *s3d))  # same seed as the CoCLR run
    assert_module_equals(method.sampler.head, fresh.encoder_q.head.state_dict())  # head at init


def test_pretrain_errors_are_one_line(tmp_path: Path) -> None:
    a, b = pretrain_pair(tmp_path)
    with pytest.raises(ConfigError, match=r"method.pretrain has 1 entries; expected \[A, B\]"):
        moco_config("coclr", f"method.pretrain=[{a}]")
    with pytest.raises(
        ConfigError, match=r"frozen-stream \(B\) checkpoint .*missing.ckpt does not exist"
    ):
        build_method(coclr_config("coclr", (a, tmp_path / "missing.ckpt")))
    wide = write_infonce_checkpoint(tmp_path / "wide.ckpt", 1, "model.width_mult=0.125")
    with pytest.raises(CheckpointError, match=r"query encoder of .*wide.ckpt does not fit"):
        build_method(coclr_config("coclr", (wide, b)))
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="has no query encoder"):
        build_method(coclr_config("coclr", (a, tmp_path / "bad.ckpt")))
    with pytest.raises(ConfigError, match="needs two-stream batches"):
        batch = two_stream_batch()
        del batch["flow_views"]
        build_method(coclr_config("coclr", (a, b))).contrastive_step(batch)


class Crash(Callback):
    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == 5:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("name", ["coclr", "cvtcl"])
def test_fit_resumes_exactly_through_warm_up_and_training(tmp_path: Path, name: str) -> None:
    pair = pretrain_pair(tmp_path)
    frames = 8 if name == "cvtcl" else 4
    overrides = (
        f"data.seq_len={frames}", "trainer.epochs=4", "trainer.checkpoint_every_n_steps=2",
        "optim.name=adam", "optim.lr=0.01",
    )  # fmt: skip
    whole = build_method(coclr_config(name, pair, *overrides, run_dir=tmp_path / "whole"))
    fit(whole, TwoStreamVideos(8, frames=frames), whole.cfg)
    cfg = coclr_config(name, pair, *overrides, run_dir=tmp_path / "resumed")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(build_method(cfg), TwoStreamVideos(8, frames=frames), cfg, callbacks=[Crash()])
    resumed = build_method(cfg)
    fit(resumed, TwoStreamVideos(8, frames=frames), cfg)  # resume=auto from step 4
    expected, state = whole.state_dict(), resumed.state_dict()
    assert int(state["queue.count"]) == int(state["queue_second.count"]) == 32
    assert [k for k in expected if not torch.equal(expected[k], state[k])] == []
    assert torch.equal(whole.drop_generator.get_state(), resumed.drop_generator.get_state())
    initial = build_method(cfg)
    assert not torch.equal(initial.encoder_q.head[0].weight, resumed.encoder_q.head[0].weight)


def test_every_preset_loads_and_coclr_cpr_presets_mirror_the_commands() -> None:
    from vidssl.config.schema import available_presets
    from vidssl.methods.registry import load_config

    for name in available_presets():
        if not name.startswith("base/"):
            assert load_config(name).method.name
    rgb = load_config("coclr/ucf101_rgb")
    m = rgb.method
    assert (m.name, m.topk, m.queue_size, m.instance_drop, m.reverse, m.cascade) == (
        "coclr", 5, 2048, 0.9, False, False,
    )  # fmt: skip
    assert m.pretrain == ["runs/infonce_ucf101_rgb", "runs/infonce_ucf101_flow"]
    assert (rgb.data.batch_size, rgb.data.flow_media, rgb.optim.lr) == (
        32, "data/ucf101/tvl1_flow", 1e-3,
    )  # fmt: skip
    assert (rgb.schedule.milestones, rgb.trainer.epochs) == ([80], 100)
    flow2 = load_config("coclr/ucf101_flow_cycle2").method
    assert flow2.reverse and flow2.pretrain == [
        "runs/coclr_ucf101_flow",
        "runs/coclr_ucf101_rgb_cycle2",
    ]
    k400 = load_config("coclr/k400_flow")
    assert (k400.method.queue_size, k400.trainer.epochs, k400.schedule.milestones) == (
        16384,
        50,
        [40],
    )
    cpr = load_config("cpr/ucf101_flow")
    assert (cpr.method.cascade, cpr.method.stages, cpr.method.ratio, cpr.data.batch_size) == (
        True, 7, 0.5, 16,
    )  # fmt: skip
    assert cpr.method.pretrain == ["runs/infonce_ucf101_flow", "runs/cpr_ucf101_rgb"]
    assert load_config("cpr/k400_rgb").method.queue_size == 16384
    tiny = load_config("cpr/tiny")
    assert (tiny.model.width_mult, tiny.data.seq_len, tiny.method.queue_size) == (0.0625, 8, 64)
    assert mining.cascade_pool_sizes(64, 5, 0.5, tiny.method.stages) == [32, 16, 8, 5]
