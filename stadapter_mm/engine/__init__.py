"""Engine parts of stadapter-mm: crash-safe checkpoints, hooks, metrics.

Importing this package registers the ``'atomic_local'`` file backend,
:class:`AtomicCheckpointHook`, :class:`BadVideoReportHook` (MMAction2
``HOOKS``) and :class:`BadVideoAwareMetric` (MMAction2 ``METRICS``).
:func:`use_weights_only_loader` (call it once) makes mmengine load local
checkpoints with an explicit ``weights_only=True``.
"""
from .checkpoint import (AtomicLocalBackend, atomic_write_bytes,
                         atomic_write_text, load_local_weights_only,
                         stale_temp_files, use_weights_only_loader)
from .hooks import AtomicCheckpointHook, BadVideoReportHook
from .metrics import BadVideoAwareMetric

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'BadVideoAwareMetric',
    'BadVideoReportHook', 'atomic_write_bytes', 'atomic_write_text',
    'load_local_weights_only', 'stale_temp_files', 'use_weights_only_loader'
]
