"""``VideoDataset`` that survives broken videos and rejects bad lists early."""
from __future__ import annotations

import logging
import os
import os.path as osp
import tempfile
import uuid
from contextlib import nullcontext
from typing import (Any, Callable, ContextManager, Iterator, List, Optional,
                    Tuple, Union)

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

from ..utils.random_state import SharedSampleKey, seeded_rng
from .annotation import read_annotation_file
from .bad_video_log import BadVideoLog


class VideoLoadError(RuntimeError):
    """Too many videos failed to load for a data problem to be the cause."""


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = ' '.join(str(err).split())
    text = f'{type(err).__name__}: {text}' if text else type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _transforms(pipeline: Any) -> Iterator[Any]:
    """The transforms inside ``pipeline`` (nested ones included)."""
    for transform in getattr(pipeline, 'transforms', None) or []:
        yield transform
        yield from _transforms(transform)


def _failed_transform(err: BaseException, pipeline: Any) -> str:
    """Class name of the outermost pipeline transform in ``err``'s trace."""
    known = {id(t) for t in _transforms(pipeline)}
    frame = err.__traceback__
    while frame is not None:
        owner = frame.tb_frame.f_locals.get('self')
        if owner is not None and id(owner) in known:
            return type(owner).__name__
        frame = frame.tb_next
    return ''


def iter_datasets(dataset: Any) -> Iterator[Any]:
    """``dataset`` and every dataset a wrapper of it holds.

    Args:
        dataset: A dataset, possibly ``ConcatDataset``/``RepeatDataset``...

    Yields:
        Each dataset object once, outermost first.
    """
    yield dataset
    for child in getattr(dataset, 'datasets', None) or []:
        yield from iter_datasets(child)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        yield from iter_datasets(inner)


