"""Train a recognizer with mmengine's Runner (MMAction2's options).

Single process::

    python tools/train.py configs/stadapter_vitb16_k400.py

Distributed (GPUs with NCCL, or CPU processes with gloo, no config edits)::

    bash tools/dist_train.sh configs/stadapter_vitb16_k400.py 8

Needs the installed package (``pip install -e .``, see the README).
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import List, Optional

from stadapter_mm.utils.cli import (add_cfg_options, add_launcher_args,
                                    build_runner, export_local_rank,
                                    load_config, set_work_dir)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options (those of MMAction2's ``tools/train.py``)."""
    parser = argparse.ArgumentParser(description='Train a video recognizer')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir', help='folder for logs and checkpoints (default: '
        './work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, with no value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='switch a plain OptimWrapper to AmpOptimWrapper (needs CUDA); '
        'our configs declare AMP already (CudaAmpOptimWrapper: AMP on GPUs, '
        'fp32 on CPU)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by total batch / auto_scale_lr.base_batch_size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--diff-rank-seed',
        action='store_true',
        help='a different seed on every rank')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic algorithms (slower)')
    add_cfg_options(parser, '"train_cfg.max_epochs=1"')
    add_launcher_args(parser, 'dist_train.sh')
    return export_local_rank(parser.parse_args(argv))


def use_amp(cfg) -> None:
    """``--amp``: switch a plain ``OptimWrapper`` to ``AmpOptimWrapper``.

    Configs that want AMP declare it with ``optim_wrapper.type=
    'CudaAmpOptimWrapper'`` (AMP on CUDA, fp32 elsewhere, for every tool);
    ``--amp`` is MMAction2's flag for configs that do not.

    Args:
        cfg (mmengine.Config): The config (changed in place).

    Raises:
        SystemExit: On a machine without CUDA, or for a wrapper type that
            cannot be switched.
    """
    import torch
    from mmengine.logging import print_log

    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'CudaAmpOptimWrapper'):
        print_log(f'AMP is already declared in the config ({wrapper}).',
                  logger='current')
        return
    if not torch.cuda.is_available():
        raise SystemExit(
            '--amp needs a CUDA GPU: mmengine\'s AmpOptimWrapper refuses the '
            'CPU (and bf16 autocast is much slower than fp32 on CPUs '
            'without AVX512-BF16/AMX). Drop --amp to train in fp32, or set '
            'optim_wrapper.type="CudaAmpOptimWrapper" for AMP on GPUs only.')
    if wrapper != 'OptimWrapper':
        raise SystemExit(
            f'cannot switch optim_wrapper type {wrapper!r} to AMP; '
            'set type="CudaAmpOptimWrapper" in the config instead.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def check_lr_scaling(cfg) -> None:
    """Refuse ``auto_scale_lr`` together with gradient accumulation.

    mmengine's ``Runner.scale_lr`` multiplies the lr by GPUs x
    ``train_dataloader.batch_size`` / ``base_batch_size`` and ignores
    ``optim_wrapper.accumulative_counts``, so with ``k`` micro-batches per
    optimizer step it scales by ``1/k`` of the right factor. Rewriting
    ``base_batch_size`` to compensate would be saved in the work dir's config
    and applied a second time by a run started from that copy; an error
    that names the fix is the safe answer.

    Args:
        cfg (mmengine.Config): The merged config.

    Raises:
        SystemExit: If ``auto_scale_lr.enable`` is set and
            ``optim_wrapper.accumulative_counts`` is above 1.
    """
    scaling = cfg.get('auto_scale_lr') or {}
    counts = (cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1)
    if not scaling.get('enable', False) or counts == 1:
        return
    raise SystemExit(
        f'auto_scale_lr (--auto-scale-lr) with optim_wrapper.'
        f'accumulative_counts={counts}: mmengine scales the lr by GPUs x '
        'batch_size / auto_scale_lr.base_batch_size and ignores '
        f'accumulation, i.e. by 1/{counts} of the right factor. Drop '
        '--auto-scale-lr (or set auto_scale_lr.enable=False): the recipes '
        'fix the lr for their total batch, so keep GPUs x batch_size x '
        'accumulative_counts = total_batch (docs/recipes.md). For another '
        'total batch T set optim_wrapper.optimizer.lr to lr x T / '
        f'{scaling.get("base_batch_size", "base_batch_size")}.')


def merge_args(cfg, args: argparse.Namespace):
    """Apply the command-line options to the config (in place)."""
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    if args.amp:
        use_amp(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'--resume: no checkpoint at {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if cfg.get('auto_scale_lr') is None or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit(
                '--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N)'
                ' in the config.')
        cfg.auto_scale_lr.enable = True
    check_lr_scaling(cfg)

    randomness = dict(cfg.get('randomness') or {})
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.diff_rank_seed:
        randomness['diff_rank_seed'] = True
    if args.deterministic:
        randomness['deterministic'] = True
    if randomness:
        cfg.randomness = randomness

    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    # --cfg-options first: they may set the optim_wrapper, work_dir...
    cfg = merge_args(load_config(args.config, args.cfg_options), args)
    build_runner(cfg, args.launcher).train()


if __name__ == '__main__':
    main()
