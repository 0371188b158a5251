"""Write MMAction2 ``VideoDataset`` annotation lists (``path label`` lines).

Something-Something v2, from the official JSON files::

    python tools/data/make_annotations.py sthv2 \
        --labels something-something-v2-labels.json \
        --split something-something-v2-train.json \
        --out data/sthv2/sthv2_train_list_videos.txt

Kinetics, from a class-per-folder tree (``ROOT/<class>/<video>``)::

    python tools/data/make_annotations.py kinetics \
        --tree data/kinetics400/videos_train \
        --out data/kinetics400/kinetics400_train_list_videos.txt

or from the official CSV (``label,youtube_id,time_start,time_end,split``)
and the folder holding the downloaded clips (found anywhere below it, named
``<youtube_id>_<start:06d>_<end:06d>.<ext>`` or ``<youtube_id>.<ext>``)::

    python tools/data/make_annotations.py kinetics \
        --csv kinetics400/validate.csv \
        --video-root data/kinetics400/videos_val \
        --out data/kinetics400/kinetics400_val_list_videos.txt

Labels are indices into the label map (``data/label_maps/``); paths are
relative to the video folder the config's ``data_prefix`` names.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LABEL_MAPS = osp.join(ROOT, 'data', 'label_maps')
VIDEO_EXTS = ('.mp4', '.webm', '.mkv', '.avi', '.mov', '.m4v')

Entry = Tuple[str, Optional[int]]


class AnnotationError(ValueError):
    """Input files that cannot give a correct annotation list."""


def normalise(name: str) -> str:
    """Compare class names ignoring case, quotes and ``_`` vs. space."""
    return ' '.join(name.replace('_', ' ').replace('"', '').lower().split())


def read_label_map(path: str) -> List[str]:
    """One class name a line, in label order."""
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if len(set(map(normalise, names))) != len(names):
        raise AnnotationError(f'{path} has duplicate class names')
    return names


def sthv2_entries(labels_json: str, split_json: str, label_map: str,
                  ext: str = '.webm') -> List[Entry]:
    """Entries of an SSv2 split.

    Args:
        labels_json (str): ``something-something-v2-labels.json``
            (template -> index).
        split_json (str): ``...-train.json``, ``...-validation.json`` or
            ``...-test.json`` (test entries have no label).
        label_map (str): Our label map; must agree with ``labels_json``.
        ext (str): Video file extension.

    Returns:
        list: ``(relative path, label or None)``.
    """
    with open(labels_json) as f:
        templates = {normalise(k): int(v) for k, v in json.load(f).items()}
    names = read_label_map(label_map)
    wrong = [(i, n) for i, n in enumerate(names)
             if templates.get(normalise(n)) != i]
    if len(templates) != len(names) or wrong:
        raise AnnotationError(
            f'{labels_json} does not match {label_map} '
            f'({len(templates)} vs {len(names)} classes; first mismatch: '
            f'{wrong[:1]}); pass the label map of this release.')
    with open(split_json) as f:
        videos = json.load(f)
    entries = []
    for video in videos:
        template = video.get('template')
        label = None
        if template is not None:
            key = normalise(template.replace('[', '').replace(']', ''))
            if key not in templates:
                raise AnnotationError(
                    f'video {video["id"]}: template {template!r} is not in '
                    f'{labels_json}')
            label = templates[key]
        entries.append((f'{video["id"]}{ext}', label))
    return entries


def _class_index(label_map: str) -> Dict[str, int]:
    return {normalise(n): i for i, n in enumerate(read_label_map(label_map))}


def kinetics_tree_entries(tree: str, label_map: str) -> List[Entry]:
    """Entries of a ``ROOT/<class>/<video>`` folder tree.

    Raises:
        AnnotationError: For a class folder that is not in the label map.
    """
    index = _class_index(label_map)
    entries = []
    unknown = []
    for folder in sorted(os.listdir(tree)):
        if not osp.isdir(osp.join(tree, folder)):
            continue
        if normalise(folder) not in index:
            unknown.append(folder)
            continue
        for name in sorted(os.listdir(osp.join(tree, folder))):
            if name.lower().endswith(VIDEO_EXTS):
                entries.append((f'{folder}/{name}', index[normalise(folder)]))
    if unknown:
        raise AnnotationError(
            f'{len(unknown)} folders of {tree} are not classes of '
            f'{label_map}, e.g. {unknown[:3]}')
    return entries


def kinetics_csv_entries(csv_file: str, video_root: str, label_map: str,
                         strict: bool = False) -> Tuple[List[Entry], int]:
    """Entries of an official Kinetics CSV whose clips exist on disk.

    Returns:
        tuple: (entries, number of CSV rows whose clip was not found).
    """
    index = _class_index(label_map)
    found: Dict[str, str] = {}
    for folder, _, files in os.walk(video_root):
        for name in files:
            stem, ext = osp.splitext(name)
            if ext.lower() in VIDEO_EXTS:
                found.setdefault(stem, osp.relpath(osp.join(folder, name),
                                                   video_root))
    entries, missing = [], 0
    with open(csv_file, newline='') as f:
        for row in csv.DictReader(f):
            youtube_id = row['youtube_id']
            stems = [youtube_id]
            if row.get('time_start') and row.get('time_end'):
                start = int(float(row['time_start']))
                end = int(float(row['time_end']))
                stems.insert(0, f'{youtube_id}_{start:06d}_{end:06d}')
            path = next((found[s] for s in stems if s in found), None)
            if path is None:
                missing += 1
                if strict:
                    raise AnnotationError(
                        f'no video for {youtube_id} under {video_root}')
                continue
            label = row.get('label')
            if label:
                if normalise(label) not in index:
                    raise AnnotationError(
                        f'{csv_file}: label {label!r} is not in {label_map}')
                entries.append((path.replace(os.sep, '/'),
                                index[normalise(label)]))
            else:
                entries.append((path.replace(os.sep, '/'), None))
    return entries, missing


def write_entries(entries: Sequence[Entry], out: str,
                  delimiter: str = ' ') -> None:
    """Write ``path<delimiter>label`` lines (path only for unlabelled)."""
    bad = [p for p, _ in entries if delimiter in p or '\n' in p]
    if bad:
        raise AnnotationError(
            f'{len(bad)} paths contain the delimiter {delimiter!r}, e.g. '
            f'{bad[0]!r}: rename them (e.g. spaces to underscores, as '
            'MMAction2\'s Kinetics scripts do), or write with --delimiter , '
            'and set delimiter="," in the dataset config.')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        for path, label in entries:
            f.write(path if label is None else f'{path}{delimiter}{label}')
            f.write('\n')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='dataset', required=True)
    ssv2 = sub.add_parser('sthv2', help='Something-Something v2')
    ssv2.add_argument('--labels', required=True,
                      help='something-something-v2-labels.json')
    ssv2.add_argument('--split', required=True,
                      help='something-something-v2-{train,validation,test}'
                      '.json')
    ssv2.add_argument('--ext', default='.webm', help='video extension')
    ssv2.add_argument('--label-map',
                      default=osp.join(LABEL_MAPS, 'label_map_sthv2.txt'))
    kinetics = sub.add_parser('kinetics', help='Kinetics-400/600/700')
    source = kinetics.add_mutually_exclusive_group(required=True)
    source.add_argument('--tree', help='folder with one sub-folder a class')
    source.add_argument('--csv', help='official annotation CSV')
    kinetics.add_argument('--video-root', help='clips folder (with --csv)')
    kinetics.add_argument('--strict', action='store_true',
                          help='fail on a CSV row without a video')
    kinetics.add_argument('--label-map',
                          default=osp.join(LABEL_MAPS, 'label_map_k400.txt'))
    for p in (ssv2, kinetics):
        p.add_argument('--out', required=True, help='annotation list to write')
        p.add_argument('--delimiter', default=' ')
    args = parser.parse_args(argv)
    if args.dataset == 'kinetics' and args.csv and not args.video_root:
        parser.error('--csv needs --video-root')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    missing = 0
    try:
        if args.dataset == 'sthv2':
            entries = sthv2_entries(args.labels, args.split, args.label_map,
                                    args.ext)
        elif args.tree:
            entries = kinetics_tree_entries(args.tree, args.label_map)
        else:
            entries, missing = kinetics_csv_entries(
                args.csv, args.video_root, args.label_map, args.strict)
        write_entries(entries, args.out, args.delimiter)
    except (AnnotationError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'wrote {len(entries)} videos to {args.out}'
          + (f' ({missing} CSV rows had no video)' if missing else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
