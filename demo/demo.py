"""Classify a video with an ST-Adapter recognizer (MMAction2's demo, ported).

Example::

    python demo/demo.py configs/stadapter_vitb16_k400.py stadapter_k400.pth \\
        demo.mp4 data/label_maps/label_map_k400.txt --device cpu \\
        --out-filename out.mp4

Prints the top-5 labels with their scores and, with ``--out-filename``
(``.mp4``, ``.avi`` or ``.gif``), writes the video with the predictions drawn
on every frame. For an EPIC-KITCHENS-100 model (``VerbNounHead``), ``label``
is the verb class file and ``--noun-label`` the noun class file (official
``EPIC_100_*_classes.csv`` or one name per line); it prints the top verbs,
nouns and actions::

    python demo/demo.py configs/stadapter_vitb16_ek100.py ek100.pth \\
        P01_11.MP4 EPIC_100_verb_classes.csv \\
        --noun-label EPIC_100_noun_classes.csv --device cpu
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

from mmengine.config import Config, DictAction

import stadapter_mm  # noqa: F401
from stadapter_mm.apis import (describe_prediction, read_label_map,
                               topk_labels)
from stadapter_mm.utils.video import (check_output_path, draw_lines,
                                      read_frames, write_video)

_COLORS = {'white': (255, 255, 255), 'black': (0, 0, 0),
           'red': (255, 0, 0), 'green': (0, 255, 0), 'blue': (0, 0, 255),
           'yellow': (255, 255, 0)}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='stadapter-mm video demo')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('video', help='video file')
    parser.add_argument('label', help='label map, one class per line (the '
                        'verb classes for an EPIC-KITCHENS model)')
    parser.add_argument('--noun-label', default=None,
                        help='noun classes of an EPIC-KITCHENS model')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config settings')
    parser.add_argument('--device', default='cuda:0',
                        help='cpu or cuda:N (default: cuda:0)')
    parser.add_argument('--topk', type=int, default=5,
                        help='labels to print (default: 5)')
    parser.add_argument('--out-filename', default=None,
                        help='write the video with predictions (.mp4/.gif)')
    parser.add_argument('--draw-topk', type=int, default=1,
                        help='predictions drawn on the output (default: 1)')
    parser.add_argument('--fps', type=float, default=None,
                        help='output frame rate (default: the input\'s)')
    parser.add_argument('--font-scale', type=float, default=0.5)
    parser.add_argument('--font-color', default='white',
                        choices=sorted(_COLORS))
    parser.add_argument('--target-resolution', nargs=2, type=int,
                        default=None, metavar=('W', 'H'),
                        help='resize the output; -1 keeps the aspect ratio')
    return parser.parse_args(argv)


def video_fps(path: str) -> float:
    """Average frame rate of a video file (30 if unknown)."""
    import decord
    fps = decord.VideoReader(path).get_avg_fps()
    return float(fps) if fps and fps > 0 else 30.0


def verb_noun_top(model, result, args) -> Dict[str, list]:
    """Print and return the top verbs, nouns and actions."""
    if not args.noun_label:
        raise SystemExit('error: this model predicts verbs and nouns: give '
                         'the verb classes as LABEL and --noun-label')
    head = model.cls_head
    verbs, nouns = read_label_map(args.label), read_label_map(args.noun_label)
    for kind, names, count in (('verb', verbs, head.num_verb_classes),
                               ('noun', nouns, head.num_noun_classes)):
        if len(names) != count:
            raise SystemExit(f'error: {len(names)} {kind} names but the '
                             f'model classifies {count} {kind}s')
    top = describe_prediction(result, verbs, nouns, args.topk)
    for key in ('verbs', 'nouns', 'actions'):
        print(f'The top-{len(top[key])} {key} with corresponding scores are:')
        for item in top[key]:
            print(f'{item["label"]}: {item["score"]:.6f}')
    return top


def main(argv: Optional[List[str]] = None
         ) -> Union[List[Tuple[str, float]], Dict[str, list]]:
    args = parse_args(argv)
    import torch
    from mmaction.apis import inference_recognizer, init_recognizer
    if args.out_filename:
        check_output_path(args.out_filename)
    if not osp.isfile(args.video):
        raise SystemExit(f'error: video {args.video!r} does not exist')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'error: --device {args.device} but CUDA is not '
                         'available; use --device cpu')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    model = init_recognizer(cfg, args.checkpoint, device=args.device)
    if hasattr(model.cls_head, 'num_verb_classes'):
        top = verb_noun_top(model, inference_recognizer(model, args.video),
                            args)
        lines = [f'{a["label"]}: {a["score"]:.2f}' for a in top['actions']]
        if args.out_filename:
            write_labelled(args, lines)
        return top
    labels = read_label_map(args.label)
    num_classes = model.cls_head.num_classes
    if len(labels) != num_classes:
        raise SystemExit(
            f'error: {args.label} has {len(labels)} labels but the model '
            f'classifies {num_classes} classes')
    result = inference_recognizer(model, args.video)
    top = topk_labels(result, labels, args.topk)
    print(f'The top-{len(top)} labels with corresponding scores are:')
    for label, score in top:
        print(f'{label}: {score:.6f}')

    if args.out_filename:
        write_labelled(args, [f'{label}: {score:.2f}' for label, score in top])
    return top


def write_labelled(args: argparse.Namespace, lines: List[str]) -> None:
    """Write the video with the first ``--draw-topk`` lines drawn."""
    frames = read_frames(
        args.video,
        tuple(args.target_resolution) if args.target_resolution else None)
    lines = lines[:max(1, args.draw_topk)]
    drawn = [
        draw_lines(f, lines, args.font_scale, _COLORS[args.font_color])
        for f in frames
    ]
    write_video(args.out_filename, drawn, args.fps or video_fps(args.video))
    print(f'wrote {args.out_filename} ({len(drawn)} frames)')


if __name__ == '__main__':
    main()
