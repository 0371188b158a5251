"""Export the adapters and head of a trained model as a task file.

Example::

    python tools/convert/export_adapter.py \\
        configs/stadapter_vitb16_k400.py work_dirs/k400/epoch_12.pth \\
        --label-map data/label_maps/label_map_k400.txt --name k400 \\
        --out k400.task.pth

A task file carries the adapters (and any unfrozen backbone part), the head,
the config, the label map and a fingerprint of the CLIP weights the model
was trained on; ``stadapter_mm.apis.TaskBank`` and
``demo/multi_task_demo.py`` load many of them on one shared backbone. For an
EPIC-KITCHENS-100 model give ``--label-map EPIC_100_verb_classes.csv
--noun-label-map EPIC_100_noun_classes.csv``. The
checkpoint may be full or trainable-only (then the config's backbone
``init_cfg``, or ``--clip``, must name the CLIP file).
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import List, Optional

import stadapter_mm  # noqa: F401
from stadapter_mm.apis.task_file import (TaskFileError, make_task,
                                         read_label_map, save_task)
from stadapter_mm.checkpoints.clip_formats import CheckpointError
from stadapter_mm.utils.cli import add_cfg_options, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Trained ST-Adapter recognizer -> task file')
    parser.add_argument('config', help='config the model was trained with')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out', required=True, help='task file to write')
    parser.add_argument('--label-map', default=None,
                        help='class names, one per line (an EPIC-KITCHENS '
                        'model: the verb classes, e.g. '
                        'EPIC_100_verb_classes.csv)')
    parser.add_argument('--noun-label-map', default=None,
                        help='noun classes of an EPIC-KITCHENS model (e.g. '
                        'EPIC_100_noun_classes.csv); stored after the verbs')
    parser.add_argument('--name', default=None,
                        help='task name (default: the output file stem)')
    parser.add_argument(
        '--clip', default=None,
        help='CLIP file for a trainable-only checkpoint (overrides the '
        "backbone's init_cfg)")
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from mmaction.apis import init_recognizer
    cfg = load_config(args.config, args.cfg_options)
    if args.clip:
        cfg.model.backbone.init_cfg = dict(type='Pretrained',
                                           checkpoint=args.clip)
    labels = read_label_map(args.label_map) if args.label_map else None
    if args.noun_label_map:
        if labels is None:
            raise SystemExit('error: --noun-label-map needs --label-map '
                             '(the verb classes)')
        labels += read_label_map(args.noun_label_map)
    name = args.name or osp.basename(args.out).split('.')[0]
    try:
        model = init_recognizer(cfg, args.checkpoint, device='cpu')
        task = make_task(model, cfg, labels, name,
                         meta=dict(checkpoint=osp.basename(args.checkpoint)))
        save_task(task, args.out)
    except (TaskFileError, CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from err
    total = sum(p.numel() for p in model.parameters())
    print(f'wrote task {name!r} to {args.out}: '
          f'{task["meta"]["num_params"]:,} of {total:,} parameters, '
          f'{len(task["label_map"])} classes, CLIP fingerprint '
          f'{task["clip_fingerprint"]}')
    return task


if __name__ == '__main__':
    main()
