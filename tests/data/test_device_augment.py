"""``data.augment_on=device``: collated uint8 crops + packed parameters → the CPU path's views.

Tolerance: the device path differs from the CPU path only by float rounding (the same ops on the
same uint8 crops, batched); views are compared with ``atol=1e-5`` in normalised units (values
span about ±2.6), i.e. far below one uint8 level (1/255/0.225 ≈ 0.017).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import frame_pattern
from tests.data.dataset_helpers import tiny_synth, write_frame_folder
from torch.utils.data import default_collate

from vidssl.data.dataset_builder import build_pretrain_dataset
from vidssl.data.transforms import device as device_augment
from vidssl.data.transforms.batched import BatchedVideoAugment
from vidssl.data.transforms.compose import ColorJitter, HorizontalFlip, Normalize
from vidssl.data.transforms.ops import normalize
from vidssl.errors import ConfigError, DataError
from vidssl.methods.registry import load_config

ATOL = 1e-5
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # written out on purpose


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_device_augment")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def flow_root(synth, tmp_path_factory):
    """Flow frames (different content from the RGB videos) for every synthetic video."""
    root = tmp_path_factory.mktemp("flow")
    data = build_pretrain_dataset(_cfg(synth))
    for i, path in enumerate(data.table.paths):
        frames = frame_pattern(12, 32, 42, seed=100 + i)
        write_frame_folder(root / str(path)[: -len(".avi")], frames, prefix="flow")
    return root


def _cfg(root, *overrides):
    return load_config("infonce/tiny", [f"data.root={root}", *overrides])


def _batch(data, seeds):
    items = []
    for index, seed in enumerate(seeds):
        np.random.seed(seed)  # what ResumableLoader does per sample
        items.append(data[index])
    return items, default_collate(items)


def _assert_same_batch(cpu, finished, streams):
    assert finished.keys() == cpu.keys() and "device_params" not in finished
    for stream in streams:
        assert len(finished[stream]) == len(cpu[stream])
        for got, want in zip(finished[stream], cpu[stream], strict=True):
            assert got.dtype == want.dtype == torch.float32 and got.shape == want.shape
            assert torch.allclose(got, want, atol=ATOL, rtol=0)
    for key in ("index", "clips", "label"):
        assert torch.equal(finished[key], cpu[key])
    assert finished["video"] == cpu["video"]


@pytest.mark.parametrize("augmentation", ["coclr", "base"])
def test_device_path_gives_the_cpu_views(synth, augmentation):
    cpu_data = build_pretrain_dataset(_cfg(synth, f"data.augmentation={augmentation}"))
    dev_data = build_pretrain_dataset(
        _cfg(synth, f"data.augmentation={augmentation}", "data.augment_on=device")
    )
    assert not cpu_data.views.on_device and dev_data.views.on_device
    seeds = [11, 12, 13, 14, 15]
    _, cpu = _batch(cpu_data, seeds)
    items, dev = _batch(dev_data, seeds)
    assert all(v.dtype == torch.uint8 for item in items for v in item["views"])
    assert "device_params" not in cpu and len(dev["device_params"]) == 2
    assert dev["device_params"][0]["jitter"].shape == (5,)
    if augmentation == "base":  # every view strong: jitter must have run on some clips
        assert bool(torch.cat([p["jitter"] for p in dev["device_params"]]).any())
    finished = device_augment.augment_batch(dev, device_augment.augment_of(dev_data))
    _assert_same_batch(cpu, finished, ["views"])
    assert "device_params" in dev  # the input batch is left as it was


def test_two_stream_flow_views_share_the_parameters(synth, flow_root):
    flow = f"data.flow_media={flow_root}"
    cpu_data = build_pretrain_dataset(_cfg(synth, flow, "data.augmentation=base"))
    dev_data = build_pretrain_dataset(
        _cfg(synth, flow, "data.augmentation=base", "data.augment_on=device")
    )
    seeds = [21, 22, 23, 24]
    _, cpu = _batch(cpu_data, seeds)
    items, dev = _batch(dev_data, seeds)
    assert all(v.dtype == torch.uint8 for item in items for v in item["flow_views"])
    finished = device_augment.augment_batch(dev, device_augment.augment_of(dev_data))
    _assert_same_batch(cpu, finished, ["views", "flow_views"])
    assert not torch.allclose(finished["flow_views"][0], finished["views"][0], atol=0.1)


def test_flow_skips_photometric_steps_when_the_pipeline_says_so():
    augment = BatchedVideoAugment(
        [ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0), HorizontalFlip(0.5), Normalize("imagenet")],
        photometric_on_flow=False,
    )
    gen = torch.Generator().manual_seed(0)
    rgb = [torch.randint(0, 256, (2, 3, 2, 4, 5), dtype=torch.uint8, generator=gen)]
    flow = [torch.randint(0, 256, (2, 3, 2, 4, 5), dtype=torch.uint8, generator=gen)]
    params = augment.sample(np.random.default_rng(0), 2)
    params["flip"] = torch.tensor([True, False])
    batch = {"views": rgb, "flow_views": flow, "device_params": [params]}
    out = device_augment.augment_batch(batch, augment)
    # flow: flip + normalisation only, computed by hand
    expected = flow[0].float() / 255
    expected[0] = expected[0].flip(-1)
    assert torch.allclose(out["flow_views"][0], normalize(expected, *IMAGENET), atol=1e-6)
    assert torch.allclose(out["views"][0], augment.apply(rgb[0], params), atol=0)
    plain = normalize(rgb[0].float() / 255, *IMAGENET)
    plain[0] = plain[0].flip(-1)
    assert not torch.allclose(out["views"][0], plain, atol=1e-3)  # jitter did run on RGB


def test_views_of_different_sizes_are_augmented_one_by_one():
    augment = BatchedVideoAugment([HorizontalFlip(0.5), Normalize("imagenet")])
    gen = torch.Generator().manual_seed(1)
    views = [
        torch.randint(0, 256, (2, 3, 1, 4, 4), dtype=torch.uint8, generator=gen),
        torch.randint(0, 256, (2, 3, 1, 6, 6), dtype=torch.uint8, generator=gen),
    ]
    flips = [torch.tensor([True, False]), torch.tensor([False, True])]
    out = device_augment.augment_batch(
        {"views": views, "device_params": [{"flip": f} for f in flips]}, augment
    )
    for view, flip, got in zip(views, flips, out["views"], strict=True):
        x = view.float() / 255
        want = torch.stack([c.flip(-1) if f else c for c, f in zip(x, flip.tolist())])
        assert torch.allclose(got, normalize(want, *IMAGENET), atol=1e-6)


def test_mismatched_parameters_are_a_data_error():
    augment = BatchedVideoAugment([HorizontalFlip(0.5)])
    view = torch.zeros(1, 3, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(DataError, match="2 views but 1 device_params"):
        device_augment.augment_batch(
            {"views": [view, view], "device_params": [{"flip": torch.tensor([True])}]}, augment
        )


def test_hold_and_restore_leave_the_parameters_untouched():
    params = [{"flip": torch.tensor([True])}]
    batch = {"views": [torch.zeros(1)], "device_params": params}
    rest, held = device_augment.hold_params(batch)
    assert held is params and "device_params" not in rest and "device_params" in batch
    assert device_augment.restore_params(rest, held)["device_params"] is params
    assert device_augment.hold_params(rest) == (rest, None)
    assert device_augment.restore_params(rest, None) is rest
    assert not device_augment.has_params([1, 2]) and device_augment.has_params(batch)


def test_augment_from_config_matches_the_dataset_policy(synth):
    cfg = _cfg(synth, "data.augment_on=device")
    built = device_augment.augment_from_config(cfg.data)
    policy = device_augment.augment_of(build_pretrain_dataset(cfg))
    assert [type(s) for s in built.steps] == [type(s) for s in policy.steps]
    assert [s.name for s in built.steps] == ["jitter", "grayscale", "blur", "flip"]
    assert built.stats == policy.stats == IMAGENET
    assert device_augment.augment_of(build_pretrain_dataset(_cfg(synth))) is None
    with pytest.raises(ConfigError, match=r"data\.augment_on"):
        _cfg(synth, "data.augment_on=gpu")


@pytest.mark.gpu
def test_device_path_on_cuda_gives_the_cpu_views(synth):
    cpu_data = build_pretrain_dataset(_cfg(synth, "data.augmentation=base"))
    dev_data = build_pretrain_dataset(
        _cfg(synth, "data.augmentation=base", "data.augment_on=device")
    )
    seeds = [31, 32, 33, 34]
    _, cpu = _batch(cpu_data, seeds)
    _, dev = _batch(dev_data, seeds)
    dev["views"] = [v.cuda() for v in dev["views"]]
    finished = device_augment.augment_batch(dev, device_augment.augment_of(dev_data))
    assert all(v.is_cuda for v in finished["views"])
    finished["views"] = [v.cpu() for v in finished["views"]]
    for got, want in zip(finished["views"], cpu["views"], strict=True):
        assert torch.allclose(got, want, atol=1e-4, rtol=0)  # CUDA kernels round differently
