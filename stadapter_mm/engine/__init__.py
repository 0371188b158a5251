"""Engine parts of stadapter-mm: runner hooks and optimizer wrappers.

Importing this package registers :class:`AtomicCheckpointHook`,
:class:`BadVideoReportHook` and :class:`FrozenParamHook` in MMAction2's
``HOOKS`` and ``CudaAmpOptimWrapper`` in its ``OPTIM_WRAPPERS``.
"""
from .hooks import AtomicCheckpointHook, BadVideoReportHook, FrozenParamHook
from .optimizers import CudaAmpOptimWrapper

__all__ = [
    'AtomicCheckpointHook', 'BadVideoReportHook', 'CudaAmpOptimWrapper',
    'FrozenParamHook'
]
