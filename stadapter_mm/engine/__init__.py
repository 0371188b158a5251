"""Engine parts of stadapter-mm: runner hooks and optimizer wrappers.

Importing this package registers :class:`AtomicCheckpointHook`,
:class:`BadVideoReportHook`, :class:`FrozenParamHook` and
:class:`RandomStateHook` in MMAction2's ``HOOKS``, ``CudaAmpOptimWrapper``
in ``OPTIM_WRAPPERS``, the CUDA-autocast evaluation loops in ``LOOPS`` and
``WarmupCosineLR`` in ``PARAM_SCHEDULERS``.
"""
from .hooks import (AtomicCheckpointHook, BadVideoReportHook, FrozenParamHook,
                    RandomStateHook)
from .optimizers import CudaAmpOptimWrapper
from .runner import CudaAutocastTestLoop, CudaAutocastValLoop
from .schedulers import WarmupCosineLR

__all__ = [
    'AtomicCheckpointHook', 'BadVideoReportHook', 'CudaAmpOptimWrapper',
    'CudaAutocastTestLoop', 'CudaAutocastValLoop', 'FrozenParamHook',
    'RandomStateHook', 'WarmupCosineLR'
]
