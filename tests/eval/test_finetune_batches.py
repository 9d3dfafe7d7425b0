"""Fine-tuning batches as in CoCLR's command: 64 clips per step (2 GPUs × 32), ``drop_last``."""

from __future__ import annotations

import pytest
from tests.eval.eval_helpers import fake_encoder, video_table

from vidssl.data.sampling import RandomClip
from vidssl.data.transforms.presets import coclr_finetune
from vidssl.errors import UserError
from vidssl.eval.clips import VideoClips
from vidssl.eval.config import FinetuneSettings, load_eval_config
from vidssl.eval.finetune import FinetuneModel, train_finetune


def test_coclr_finetune_uses_the_global_batch_of_64_with_drop_last() -> None:
    cfg = load_eval_config("coclr_finetune")
    assert (cfg.finetune.batch_size, cfg.finetune.drop_last) == (64, True)
    assert FinetuneSettings().batch_size == 64 and FinetuneSettings().drop_last


def _batch_sizes(make_video, n_videos: int, settings: FinetuneSettings) -> list[int]:
    labels = [i % 2 for i in range(n_videos)]
    table = video_table(make_video, [10] * n_videos, labels)
    model = FinetuneModel(fake_encoder().model, 2, dropout=0.5)
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(int(args[0].shape[0])))
    dataset = VideoClips(table, RandomClip(8), coclr_finetune(16, normalization="none"))
    train_finetune(model, dataset, settings, progress=False)
    return sizes


@pytest.mark.parametrize(("drop_last", "expected"), [(True, [2, 2] * 2), (False, [2, 2, 1] * 2)])
def test_the_last_incomplete_batch_is_dropped_every_epoch(make_video, drop_last, expected) -> None:
    settings = FinetuneSettings(epochs=2, milestones=[], batch_size=2, drop_last=drop_last)
    assert _batch_sizes(make_video, 5, settings) == expected


def test_fewer_videos_than_one_batch_is_refused(make_video) -> None:
    with pytest.raises(UserError, match="leaves no step for 3 training videos"):
        _batch_sizes(make_video, 3, FinetuneSettings(epochs=1, batch_size=4, drop_last=True))
