"""Task files: the per-task part of an ST-Adapter model, in one small file.

A task file holds what a trained recognizer adds on top of the frozen CLIP
image tower: the adapters (and any backbone part the config unfroze), the
classification head, the full config it was trained with, its label map and
a fingerprint of the CLIP weights it expects. For ViT-B/16 with 12x384
adapters it is about 7 M parameters instead of 93 M.

Format (a ``torch.save`` of plain data, read with ``weights_only=True``)::

    {'format': 'stadapter-mm-task', 'version': 1, 'name': str,
     'config': str,                 # Config.pretty_text of the model
     'label_map': list[str],        # class names, index order (verb +
                                    # noun head: verbs, then nouns)
     'clip_fingerprint': str,       # checkpoints.adapter_state.clip_fingerprint
     'backbone': dict,              # arch settings the task was trained on
     'state_dict': dict[str, Tensor],  # non-frozen recognizer weights
     'meta': dict}
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from torch import Tensor, nn

from ..checkpoints.adapter_state import adapter_state_dict, clip_fingerprint
from ..checkpoints.io import load_weights_only
from ..datasets.epic_kitchens import read_class_names
from ..models import ViTCLIPSTAdapter
from ..models.utils import AdapterBackboneMixin

TASK_FORMAT = 'stadapter-mm-task'
TASK_VERSION = 1
_REQUIRED = ('format', 'version', 'name', 'config', 'label_map',
             'clip_fingerprint', 'backbone', 'state_dict')


class TaskFileError(ValueError):
    """A task file that is malformed or does not fit the backbone at hand."""


def read_label_map(path: str) -> List[str]:
    """Read a label map: one class name per line, index order.

    An official EPIC-KITCHENS-100 class file (``EPIC_100_verb_classes.csv``,
    ``EPIC_100_noun_classes.csv``: any ``.csv``) is read by its ``id`` and
    ``key`` columns instead.

    Args:
        path (str): Text file (e.g. ``label_map_k400.txt``) or class CSV.

    Returns:
        list[str]: Class names; trailing empty lines are dropped.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'label map {path!r} does not exist')
    if path.lower().endswith('.csv'):
        return read_class_names(path)
    with open(path, encoding='utf-8') as f:
        labels = [line.strip() for line in f]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise TaskFileError(f'label map {path} is empty')
    return labels


def backbone_signature(backbone: ViTCLIPSTAdapter) -> Dict[str, object]:
    """The frozen-tower settings a task depends on.

    Args:
        backbone: The task's (or the shared) backbone.

    Returns:
        dict: ``width, layers, heads, patch_size, input_resolution, mlp_act``.
    """
    if hasattr(backbone, 'signature'):  # e.g. MMPretrainSTAdapter
        return backbone.signature()
    s = backbone.arch_settings
    return dict(width=int(s['width']), layers=int(s['layers']),
                heads=int(s['heads']), patch_size=int(s['patch_size']),
                input_resolution=int(s['input_resolution']),
                mlp_act=s.get('mlp_act', 'quick_gelu'))


def task_state_dict(model: nn.Module) -> Dict[str, Tensor]:
    """Everything of a recognizer's state dict but the frozen backbone.

    Args:
        model: A recognizer whose ``backbone`` is a :class:`ViTCLIPSTAdapter`.

    Returns:
        dict[str, Tensor]: Adapters, unfrozen backbone parts, neck and head.
    """
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, AdapterBackboneMixin):
        raise TaskFileError(
            f'task files need an ST-Adapter backbone, the model has '
            f'{type(backbone).__name__}')
    return adapter_state_dict(model)


def make_task(model: nn.Module,
              cfg: Config,
              label_map: Optional[Sequence[str]] = None,
              name: Optional[str] = None,
              meta: Optional[dict] = None) -> dict:
    """Build the task-file dict of a trained recognizer.

    Args:
        model: The trained recognizer (frozen weights loaded: the CLIP
            fingerprint is computed from them).
        cfg (Config): Its config.
        label_map (Sequence[str], optional): Class names; defaults to the
            class indices as strings.
        name (str, optional): Task name. Defaults to ``'task'``.
        meta (dict, optional): Extra information to store.

    Returns:
        dict: The task file content.

    Raises:
        TaskFileError: If the label map does not match the head.
    """
    head = getattr(model, 'cls_head', None)
    num_classes = getattr(head, 'num_classes', None)
    if label_map is None:
        label_map = [str(i) for i in range(num_classes or 0)]
    label_map = [str(x) for x in label_map]
    if num_classes is not None and len(label_map) != num_classes:
        verb_noun = '' if not hasattr(head, 'num_verb_classes') else (
            f' ({head.num_verb_classes} verbs followed by '
            f'{head.num_noun_classes} nouns)')
        raise TaskFileError(
            f'the label map has {len(label_map)} names but the head '
            f'classifies {num_classes} classes{verb_noun}')
    state = task_state_dict(model)
    return dict(
        format=TASK_FORMAT,
        version=TASK_VERSION,
        name=name or 'task',
        config=cfg.pretty_text,
        label_map=label_map,
        clip_fingerprint=clip_fingerprint(model.backbone),
        backbone=backbone_signature(model.backbone),
        state_dict=state,
        meta=dict(meta or {},
                  num_params=int(sum(v.numel() for v in state.values()))))


def save_task(task: dict, path: str) -> str:
    """Write a task dict (from :func:`make_task`) to ``path``."""
    check_task(task, path)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(task, path)
    return path


def check_task(task: object, source: str = 'task') -> dict:
    """Validate the structure of a task dict.

    Args:
        task: What was loaded.
        source (str): File name for messages.

    Returns:
        dict: ``task``.

    Raises:
        TaskFileError: With what is wrong.
    """
    if not isinstance(task, dict) or task.get('format') != TASK_FORMAT:
        raise TaskFileError(
            f'{source} is not a stadapter-mm task file (make one with '
            'tools/convert/export_adapter.py); a full MMAction2 checkpoint '
            'loads with init_recognizer instead.')
    missing = [k for k in _REQUIRED if k not in task]
    if missing:
        raise TaskFileError(f'{source} lacks {missing}')
    if task['version'] > TASK_VERSION:
        raise TaskFileError(
            f'{source} is task-file version {task["version"]}; this '
            f'stadapter-mm reads up to version {TASK_VERSION}: upgrade.')
    if not task['state_dict']:
        raise TaskFileError(f'{source} holds no weights')
    return task


def load_task(path: str) -> dict:
    """Read and validate a task file (plain data only, no code runs).

    Args:
        path (str): Task file.

    Returns:
        dict: The task; ``config`` is still text, see :func:`task_config`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'task file {path!r} does not exist')
    return check_task(load_weights_only(path, TaskFileError, 'a task file'),
                      path)


def task_config(task: dict) -> Config:
    """The task's config as an mmengine ``Config``."""
    return Config.fromstring(task['config'], file_format='.py')
