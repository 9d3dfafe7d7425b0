"""Evaluation presets against the reference protocols (shared/reference: CoCLR §5, ViCC §1.11,
PCL §3.8), value by value, and the preset list."""

from __future__ import annotations

from vidssl.data.sampling import UniformClips
from vidssl.eval.config import eval_presets, load_eval_config
from vidssl.eval.features import protocol_clips


def test_every_reference_protocol_has_a_preset():
    expected = {
        "coclr_retrieval", "coclr_linear", "coclr_linear_fast", "coclr_finetune",
        "vicc_retrieval", "vicc_linear", "vicc_finetune",
        "pcl_retrieval", "pcl_retrieval_hmdb51", "pcl_finetune", "pcl_finetune_hmdb51",
        "tiny", "pcl_tiny", "pcl_tiny_finetune",
    }  # fmt: skip
    assert expected <= set(eval_presets())


def test_coclr_retrieval_is_the_reference_protocol():
    # CoCLR §5.1: split 1, 32 frames ds 1, CenterCrop(224) → 128, centred sets, R@{1,5,10,20,50}
    cfg = load_eval_config("coclr_retrieval")
    d = cfg.data
    assert (d.dataset, d.split_id, d.seq_len, d.ds, d.img_size, d.crop_size) == (
        "ucf101",
        1,
        32,
        1,
        128,
        224,
    )
    assert cfg.retrieval.protocol == "coclr" and list(cfg.retrieval.ks) == [1, 5, 10, 20, 50]
    assert cfg.runtime.amp is False  # the references evaluate in fp32


def test_pcl_retrieval_is_ten_uniform_16_frame_clips_at_112():
    # PCL §3.8: 10 clips of 16 frames, Resize(128, 171) → CenterCrop(112), split 1
    cfg = load_eval_config("pcl_retrieval")
    d = cfg.data
    assert (d.seq_len, d.img_size, d.split_id, cfg.retrieval.protocol) == (16, 112, 1, "pcl")
    sampler, transform = protocol_clips(
        "pcl", "query", seq_len=d.seq_len, ds=d.ds, img_size=d.img_size, crop_size=d.crop_size
    )
    assert isinstance(sampler, UniformClips) and sampler.n_clips == 10
    assert "128" in repr(transform) and "171" in repr(transform) and "112" in repr(transform)
    assert load_eval_config("pcl_retrieval_hmdb51").data.dataset == "hmdb51"


def test_vicc_finetune_is_the_readme_command():
    # ViCC §1.11: SGD lr 0.1, wd 1e-3, 500 epochs, ×0.1 at 200/300/400/450, dropout 0.9,
    # backbone lr / 10 (the README leaves backbone_ratio at 10)
    f = load_eval_config("vicc_finetune").finetune
    assert (f.optimizer, f.lr, f.weight_decay, f.epochs) == ("sgd", 0.1, 1e-3, 500)
    assert list(f.milestones) == [200, 300, 400, 450]
    assert (f.dropout, f.backbone_lr_mult, f.momentum) == (0.9, 0.1, 0.9)


def test_vicc_retrieval_and_linear_follow_coclr():
    assert (
        load_eval_config("vicc_retrieval").retrieval
        == load_eval_config("coclr_retrieval").retrieval
    )
    linear = load_eval_config("vicc_linear").linear
    assert (linear.lr, linear.weight_decay, linear.epochs, list(linear.milestones)) == (
        0.1,
        1e-3,
        100,
        [60, 80],
    )


def test_pcl_tiny_uses_the_pcl_protocol_at_tiny_size():
    cfg = load_eval_config("pcl_tiny")
    assert (cfg.retrieval.protocol, cfg.data.seq_len, cfg.data.img_size) == ("pcl", 8, 32)
    assert cfg.runtime.device == "cpu"
