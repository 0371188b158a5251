"""A small inferencer over a :class:`TaskBank` (one backbone, many tasks)."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch

from .predictions import describe_prediction, is_verb_noun, topk_predictions
from .task_bank import TaskBank


class MultiTaskInferencer:
    """Classify videos with one frozen CLIP tower and several task files.

    Each request names the task to run (or runs all of them); the backbone
    weights are loaded once and shared by every task. A task with a verb +
    noun head (EPIC-KITCHENS-100; its task file's label map lists the verbs,
    then the nouns) returns its top verbs, nouns and actions.

    Example:
        >>> inferencer = MultiTaskInferencer(
        ...     'ViT-B-16.pt', {'k400': 'k400.task.pth',
        ...                     'ssv2': 'ssv2.task.pth'})
        >>> inferencer('video.mp4', task='ssv2')['predictions'][0]
        {'label': 'Pushing something from left to right', 'score': 0.83,
         'index': 93}

    Args:
        clip (str): CLIP weights file of the shared backbone.
        tasks (Sequence[str] | Mapping[str, str]): Task files, or a mapping
            from the names to register them under to task files.
        arch (str | dict, optional): Backbone arch; read from the first task
            file's config when omitted.
        device (str | torch.device): Device. Defaults to ``'cpu'``.
        **bank_kwargs: Other :class:`TaskBank` arguments.
    """

    def __init__(self,
                 clip: str,
                 tasks: Union[Sequence[str], Mapping[str, str]],
                 arch: Union[str, dict, None] = None,
                 device: Union[str, torch.device] = 'cpu',
                 **bank_kwargs) -> None:
        if isinstance(tasks, Mapping):
            pairs = list(tasks.items())
        else:
            pairs = [(None, path) for path in tasks]
        if not pairs:
            raise ValueError('give at least one task file')
        if arch is None:
            self.bank = TaskBank.for_task_file(clip, pairs[0][1],
                                               device=device, **bank_kwargs)
        else:
            self.bank = TaskBank(clip, arch=arch, device=device,
                                 **bank_kwargs)
        for name, path in pairs:
            self.bank.add_task(path, name=name)

    @property
    def tasks(self) -> List[str]:
        """Loaded task names."""
        return self.bank.tasks

    def __call__(self,
                 video: Union[str, dict],
                 task: Optional[str] = None,
                 topk: int = 5) -> Union[dict, Dict[str, dict]]:
        """Classify a video.

        Args:
            video (str | dict): Video file or pipeline input dict.
            task (str, optional): Task to run; all tasks when None.
            topk (int): Predictions to return per task. Defaults to 5.

        Returns:
            dict: For one task: ``task``, ``predictions`` (list of dicts with
            ``label``, ``score``, ``index``, best first) and ``pred_score``
            (all class scores as a list). For a verb + noun task also
            ``verbs``, ``nouns`` (as ``predictions``) and ``actions`` (dicts
            with ``label`` = ``'verb noun'``, ``score``, ``verb``, ``noun``);
            there ``predictions`` are the actions. For ``task=None`` a dict
            of those keyed by task name.
        """
        if task is None:
            return {name: self(video, name, topk) for name in self.tasks}
        sample = self.bank.infer(video, task)
        labels = self.bank.labels(task)
        result = dict(
            task=task,
            pred_score=sample.pred_score.detach().float().cpu().tolist())
        if not is_verb_noun(sample):
            result['predictions'] = topk_predictions(sample, labels, topk)
            return result
        verbs = self.bank.model(task).cls_head.num_verb_classes
        result.update(
            describe_prediction(sample, labels[:verbs], labels[verbs:],
                                topk))
        result['predictions'] = result['actions']
        return result
