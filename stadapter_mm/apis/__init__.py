"""Inference helpers: task files and a bank of tasks on one shared backbone.

MMAction2's own ``init_recognizer``/``inference_recognizer`` and
``MMAction2Inferencer`` work unchanged with stadapter-mm configs and
checkpoints; this package adds the "one backbone, many tasks" workflow.
"""
from .inferencer import MultiTaskInferencer
from .stream import StreamRecognizer
from .task_bank import TaskBank, topk_labels, topk_predictions
from .task_file import (TaskFileError, load_task, make_task, read_label_map,
                        save_task, task_config, task_state_dict)

__all__ = [
    'MultiTaskInferencer', 'StreamRecognizer', 'TaskBank', 'TaskFileError',
    'load_task', 'make_task', 'read_label_map', 'save_task', 'task_config',
    'task_state_dict', 'topk_labels', 'topk_predictions'
]
