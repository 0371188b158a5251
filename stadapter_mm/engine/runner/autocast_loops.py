"""Validation/test loops under fp16 autocast on CUDA and fp32 elsewhere.

The official evaluation runs the model under ``torch.cuda.amp.autocast``
(``main.py`` of linziyi96/st-adapter, ``evaluate``). mmengine's loops take
``fp16=True``, but on a CPU-only machine that means bfloat16 autocast; a
config cannot test for CUDA itself, so these loops decide when built.
"""
from __future__ import annotations

import torch
from mmengine.registry import LOOPS
from mmengine.runner import TestLoop, ValLoop


class _CudaAutocastMixin:
    """Sets ``fp16`` to "CUDA is available" unless the config gives it."""

    def __init__(self, runner, dataloader, evaluator, **kwargs) -> None:
        kwargs.setdefault('fp16', torch.cuda.is_available())
        super().__init__(runner, dataloader, evaluator, **kwargs)


@LOOPS.register_module()
class CudaAutocastValLoop(_CudaAutocastMixin, ValLoop):
    """``ValLoop`` under fp16 autocast on CUDA, fp32 elsewhere.

    Example:
        >>> val_cfg = dict(type='CudaAutocastValLoop')
    """


@LOOPS.register_module()
class CudaAutocastTestLoop(_CudaAutocastMixin, TestLoop):
    """``TestLoop`` under fp16 autocast on CUDA, fp32 elsewhere.

    Example:
        >>> test_cfg = dict(type='CudaAutocastTestLoop')
    """
