"""Generated videos, broken variants and a tiny training run for the tests.

Also a script: ``python tests/robust_helpers.py --work-dir W --data D``
trains the tiny ST-Adapter recognizer on the videos of ``D`` (made by
:func:`make_dataset`) with mmengine's Runner, so a test can SIGKILL it and
resume it (``--resume``). ``--slow-save`` makes every checkpoint write take
about a second and drop a ``<name>.saving`` marker first, so a kill can land
in the middle of a write on purpose.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import struct
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

import stadapter_mm  # noqa: F401  (compat fixes, mmaction models)
# Registers RobustVideoDataset and the engine parts even before the package
# imports them itself.
import stadapter_mm.datasets.robust_video_dataset  # noqa: F401
import stadapter_mm.engine  # noqa: F401
from stadapter_mm.utils.video import write_video

TINY_ARCH = dict(input_resolution=32, patch_size=8, width=64, layers=2,
                 heads=4)
BROKEN_KINDS = ('truncated', 'zero_bytes', 'random_bytes', 'corrupt',
                'missing')


# ------------------------------------------------------------------ videos
def _atoms(data: bytes) -> List[tuple]:
    out, pos = [], 0
    while pos + 8 <= len(data):
        size = struct.unpack('>I', data[pos:pos + 4])[0]
        out.append((data[pos + 4:pos + 8].decode('latin-1'), pos, size))
        if size < 8:
            break
        pos += size
    return out


def _faststart(data: bytes) -> bytes:
    """Move the ``moov`` atom before ``mdat`` (fixing chunk offsets).

    cv2 writes ``moov`` last, so a truncated cv2 file does not even open. A
    download cut short usually keeps the index at the front: the file opens,
    reports all its frames, and decoding fails part-way. This recreates that.
    """
    atoms = _atoms(data)
    moov = next(a for a in atoms if a[0] == 'moov')
    box = bytearray(data[moov[1]:moov[1] + moov[2]])
    pos = box.find(b'stco')
    while pos >= 0:
        count = struct.unpack('>I', box[pos + 8:pos + 12])[0]
        for k in range(count):
            at = pos + 12 + 4 * k
            offset = struct.unpack('>I', box[at:at + 4])[0]
            box[at:at + 4] = struct.pack('>I', offset + moov[2])
        pos = box.find(b'stco', pos + 4)
    head = atoms[0]
    out = bytearray(data[head[1]:head[1] + head[2]]) + box
    for name, start, size in atoms[1:]:
        if name != 'moov':
            out += data[start:start + size]
    return bytes(out)


def make_video(path: str, label: int, num_frames: int = 8, size: int = 32,
               seed: int = 0) -> str:
    """Write an mp4v clip of a bright bar moving in direction ``label % 4``.

    Args:
        path (str): Output path.
        label (int): Direction class (0 right, 1 left, 2 down, 3 up).
        num_frames (int): Frames. Defaults to 8.
        size (int): Frame side. Defaults to 32.
        seed (int): Noise seed. Defaults to 0.

    Returns:
        str: ``path``.
    """
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, size))

    def frames():
        for t in range(num_frames):
            frame = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
            step = [3, -3, 3, -3][label % 4] * t
            pos = (start + step) % (size - 6)
            if label % 4 < 2:
                frame[:, pos:pos + 6] = 230
            else:
                frame[pos:pos + 6, :] = 230
            yield frame

    write_video(path, frames(), fps=8)
    with open(path, 'rb') as f:
        data = _faststart(f.read())
    with open(path, 'wb') as f:
        f.write(data)
    return path


def make_broken(path: str, kind: str, good: Optional[str] = None) -> str:
    """Create a broken video of ``kind`` (see :data:`BROKEN_KINDS`).

    Args:
        path (str): Output path (left absent for ``'missing'``).
        kind (str): ``truncated`` (first 60% of a good file),
            ``zero_bytes``, ``random_bytes``, ``corrupt`` (second half of
            the frame data zeroed) or ``missing``.
        good (str, optional): A good clip to derive from.

    Returns:
        str: ``path``.
    """
    if kind == 'missing':
        return path
    if good is None:
        good = make_video(path + '.src.mp4', 0)
    with open(good, 'rb') as f:
        data = bytearray(f.read())
    if kind == 'truncated':
        data = data[:int(len(data) * 0.6)]
    elif kind == 'zero_bytes':
        data = bytearray()
    elif kind == 'random_bytes':
        data = bytearray(np.random.default_rng(1).bytes(len(data)))
    elif kind == 'corrupt':
        _, start, size = next(a for a in _atoms(bytes(data))
                              if a[0] == 'mdat')
        half = start + 8 + (size - 8) // 2
        data[half:start + size] = bytes(start + size - half)
    else:
        raise ValueError(f'unknown kind {kind!r}; use one of {BROKEN_KINDS}')
    with open(path, 'wb') as f:
        f.write(bytes(data))
    return path


def make_dataset(root: str,
                 num_classes: int = 4,
                 train_per_class: int = 3,
                 val_per_class: int = 2,
                 broken: Sequence[str] = (),
                 broken_split: str = 'train') -> Dict[str, object]:
    """Write videos plus ``train.txt``/``val.txt`` lists under ``root``.

    Args:
        root (str): Output folder.
        num_classes (int): Classes (directions). Defaults to 4.
        train_per_class (int): Good training clips per class.
        val_per_class (int): Good validation clips per class.
        broken (Sequence[str]): Kinds of broken videos to add to one split.
        broken_split (str): ``'train'`` or ``'val'``.

    Returns:
        dict: ``train``/``val`` list paths, ``broken`` (paths added).
    """
    os.makedirs(osp.join(root, 'videos'), exist_ok=True)
    lists: Dict[str, List[str]] = {'train': [], 'val': []}
    seed = 0
    for split, per_class in (('train', train_per_class),
                             ('val', val_per_class)):
        for label in range(num_classes):
            for i in range(per_class):
                seed += 1
                name = f'videos/{split}_{label}_{i}.mp4'
                make_video(osp.join(root, name), label, seed=seed)
                lists[split].append(f'{name} {label}')
    good = osp.join(root, 'videos/train_0_0.mp4')
    bad_paths = []
    for i, kind in enumerate(broken):
        name = f'videos/broken_{kind}.mp4'
        make_broken(osp.join(root, name), kind, good)
        lists[broken_split].insert(1 + 2 * i, f'{name} {i % num_classes}')
        bad_paths.append(osp.join(root, name))
    out: Dict[str, object] = {'broken': bad_paths}
    for split, lines in lists.items():
        out[split] = osp.join(root, f'{split}.txt')
        with open(out[split], 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return out


# ------------------------------------------------------------------ config
def pipeline(test_mode: bool = True) -> List[dict]:
    """Decode 4 frames (deterministic when ``test_mode``), 32x32, pack."""
    return [
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1,
             test_mode=test_mode),
        dict(type='DecordDecode'),
        dict(type='Resize', scale=(-1, 32)),
        dict(type='CenterCrop', crop_size=32),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs'),
    ]


K400_CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                       'configs', 'stadapter_vitb16_k400.py')

def recipe() -> Dict[str, object]:
    """The shipped K400 recipe's train pipeline and head dropout, tiny.

    Read from ``configs/stadapter_vitb16_k400.py``: every transform and
    option is kept, with sizes scaled from 224 to 32 pixels and 4 frames at
    interval 1 (so that random sampling has room in an 8-frame clip).

    Returns:
        dict: ``pipeline`` (list of transform configs) and ``dropout``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(K400_CONFIG)
    factor = 32 / 224

    def scaled(value):
        if isinstance(value, (list, tuple)):
            return type(value)(scaled(v) for v in value)
        return value if value == -1 else max(1, round(value * factor))

    pipeline = []
    for transform in cfg.train_pipeline:
        transform = dict(transform)
        if 'clip_len' in transform:  # the frame sampler
            transform['clip_len'] = 4
        if 'frame_interval' in transform:
            transform['frame_interval'] = 1
        for key in ('scale', 'scale_range', 'size', 'crop_size'):
            if key in transform:
                transform[key] = scaled(transform[key])
        pipeline.append(transform)
    return dict(pipeline=pipeline,
                dropout=cfg.model.cls_head.dropout_ratio)


