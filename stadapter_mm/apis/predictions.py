"""Readable top-k results from a predicted ``ActionDataSample``.

The one home of turning scores into ranked class names: single-label models
(``pred_score``) and EPIC-KITCHENS-100 verb + noun models (``VerbNounHead``:
``pred_verb_score``, ``pred_noun_score``; an action is a (verb, noun) pair
scored by the product of the two probabilities). All work on the output of
MMAction2's ``inference_recognizer`` as well as on a :class:`TaskBank`'s.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def sample_field(sample: Any, key: str) -> Any:
    """``sample[key]`` of a dict, or the attribute of a data sample.

    Args:
        sample (ActionDataSample | dict): A data sample or its dumped dict.
        key (str): Field name, e.g. ``'pred_score'``.

    Returns:
        The field's value, or None where the sample has no such field.
    """
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None)


def _name(labels: Optional[Sequence[str]], index: int) -> str:
    if labels is not None and index < len(labels):
        return labels[index]
    return str(index)


def topk_scores(scores: Tensor, labels: Optional[Sequence[str]] = None,
                topk: int = 5) -> List[dict]:
    """Top-k entries of one score vector, best first.

    Args:
        scores (Tensor): Class scores, shape (num_classes,).
        labels (Sequence[str], optional): Class names (indices where missing
            or shorter than the scores).
        topk (int): How many (at most the number of classes).

    Returns:
        list[dict]: ``label``, ``score`` (float) and ``index`` (int).
    """
    scores = torch.as_tensor(scores).detach().float().cpu().flatten()
    values, indices = scores.topk(min(topk, scores.numel()))
    return [dict(label=_name(labels, i), score=float(v), index=int(i))
            for v, i in zip(values.tolist(), indices.tolist())]


def topk_predictions(sample: Any, labels: Sequence[str],
                     topk: int = 5) -> List[dict]:
    """Top-k predictions of a single-label model, best first.

    Args:
        sample (ActionDataSample | dict): Output of ``inference_recognizer``
            (with ``pred_score``).
        labels (Sequence[str]): Class names (indices if shorter than the
            scores).
        topk (int): How many (at most the number of classes).

    Returns:
        list[dict]: ``label``, ``score`` (float) and ``index`` (int).
    """
    return topk_scores(sample_field(sample, 'pred_score'), labels, topk)


def topk_labels(sample: Any, labels: Sequence[str],
                topk: int = 5) -> List[tuple]:
    """Top-k ``(label, score)`` pairs (see :func:`topk_predictions`)."""
    return [(p['label'], p['score'])
            for p in topk_predictions(sample, labels, topk)]


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


def is_verb_noun(sample: Any) -> bool:
    """Whether a prediction comes from a verb + noun (EPIC-KITCHENS) head."""
    return sample_field(sample, 'pred_verb_score') is not None and \
        sample_field(sample, 'pred_noun_score') is not None


def describe_prediction(sample: Any,
                        verb_labels: Optional[Sequence[str]] = None,
                        noun_labels: Optional[Sequence[str]] = None,
                        topk: int = 5) -> Dict[str, List[dict]]:
    """Top verbs, nouns and actions of a verb + noun prediction.

    Works on what ``mmaction.apis.inference_recognizer`` returns for an
    EPIC-KITCHENS-100 model (a ``VerbNounHead`` fills ``pred_verb_score``
    and ``pred_noun_score``), and on a dumped prediction dict.

    Example:
        >>> from mmaction.apis import inference_recognizer, init_recognizer
        >>> model = init_recognizer('configs/stadapter_vitb16_ek100.py',
        ...                         'ek100.pth', device='cpu')
        >>> result = inference_recognizer(model, 'P01_11.MP4')
        >>> describe_prediction(result, verbs, nouns, 5)['actions'][0]
        {'label': 'take plate', 'score': 0.41, 'verb': 0, 'noun': 2}

    Args:
        sample (ActionDataSample | dict): A predicted data sample.
        verb_labels (Sequence[str], optional): Verb class names (indices
            where missing).
        noun_labels (Sequence[str], optional): Noun class names.
        topk (int): Entries per list. Defaults to 5.

    Returns:
        dict: ``verbs`` and ``nouns`` (lists of dicts with ``label``,
        ``score``, ``index``) and ``actions`` (dicts with ``label`` =
        ``'verb noun'``, ``score``, ``verb``, ``noun``), best first.

    Raises:
        ValueError: If the prediction has no verb and noun scores.
    """
    if not is_verb_noun(sample):
        raise ValueError(
            'the prediction has no pred_verb_score/pred_noun_score: the '
            'model has no VerbNounHead (use topk_predictions for a '
            'single-label model).')
    verb_scores = sample_field(sample, 'pred_verb_score')
    noun_scores = sample_field(sample, 'pred_noun_score')
    return dict(
        verbs=topk_scores(verb_scores, verb_labels, topk),
        nouns=topk_scores(noun_scores, noun_labels, topk),
        actions=[
            dict(label=f'{_name(verb_labels, v)} {_name(noun_labels, n)}',
                 score=s, verb=v, noun=n)
            for v, n, s in topk_actions(verb_scores, noun_scores, topk)
        ])
