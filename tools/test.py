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
import os.path as osp
from typing import List, Optional

from stadapter_mm.utils.cli import (add_cfg_options, add_launcher_args,
                                    build_runner, export_local_rank,
                                    load_config, set_work_dir)


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
        help='write the predictions to this .pkl file: one record per test '
        'video, in list order; an unreadable video\'s record has its own '
        'label, "bad_video" and no pred_* entry (docs/robustness.md)')
    add_cfg_options(parser, '"test_dataloader.batch_size=4"')
    add_launcher_args(parser, 'dist_test.sh')
    return export_local_rank(parser.parse_args(argv))


def merge_args(cfg, args: argparse.Namespace):
    """Apply the command-line options to the config (in place)."""
    from stadapter_mm.datasets.views import parse_views, set_test_views

    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
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
        # Last, so that BadVideoAwareMetric has removed the stand-ins'
        # predictions of unreadable videos before the records are dumped.
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
    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint not found: {args.checkpoint}')
    cfg = merge_args(cfg, args)
    return build_runner(cfg, args.launcher).test()


if __name__ == '__main__':
    main()
