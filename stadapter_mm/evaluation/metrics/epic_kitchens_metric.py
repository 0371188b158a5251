"""Verb, noun and action accuracy of EPIC-KITCHENS-100 action recognition."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, Hashable, List, Optional, Sequence

import torch
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric

from ...apis.predictions import sample_field, topk_actions, topk_scores


def _topk(scores: Any, k: int) -> List[int]:
    return [p['index'] for p in topk_scores(scores, topk=k)]


def mean_class_accuracy(preds: Sequence[Hashable],
                        labels: Sequence[Hashable]) -> float:
    """Top-1 recall averaged over the classes present in ``labels``.

    Args:
        preds (Sequence): Predicted class per sample.
        labels (Sequence): True class per sample.

    Returns:
        float: Mean of the per-class accuracies (0 for no samples).
    """
    hits: Dict[Hashable, List[int]] = defaultdict(lambda: [0, 0])
    for pred, label in zip(preds, labels):
        hits[label][0] += int(pred == label)
        hits[label][1] += 1
    if not hits:
        return 0.0
    return float(sum(h / n for h, n in hits.values()) / len(hits))


@METRICS.register_module()
class EpicKitchensMetric(BaseMetric):
    """Verb, noun and action top-k accuracy and mean class accuracy.

    An action is right when both its verb and its noun are; the action
    ranking scores each (verb, noun) pair by the product of the two
    probabilities (``pred_verb_score``, ``pred_noun_score`` of
    :class:`~stadapter_mm.models.heads.VerbNounHead`). Results (fractions in
    [0, 1], prefixed ``epic/``): ``action_top1``, ``action_top5``,
    ``verb_top1``, ``verb_top5``, ``noun_top1``, ``noun_top5`` and
    ``verb_mean_class_acc``, ``noun_mean_class_acc``,
    ``action_mean_class_acc`` (top-1 accuracy per class present in the
    ground truth, averaged). Samples without labels (``[-1, -1]``) are not
    scored.

    Example:
        >>> val_evaluator = dict(type='BadVideoAwareMetric',
        ...                      metric=dict(type='EpicKitchensMetric'))

    Args:
        topk (Sequence[int]): The k of the top-k accuracies. Defaults to
            ``(1, 5)``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to ``'epic'``.
    """

    default_prefix: Optional[str] = 'epic'

    def __init__(self,
                 topk: Sequence[int] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        topk = tuple(int(k) for k in topk)
        if not topk or min(topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}.')
        self.topk = topk

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep the ranked verbs, nouns and actions of each sample.

        Args:
            data_batch: A batch from the data loader (unused).
            data_samples (Sequence[dict]): Predicted data samples.
        """
        k = max(self.topk)
        for sample in data_samples:
            verb_scores = sample_field(sample, 'pred_verb_score')
            noun_scores = sample_field(sample, 'pred_noun_score')
            if verb_scores is None or noun_scores is None:
                raise ValueError(
                    'EpicKitchensMetric needs pred_verb_score and '
                    'pred_noun_score (a model with VerbNounHead).')
            label = torch.as_tensor(sample_field(sample,
                                                 'gt_label')).reshape(-1)
            self.results.append(
                dict(verb=int(label[0]), noun=int(label[1]),
                     verbs=_topk(verb_scores, k), nouns=_topk(noun_scores, k),
                     actions=[(v, n) for v, n, _ in topk_actions(
                         verb_scores, noun_scores, k)]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Accuracies over the labelled samples.

        Args:
            results (list[dict]): What :meth:`process` kept.

        Returns:
            dict[str, float]: Action, verb and noun top-k accuracies, then
            the mean class accuracies.
        """
        scored = [r for r in results if r['verb'] >= 0 and r['noun'] >= 0]
        metrics: Dict[str, float] = {}
        if not scored:
            return metrics
        truth = dict(
            action=[(r['verb'], r['noun']) for r in scored],
            verb=[r['verb'] for r in scored],
            noun=[r['noun'] for r in scored])
        ranked = dict(action=[r['actions'] for r in scored],
                      verb=[r['verbs'] for r in scored],
                      noun=[r['nouns'] for r in scored])
        for task in ('action', 'verb', 'noun'):
            for k in self.topk:
                hits = sum(t in r[:k] for t, r in zip(truth[task],
                                                      ranked[task]))
                metrics[f'{task}_top{k}'] = hits / len(scored)
        for task in ('verb', 'noun', 'action'):
            metrics[f'{task}_mean_class_acc'] = mean_class_accuracy(
                [r[0] for r in ranked[task]], truth[task])
        return metrics
