"""Classify a webcam or a video file as a stream, with a sliding window.

Examples::

    # webcam 0, shown in a window (press q or Esc to quit)
    python demo/stream_demo.py configs/stadapter_vitb16_k400.py \\
        stadapter_k400.pth data/label_maps/label_map_k400.txt \\
        --input 0 --show

    # a file read frame by frame; running prediction written to out.mp4
    python demo/stream_demo.py configs/stadapter_vitb16_k400.py \\
        stadapter_k400.pth data/label_maps/label_map_k400.txt \\
        --input demo.mp4 --device cpu --stride 16 --out-filename out.mp4

Every ``--stride`` frames the clip the config's test sampler would take from
the last ``--window`` frames is classified; the running top-k is printed,
drawn on the frames, shown (``--show``, when a display exists) and/or
written (``--out-filename``). Inference runs in the reading loop, so a slow
model on a live camera shows fewer, later frames rather than dropping
predictions.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import cv2
from mmengine.config import Config, DictAction

import stadapter_mm  # noqa: F401
from stadapter_mm.apis import read_label_map, topk_scores
from stadapter_mm.apis.stream import StreamRecognizer
from stadapter_mm.utils.video import VideoSink, check_output_path, draw_lines


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='stadapter-mm stream demo')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('label', help='label map, one class per line')
    parser.add_argument('--input', default='0',
                        help='webcam index (e.g. 0) or video file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override config settings')
    parser.add_argument('--device', default='cuda:0')
    parser.add_argument('--window', type=int, default=None,
                        help='frames a clip is sampled from (default: from '
                        'the test sampler)')
    parser.add_argument('--stride', type=int, default=8,
                        help='classify every N frames (default: 8)')
    parser.add_argument('--average-size', type=int, default=1,
                        help='windows averaged per prediction')
    parser.add_argument('--num-clips', type=int, default=1,
                        help='clips sampled per window (default: 1)')
    parser.add_argument('--topk', type=int, default=3)
    parser.add_argument('--threshold', type=float, default=0.0,
                        help='hide predictions scoring below this')
    parser.add_argument('--show', action='store_true',
                        help='show frames in a window (needs a display)')
    parser.add_argument('--out-filename', default=None,
                        help='write the annotated stream (.mp4/.avi/.gif)')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop after this many frames')
    parser.add_argument('--font-scale', type=float, default=0.5)
    return parser.parse_args(argv)


def has_display() -> bool:
    """Whether ``cv2.imshow`` can open a window here."""
    if sys.platform in ('win32', 'darwin'):
        return True
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


def open_capture(source: str) -> Tuple[cv2.VideoCapture, bool]:
    """Open a webcam index or a file; returns (capture, is_camera)."""
    is_camera = source.isdigit()
    if not is_camera and not osp.isfile(source):
        raise SystemExit(f'error: --input {source!r} is neither a webcam '
                         'index nor an existing file')
    cap = cv2.VideoCapture(int(source) if is_camera else source)
    if not cap.isOpened():
        raise SystemExit(f'error: cannot open {"camera" if is_camera else ""}'
                         f' {source!r}')
    return cap, is_camera


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the demo; returns the predictions made, one dict per window."""
    args = parse_args(argv)
    import torch
    from mmaction.apis import init_recognizer
    if args.out_filename:
        check_output_path(args.out_filename)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'error: --device {args.device} but CUDA is not '
                         'available; use --device cpu')
    show = args.show and has_display()
    if args.show and not show:
        print('no display found: --show ignored', file=sys.stderr)
    labels = read_label_map(args.label)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    model = init_recognizer(cfg, args.checkpoint, device=args.device)
    if len(labels) != model.cls_head.num_classes:
        raise SystemExit(
            f'error: {args.label} has {len(labels)} labels but the model '
            f'classifies {model.cls_head.num_classes} classes')
    stream = StreamRecognizer(model, args.window, args.stride,
                              args.average_size, args.num_clips)
    cap, is_camera = open_capture(args.input)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    sink = VideoSink(args.out_filename, fps) if args.out_filename else None
    lines = ['Waiting for action ...']
    history: List[dict] = []
    print(f'window {stream.window} frames, classifying every '
          f'{stream.stride}' + ('; press q or Esc to quit' if show else ''))
    try:
        while args.max_frames is None or stream.seen < args.max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            scores = stream.push(rgb)
            if scores is not None:
                top = [(p['label'], p['score'])
                       for p in topk_scores(scores, labels, args.topk)
                       if p['score'] >= args.threshold]
                lines = [f'{label}: {score:.2f}' for label, score in top] or [
                    'No action above the threshold'
                ]
                history.append(dict(frame=stream.seen, top=top))
                print(f'frame {stream.seen}: ' +
                      ', '.join(f'{lab} {s:.3f}' for lab, s in top))
            drawn = draw_lines(rgb, lines, args.font_scale)
            if sink is not None:
                sink.write(drawn)
            if show:
                cv2.imshow('stadapter-mm', cv2.cvtColor(drawn,
                                                        cv2.COLOR_RGB2BGR))
                if cv2.waitKey(1) & 0xFF in (27, ord('q'), ord('Q')):
                    break
    finally:
        cap.release()
        if sink is not None:
            sink.close()
            print(f'wrote {args.out_filename} ({sink.count} frames)')
        if show:
            cv2.destroyAllWindows()
    if not history and not is_camera:
        print(f'the input had {stream.seen} frames, fewer than the '
              f'{stream.window}-frame window: nothing classified')
    return history


if __name__ == '__main__':
    main()
