"""Safe reading and strict matching: bad files, code payloads, trust, wrong architectures."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tests.models.test_checkpoints_fixtures import (
    assert_state_equal,
    randomized_backbone,
    save,
    to_coclr_alias,
    trunk_state,
)

from vidssl.errors import CheckpointError, UserError
from vidssl.models.checkpoints import load_foreign
from vidssl.models.checkpoints.adapters import canonical_method
from vidssl.models.checkpoints.io import find_state_dict, read_checkpoint


class ShellPayload:
    """Pickles as a call to ``os.system`` that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TrainingArgs:
    """A custom class, as some training scripts pickle their config object."""

    def __init__(self, lr: float) -> None:
        self.lr = lr


@pytest.fixture
def tiny_state() -> dict[str, torch.Tensor]:
    return trunk_state(randomized_backbone("r3d_10", width_mult=0.0625))


# ------------------------------------------------------------------------------- unreadable files


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pth: does not exist"):
        load_foreign(tmp_path / "nope.pth", "supervised")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_foreign(tmp_path, "supervised")


def test_empty_random_text_and_truncated_files(tmp_path, tiny_state):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="the file is empty"):
        load_foreign(empty, "supervised")

    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(
        CheckpointError, match=r"noise\.pth: (not a PyTorch checkpoint|cannot be read)"
    ):
        load_foreign(noise, "supervised")

    text = tmp_path / "notes.txt"
    text.write_text("epoch 3, loss 0.5\n")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_foreign(text, "supervised")

    whole = save(tmp_path, "whole.pth", {"state_dict": tiny_state})
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: cannot be read, truncated"):
        load_foreign(truncated, "supervised")

    legacy = tmp_path / "legacy.pth"
    torch.save(tiny_state, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-200])
    with pytest.raises(CheckpointError, match=r"legacy\.pth: cannot be read"):
        load_foreign(legacy, "supervised")


