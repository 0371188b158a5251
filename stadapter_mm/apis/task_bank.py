"""One frozen CLIP image tower shared by many task files."""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Union

import torch
from mmaction.apis import inference_recognizer
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from ..checkpoints.adapter_state import clip_fingerprint
from ..models import ViTCLIPSTAdapter
from .predictions import topk_labels
from .task_file import (TaskFileError, backbone_signature, load_task,
                        task_config)


class TaskBank:
    """Load one frozen backbone once; serve any number of task files.

    The CLIP image tower is read once into a bare backbone (no adapters).
    Each task file becomes a full ``Recognizer3D`` whose frozen parameters
    are *the same tensors* as the shared backbone's (nothing is copied): a
    task costs only its adapters and head. Task models are built on the
    ``meta`` device first, so adding a task allocates nothing but its own
    weights. A task file whose CLIP fingerprint or architecture differs from
    the shared backbone is refused.

    Every task model works with MMAction2's API, e.g.
    ``mmaction.apis.inference_recognizer(bank.model('k400'), 'video.mp4')``.

    Example:
        >>> bank = TaskBank('ViT-B-16.pt', arch='ViT-B/16', device='cpu')
        >>> bank.add_task('k400.task.pth')
        >>> bank.add_task('ssv2.task.pth')
        >>> bank.predict('video.mp4', task='ssv2', topk=5)

    Args:
        clip (str): CLIP weights file (any format the backbone's
            ``init_cfg`` accepts).
        arch (str | dict): Backbone arch (see :class:`ViTCLIPSTAdapter`).
            Defaults to ``'ViT-B/16'``.
        input_resolution (int, optional): Frame size, if not the arch's.
        device (str | torch.device): Device of all models. Defaults to
            ``'cpu'``.
        frozen_fp16 (bool): Keep the shared frozen weights in fp16.
            Defaults to False.
        trust_torchscript (bool): See :class:`ViTCLIPSTAdapter`.
    """

    def __init__(self,
                 clip: str,
                 arch: Union[str, dict] = 'ViT-B/16',
                 input_resolution: Optional[int] = None,
                 device: Union[str, torch.device] = 'cpu',
                 frozen_fp16: bool = False,
                 trust_torchscript: bool = False) -> None:
        init_default_scope('mmaction')
        self.device = torch.device(device)
        backbone = ViTCLIPSTAdapter(
            arch=arch,
            adapter=None,
            input_resolution=input_resolution,
            frozen_fp16=frozen_fp16,
            trust_torchscript=trust_torchscript)
        backbone.load_clip(clip)
        self.backbone = backbone.to(self.device).eval()
        self.clip_file = clip
        self.fingerprint = clip_fingerprint(self.backbone)
        self.signature = backbone_signature(self.backbone)
        self._frozen = dict(self.backbone.named_parameters())
        self._models: Dict[str, nn.Module] = {}
        self._tasks: Dict[str, dict] = {}

    @classmethod
    def for_task_file(cls, clip: str, task_file: str,
                      **kwargs) -> 'TaskBank':
        """A bank whose backbone arch is read from a task file's config.

        Args:
            clip (str): CLIP weights file.
            task_file (str): Task file to take the arch from (not added).
            **kwargs: Other :class:`TaskBank` arguments.
        """
        backbone_cfg = task_config(load_task(task_file)).model.backbone
        kwargs.setdefault('arch', copy.deepcopy(backbone_cfg.get(
            'arch', 'ViT-B/16')))
        kwargs.setdefault('input_resolution',
                          backbone_cfg.get('input_resolution'))
        if isinstance(kwargs['arch'], dict):
            kwargs['arch'] = dict(kwargs['arch'])
        return cls(clip, **kwargs)

    # ------------------------------------------------------------- tasks
    @property
    def tasks(self) -> List[str]:
        """Names of the loaded tasks, in the order they were added."""
        return list(self._models)

    def labels(self, task: str) -> List[str]:
        """Class names of a task."""
        return list(self._get(task, self._tasks)['label_map'])

    def model(self, task: str) -> nn.Module:
        """The task's recognizer (shares the frozen backbone)."""
        return self._get(task, self._models)

    def _get(self, task: str, table: dict):
        if task not in table:
            raise KeyError(
                f'unknown task {task!r}; loaded tasks: {self.tasks}')
        return table[task]

    def add_task(self, task_file: Union[str, dict],
                 name: Optional[str] = None) -> str:
        """Load a task file and build its recognizer on the shared backbone.

        Args:
            task_file (str | dict): Path, or a task dict already loaded.
            name (str, optional): Name to register it under. Defaults to
                the name stored in the file.

        Returns:
            str: The task's name.

        Raises:
            TaskFileError: If the task was made for another backbone (CLIP
                weights or architecture) or its weights do not fit its
                config.
        """
        source = task_file if isinstance(task_file, str) else 'task'
        task = load_task(task_file) if isinstance(task_file, str) else \
            task_file
        name = name or task['name']
        self._check_backbone(task, source)
        cfg = task_config(task)
        model = self._build(cfg, task, source)
        model.cfg = cfg
        self._models[name] = model
        self._tasks[name] = task
        return name

    def remove_task(self, task: str) -> None:
        """Forget a task (the shared backbone stays)."""
        self._get(task, self._models)
        del self._models[task]
        del self._tasks[task]

    def _check_backbone(self, task: dict, source: str) -> None:
        theirs = dict(task['backbone'])
        if theirs != self.signature:
            diff = {
                k: (theirs.get(k), self.signature.get(k))
                for k in set(theirs) | set(self.signature)
                if theirs.get(k) != self.signature.get(k)
            }
            raise TaskFileError(
                f'{source} was made for another backbone architecture '
                f'(task vs shared backbone: {diff}); load it into a bank '
                'built with the matching arch.')
        if task['clip_fingerprint'] != self.fingerprint:
            raise TaskFileError(
                f'{source} was trained on other CLIP weights (fingerprint '
                f'{task["clip_fingerprint"]}) than the shared backbone '
                f'loaded from {self.clip_file} ({self.fingerprint}); its '
                'adapters would give wrong predictions. Use the CLIP file '
                'the task was trained from.')

    def _build(self, cfg: Config, task: dict, source: str) -> nn.Module:
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.backbone.init_cfg = None
        model_cfg.backbone.pop('pretrained', None)
        init_default_scope(cfg.get('default_scope', 'mmaction'))
        with torch.device('meta'):
            model = MODELS.build(model_cfg)
        # Buffers that are not in a state dict (e.g. normalisation) must be
        # real: rebuild the data preprocessor off the meta device.
        model.data_preprocessor = MODELS.build(
            model_cfg.get('data_preprocessor',
                          dict(type='ActionDataPreprocessor')))
        backbone = model.backbone
        if not isinstance(backbone, ViTCLIPSTAdapter):
            raise TaskFileError(
                f'{source}: the config builds a {type(backbone).__name__}, '
                'not a ViTCLIPSTAdapter')
        frozen = backbone.frozen_state_keys()
        not_shared = [k for k in frozen if k not in self._frozen]
        if not_shared:
            raise TaskFileError(
                f'{source}: frozen weights {not_shared[:4]} are not in the '
                'shared backbone')
        state = {
            k: v.to(self.device)
            for k, v in task['state_dict'].items()
        }
        overlap = [k for k in frozen if 'backbone.' + k in state]
        if overlap:
            raise TaskFileError(
                f'{source} carries frozen backbone weights {overlap[:4]}; '
                'task files hold only adapters and head.')
        for key in frozen:
            state['backbone.' + key] = self._frozen[key]
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as err:
            raise TaskFileError(
                f'{source}: the weights do not fit the model its config '
                f'builds: {err}') from err
        leftovers = [
            n for n, t in list(model.named_parameters()) +
            list(model.named_buffers()) if t.is_meta
        ]
        if leftovers:
            raise TaskFileError(
                f'{source}: no weights for {leftovers[:4]}')
        return model.to(self.device).eval()

    # ---------------------------------------------------------- inference
    def infer(self, video: Union[str, dict], task: str) -> ActionDataSample:
        """Run one task on a video through MMAction2's test pipeline.

        Args:
            video (str | dict): Video file, or a pipeline input dict.
            task (str): Task name.

        Returns:
            ActionDataSample: With ``pred_score`` (class probabilities or
            scores as the config's head averages them).
        """
        return inference_recognizer(self.model(task), video)

    def predict(self, video: Union[str, dict], task: str,
                topk: int = 5) -> List[tuple]:
        """Top-k (label, score) pairs of one task on a video."""
        sample = self.infer(video, task)
        return topk_labels(sample, self.labels(task), topk)