def tiny_cfg(work_dir: str, data_root: str, max_epochs: int = 4,
             num_classes: int = 4, batch_size: int = 4,
             ckpt_backend: Optional[str] = None,
             num_workers: int = 0,
             experiment_name: Optional[str] = None,
             with_recipe: bool = False,
             persistent_workers: bool = False) -> dict:
    """Runner config of a tiny ST-Adapter recognizer on generated videos.

    Seeded, with :class:`~stadapter_mm.engine.hooks.RandomStateHook`. By
    default deterministic (no dropout, fixed frame sampling);
    ``with_recipe=True`` trains with the shipped K400 recipe's random
    augmentations and head dropout (:func:`recipe`). Either way a resumed
    run must end with exactly the weights of an uninterrupted one. The whole
    backbone trains (``unfreeze='all'``, lr 1e-2) so that validation accuracy
    moves within 4 epochs and best-checkpoint tracking has work to do.
    """
    shipped = recipe() if with_recipe else dict(pipeline=pipeline(True),
                                                dropout=0.0)

    def loader(split: str, shuffle: bool) -> dict:
        return dict(
            batch_size=batch_size,
            num_workers=num_workers,
            persistent_workers=persistent_workers and num_workers > 0,
            sampler=dict(type='DefaultSampler', shuffle=shuffle),
            dataset=dict(
                type='RobustVideoDataset',
                ann_file=osp.join(data_root, f'{split}.txt'),
                data_prefix=dict(video=data_root),
                num_classes=num_classes,
                pipeline=shipped['pipeline'] if split == 'train' else
                pipeline(True),
                test_mode=split != 'train'))

    checkpoint = dict(type='AtomicCheckpointHook', interval=1,
                      max_keep_ckpts=1, save_best='acc/top1')
    if ckpt_backend:
        checkpoint['backend_args'] = dict(backend=ckpt_backend)
    return dict(
        model=dict(
            type='Recognizer3D',
            backbone=dict(type='ViTCLIPSTAdapter', arch=dict(TINY_ARCH),
                          adapter=dict(width=16, kernel_size=(3, 1, 1)),
                          num_frames=4, unfreeze='all'),
            cls_head=dict(type='TimeSformerHead', num_classes=num_classes,
                          in_channels=TINY_ARCH['width'],
                          dropout_ratio=shipped['dropout'],
                          average_clips='prob'),
            data_preprocessor=dict(
                type='ActionDataPreprocessor',
                mean=[122.769, 116.74, 104.04],
                std=[68.493, 66.63, 70.32],
                format_shape='NCTHW')),
        work_dir=work_dir,
        train_dataloader=loader('train', True),
        val_dataloader=loader('val', False),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                       val_begin=1, val_interval=1),
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='BadVideoAwareMetric',
                           metric=dict(type='AccMetric')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2,
                                          weight_decay=0.01)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
                 end=1, convert_to_iter_based=True),
        ] + ([
            dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=0,
                 by_epoch=True, begin=1, end=max_epochs),
        ] if max_epochs > 1 else []),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=checkpoint,
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=[dict(type='BadVideoReportHook'),
                      dict(type='RandomStateHook')],
        randomness=dict(seed=0, deterministic=False),
        default_scope='mmaction',
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        log_level='INFO',
        experiment_name=experiment_name)


