"""Write a compact, checked copy of an EPIC-KITCHENS-100 annotation CSV.

Not needed for training (``EpicKitchensDataset`` reads the official files as
published); useful to fail early on a damaged download, to shrink the file
to the columns training reads, and to leave out segments whose media is
missing on this machine.

Example::

    python tools/data/epic_kitchens_list.py \\
        data/epic-kitchens-100/annotations/EPIC_100_train.csv \\
        --out data/epic-kitchens-100/annotations/train_compact.csv \\
        --media-root data/epic-kitchens-100 --media video

The output keeps the official column names (a subset), so the dataset reads
it like the original. Each check names the file, line and field at fault.
"""
from __future__ import annotations

import argparse
import csv
import os
import os.path as osp
from typing import Dict, List, Optional

from tqdm import tqdm

from stadapter_mm.datasets.epic_kitchens import (FRAME_DIR_TMPL, NUM_NOUNS,
                                                 NUM_VERBS, VIDEO_TMPL,
                                                 EpicAnnotationError,
                                                 parse_segments)

COLUMNS = ('narration_id', 'participant_id', 'video_id', 'start_timestamp',
           'stop_timestamp', 'start_frame', 'stop_frame', 'verb_class',
           'noun_class')
MEDIA = dict(video=VIDEO_TMPL, frames=FRAME_DIR_TMPL)


def timestamp(seconds: float) -> str:
    """``HH:MM:SS.sss`` for a number of seconds."""
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3600_000)
    minutes, millis = divmod(millis, 60_000)
    return f'{hours:02d}:{minutes:02d}:{millis / 1000:06.3f}'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('csv', help='official annotation CSV')
    parser.add_argument('--out', required=True, help='compact CSV to write')
    parser.add_argument('--num-verbs', type=int, default=NUM_VERBS)
    parser.add_argument('--num-nouns', type=int, default=NUM_NOUNS)
    parser.add_argument(
        '--media-root', help='leave out segments whose media is missing here')
    parser.add_argument('--media', choices=sorted(MEDIA), default='video',
                        help='media layout under --media-root')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the number of segments written."""
    args = parse_args(argv)
    try:
        segments = parse_segments(args.csv, args.num_verbs, args.num_nouns)
    except (EpicAnnotationError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from None
    # Many segments share one video: look each path up once.
    present: Dict[str, bool] = {}
    kept = []
    for seg in tqdm(segments, desc='segments', unit='seg'):
        if args.media_root:
            path = osp.join(args.media_root, MEDIA[args.media].format(**seg))
            if path not in present:
                present[path] = osp.exists(path)
            if not present[path]:
                continue
        kept.append(seg)
    missing = [path for path, found in present.items() if not found]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for seg in kept:
            writer.writerow([
                seg['narration_id'], seg['participant_id'], seg['video_id'],
                timestamp(seg['start_time']), timestamp(seg['stop_time']),
                seg['start_frame'], seg['stop_frame'], *seg['label']
            ])
    print(f'wrote {len(kept)} of {len(segments)} segments to {args.out}')
    if missing:
        print(f'left out {len(segments) - len(kept)} segments of '
              f'{len(missing)} missing {args.media} paths, e.g. '
              f'{min(missing)}')
    return len(kept)


if __name__ == '__main__':
    main()
