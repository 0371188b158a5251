"""Engine parts of stadapter-mm: crash-safe checkpoints, hooks, metrics.

Importing this package registers the ``'atomic_local'`` file backend,
:class:`AtomicCheckpointHook`, :class:`BadVideoReportHook` (MMAction2
``HOOKS``) and :class:`BadVideoAwareMetric` (MMAction2 ``METRICS``).
"""
from .checkpoint import (AtomicLocalBackend, atomic_write_bytes,
                         atomic_write_text, stale_temp_files)
from .hooks import AtomicCheckpointHook, BadVideoReportHook
from .metrics import BadVideoAwareMetric

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'BadVideoAwareMetric',
    'BadVideoReportHook', 'atomic_write_bytes', 'atomic_write_text',
    'stale_temp_files'
]
