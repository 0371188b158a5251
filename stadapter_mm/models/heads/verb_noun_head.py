"""Verb and noun classification head (EPIC-KITCHENS-100 action recognition)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmaction.models.heads import BaseHead
from mmaction.registry import MODELS
from mmaction.utils import ConfigType, SampleList
from mmengine.model.weight_init import trunc_normal_init
from torch import Tensor, nn


def topk_actions(verb_scores: Tensor, noun_scores: Tensor,
                 k: int = 5) -> List[Tuple[int, int, float]]:
    """The ``k`` most probable (verb, noun) pairs of one sample.

    An action's score is the product of its verb and noun probabilities (the
    two heads are independent). The best ``k`` products always pair one of
    the ``k`` best verbs with one of the ``k`` best nouns, so only those
    ``k x k`` candidates are scored, not all ``97 x 300``.

    Args:
        verb_scores (Tensor): Verb probabilities, shape (num_verbs,).
        noun_scores (Tensor): Noun probabilities, shape (num_nouns,).
        k (int): Pairs to return. Defaults to 5.

    Returns:
        list[tuple[int, int, float]]: (verb, noun, score), best first.
    """
    verb_scores = torch.as_tensor(verb_scores).detach().float().cpu()
    noun_scores = torch.as_tensor(noun_scores).detach().float().cpu()
    kv = min(k, verb_scores.numel())
    kn = min(k, noun_scores.numel())
    v_val, v_idx = verb_scores.topk(kv)
    n_val, n_idx = noun_scores.topk(kn)
    pairs = (v_val[:, None] * n_val[None, :]).flatten()
    values, flat = pairs.topk(min(k, pairs.numel()))
    return [(int(v_idx[i // kn]), int(n_idx[i % kn]), float(s))
            for s, i in zip(values.tolist(), flat.tolist())]


@MODELS.register_module()
class VerbNounHead(BaseHead):
    """Two linear classifiers, verbs and nouns, on one pooled video feature.

    The head returns the verb logits followed by the noun logits in one
    tensor, so :class:`~mmaction.models.Recognizer3D` and MMAction2's
    multi-view averaging work unchanged. Each data sample carries:

    - ``gt_label``: ``[verb, noun]`` (what
      :class:`~stadapter_mm.datasets.EpicKitchensDataset` packs);
    - after prediction: ``pred_verb_score`` and ``pred_noun_score``
      (probabilities averaged over the views), ``pred_label`` =
      ``[verb, noun]`` (each argmax), and ``pred_score`` = the verb
      probabilities followed by the noun probabilities (for tools that
      expect one score vector).

    The training loss is ``verb_loss_weight * CE(verb) + noun_loss_weight *
    CE(noun)``, logged as ``loss_verb`` and ``loss_noun`` (mmengine sums every
    ``loss*`` entry).

    Example:
        >>> cls_head = dict(type='VerbNounHead', num_verb_classes=97,
        ...                 num_noun_classes=300, in_channels=768,
        ...                 dropout_ratio=0.5, average_clips='prob')

    Args:
        num_verb_classes (int): Verb classes (97 in EPIC-KITCHENS-100).
        num_noun_classes (int): Noun classes (300 in EPIC-KITCHENS-100).
        in_channels (int): Feature width.
        loss_cls (dict): Loss of each classifier. Defaults to
            ``dict(type='CrossEntropyLoss')``.
        verb_loss_weight (float): Weight of the verb loss. Defaults to 1.0.
        noun_loss_weight (float): Weight of the noun loss. Defaults to 1.0.
        dropout_ratio (float): Dropout before the classifiers. Defaults
            to 0.5.
        init_std (float): Std of the classifier initialisation. Defaults
            to 0.02.
        label_smooth_eps (float): Label smoothing of each classifier.
            Defaults to 0.
        average_clips (str): ``'prob'`` (average softmax over views) or
            ``'score'`` (average logits, then softmax). Defaults to 'prob'.
        **kwargs: Other :class:`BaseHead` arguments (``topk``, ``init_cfg``).
    """

    def __init__(self,
                 num_verb_classes: int,
                 num_noun_classes: int,
                 in_channels: int,
                 loss_cls: ConfigType = dict(type='CrossEntropyLoss'),
                 verb_loss_weight: float = 1.0,
                 noun_loss_weight: float = 1.0,
                 dropout_ratio: float = 0.5,
                 init_std: float = 0.02,
                 label_smooth_eps: float = 0.0,
                 average_clips: str = 'prob',
                 **kwargs) -> None:
        for name, value in (('num_verb_classes', num_verb_classes),
                            ('num_noun_classes', num_noun_classes),
                            ('in_channels', in_channels)):
            if int(value) <= 0:
                raise ValueError(f'{name} must be positive, got {value}.')
        if verb_loss_weight < 0 or noun_loss_weight < 0 or \
                verb_loss_weight + noun_loss_weight == 0:
            raise ValueError(
                'verb_loss_weight and noun_loss_weight must be >= 0 and not '
                f'both 0, got {verb_loss_weight} and {noun_loss_weight}.')
        if average_clips not in ('prob', 'score'):
            raise ValueError(
                "average_clips must be 'prob' or 'score' (verb x noun action "
                f'scores need probabilities), got {average_clips!r}.')
        super().__init__(
            int(num_verb_classes) + int(num_noun_classes),
            in_channels,
            loss_cls,
            label_smooth_eps=label_smooth_eps,
            average_clips=average_clips,
            **kwargs)
        self.num_verb_classes = int(num_verb_classes)
        self.num_noun_classes = int(num_noun_classes)
        self.verb_loss_weight = float(verb_loss_weight)
        self.noun_loss_weight = float(noun_loss_weight)
        self.init_std = init_std
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio else None
        self.fc_verb = nn.Linear(in_channels, self.num_verb_classes)
        self.fc_noun = nn.Linear(in_channels, self.num_noun_classes)

    def init_weights(self) -> None:
        """Truncated-normal classifiers, zero biases."""
        trunc_normal_init(self.fc_verb, std=self.init_std)
        trunc_normal_init(self.fc_noun, std=self.init_std)

    def forward(self, x: Tensor, **kwargs) -> Tensor:
        """Verb logits followed by noun logits.

        Args:
            x (Tensor): Pooled features, (N, in_channels).

        Returns:
            Tensor: (N, num_verb_classes + num_noun_classes).
        """
        if self.dropout is not None:
            x = self.dropout(x)
        return torch.cat([self.fc_verb(x), self.fc_noun(x)], dim=-1)

    def split(self, scores: Tensor) -> Tuple[Tensor, Tensor]:
        """Split the last dimension into (verb part, noun part)."""
        return scores.split([self.num_verb_classes, self.num_noun_classes],
                            dim=-1)

    def _labels(self, data_samples: SampleList,
                device: torch.device) -> Tensor:
        labels = []
        for sample in data_samples:
            label = sample.get('gt_label')
            if label is None or label.numel() != 2:
                raise ValueError(
                    'VerbNounHead needs gt_label = [verb, noun] in every data '
                    'sample (as EpicKitchensDataset packs it); got '
                    f'{None if label is None else label.tolist()}.')
            labels.append(label.reshape(2))
        return torch.stack(labels).to(device=device, dtype=torch.long)

    def _task_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        if self.label_smooth_eps:
            target = F.one_hot(labels, logits.shape[-1]).float()
            target = (1 - self.label_smooth_eps) * target + \
                self.label_smooth_eps / logits.shape[-1]
            return self.loss_cls(logits, target)
        return self.loss_cls(logits, labels)

    def loss_by_feat(self, cls_scores: Tensor,
                     data_samples: SampleList) -> Dict[str, Tensor]:
        """Weighted verb and noun losses, plus their training accuracies.

        Args:
            cls_scores (Tensor): (N, num_verb + num_noun) logits.
            data_samples (list[ActionDataSample]): With ``gt_label``.

        Returns:
            dict: ``loss_verb``, ``loss_noun`` (already weighted) and
            ``verb_top1_acc``/``noun_top1_acc`` (not losses).
        """
        labels = self._labels(data_samples, cls_scores.device)
        verb, noun = self.split(cls_scores)
        losses = dict(
            loss_verb=self.verb_loss_weight *
            self._task_loss(verb, labels[:, 0]),
            loss_noun=self.noun_loss_weight *
            self._task_loss(noun, labels[:, 1]))
        with torch.no_grad():
            losses['verb_top1_acc'] = (verb.argmax(-1) == labels[:, 0]) \
                .float().mean()
            losses['noun_top1_acc'] = (noun.argmax(-1) == labels[:, 1]) \
                .float().mean()
        return losses

    def _probabilities(self, logits: Tensor, num_segs: int) -> Tensor:
        logits = logits.reshape(-1, num_segs, logits.shape[-1])
        if self.average_clips == 'prob':
            return logits.softmax(dim=-1).mean(dim=1)
        return logits.mean(dim=1).softmax(dim=-1)

    def predict_by_feat(self, cls_scores: Tensor,
                        data_samples: SampleList) -> SampleList:
        """Average the views per classifier and fill the data samples.

        Args:
            cls_scores (Tensor): (N * views, num_verb + num_noun) logits.
            data_samples (list[ActionDataSample]): One per video.

        Returns:
            list[ActionDataSample]: With ``pred_verb_score``,
            ``pred_noun_score``, ``pred_score`` and ``pred_label``.
        """
        num_segs = cls_scores.shape[0] // len(data_samples)
        verb, noun = self.split(cls_scores.detach())
        verb = self._probabilities(verb, num_segs)
        noun = self._probabilities(noun, num_segs)
        for sample, v, n in zip(data_samples, verb, noun):
            sample.set_field(v, 'pred_verb_score')
            sample.set_field(n, 'pred_noun_score')
            sample.set_pred_score(torch.cat([v, n]))
            sample.set_pred_label(torch.stack([v.argmax(), n.argmax()]))
        return data_samples


def describe_prediction(sample, verbs: Optional[Sequence[str]] = None,
                        nouns: Optional[Sequence[str]] = None,
                        topk: int = 5) -> Dict[str, list]:
    """Top verbs, nouns and actions of a :class:`VerbNounHead` prediction.

    Args:
        sample (ActionDataSample | dict): A predicted data sample.
        verbs (Sequence[str], optional): Verb class names (indices if None).
        nouns (Sequence[str], optional): Noun class names.
        topk (int): Entries per list. Defaults to 5.

    Returns:
        dict: ``verbs`` and ``nouns`` (lists of (name, score)) and
        ``actions`` (list of ("verb noun", score)), best first.
    """
    def name(names, i):
        return names[i] if names is not None and i < len(names) else str(i)

    get = sample.get if isinstance(sample, dict) else \
        (lambda key: getattr(sample, key, None))
    verb_scores, noun_scores = get('pred_verb_score'), get('pred_noun_score')
    if verb_scores is None or noun_scores is None:
        raise ValueError('the prediction has no pred_verb_score/'
                         'pred_noun_score: the model has no VerbNounHead.')
    out: Dict[str, list] = {}
    for key, scores, names in (('verbs', verb_scores, verbs),
                               ('nouns', noun_scores, nouns)):
        scores = torch.as_tensor(scores).float().cpu()
        values, indices = scores.topk(min(topk, scores.numel()))
        out[key] = [(name(names, i), float(s))
                    for s, i in zip(values.tolist(), indices.tolist())]
    out['actions'] = [(f'{name(verbs, v)} {name(nouns, n)}', s)
                      for v, n, s in topk_actions(verb_scores, noun_scores,
                                                  topk)]
    return out
