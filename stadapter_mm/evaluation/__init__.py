"""Evaluation parts of stadapter-mm.

Importing this package registers :class:`BadVideoAwareMetric` and
:class:`EpicKitchensMetric` in MMAction2's ``METRICS``.
"""
from .metrics import BadVideoAwareMetric, EpicKitchensMetric

__all__ = ['BadVideoAwareMetric', 'EpicKitchensMetric']
