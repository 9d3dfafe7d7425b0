"""`BaseMethod`'s batch hooks finish ``data.augment_on=device`` batches; training is unchanged.

On the CPU the device path gives the CPU path's views (see tests/data/test_device_augment.py),
so a short InfoNCE run must give the same losses; they are compared with ``rtol=1e-5`` (views
agree to 1e-5, and three steps of a tiny S3D amplify that little).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from tests.data.dataset_helpers import tiny_synth
from torch.utils.data import default_collate

from vidssl.data.dataset_builder import build_pretrain_dataset
from vidssl.methods.registry import build_method, load_config
from vidssl.train.engine import fit

# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_base_device_augment")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"))


def _cfg(root, run_dir, *overrides):
    return load_config(
        "infonce/tiny",
        [
            f"data.root={root}",
            f"trainer.run_dir={run_dir}",
            "data.batch_size=2",
            "data.augmentation=base",  # every view strong: jitter, grey, blur on the device
            "trainer.max_steps=3",
            "trainer.progress_bar_refresh=0",
            *overrides,
        ],
    )


class _Record(Callback):
    """Each step's loss and the layout of the batch the method was given."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.layouts: list[tuple] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))
        views = [(v.dtype, tuple(v.shape)) for v in batch["views"]]
        self.layouts.append((sorted(batch), views))


def _train(cfg):
    data = build_pretrain_dataset(cfg)
    torch.manual_seed(0)
    method = build_method(cfg)
    record = _Record()
    fit(method, data, cfg, callbacks=[record])
    return method, data, record


def test_device_augmentation_trains_like_cpu_augmentation(synth, tmp_path):
    _, _, on_cpu = _train(_cfg(synth, tmp_path / "cpu"))
    method, data, on_dev = _train(_cfg(synth, tmp_path / "dev", "data.augment_on=device"))
    assert method.batch_augment is data.views.device  # the dataset's own policy (engine.fit)
    assert len(on_cpu.losses) == len(on_dev.losses) == 3
    assert on_dev.losses == pytest.approx(on_cpu.losses, rel=1e-5, abs=0)
    assert len(set(on_cpu.losses)) == 3  # the runs did change from step to step
    assert on_dev.layouts == on_cpu.layouts
    keys, views = on_dev.layouts[0]
    assert "device_params" not in keys and views == [(torch.float32, (2, 3, 8, 32, 32))] * 2


def test_hooks_keep_parameters_on_host_and_build_the_augment_from_the_config(synth, tmp_path):
    cfg = _cfg(synth, tmp_path / "run", "data.augment_on=device")
    cpu_data = build_pretrain_dataset(_cfg(synth, tmp_path / "run"))
    dev_data = build_pretrain_dataset(cfg)
    batches = []
    for data in (cpu_data, dev_data):
        np.random.seed(5)
        first = data[0]
        np.random.seed(6)
        batches.append(default_collate([first, data[1]]))
    method = build_method(cfg)
    assert method.batch_augment is None  # not trained through engine.fit
    params = batches[1]["device_params"]
    moved = method.transfer_batch_to_device(batches[1], torch.device("cpu"), 0)
    assert moved["device_params"] is params  # not copied by the transfer
    out = method.on_after_batch_transfer(moved, 0)
    assert method.batch_augment is not None
    assert [s.name for s in method.batch_augment.steps] == ["jitter", "grayscale", "blur", "flip"]
    assert "device_params" not in out
    for got, want in zip(out["views"], batches[0]["views"], strict=True):
        assert torch.allclose(got, want, atol=1e-5, rtol=0)
    plain = {"views": batches[0]["views"]}
    assert method.on_after_batch_transfer(plain, 0) is plain  # CPU-path batches pass through


@pytest.mark.gpu
def test_device_augmentation_trains_on_cuda(synth, tmp_path):
    gpu = ("trainer.accelerator=gpu",)
    _, _, on_cpu = _train(_cfg(synth, tmp_path / "cpu", *gpu))
    _, _, on_dev = _train(_cfg(synth, tmp_path / "dev", "data.augment_on=device", *gpu))
    # CUDA kernels (blur, resampling-free ops) round differently from the CPU ones: views agree
    # to ~1e-4 (tests/data/test_device_augment.py), losses to a looser tolerance
    assert on_dev.losses == pytest.approx(on_cpu.losses, rel=1e-3)
    assert on_dev.layouts == on_cpu.layouts