@DATASETS.register_module()
class RobustVideoDataset(VideoDataset):
    """MMAction2 ``VideoDataset`` for real, messy video collections.

    At construction the annotation list is checked line by line: a
    malformed line or a label outside ``[0, num_classes)`` raises
    :class:`~stadapter_mm.datasets.annotation.AnnotationError` naming the
    file and line, so a bad list fails before training starts.

    When a video cannot be loaded (missing, empty, truncated, corrupt:
    any exception raised by a pipeline transform):

    - training (``test_mode=False``): the sample is replaced by another
      random one, as mmengine does for a ``None`` sample;
    - testing/validation (``test_mode=True``): the next loadable video
      stands in so the batch keeps its shape; its data sample carries
      ``bad_video=<path>`` and the unreadable video's own label, so that
      :class:`~stadapter_mm.engine.metrics.BadVideoAwareMetric` leaves it out
      of the score and reports it.

    The pipeline is called as a whole (``self.pipeline(info)``), so tools
    that wrap it (MMAction2's ``browse_dataset.py``) see every sample; the
    failing transform is named from the error's traceback. After
    :meth:`set_sample_seed`, each sample's random transforms are seeded from
    ``(seed, epoch, index)`` (see
    :class:`~stadapter_mm.engine.hooks.RandomStateHook`).

    Each bad video is logged once per run (all data-loader workers share a
    :class:`BadVideoLog` file) and
    :class:`~stadapter_mm.engine.hooks.BadVideoReportHook` prints the count
    and list at the end of the run. If the first ``fail_fast_after`` videos a
    process tries all fail, loading stops with :class:`VideoLoadError`: then
    the paths or the pipeline are wrong, not a few files.

    Args:
        ann_file (str): Annotation list, ``<path> <label>`` per line.
        pipeline (list[dict | Callable]): Data transforms.
        num_classes (int, optional): Labels must lie in ``[0, num_classes)``.
            Set it to the head's ``num_classes`` so that a wrong label fails
            at construction. Defaults to None (labels checked ``>= 0``).
        bad_video_log (str, optional): JSON-lines file recording bad videos.
            Defaults to None: a file in the temporary folder, which
            ``BadVideoReportHook`` moves into the run's log folder.
        fail_fast_after (int): Failures with no success that stop loading.
            Defaults to 10.
        **kwargs: Other ``VideoDataset`` arguments (``data_prefix``,
            ``multi_class``, ``test_mode``, ``delimiter``...).
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 num_classes: Optional[int] = None,
                 bad_video_log: Optional[str] = None,
                 fail_fast_after: int = 10,
                 **kwargs: Any) -> None:
        if num_classes is not None and int(num_classes) <= 0:
            raise ValueError(f'num_classes must be positive, got '
                             f'{num_classes}.')
        if fail_fast_after < 1:
            raise ValueError('fail_fast_after must be >= 1.')
        if bad_video_log is None:
            bad_video_log = osp.join(
                tempfile.gettempdir(),
                f'stadapter_bad_videos_{os.getpid()}_{uuid.uuid4().hex[:8]}'
                '.jsonl')
        self.bad_videos = BadVideoLog(bad_video_log)
        self.fail_fast_after = fail_fast_after
        self._num_loaded = 0
        self._first_failures: List[Tuple[str, str]] = []
        self.label_range: Optional[Tuple[int, int]] = None
        self.sample_key = SharedSampleKey()
        super().__init__(
            ann_file, pipeline=pipeline, num_classes=num_classes, **kwargs)

    # ------------------------------------------------------------ annotations
    def load_data_list(self) -> List[dict]:
        """Read the annotation list, failing on the first bad line."""
        records = read_annotation_file(
            self.ann_file,
            delimiter=self.delimiter,
            multi_class=self.multi_class,
            num_classes=self.num_classes,
            allow_unlabelled=self.test_mode,
            data_prefix=self.data_prefix.get('video'))
        labels = [
            lab for r in records
            for lab in (r['label'] if isinstance(r['label'], list) else
                        [r['label']]) if lab >= 0
        ]
        if labels:
            self.label_range = (min(labels), max(labels))
        return records

    def set_bad_video_log(self, path: str) -> None:
        """Record bad videos in ``path`` (before data-loader workers start).

        Args:
            path (str): JSON-lines file; videos already recorded are copied.
        """
        if osp.abspath(path) == osp.abspath(self.bad_videos.path):
            return
        new = BadVideoLog(path)
        for entry in self.bad_videos.entries():
            new.add(entry['filename'], entry.get('reason', ''))
        self.bad_videos = new

    # ---------------------------------------------------------------- loading
    def _run_pipeline(self, info: dict) -> Tuple[Optional[dict], str]:
        """Run ``self.pipeline``; returns (data, '') or (None, reason).

        The pipeline is called as a whole, so a wrapper installed in its
        place (MMAction2's ``browse_dataset.py`` puts an ``InspectCompose``
        there) sees every sample.
        """
        try:
            data = self.pipeline(info)
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - any decode failure
            name = _failed_transform(err, self.pipeline)
            reason = _one_line(err)
            return None, f'{name}: {reason}' if name else reason
        return data, ''

    def _load(self, idx: int) -> Tuple[Optional[dict], str, str]:
        """Load sample ``idx``: (data or None, filename, failure reason)."""
        info = self.get_data_info(idx)
        filename = str(info.get('filename', idx))
        if filename in self.bad_videos:
            return None, filename, 'already known to be unreadable'
        data, reason = self._run_pipeline(info)
        if data is not None:
            self._num_loaded += 1
        elif reason:
            self._record(filename, reason)
        return data, filename, reason

    def _record(self, filename: str, reason: str) -> None:
        if self.bad_videos.add(filename, reason):
            action = 'reported and left out of the score' if self.test_mode \
                else 'replaced by another sample'
            print_log(
                f'Unreadable video {filename} ({reason}): {action}. '
                f'Recorded in {self.bad_videos.path}.',
                logger='current',
                level=logging.WARNING)
        if self._num_loaded == 0:
            self._first_failures.append((filename, reason))
            if len(self._first_failures) >= self.fail_fast_after:
                examples = '\n'.join(f'  {f}: {r}'
                                     for f, r in self._first_failures[:5])
                raise VideoLoadError(
                    f'The first {len(self._first_failures)} videos of '
                    f'{self.ann_file} that were tried all failed to load, '
                    'so the cause is probably not the videos: check '
                    f'data_prefix ({self.data_prefix.get("video")!r}), the '
                    'decoding backend of the pipeline, or scan the list '
                    'with tools/data/check_videos.py. Failures:\n' + examples)

    # --------------------------------------------------------------- seeding
    def set_sample_seed(self, seed: int, epoch: int) -> None:
        """Seed the transforms of each sample from ``(seed, epoch, index)``.

        From this call on (in the data-loader workers too, persistent ones
        included), sample ``i`` is loaded with Python's ``random``,
        ``np.random`` and torch's CPU generator seeded from
        ``(seed, epoch, i)``, and the outer random state is restored after:
        random frame sampling, scale jitter, crops and flips replay exactly
        whatever the number of workers, a resume or a re-run validation.
        :class:`~stadapter_mm.engine.hooks.RandomStateHook` calls it before
        every epoch; without it samples draw from the global generators.

        Args:
            seed (int): The run's seed.
            epoch (int): The epoch about to start (0 for validation/test).
        """
        self.sample_key.set(seed, epoch)

    @staticmethod
    def _attempt(key: Optional[Tuple[int, int]], idx: int,
                 tries: int) -> ContextManager:
        """Random state for try ``tries`` at sample ``idx`` (if keyed)."""
        if key is None:
            return nullcontext()
        return seeded_rng(*key, idx, *([tries] if tries else []))

    def __getitem__(self, idx: int) -> dict:
        """Sample ``idx`` after the pipeline, replacing unreadable videos.

        Args:
            idx (int): Index in the dataset.

        Returns:
            dict: The pipeline output. In test mode, a replaced sample's
            ``data_samples`` has the metainfo ``bad_video`` (the path of the
            unreadable video) and the unreadable video's own label.
        """
        if not self._fully_initialized:
            self.full_init()
        key = self.sample_key.get()
        with self._attempt(key, idx, 0):
            data, filename, reason = self._load(idx)
        if data is not None:
            return data
        if self.test_mode and not reason:
            raise RuntimeError(
                f'The test pipeline returned None for {filename}; test '
                'pipelines must not drop samples.')
        tries = 0
        current = idx
        while tries < self.max_refetch:
            tries += 1
            # Seeded afresh per try: the stand-in does not depend on what the
            # failed tries drew (a video already known to be bad draws
            # nothing), so a resumed run picks the same one.
            with self._attempt(key, idx, tries):
                current = (current + 1) % len(self) if self.test_mode \
                    else self._rand_another()
                data, _, _ = self._load(current)
            if data is not None:
                break
        else:
            raise VideoLoadError(
                f'Found no loadable video in {tries} tries after {filename} '
                f'failed ({reason}); see {self.bad_videos.path}.')
        if self.test_mode:
            samples = data.get('data_samples')
            if samples is None:
                raise RuntimeError(
                    'RobustVideoDataset in test mode needs a pipeline ending '
                    'with PackActionInputs to mark replaced samples.')
            # The stand-in only keeps the batch's shape: nothing of it may be
            # reported as this video's (the metric drops its prediction).
            samples.set_metainfo(dict(bad_video=filename))
            label = self.get_data_info(idx).get('label')
            if label is not None:
                samples.set_gt_label(label)
        return data
