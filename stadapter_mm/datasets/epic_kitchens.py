"""EPIC-KITCHENS-100 action recognition from the official CSV files.

The annotation files are read as published (``EPIC_100_train.csv``,
``EPIC_100_validation.csv``; columns are found by name, so the ``uid`` column
of some releases and any extra column do no harm), as are the class files
(``EPIC_100_verb_classes.csv``, ``EPIC_100_noun_classes.csv``). Media may be
kept in either official layout:

- whole videos, ``<root>/P01/videos/P01_01.MP4``: decoded with decord; the
  segment's start and stop times are turned into frame indices with the
  file's own frame rate (videos differ: 50, 59.94, 60 fps) by
  :class:`SegmentFrameRange`, which goes right after ``DecordInit``;
- extracted frames, ``<root>/P01/rgb_frames/P01_01/frame_0000000001.jpg``:
  ``start_frame``/``stop_frame`` of the CSV name the files directly.

Either way, the frame sampler only sees the frames of the segment, so a clip
never reaches into the neighbouring action.
"""
from __future__ import annotations

import csv
import io
import math
import os.path as osp
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from mmaction.registry import DATASETS, TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.fileio import get_text

from .annotation import AnnotationError
from .robust_video_dataset import RobustVideoDataset
from .views import FRAME_SAMPLERS

#: Columns every annotation file needs.
SEGMENT_COLUMNS = ('narration_id', 'video_id', 'start_timestamp',
                   'stop_timestamp', 'start_frame', 'stop_frame')
#: Columns of labelled (train/validation) files.
LABEL_COLUMNS = ('verb_class', 'noun_class')
#: Verb and noun classes of EPIC-KITCHENS-100.
NUM_VERBS, NUM_NOUNS = 97, 300
#: Media paths (under the data root) of the two official layouts.
VIDEO_TMPL = '{participant_id}/videos/{video_id}.MP4'
FRAME_DIR_TMPL = '{participant_id}/rgb_frames/{video_id}'
_TIMESTAMP = re.compile(r'^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$')


class EpicAnnotationError(AnnotationError):
    """An EPIC-KITCHENS CSV file that cannot be used as it is."""


def _fail(path: str, lineno: int, field: str, what: str) -> None:
    raise EpicAnnotationError(f'{path}:{lineno}: field {field!r}: {what}')


def _read_csv(path: str) -> List[Dict[str, str]]:
    """Rows of a CSV file as dicts, each with its ``_lineno``."""
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(
            f'{path!r} does not exist: check the dataset\'s ann_file / class '
            'files (and data_root) in the config.')
    reader = csv.DictReader(io.StringIO(get_text(path), newline=''))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        if None in row:  # more fields than the header
            _fail(path, reader.line_num, header[-1] if header else '',
                  f'{len(header) + len(row[None])} fields but the header has '
                  f'{len(header)} (an unquoted comma?).')
        row['_lineno'] = reader.line_num
        rows.append(row)
    return rows


