"""Mixed precision on CUDA, fp32 elsewhere, decided when the wrapper is built.

mmengine's ``AmpOptimWrapper`` asserts on a machine without CUDA, and a config
cannot test for CUDA itself, so a config that wants AMP on GPUs and still
trains on a CPU-only machine names this builder instead::

    optim_wrapper = dict(
        type='CudaAmpOptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))

It is an ordinary ``OPTIM_WRAPPERS`` entry, so every tool that builds the
config's optimizer wrapper (``Runner.from_cfg``, MMAction2's and our
``tools/train.py``) trains with ``AmpOptimWrapper`` on CUDA and with a plain
``OptimWrapper`` (one log line says so) on a CPU-only machine. The object it
returns is one of mmengine's own classes, so checkpoints, ``--resume`` and
``auto_scale_lr`` behave exactly as with those.

bf16 autocast on CPUs without AVX512-BF16/AMX is about 20x slower than fp32,
which is why the CPU path is fp32 rather than CPU autocast.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import torch
from mmaction.registry import OPTIM_WRAPPERS
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

#: Arguments only ``AmpOptimWrapper`` takes (dropped for the fp32 wrapper).
_AMP_ONLY_ARGS = ('loss_scale', 'dtype', 'use_fsdp')


@OPTIM_WRAPPERS.register_module()
def CudaAmpOptimWrapper(  # noqa: N802 - a registered name, used like a class
        optimizer: torch.optim.Optimizer,
        loss_scale: Union[str, float, dict] = 'dynamic',
        dtype: Optional[Union[str, torch.dtype]] = None,
        **kwargs: Any) -> OptimWrapper:
    """Build ``AmpOptimWrapper`` when CUDA is available, else ``OptimWrapper``.

    Example:
        >>> optim_wrapper = dict(
        ...     type='CudaAmpOptimWrapper',
        ...     optimizer=dict(type='AdamW', lr=1e-3),
        ...     paramwise_cfg=dict(bias_decay_mult=0.0))

    Args:
        optimizer (torch.optim.Optimizer): The built optimizer (given by
            mmengine's optimizer-wrapper constructor).
        loss_scale (str | float | dict): As for ``AmpOptimWrapper``.
            Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype on CUDA, e.g.
            ``'bfloat16'``; None means fp16. Defaults to None.
        **kwargs: Other ``OptimWrapper`` arguments (``accumulative_counts``,
            ``clip_grad``) and ``use_fsdp``.

    Returns:
        OptimWrapper: ``AmpOptimWrapper`` on CUDA, ``OptimWrapper`` otherwise.
    """
    if torch.cuda.is_available():
        return AmpOptimWrapper(
            optimizer=optimizer, loss_scale=loss_scale, dtype=dtype, **kwargs)
    print_log(
        'CudaAmpOptimWrapper: CUDA is not available, training in fp32 '
        '(OptimWrapper) instead of mixed precision.',
        logger='current')
    for name in _AMP_ONLY_ARGS:
        kwargs.pop(name, None)
    return OptimWrapper(optimizer=optimizer, **kwargs)
