"""Import of every reference method's checkpoint layout (severe.md §4, coclr §2.2, vicc §1.10,
PCL §3.4/§3.7).

Each builder writes a checkpoint the way the reference code saves it (top-level dict, ``module.``
prefixes, heads, queues, momentum/sampler/audio networks, S3D aliases, CtP and TCLR names) around
a tiny backbone whose every tensor is random; the test loads it with ``load_foreign`` and checks
that every backbone tensor arrived unchanged and that exactly the non-backbone keys are ignored.
Widths 0.125 and 0.0625 show the maps do not depend on channel counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from tests.models.test_checkpoints_fixtures import (
    StateDict,
    assert_state_equal,
    random_tensor,
    randomized_backbone,
    save,
    shifted,
    to_coclr_alias,
    trunk_state,
)

from vidssl.models.checkpoints import load_foreign, load_foreign_with_report
from vidssl.models.checkpoints.arch import build_encoder_backbone

Built = tuple[object, list[str]]  # (checkpoint object, keys that must be reported as ignored)


def prefixed(prefix: str, state: StateDict) -> StateDict:
    return {f"{prefix}{key}": value for key, value in state.items()}


def with_coclr_aliases(state: StateDict, *, aliases_first: bool = False) -> StateDict:
    """Both names of every S3D tensor, as CoCLR's doubly registered modules save them."""
    out: StateDict = {}
    for key, value in state.items():
        names = [key, to_coclr_alias(key)]
        for name in reversed(names) if aliases_first else names:
            if name is not None:
                out[name] = value
    return out


def mlp_head(prefix: str, dim: int) -> StateDict:
    """CoCLR/ViCC projection head: Conv3d 1×1×1 F→F, ReLU, Conv3d F→128 (``.2`` and ``.4``)."""
    return {
        f"{prefix}2.weight": random_tensor(dim, dim, 1, 1, 1),
        f"{prefix}2.bias": random_tensor(dim),
        f"{prefix}4.weight": random_tensor(128, dim, 1, 1, 1),
        f"{prefix}4.bias": random_tensor(128),
    }


def torchvision_to_sequential(key: str) -> str:
    """``stem.`` → ``0.``, ``layerN.`` → ``N.`` (torchvision net wrapped as Sequential children)."""
    if key.startswith("stem."):
        return "0." + key[5:]
    return re.sub(r"^layer(\d)\.", r"\1.", key)


def to_ctp_key(key: str) -> str:
    """Our torchvision key → CtP's name (microsoft/CtP pyvrl r3d.py), written out by hand."""
    rules = [
        (r"^stem\.0\.", "stem.conv_s."),
        (r"^stem\.1\.", "stem.bn_s."),
        (r"^stem\.3\.", "stem.conv_t."),
        (r"^stem\.4\.", "stem.bn_t."),
        (r"^(layer\d\.\d\.conv[12])\.0\.0\.", r"\1.conv_s."),
        (r"^(layer\d\.\d\.conv[12])\.0\.1\.", r"\1.bn_s."),
        (r"^(layer\d\.\d\.conv[12])\.0\.3\.", r"\1.conv_t."),
        (r"^(layer\d\.\d)\.conv([12])\.1\.", r"\1.bn\2."),
        (r"^(layer\d\.\d)\.downsample\.0\.", r"\1.downsample.conv."),
        (r"^(layer\d\.\d)\.downsample\.1\.", r"\1.downsample_bn."),
    ]
    for pattern, replacement in rules:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    raise AssertionError(f"no CtP name for {key}")


def to_ctp_r3d_key(key: str) -> str:
    """R3D-18 in CtP naming: ``stem.conv/bn``, ``convZ.conv``, ``bnZ``, ``downsample.conv``."""
    for pattern, replacement in [
        (r"^stem\.0\.", "stem.conv."),
        (r"^stem\.1\.", "stem.bn."),
        (r"^(layer\d\.\d\.conv[12])\.0\.", r"\1.conv."),
        (r"^(layer\d\.\d)\.conv([12])\.1\.", r"\1.bn\2."),
        (r"^(layer\d\.\d)\.downsample\.0\.", r"\1.downsample.conv."),
        (r"^(layer\d\.\d)\.downsample\.1\.", r"\1.downsample_bn."),
    ]:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    raise AssertionError(f"no CtP name for {key}")


