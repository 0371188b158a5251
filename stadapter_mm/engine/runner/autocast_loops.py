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


def _cuda_fp16(kwargs: dict) -> dict:
    kwargs.setdefault('fp16', torch.cuda.is_available())
    return kwargs


@LOOPS.register_module()
class CudaAutocastValLoop(ValLoop):
    """``ValLoop`` with ``fp16`` = CUDA is available (unless given).

    Example:
        >>> val_cfg = dict(type='CudaAutocastValLoop')
    """

    def __init__(self, runner, dataloader, evaluator, **kwargs) -> None:
        super().__init__(runner, dataloader, evaluator, **_cuda_fp16(kwargs))


@LOOPS.register_module()
class CudaAutocastTestLoop(TestLoop):
    """``TestLoop`` with ``fp16`` = CUDA is available (unless given).

    Example:
        >>> test_cfg = dict(type='CudaAutocastTestLoop')
    """

    def __init__(self, runner, dataloader, evaluator, **kwargs) -> None:
        super().__init__(runner, dataloader, evaluator, **_cuda_fp16(kwargs))
