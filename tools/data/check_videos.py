"""Scan an annotation list for unreadable videos; write a cleaned list.

Every video of the list is opened and decoded (frames spread over the whole
clip, the last one included, so truncated downloads are caught) in parallel
worker processes, with a progress bar. Lines whose video is missing, empty,
truncated or corrupt, and malformed lines, go to a JSON report; the other
lines are copied unchanged to the cleaned list.

Example::

    python tools/data/check_videos.py \\
        data/kinetics400/kinetics400_train_list_videos.txt \\
        --data-prefix data/kinetics400/videos_train --workers 16

writes ``kinetics400_train_list_videos.clean.txt`` and
``kinetics400_train_list_videos.report.json`` next to the list. A video
that crashes the decoder outright is isolated and reported too.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from stadapter_mm.datasets.annotation import (
    AnnotationError, parse_annotation_lines)
from stadapter_mm.datasets.video_check import check_video

Job = Tuple[int, str]  # (line number, video path)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Find unreadable videos in an annotation list and write '
        'a cleaned list plus a report.')
    parser.add_argument('ann_file', help='annotation list: <path> <label>')
    parser.add_argument('--data-prefix', default='',
                        help='folder the paths of the list are relative to')
    parser.add_argument('--out', help='cleaned list (default: '
                        '<ann_file stem>.clean.txt next to the list)')
    parser.add_argument('--report', help='JSON report (default: '
                        '<ann_file stem>.report.json next to the list)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help='parallel decoding processes')
    parser.add_argument('--frames', type=int, default=8,
                        help='frames decoded per video, first to last')
    parser.add_argument('--full', action='store_true',
                        help='decode every frame (slow, most thorough)')
    parser.add_argument('--delimiter', default=' ',
                        help='field delimiter of the list')
    parser.add_argument('--multi-class', action='store_true')
    parser.add_argument('--num-classes', type=int, default=None,
                        help='also report labels outside [0, num_classes)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    return args


def _scan_isolated(job: Job, frames: int, full: bool) -> Dict:
    """Check one video in its own process (after a decoder crash)."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(check_video, job[1], frames, full).result()
        except BrokenProcessPool:
            return dict(ok=False, frames=0, fps=None,
                        reason='the decoder crashed on this file')


def scan(jobs: List[Job], workers: int, frames: int, full: bool,
         progress: bool = True) -> Dict[int, Dict]:
    """Check every job in parallel; returns ``{line number: result}``."""
    results: Dict[int, Dict] = {}
    bar = tqdm(total=len(jobs), unit='video', disable=not progress,
               dynamic_ncols=True)
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(check_video, path, frames, full): lineno
                for lineno, path in jobs
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    except BrokenProcessPool:
        # A file crashed a decoding process: check the rest one by one.
        for job in jobs:
            if job[0] not in results:
                results[job[0]] = _scan_isolated(job, frames, full)
                bar.update()
    finally:
        bar.close()
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Run the scan; returns the report (also written to disk)."""
    args = parse_args(argv)
    if not osp.isfile(args.ann_file):
        raise SystemExit(f'error: annotation file {args.ann_file!r} does '
                         'not exist')
    stem = osp.splitext(args.ann_file)[0]
    out = args.out or stem + '.clean.txt'
    report_path = args.report or stem + '.report.json'
    with open(args.ann_file, encoding='utf-8') as f:
        lines = f.read().splitlines()

    jobs: List[Job] = []
    bad: List[Dict] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = parse_annotation_lines(
                [line], ann_file=args.ann_file, delimiter=args.delimiter,
                multi_class=args.multi_class, num_classes=args.num_classes,
                allow_unlabelled=True, data_prefix=args.data_prefix,
                first_lineno=lineno)[0]
        except AnnotationError as err:
            bad.append(dict(line=lineno, path=None, problem='malformed line',
                            reason=str(err).splitlines()[0]))
            continue
        jobs.append((lineno, record['filename']))

    start = time.time()
    results = scan(jobs, args.workers, args.frames, args.full,
                   progress=not args.no_progress)
    good_lines = set()
    for lineno, path in jobs:
        result = results[lineno]
        if result['ok']:
            good_lines.add(lineno)
        else:
            bad.append(dict(line=lineno, path=path, problem='unreadable video',
                            reason=result['reason']))
    bad.sort(key=lambda item: item['line'])

    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.writelines(lines[n - 1] + '\n' for n in sorted(good_lines))
    report = dict(
        ann_file=args.ann_file,
        data_prefix=args.data_prefix,
        cleaned_list=out,
        checked=len(jobs),
        good=len(good_lines),
        bad=len(bad),
        seconds=round(time.time() - start, 2),
        bad_lines=bad)
    with open(report_path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    print(f'{len(good_lines)} of {len(good_lines) + len(bad)} lines usable, '
          f'{len(bad)} bad; cleaned list: {out}; report: {report_path}')
    for item in bad[:20]:
        print(f'  line {item["line"]}: {item["path"] or "-"}: '
              f'{item["reason"]}')
    if len(bad) > 20:
        print(f'  ... {len(bad) - 20} more in the report')
    return report


if __name__ == '__main__':
    main()