def _require_columns(path: str, header: Sequence[str],
                     columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise EpicAnnotationError(
            f'{path}:1: missing column(s) {", ".join(missing)}; the header '
            f'has {", ".join(header) or "nothing"}. Use the official '
            'EPIC-KITCHENS-100 file (or tools/data/epic_kitchens_list.py).')


def _int(path: str, row: dict, field: str, low: int = 0,
         high: Optional[int] = None) -> int:
    text = (row.get(field) or '').strip()
    try:
        value = int(text)
    except ValueError:
        _fail(path, row['_lineno'], field, f'{text!r} is not an integer.')
    if value < low or (high is not None and value >= high):
        valid = f'[{low}, {high - 1}]' if high is not None else f'>= {low}'
        _fail(path, row['_lineno'], field,
              f'{value} is outside {valid}' +
              (f' ({high} classes)' if high is not None and low == 0 else '')
              + '.')
    return value


def _seconds(path: str, row: dict, field: str) -> float:
    text = (row.get(field) or '').strip()
    match = _TIMESTAMP.match(text)
    if not match:
        _fail(path, row['_lineno'], field,
              f'{text!r} is not a timestamp HH:MM:SS.ss.')
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def read_class_names(path: str) -> List[str]:
    """Class names of an official class file (``id,key,...``), id order.

    Args:
        path (str): ``EPIC_100_verb_classes.csv`` or
            ``EPIC_100_noun_classes.csv``.

    Returns:
        list[str]: The ``key`` of class 0, 1, ...

    Raises:
        EpicAnnotationError: Missing columns, or ids that are not 0..n-1.
    """
    rows = _read_csv(path)
    header = list(rows[0].keys()) if rows else []
    _require_columns(path, header, ('id', 'key'))
    names = []
    for expected, row in enumerate(rows):
        index = _int(path, row, 'id')
        if index != expected:
            _fail(path, row['_lineno'], 'id',
                  f'{index} where {expected} was expected: ids must run '
                  '0, 1, 2, ... in order.')
        names.append(row['key'].strip())
    if not names:
        raise EpicAnnotationError(f'{path} lists no classes.')
    return names


def parse_segments(path: str,
                   num_verbs: int = NUM_VERBS,
                   num_nouns: int = NUM_NOUNS,
                   labelled: Optional[bool] = True) -> List[dict]:
    """Check and read the segments of an official annotation CSV.

    Args:
        path (str): ``EPIC_100_train.csv``, ``EPIC_100_validation.csv`` (or
            the test timestamps file with ``labelled=None``).
        num_verbs (int): Verb classes. Defaults to 97.
        num_nouns (int): Noun classes. Defaults to 300.
        labelled (bool, optional): True: labels are required; None: read
            them when the columns exist (label ``[-1, -1]`` otherwise).

    Returns:
        list[dict]: ``narration_id``, ``participant_id``, ``video_id``,
        ``start_time``/``stop_time`` (seconds), ``start_frame``/``stop_frame``
        (1-based, inclusive), ``label`` (``[verb, noun]``) and ``lineno``.

    Raises:
        EpicAnnotationError: Naming file, line and field of the first
            problem (missing column, class out of range, stop before start).
    """
    rows = _read_csv(path)
    if not rows:
        raise EpicAnnotationError(f'{path} lists no segments.')
    header = [k for k in rows[0].keys() if k != '_lineno']
    _require_columns(path, header, SEGMENT_COLUMNS)
    has_labels = all(c in header for c in LABEL_COLUMNS)
    if labelled and not has_labels:
        _require_columns(path, header, LABEL_COLUMNS)
    segments = []
    for row in rows:
        lineno = row['_lineno']
        for field in SEGMENT_COLUMNS:
            if not (row.get(field) or '').strip():
                _fail(path, lineno, field, 'empty.')
        start, stop = _int(path, row, 'start_frame', 1), \
            _int(path, row, 'stop_frame', 1)
        if stop < start:
            _fail(path, lineno, 'stop_frame',
                  f'{stop} is before start_frame {start}.')
        start_time = _seconds(path, row, 'start_timestamp')
        stop_time = _seconds(path, row, 'stop_timestamp')
        if stop_time < start_time:
            _fail(path, lineno, 'stop_timestamp',
                  f'{row["stop_timestamp"].strip()} is before start_timestamp '
                  f'{row["start_timestamp"].strip()}.')
        label = [-1, -1]
        if has_labels:
            label = [_int(path, row, 'verb_class', 0, num_verbs),
                     _int(path, row, 'noun_class', 0, num_nouns)]
        video_id = row['video_id'].strip()
        participant = (row.get('participant_id') or '').strip() or \
            video_id.split('_')[0]
        segments.append(
            dict(narration_id=row['narration_id'].strip(),
                 participant_id=participant, video_id=video_id,
                 start_time=start_time, stop_time=stop_time,
                 start_frame=start, stop_frame=stop, label=label,
                 lineno=lineno))
    return segments


def segment_frame_range(start_time: float, stop_time: float, fps: float,
                        total_frames: int) -> tuple:
    """0-based (first, last) frames of a video shown within the segment.

    Frame ``i`` is shown at ``i / fps`` seconds; the range holds every frame
    with ``start_time <= i / fps <= stop_time``. When no frame falls inside
    (a segment shorter than one frame), the frame nearest to its middle.

    Args:
        start_time (float): Segment start, seconds.
        stop_time (float): Segment stop, seconds.
        fps (float): Frame rate of the file.
        total_frames (int): Frames of the file.

    Returns:
        tuple[int, int]: First and last frame index (inclusive).

    Raises:
        ValueError: If the segment starts after the end of the video.
    """
    if not fps or fps <= 0:
        raise ValueError(f'the video reports no frame rate ({fps!r})')
    # Timestamps have two decimals: round away float noise before ceil/floor.
    first = math.ceil(round(start_time * fps, 6))
    last = min(math.floor(round(stop_time * fps, 6)), total_frames - 1)
    if first > total_frames - 1:
        raise ValueError(
            f'the segment starts at {start_time:.2f} s but the video has '
            f'{total_frames} frames at {fps:.3f} fps '
            f'({total_frames / fps:.2f} s): wrong or truncated video')
    if last < first:
        first = last = min(round((start_time + stop_time) / 2 * fps),
                           total_frames - 1)
    return first, last


@TRANSFORMS.register_module()
class SegmentFrameRange(BaseTransform):
    """Limit frame sampling to an action segment of a whole video.

    Goes after ``DecordInit`` (which reads ``total_frames`` and ``avg_fps``
    of the file) and before the frame sampler. Turns the segment's
    ``start_time``/``stop_time`` into frame indices with the file's own frame
    rate (see :func:`segment_frame_range`) and sets ``total_frames`` to the
    segment's length and ``start_index`` to its first frame, which every
    MMAction2 sampler adds to the indices it draws.

    Samples of the extracted-frame layout already come with the segment's
    frames (``total_frames`` and ``offset``); for them it does nothing.

    Example:
        >>> pipeline = [dict(type='DecordInit'),
        ...             dict(type='SegmentFrameRange'),
        ...             dict(type='UniformSample', clip_len=8), ...]
    """

    def transform(self, results: Dict[str, Any]) -> Dict[str, Any]:
        """Set ``total_frames``, ``start_index`` and ``segment_frames``."""
        if 'start_time' not in results or 'avg_fps' not in results:
            return results
        first, last = segment_frame_range(
            results['start_time'], results['stop_time'],
            float(results['avg_fps']), int(results['total_frames']))
        results['total_frames'] = last - first + 1
        results['start_index'] = first
        results['segment_frames'] = (first, last)
        return results


@DATASETS.register_module()
class EpicKitchensDataset(RobustVideoDataset):
    """EPIC-KITCHENS-100 action segments with verb and noun labels.

    Each sample is one row of the official CSV; ``label`` is ``[verb,
    noun]``, which ``PackActionInputs`` stores as the data sample's
    ``gt_label`` for :class:`~stadapter_mm.models.heads.VerbNounHead`.
    Unreadable videos or frame folders are handled as in
    :class:`RobustVideoDataset`: another sample stands in during training;
    in testing the segment is reported and left out of the score. A video
    that failed once counts as unreadable for its other segments too.

    Example:
        >>> dataset = dict(
        ...     type='EpicKitchensDataset',
        ...     ann_file='data/epic-kitchens-100/EPIC_100_train.csv',
        ...     data_prefix=dict(video='data/epic-kitchens-100'),
        ...     media='video', pipeline=[...])

    Args:
        ann_file (str): Official annotation CSV.
        pipeline (list[dict | Callable]): Transforms. With
            ``media='video'`` it must contain ``SegmentFrameRange`` between
            the video reader and the frame sampler; with ``media='frames'``
            it reads frames with ``RawFrameDecode``.
        media (str): ``'video'`` (``P01/videos/P01_01.MP4``) or ``'frames'``
            (``P01/rgb_frames/P01_01/frame_0000000001.jpg``).
        verb_classes (str, optional): ``EPIC_100_verb_classes.csv``; its
            length replaces ``num_verb_classes`` and its names go to the
            metainfo. Defaults to None.
        noun_classes (str, optional): ``EPIC_100_noun_classes.csv``.
        num_verb_classes (int): Verb classes when no class file is given.
            Defaults to 97.
        num_noun_classes (int): Noun classes. Defaults to 300.
        video_tmpl (str): Video path under ``data_prefix['video']``.
            Defaults to ``'{participant_id}/videos/{video_id}.MP4'``.
        frame_dir_tmpl (str): Frame folder under ``data_prefix['video']``.
            Defaults to ``'{participant_id}/rgb_frames/{video_id}'``.
        filename_tmpl (str): Frame file name. Defaults to
            ``'frame_{:010d}.jpg'``.
        **kwargs: :class:`RobustVideoDataset` arguments (``data_prefix``,
            ``test_mode``, ``bad_video_log``, ``fail_fast_after``...).
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 media: str = 'video',
                 verb_classes: Optional[str] = None,
                 noun_classes: Optional[str] = None,
                 num_verb_classes: int = NUM_VERBS,
                 num_noun_classes: int = NUM_NOUNS,
                 video_tmpl: str = VIDEO_TMPL,
                 frame_dir_tmpl: str = FRAME_DIR_TMPL,
                 filename_tmpl: str = 'frame_{:010d}.jpg',
                 **kwargs: Any) -> None:
        if media not in ('video', 'frames'):
            raise ValueError(
                f"media must be 'video' or 'frames', got {media!r}.")
        _check_pipeline(pipeline, media)
        self.media = media
        self.video_tmpl = video_tmpl
        self.frame_dir_tmpl = frame_dir_tmpl
        self.filename_tmpl = filename_tmpl
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        for key, path, count in (('verb_classes', verb_classes,
                                  num_verb_classes),
                                 ('noun_classes', noun_classes,
                                  num_noun_classes)):
            if path is not None:
                metainfo[key] = tuple(read_class_names(path))
            elif int(count) <= 0:
                raise ValueError(f'num_{key[:-2]} must be positive.')
        self.num_verb_classes = len(metainfo['verb_classes']) \
            if verb_classes else int(num_verb_classes)
        self.num_noun_classes = len(metainfo['noun_classes']) \
            if noun_classes else int(num_noun_classes)
        kwargs.setdefault('start_index', 1 if media == 'frames' else 0)
        super().__init__(ann_file, pipeline=pipeline, metainfo=metainfo,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """Segments of the CSV, with the path of their video or frames."""
        root = self.data_prefix.get('video') or ''
        records = []
        for seg in parse_segments(self.ann_file, self.num_verb_classes,
                                  self.num_noun_classes,
                                  labelled=None if self.test_mode else True):
            info = dict(seg)
            if self.media == 'video':
                info['filename'] = osp.join(root,
                                            self.video_tmpl.format(**seg))
            else:
                frame_dir = osp.join(root, self.frame_dir_tmpl.format(**seg))
                # The sampler draws 1..n (start_index 1); RawFrameDecode
                # adds the offset: frames start_frame..stop_frame.
                info.update(
                    frame_dir=frame_dir, filename=frame_dir,
                    filename_tmpl=self.filename_tmpl,
                    total_frames=seg['stop_frame'] - seg['start_frame'] + 1,
                    offset=seg['start_frame'] - 1)
            records.append(info)
        return records


def _check_pipeline(pipeline: Sequence[Any], media: str) -> None:
    """The pipeline must reach the segment before sampling frames."""
    names = [t.get('type') if isinstance(t, dict) else type(t).__name__
             for t in pipeline]
    names = [n.__name__ if isinstance(n, type) else str(n) for n in names]
    sampler = next((i for i, n in enumerate(names) if n in FRAME_SAMPLERS),
                   len(names))
    if media == 'video':
        if 'SegmentFrameRange' not in names[:sampler]:
            raise ValueError(
                "EpicKitchensDataset(media='video') needs "
                "dict(type='SegmentFrameRange') after the video reader "
                '(DecordInit) and before the frame sampler, or clips would be '
                f'drawn from the whole video. Pipeline: {names}')
    elif 'RawFrameDecode' not in names:
        raise ValueError(
            "EpicKitchensDataset(media='frames') reads extracted frames: the "
            f'pipeline needs RawFrameDecode (no video reader). Pipeline: '
            f'{names}')