# --------------------------------------------------------------------------- checkpoint builders


def coclr_pretrain(trunk: StateDict, dim: int, *, module: bool, aliases_first: bool) -> Built:
    """InfoNCE/UberNCE/CoCLR ``.pth.tar``: q/k encoders, queues, CoCLR's sampler (coclr §2.2)."""
    query = prefixed("encoder_q.0.", with_coclr_aliases(trunk, aliases_first=aliases_first))
    key_encoder = prefixed("encoder_k.0.", with_coclr_aliases(shifted(trunk)))
    sampler = prefixed("sampler.0.", with_coclr_aliases(shifted(trunk, 7.0)))
    extras = {
        **mlp_head("encoder_q.", dim),
        **key_encoder,
        **mlp_head("encoder_k.", dim),
        "queue": random_tensor(128, 16),
        "queue_ptr": torch.zeros(1, dtype=torch.long),
        **sampler,
        **mlp_head("sampler.", dim),
        "queue_second": random_tensor(128, 16),
        "queue_vname": torch.arange(16),
        "queue_label": torch.ones(16, dtype=torch.long),
    }
    state = {**query, **extras}
    if module:
        state = prefixed("module.", state)
        extras = prefixed("module.", extras)
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}
    checkpoint = {
        "epoch": 182,
        "state_dict": state,
        "best_acc": 0.61,
        "optimizer": optimizer,
        "iteration": 5000,
    }
    return checkpoint, list(extras)


def coclr_eval(trunk: StateDict, dim: int) -> Built:
    """CoCLR ``LinearClassifier`` checkpoint: ``backbone.*`` + ``final_bn`` + ``final_fc.1``."""
    extras = {
        "final_bn.weight": random_tensor(dim),
        "final_bn.bias": random_tensor(dim),
        "final_bn.running_mean": random_tensor(dim),
        "final_bn.running_var": random_tensor(dim).abs(),
        "final_bn.num_batches_tracked": torch.tensor(9),
        "final_fc.1.weight": random_tensor(101, dim),
        "final_fc.1.bias": random_tensor(101),
    }
    state = {**prefixed("backbone.", with_coclr_aliases(trunk)), **extras}
    return {"epoch": 9, "state_dict": state, "best_acc": 0.8, "optimizer": {}}, list(extras)


def vicc(trunk: StateDict, dim: int) -> Built:
    """ViCC cross-stream checkpoint: ``encoder_q``, ``prototypes``, frozen ``second`` stream."""
    extras = {
        **mlp_head("encoder_q.", dim),
        "prototypes.weight": random_tensor(300, 128),
        **prefixed("second.0.", with_coclr_aliases(shifted(trunk))),
        **mlp_head("second.", dim),
    }
    state = {**prefixed("encoder_q.0.", with_coclr_aliases(trunk)), **extras}
    checkpoint = {"epoch": 99, "state_dict": state, "best_loss": 3.2, "optimizer": {}, "amp": {}}
    return checkpoint, list(extras)


def pcl(trunk: StateDict, dim: int, *, sequential: bool = False, module: bool = False) -> Built:
    """PCLNet raw state dict: ``base_network`` + cloze ``fc`` + ``projector.mlp`` (PCL §3.4)."""
    backbone = {torchvision_to_sequential(k) if sequential else k: v for k, v in trunk.items()}
    extras = {
        "fc.weight": random_tensor(5, 3 * dim),
        "fc.bias": random_tensor(5),
        "projector.mlp.0.weight": random_tensor(dim, dim),
        "projector.mlp.0.bias": random_tensor(dim),
        "projector.mlp.2.weight": random_tensor(128, dim),
        "projector.mlp.2.bias": random_tensor(128),
    }
    state = {**prefixed("base_network.", backbone), **extras}
    if module:
        return prefixed("module.", state), list(prefixed("module.", extras))
    return state, list(extras)


