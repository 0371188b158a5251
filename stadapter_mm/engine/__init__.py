"""Engine parts of stadapter-mm: runner hooks.

Importing this package registers :class:`AtomicCheckpointHook`,
:class:`BadVideoReportHook` and :class:`FrozenParamHook` in MMAction2's
``HOOKS``.
"""
from .hooks import AtomicCheckpointHook, BadVideoReportHook, FrozenParamHook

__all__ = ['AtomicCheckpointHook', 'BadVideoReportHook', 'FrozenParamHook']
