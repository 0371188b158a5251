"""Verb and noun classification head (EPIC-KITCHENS-100 action recognition)."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from mmaction.models.heads import BaseHead
from mmaction.registry import MODELS
from mmaction.utils import ConfigType, SampleList
from mmengine.model.weight_init import trunc_normal_init
from torch import Tensor, nn


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