# ------------------------------------------------------------------ script
def _register_test_parts() -> None:
    """A slow atomic backend and a progress hook, for kill tests only."""
    from mmaction.registry import HOOKS
    from mmengine.fileio import LocalBackend, register_backend
    from mmengine.hooks import Hook

    from stadapter_mm.checkpoints.io import (AtomicLocalBackend,
                                             atomic_write_bytes)

    class SlowAtomicLocalBackend(AtomicLocalBackend):
        """Atomic writes in 4 pieces 0.25 s apart, after a marker file."""

        def put(self, obj: bytes, filepath) -> None:
            marker = osp.join(osp.dirname(str(filepath)),
                              osp.basename(str(filepath)) + '.saving')
            open(marker, 'w').close()

            def pieces():
                step = len(obj) // 4 + 1
                for start in range(0, len(obj), step):
                    yield obj[start:start + step]
                    time.sleep(0.25)

            atomic_write_bytes(pieces(), filepath)
            os.remove(marker)

    class SlowLocalBackend(LocalBackend):
        """mmengine's plain (non-atomic) write, slowed like the one above."""

        def put(self, obj: bytes, filepath) -> None:
            marker = osp.join(osp.dirname(str(filepath)),
                              osp.basename(str(filepath)) + '.saving')
            open(marker, 'w').close()
            step = len(obj) // 4 + 1
            with open(filepath, 'wb') as f:
                for start in range(0, len(obj), step):
                    f.write(obj[start:start + step])
                    f.flush()
                    time.sleep(0.25)
            os.remove(marker)

    register_backend('slow_atomic_local', SlowAtomicLocalBackend, force=True)
    register_backend('slow_local', SlowLocalBackend, force=True)

    class ProgressHook(Hook):
        """Writes ``epoch iter`` to ``<work_dir>/progress`` after each step
        and ``epoch batch`` to ``<work_dir>/val_progress`` after each
        validation step (then waits ``val_pause`` seconds)."""

        def __init__(self, val_pause: float = 0.0) -> None:
            self.val_pause = val_pause

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None) -> None:
            with open(osp.join(runner.work_dir, 'progress'), 'w') as f:
                f.write(f'{runner.epoch} {runner.iter + 1}')

        def after_val_iter(self, runner, batch_idx, data_batch=None,
                           outputs=None) -> None:
            with open(osp.join(runner.work_dir, 'val_progress'), 'w') as f:
                f.write(f'{runner.epoch} {batch_idx + 1}')
            time.sleep(self.val_pause)

    HOOKS.register_module('ProgressHook', module=ProgressHook, force=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--data', required=True)
    parser.add_argument('--max-epochs', type=int, default=4)
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--slow-save', action='store_true')
    parser.add_argument('--slow-val', action='store_true',
                        help='pause 1 s after each validation step')
    parser.add_argument('--plain', action='store_true',
                        help="mmengine's CheckpointHook (non-atomic)")
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--persistent-workers', action='store_true')
    parser.add_argument('--recipe', action='store_true',
                        help="the K400 recipe's augmentations and dropout")
    args = parser.parse_args(argv)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmaction')
    _register_test_parts()
    backend = None
    if args.slow_save:
        backend = 'slow_local' if args.plain else 'slow_atomic_local'
    cfg = tiny_cfg(args.work_dir, args.data, args.max_epochs,
                   ckpt_backend=backend, num_workers=args.num_workers,
                   with_recipe=args.recipe,
                   persistent_workers=args.persistent_workers)
    if args.plain:
        cfg['default_hooks']['checkpoint']['type'] = 'CheckpointHook'
    cfg['custom_hooks'].append(
        dict(type='ProgressHook', val_pause=1.0 if args.slow_val else 0.0))
    cfg['resume'] = args.resume
    runner = Runner.from_cfg(_as_config(cfg))
    runner.train()
    summary = dict(epoch=runner.epoch, iter=runner.iter,
                   lr=runner.optim_wrapper.get_lr()['lr'][0],
                   best=runner.message_hub.get_info('best_ckpt'),
                   best_score=runner.message_hub.get_info('best_score'))
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f)


def _as_config(cfg: dict):
    from mmengine.config import Config
    return Config(cfg)


if __name__ == '__main__':
    main()
