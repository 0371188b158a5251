"""Inference helpers: task files and a bank of tasks on one shared backbone.

MMAction2's own ``init_recognizer``/``inference_recognizer`` and
``MMAction2Inferencer`` work unchanged with stadapter-mm configs and
checkpoints; this package adds the "one backbone, many tasks" workflow.
"""
from .inferencer import MultiTaskInferencer
from .predictions import (describe_prediction, is_verb_noun, topk_actions,
                          topk_labels, topk_predictions, topk_scores)
from .stream import StreamRecognizer
from .task_bank import TaskBank
from .task_file import (TaskFileError, load_task, make_task, read_label_map,
                        save_task, task_config, task_state_dict)

__all__ = [
    'MultiTaskInferencer', 'StreamRecognizer', 'TaskBank', 'TaskFileError',
    'describe_prediction', 'is_verb_noun', 'load_task', 'make_task',
    'read_label_map', 'save_task', 'task_config', 'task_state_dict',
    'topk_actions', 'topk_labels', 'topk_predictions', 'topk_scores'
]
