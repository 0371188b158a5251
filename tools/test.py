"""Test a checkpoint with multi-view testing (MMAction2's options).

::

    python tools/test.py CONFIG CHECKPOINT                  # config's views
    python tools/test.py CONFIG CHECKPOINT --views 3x3      # 3 clips x 3 crops
    python tools/test.py CONFIG CHECKPOINT --dump preds.pkl # keep predictions
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --views 3x1

``--views CLIPSxCROPS`` switches the test pipeline's temporal clips and
spatial crops (1: centre crop, 3: three crops along the long side) without
editing the config; the head averages the views' class probabilities.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import DictAction

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description='Test a video recognizer checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='folder for the test log and metrics')
    parser.add_argument(
        '--views',
        help='test views as CLIPSxCROPS, e.g. 3x1 (Kinetics protocol), 1x3 '
        '(SSv2 protocol) or 3x3; default: the config\'s test pipeline')
    parser.add_argument(
        '--dump',
        help='write the predictions (scores and labels of every sample) to '
        'this .pkl file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. "test_dataloader.batch_size=4"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (dist_test.sh passes "pytorch")')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args: argparse.Namespace):
    """Apply the command-line options to the config (in place)."""
    from stadapter_mm.datasets.views import parse_views, set_test_views

    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint

    if args.views is not None:
        try:
            clips, crops = parse_views(args.views)
            set_test_views(cfg, clips, crops)
        except ValueError as error:
            raise SystemExit(f'--views: {error}') from None

    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise SystemExit(
                f'--dump must name a .pkl or .pickle file, got {args.dump}')
        dump = dict(type='DumpResults', out_file_path=args.dump)
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, (list, tuple)):
            cfg.test_evaluator = [*evaluator, dump]
        else:
            cfg.test_evaluator = [evaluator, dump]
    return cfg


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point; returns the test metrics."""
    args = parse_args(argv)

    from mmengine.config import Config
    from mmengine.runner import Runner

    from stadapter_mm.compat import setup_cpu_distributed

    if not osp.isfile(args.config):
        raise SystemExit(f'config file not found: {args.config}')
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg = merge_args(cfg, args)
    setup_cpu_distributed(cfg, args.launcher)

    runner = Runner.from_cfg(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