def test_errors_are_one_line_user_errors(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(UserError) as caught:
        load_foreign(tmp_path / "x.pth", "moco")
    assert "\n" not in str(caught.value)


def test_checkpoint_without_a_state_dict(tmp_path):
    path = save(tmp_path, "list.pth", {"epoch": 3, "losses": [0.5, 0.4]})
    with pytest.raises(CheckpointError, match=r"no state dict found \(top-level keys \['epoch', "):
        load_foreign(path, "moco")
    with pytest.raises(CheckpointError, match="no state dict found"):
        find_state_dict([1, 2], ("state_dict",))


# ------------------------------------------------------------------------------- safety and trust


def test_code_payload_is_refused_and_never_runs(tmp_path, tiny_state):
    marker = tmp_path / "PAYLOAD_RAN"
    path = save(tmp_path, "evil.pth", {"state_dict": tiny_state, "x": ShellPayload(marker)})
    with pytest.raises(CheckpointError) as caught:
        load_foreign(path, "pcl")
    message = str(caught.value)
    assert "system" in message and "--trust-checkpoint" in message and "trust=True" in message
    assert not marker.exists()
    legacy = tmp_path / "evil_legacy.pth"
    torch.save({"x": ShellPayload(marker)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        read_checkpoint(legacy)
    assert not marker.exists()


def test_custom_objects_need_trust(tmp_path, tiny_state):
    path = save(tmp_path, "args.pth", {"state_dict": tiny_state, "cfg": TrainingArgs(0.1)})
    with pytest.raises(CheckpointError, match=r"TrainingArgs.*--trust-checkpoint"):
        load_foreign(path, "supervised")
    model = load_foreign(path, "supervised", trust=True)
    assert_state_equal(model, tiny_state)


def test_argparse_and_numpy_metadata_load_without_trust(tmp_path, tiny_state):
    checkpoint = {
        "state_dict": tiny_state,
        "args": argparse.Namespace(lr=0.1, net="r3d"),
        "best_acc": np.float64(0.75),
        "history": np.arange(4),
    }
    loaded = read_checkpoint(save(tmp_path, "meta.pth", checkpoint))
    assert loaded["args"].net == "r3d" and loaded["best_acc"] == 0.75
    assert_state_equal(load_foreign(tmp_path / "meta.pth", "supervised"), tiny_state)


def test_pickled_module_is_read_with_trust(tmp_path):
    source = randomized_backbone("c3d", width_mult=0.0625)
    path = save(tmp_path, "module.pth", source)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_foreign(path, "supervised")
    assert_state_equal(load_foreign(path, "supervised", trust=True), trunk_state(source))


@pytest.mark.parametrize("name", ["weights.safetensors", "weights.bin"])
def test_safetensors_files(tmp_path, tiny_state, name):
    save_file(tiny_state, tmp_path / name)
    assert_state_equal(load_foreign(tmp_path / name, "supervised"), tiny_state)
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_foreign(tmp_path / "bad.safetensors", "supervised")


# ------------------------------------------------------------------------------- strict matching


def test_file_for_another_architecture_names_the_keys(tmp_path):
    path = save(tmp_path, "s3d.pth", trunk_state(randomized_backbone("s3d")))
    with pytest.raises(CheckpointError) as caught:
        load_foreign(path, "supervised", "r2plus1d_18")
    message = str(caught.value)
    assert "does not fit r2plus1d_18" in message and "read as supervised" in message
    # 222 entries less the 37 BatchNorm counters (num_batches_tracked may be absent in old files)
    assert "185 missing [stem.0.weight, stem.1.weight" in message
    assert "462 unexpected [Conv_1a.conv1.weight" in message
    assert "the keys look like 's3d'" in message
    assert "\n" not in message


def test_shape_and_channel_mismatches_are_named(tmp_path):
    path = save(tmp_path, "r.pth", trunk_state(randomized_backbone("r2plus1d_18")))
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatches .*stem\.0\.weight \(6, 3, 1, 7, 7\) "
        r"vs \(11, 3, 1, 7, 7\)",
    ):
        load_foreign(path, "supervised", width_mult=0.25)
    with pytest.raises(
        CheckpointError,
        match=r"in_channels 2.*stem\.0\.weight \(6, 3, 1, 7, 7\) "
        r"vs \(6, 2, 1, 7, 7\)",
    ):
        load_foreign(path, "supervised", in_channels=2)


def test_missing_backbone_tensor_is_an_error(tmp_path):
    trunk = trunk_state(randomized_backbone("s3d"))
    state = {f"encoder_q.0.{k}": v for k, v in trunk.items()}
    del state["encoder_q.0.Mixed_5c.branch0.0.bn.running_mean"]
    path = save(tmp_path, "c.pth", {"state_dict": state})
    with pytest.raises(
        CheckpointError, match=r"1 missing \[Mixed_5c\.branch0\.0\.bn\.running_mean\]"
    ):
        load_foreign(path, "coclr")


def test_wrong_method_for_the_file(tmp_path):
    trunk = trunk_state(randomized_backbone("s3d"))
    path = save(
        tmp_path, "c.pth", {"state_dict": {f"encoder_q.0.{k}": v for k, v in trunk.items()}}
    )
    with pytest.raises(
        CheckpointError, match=r"no backbone keys for method 'gdt'.*\['encoder_q'\]"
    ):
        load_foreign(path, "gdt")
    with pytest.raises(CheckpointError, match=r"checkpoint method 'simclr': expected one of coclr"):
        load_foreign(path, "simclr")


def test_inconsistent_alias_and_key_clash(tmp_path):
    trunk = trunk_state(randomized_backbone("s3d"))
    state = {f"encoder_q.0.{k}": v for k, v in trunk.items()}
    state["encoder_q.0." + to_coclr_alias("Conv_1a.conv1.weight")] = (
        trunk["Conv_1a.conv1.weight"] + 1
    )
    with pytest.raises(
        CheckpointError, match=r"S3D alias 'encoder_q\.0\.block1\.0\.conv1\.weight' holds"
    ):
        load_foreign(save(tmp_path, "a.pth", {"state_dict": state}), "coclr")
    clash = {**trunk, "module.Conv_1a.conv1.weight": trunk["Conv_1a.conv1.weight"]}
    with pytest.raises(CheckpointError, match=r"both map to backbone key 'Conv_1a\.conv1\.weight'"):
        load_foreign(save(tmp_path, "b.pth", clash), "supervised")


def test_unknown_layout_asks_for_arch(tmp_path):
    path = save(tmp_path, "mlp.pth", {"0.weight": torch.zeros(3, 3), "0.bias": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"cannot tell the architecture .*pass --arch"):
        load_foreign(path, "supervised")
    with pytest.raises(CheckpointError, match=r"architecture 'resnet50': expected one of s3d"):
        load_foreign(path, "supervised", "resnet50")


def test_scratch_and_file_arguments():
    with pytest.raises(CheckpointError, match="takes no checkpoint file"):
        load_foreign("x.pth", "scratch")
    with pytest.raises(CheckpointError, match="needs a checkpoint file"):
        load_foreign(None, "moco")


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("TCLR", "tclr"),
        ("tclr", "tclr"),
        ("AVID_CMA", "avid_cma"),
        ("avid-cma", "avid_cma"),
        ("VideoMoCo", "video_moco"),
        ("PretextContrast", "pretext_contrast"),
        ("SeLaVi", "selavi"),
        ("RSPNet", "rspnet"),
        ("UberNCE", "coclr"),
        ("CVTCL", "coclr"),
        ("VCP", "pcl"),
        (" Supervised ", "supervised"),
    ],
)
def test_method_names_are_case_insensitive(spelling, canonical):
    assert canonical_method(spelling) == canonical
