"""Metric wrapper that scores only the videos that could be read."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence

from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...apis.predictions import sample_field


def _drop_predictions(sample: Any) -> None:
    """Remove the ``pred_*`` entries of a data sample (dict or element)."""
    keys = sample.keys() if isinstance(sample, dict) else sample.all_keys()
    for key in [k for k in keys if str(k).startswith('pred_')]:
        if isinstance(sample, dict):
            del sample[key]
        else:
            delattr(sample, key)


@METRICS.register_module()
class BadVideoAwareMetric(BaseMetric):
    """Evaluate a metric on the readable videos and count the others.

    :class:`~stadapter_mm.datasets.RobustVideoDataset` (test mode) replaces
    an unreadable video by a readable stand-in whose data sample carries the
    metainfo ``bad_video`` (and the unreadable video's own label). This
    wrapper leaves those samples out of the wrapped metric, removes the
    stand-in's prediction from them (put it before a ``DumpResults``
    metric: the dump then has the record of an unreadable video with its
    label, ``bad_video`` and no ``pred_*`` entry) and adds two results:
    ``num_scored`` (videos scored) and ``num_bad_videos`` (videos that could
    not be read; they are also logged by path). It keeps one result per sample, so mmengine's distributed
    collection and padding removal work unchanged.

    Args:
        metric (dict | BaseMetric): The wrapped metric, e.g.
            ``dict(type='AccMetric')``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix; defaults to the wrapped metric's.
    """

    def __init__(self,
                 metric: Any,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        inner = METRICS.build(metric) if isinstance(metric, dict) else metric
        if not isinstance(inner, BaseMetric):
            raise TypeError(f'metric must build a BaseMetric, got '
                            f'{type(inner).__name__}.')
        super().__init__(collect_device=collect_device,
                         prefix=prefix if prefix is not None else inner.prefix)
        self.metric = inner

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Dataset meta information, shared with the wrapped metric."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        self._dataset_meta = meta
        self.metric.dataset_meta = meta

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Run the wrapped ``process`` per sample and tag bad videos.

        The prediction the model made for an unreadable video's stand-in
        (``pred_*`` entries) is removed from its data sample, so that the
        metrics after this one (e.g. the ``DumpResults`` of ``--dump``) see
        no result for a video that was not scored.

        Args:
            data_batch: A batch from the data loader.
            data_samples (Sequence[dict]): Model outputs of the batch.
        """
        for sample in data_samples:
            bad = sample_field(sample, 'bad_video')
            produced: List[Any] = []
            if bad:
                _drop_predictions(sample)
            else:
                start = len(self.metric.results)
                self.metric.process(data_batch, [sample])
                produced = self.metric.results[start:]
                del self.metric.results[start:]
            self.results.append(dict(bad_video=bad, results=produced))

    def compute_metrics(self, results: List[dict]) -> Dict[str, Any]:
        """Wrapped metric on readable videos, plus the two counts.

        Args:
            results (list[dict]): Collected per-sample results.

        Returns:
            dict: The wrapped metric's results, ``num_scored`` and
            ``num_bad_videos`` (samples not scored).
        """
        good = [r for item in results if not item['bad_video']
                for r in item['results']]
        bad = sorted({item['bad_video'] for item in results
                      if item['bad_video']})
        num_scored = sum(1 for item in results if not item['bad_video'])
        if bad:
            print_log(
                f'{len(bad)} of {len(results)} videos could not be read and '
                f'were not scored: {", ".join(bad)}',
                logger='current',
                level=logging.WARNING)
        metrics: Dict[str, Any] = {}
        if good:
            metrics.update(self.metric.compute_metrics(good))
        else:
            print_log('No readable video to score.', logger='current',
                      level=logging.ERROR)
        metrics['num_scored'] = num_scored
        metrics['num_bad_videos'] = len(results) - num_scored
        return metrics
