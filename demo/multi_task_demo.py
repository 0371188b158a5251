"""One frozen CLIP backbone, several task files, a task chosen per request.

Examples::

    # every video through every task
    python demo/multi_task_demo.py --clip ViT-B-16.pt \\
        --task k400.task.pth --task ssv2.task.pth a.mp4 b.mp4

    # one task per request
    python demo/multi_task_demo.py --clip ViT-B-16.pt \\
        --task k400.task.pth --task ssv2.task.pth \\
        --request k400 a.mp4 --request ssv2 b.mp4

The CLIP weights are loaded once; each task file adds only its adapters and
head (make them with ``tools/convert/export_adapter.py``). A task file made
for other CLIP weights or another architecture is refused. For an
EPIC-KITCHENS-100 task it prints the top verbs, nouns and actions.
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import List, Optional

import stadapter_mm  # noqa: F401
from stadapter_mm.apis import MultiTaskInferencer, TaskFileError
from stadapter_mm.checkpoints.clip_formats import CheckpointError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='stadapter-mm: one backbone, many task files')
    parser.add_argument('videos', nargs='*',
                        help='videos to run through every task')
    parser.add_argument('--clip', required=True,
                        help='CLIP weights of the shared backbone')
    parser.add_argument('--task', action='append', required=True,
                        metavar='TASK_FILE',
                        help='task file (repeat for several tasks)')
    parser.add_argument('--request', nargs=2, action='append', default=[],
                        metavar=('TASK', 'VIDEO'),
                        help='run one task on one video (repeatable)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--topk', type=int, default=5)
    args = parser.parse_args(argv)
    if not args.videos and not args.request:
        parser.error('give videos and/or --request TASK VIDEO')
    return args


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the requests; returns one result dict per (task, video)."""
    args = parse_args(argv)
    try:
        inferencer = MultiTaskInferencer(args.clip, args.task,
                                         device=args.device)
    except (TaskFileError, CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from err
    print(f'shared backbone from {args.clip}; tasks: '
          f'{", ".join(inferencer.tasks)}')
    requests = [(task, video) for video in args.videos
                for task in inferencer.tasks]
    requests += [tuple(r) for r in args.request]
    results = []
    for task, video in requests:
        if task not in inferencer.tasks:
            raise SystemExit(f'error: unknown task {task!r}; loaded: '
                             f'{inferencer.tasks}')
        if not osp.isfile(video):
            raise SystemExit(f'error: video {video!r} does not exist')
        result = inferencer(video, task=task, topk=args.topk)
        result['video'] = video
        results.append(result)
        print(f'[{task}] {video}')
        # A verb + noun (EPIC-KITCHENS) task: its verbs, nouns and actions.
        keys = ('verbs', 'nouns', 'actions') if 'actions' in result else \
            ('predictions', )
        for key in keys:
            if len(keys) > 1:
                print(f'  top {key}:')
            for pred in result[key]:
                print(f'    {pred["label"]}: {pred["score"]:.6f}')
    return results


if __name__ == '__main__':
    main()
