"""A tiny in-memory video dataset and recognizer config for Runner tests."""
import copy

import torch
from mmaction.registry import DATASETS
from mmaction.structures import ActionDataSample
from torch.utils.data import Dataset

from conftest import TINY_ARCH


@DATASETS.register_module(force=True)
class RandomClips(Dataset):
    """Seeded random clips shaped like PackActionInputs output.

    Args:
        num: Number of samples.
        num_frames: T.
        num_classes: Labels cycle through ``range(num_classes)``.
    """

    metainfo = dict(classes=('a', 'b', 'c'))

    def __init__(self, num=8, num_frames=4, num_classes=3):
        self.num = num
        self.num_frames = num_frames
        self.num_classes = num_classes

    def __len__(self):
        return self.num

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        clip = torch.randint(0, 256, (1, 3, self.num_frames, 32, 32),
                             generator=gen).float()
        sample = ActionDataSample().set_gt_label(idx % self.num_classes)
        return dict(inputs=clip, data_samples=sample)


def recognizer_from_backbone(backbone, num_classes=3,
                             width=TINY_ARCH['width'], dropout=0.5):
    """Recognizer3D config: ``backbone`` + TimeSformerHead + CLIP norm."""
    return dict(
        type='Recognizer3D',
        backbone=backbone,
        cls_head=dict(type='TimeSformerHead', num_classes=num_classes,
                      in_channels=width, dropout_ratio=dropout,
                      average_clips='prob'),
        data_preprocessor=dict(
            type='ActionDataPreprocessor',
            mean=[122.769, 116.74, 104.04],
            std=[68.493, 66.63, 70.32],
            format_shape='NCTHW'))


def recognizer_cfg(clip_file=None, adapter='tiny', num_classes=3,
                   dropout=0.5):
    """Tiny recognizer config, optionally loading CLIP from ``clip_file``."""
    backbone = dict(type='ViTCLIPSTAdapter', arch=dict(TINY_ARCH),
                    adapter=dict(width=16) if adapter == 'tiny' else adapter)
    if clip_file is not None:
        backbone['init_cfg'] = dict(type='Pretrained',
                                    checkpoint=str(clip_file))
    return recognizer_from_backbone(backbone, num_classes, dropout=dropout)


def runner_cfg(work_dir, model, max_epochs=2, hooks=(), **extra):
    """A complete mmengine Runner config training ``model`` on RandomClips."""
    cfg = dict(
        model=copy.deepcopy(model),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type='RandomClips'),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                       val_interval=100),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2,
                                          weight_decay=0.01)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=4, by_epoch=True,
                              begin=0, end=4)],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(h) for h in hooks],
        randomness=dict(seed=0, deterministic=False),
        default_scope='mmaction',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING')
    cfg.update(extra)
    return cfg