def supervised(trunk: StateDict, dim: int) -> Built:
    """A torchvision state dict with its 400-way ``fc`` (SEVERE 'supervised')."""
    extras = {"fc.weight": random_tensor(400, dim), "fc.bias": random_tensor(400)}
    return {**trunk, **extras}, list(extras)


def selavi(trunk: StateDict, dim: int) -> Built:
    extras = {
        "module.audio_network.base.conv1.weight": random_tensor(8, 1, 3, 3),
        "module.mlp_v.0.weight": random_tensor(dim, dim),
        "module.mlp_a.0.weight": random_tensor(dim, dim),
        "module.video_network.head.weight": random_tensor(dim),
    }
    state = {**prefixed("module.video_network.base.", trunk), **extras}
    return {"model": state, "epoch": 200, "optimizer": {}}, list(extras)


def avid_cma(trunk: StateDict, dim: int) -> Built:
    extras = {
        "module.audio_model.conv1.weight": random_tensor(8, 1, 3, 3),
        "module.video_head.0.weight": random_tensor(128, dim),
    }
    state = {**prefixed("module.video_model.", trunk), **extras}
    return {"model": state, "epoch": 20, "train_criterion": {}}, list(extras)


def moco(trunk: StateDict, dim: int) -> Built:
    """MoCo/VideoMoCo: ``module.encoder_q`` with an MLP ``fc``, ``encoder_k``, queue (SEVERE)."""
    fc = {
        "fc.0.weight": random_tensor(dim, dim),
        "fc.0.bias": random_tensor(dim),
        "fc.2.weight": random_tensor(128, dim),
        "fc.2.bias": random_tensor(128),
    }
    extras = {
        **prefixed("module.encoder_q.", fc),
        **prefixed("module.encoder_k.", {**shifted(trunk), **fc}),
        "module.queue": random_tensor(128, 32),
        "module.queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    state = {**prefixed("module.encoder_q.", trunk), **extras}
    return {"epoch": 199, "arch": "r2plus1d_18", "state_dict": state, "optimizer": {}}, list(extras)


def pretext_contrast(trunk: StateDict, dim: int) -> Built:
    """PCL's K400 R(2+1)D-18 as SEVERE reads it: raw, ``module.base_network.N``."""
    return pcl(trunk, dim, sequential=True, module=True)


def rspnet(trunk: StateDict, dim: int) -> Built:
    backbone = {torchvision_to_sequential(k): v for k, v in trunk.items()}
    extras = {
        "encoder_q.fc.weight": random_tensor(128, dim),
        "encoder_q.head.0.weight": random_tensor(dim, dim),
        **prefixed("encoder_k.encoder.base_network.", shifted(backbone)),
        "encoder_k.fc.weight": random_tensor(128, dim),
        "queue": random_tensor(128, 32),
    }
    state = {**prefixed("encoder_q.encoder.base_network.", backbone), **extras}
    return {"model": state, "epoch": 200, "optimizer": {}}, list(extras)


def gdt(trunk: StateDict, dim: int) -> Built:
    extras = {
        "audio_network.base.conv1.weight": random_tensor(8, 1, 3, 3),
        "mlp_v.block_forward.0.weight": random_tensor(dim, dim),
        "mlp_a.block_forward.0.weight": random_tensor(dim, dim),
    }
    state = {**prefixed("video_network.base.", trunk), **extras}
    return {"model": state, "epoch": 100}, list(extras)


def tclr(trunk: StateDict, dim: int) -> Built:
    """TCLR: ``DataParallel(Sequential(backbone, head))`` with the layer-4 3D conv."""
    assert trunk["layer4.0.conv1.0.weight"].shape[2:] == (3, 3, 3)
    extras = {"module.1.0.weight": random_tensor(dim, dim), "module.1.0.bias": random_tensor(dim)}
    state = {**prefixed("module.0.", trunk), **extras}
    return {"epoch": 300, "state_dict": state, "amp_state_dict": {}}, list(extras)


def ctp(trunk: StateDict, dim: int) -> Built:
    extras = {
        "head.temporal_conv.weight": random_tensor(dim, dim, 2, 1, 1),
        "head.fc1.weight": random_tensor(dim, dim * 25),
        "head.pred_head.weight": random_tensor(64, dim),
    }
    state = {**prefixed("backbone.", {to_ctp_key(k): v for k, v in trunk.items()}), **extras}
    return {"meta": {"epoch": 90}, "state_dict": state, "optimizer": {}}, list(extras)


CASES: dict[str, tuple[str, str, Callable[[StateDict, int], Built]]] = {
    # case id: (method name as a user would type it, architecture, builder)
    "coclr": (
        "CoCLR",
        "s3d",
        lambda t, d: coclr_pretrain(t, d, module=False, aliases_first=False),
    ),
    "coclr-ddp-aliases-first": (
        "coclr",
        "s3d",
        lambda t, d: coclr_pretrain(t, d, module=True, aliases_first=True),
    ),
    "coclr-s3dg": (
        "InfoNCE",
        "s3dg",
        lambda t, d: coclr_pretrain(t, d, module=False, aliases_first=False),
    ),
    "coclr-eval": ("CoCLR", "s3d", coclr_eval),
    "vicc": ("ViCC", "s3d", vicc),
    "pcl-r3d_10": ("PCL", "r3d_10", pcl),
    "pcl-r21d_10": ("pcl", "r21d_10", pcl),
    "pcl-c3d": ("VCP", "c3d", pcl),
    "pcl-r3d_18": ("pcl", "r3d_18", lambda t, d: pcl(t, d, sequential=True)),
    "supervised": ("Supervised", "r2plus1d_18", supervised),
    "selavi": ("SeLaVi", "r2plus1d_18", selavi),
    "avid_cma": ("AVID_CMA", "r2plus1d_18", avid_cma),
    "moco": ("MoCo", "r2plus1d_18", moco),
    "video_moco": ("VideoMoCo", "r2plus1d_18", moco),
    "pretext_contrast": ("PretextContrast", "r2plus1d_18", pretext_contrast),
    "rspnet": ("RSPNet", "r2plus1d_18", rspnet),
    "gdt": ("GDT", "r2plus1d_18", gdt),
    "tclr": ("TCLR", "r2plus1d_18_tclr", tclr),
    "ctp": ("CTP", "r2plus1d_18", ctp),
    "ctp-r3d_18": (
        "ctp",
        "r3d_18",
        lambda t, d: (
            {"state_dict": prefixed("backbone.", {to_ctp_r3d_key(k): v for k, v in t.items()})},
            [],
        ),
    ),
}


@pytest.mark.parametrize("width_mult", [0.125, 0.0625])
@pytest.mark.parametrize("case", list(CASES))
def test_every_backbone_tensor_arrives_and_only_extras_are_ignored(tmp_path, case, width_mult):
    method, arch, build = CASES[case]
    source = randomized_backbone(arch, width_mult=width_mult, seed=3)
    trunk = trunk_state(source)
    checkpoint, extras = build(trunk, source.feature_dim)
    path = save(tmp_path, f"{case}.pth.tar", checkpoint)

    model = load_foreign(path, method)

    assert_state_equal(model, trunk)
    report = model.load_report
    assert report.arch == arch
    assert report.in_channels == 3
    assert report.width_mult == pytest.approx(width_mult, abs=0.002)  # any width with these shapes
    assert sorted(report.ignored) == sorted(extras)
    assert len(report.loaded) == len(trunk)
    assert not model.training
    torch.manual_seed(0)
    clips = torch.randn(1, 3, 8, 32, 32)
    assert torch.equal(model(clips), source(clips))


def test_s3d_aliases_are_deduplicated_and_listed(tmp_path):
    source = randomized_backbone("s3d")
    trunk = trunk_state(source)
    checkpoint, _ = coclr_pretrain(trunk, source.feature_dim, module=True, aliases_first=True)
    _, report = load_foreign_with_report(save(tmp_path, "c.pth", checkpoint), "coclr")
    # every S3D tensor sits in Conv_1a..Mixed_5c, so each has exactly one block* twin
    assert len(report.aliases) == len(trunk) == 462
    alias = "module.encoder_q.0.block4.5.branch1.1.conv2.weight"
    assert report.aliases[alias] == "Mixed_4f.branch1.1.conv2.weight"
    assert report.loaded["Mixed_4f.branch1.1.conv2.weight"] == (
        "module.encoder_q.0.Mixed_4f.branch1.1.conv2.weight"
    )
    assert report.container == "state_dict" and report.namespace == "encoder_q.0."


def test_report_groups_ignored_keys_by_prefix(tmp_path):
    source = randomized_backbone("s3d")
    checkpoint, _ = coclr_pretrain(
        trunk_state(source), source.feature_dim, module=True, aliases_first=False
    )
    _, report = load_foreign_with_report(save(tmp_path, "c.pth", checkpoint), "CPR")
    assert report.method == "coclr"
    assert report.ignored_groups() == {
        "encoder_q.2": 2,
        "encoder_q.4": 2,
        "encoder_k": 2 * 462 + 4,
        "queue": 1,
        "queue_ptr": 1,
        "sampler": 2 * 462 + 4,
        "queue_second": 1,
        "queue_vname": 1,
        "queue_label": 1,
    }
    text = "\n".join(report.summary_lines())
    assert "loaded 462 tensors" in text and "encoder_k: 928" in text
    assert "deduplicated 462 S3D alias keys" in text


def test_ctp_names_land_on_torchvision_keys(tmp_path):
    source = randomized_backbone("r2plus1d_18")
    trunk = trunk_state(source)
    checkpoint, _ = ctp(trunk, source.feature_dim)
    _, report = load_foreign_with_report(save(tmp_path, "ctp.pth", checkpoint), "ctp")
    assert report.loaded["layer2.0.conv1.0.3.weight"] == "backbone.layer2.0.conv1.conv_t.weight"
    assert report.loaded["layer2.0.conv2.1.running_mean"] == "backbone.layer2.0.bn2.running_mean"
    assert report.loaded["layer3.0.downsample.1.weight"] == "backbone.layer3.0.downsample_bn.weight"
    assert report.loaded["stem.4.bias"] == "backbone.stem.bn_t.bias"


def test_supervised_classifier_is_loaded_when_asked(tmp_path):
    source = randomized_backbone("r2plus1d_18", num_classes=400)
    full = trunk_state(source)
    path = save(tmp_path, "sup.pth", full)
    model, report = load_foreign_with_report(path, "supervised", num_classes=400)
    assert_state_equal(model, full)
    assert report.ignored == [] and report.missing_head == []
    # a different class count leaves the classifier at init, listed, and the file's fc ignored
    model, report = load_foreign_with_report(path, "supervised", num_classes=10)
    assert report.missing_head == ["fc.weight", "fc.bias"]
    assert report.ignored == ["fc.weight", "fc.bias"]
    assert model.fc.weight.shape == (10, source.feature_dim)


def test_scratch_is_the_backbones_own_initialisation():
    torch.manual_seed(11)
    model, report = load_foreign_with_report(None, "Scratch", width_mult=0.125)
    torch.manual_seed(11)
    expected = build_encoder_backbone("r2plus1d_18", width_mult=0.125)
    assert_state_equal(model, trunk_state(expected))
    assert (report.arch, report.path, report.loaded, report.ignored) == (
        "r2plus1d_18",
        None,
        {},
        [],
    )
    assert torch.all(model.layer1[0].conv1[1].weight == 1)
    assert torch.all(model.layer1[0].conv1[1].bias == 0)
    model = load_foreign(None, "scratch", "s3d", width_mult=0.125, in_channels=2)
    assert model.load_report.arch == "s3d" and model.in_channels == 2
