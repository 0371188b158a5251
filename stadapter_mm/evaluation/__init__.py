"""Evaluation parts of stadapter-mm.

Importing this package registers :class:`BadVideoAwareMetric` in MMAction2's
``METRICS``.
"""
from .metrics import BadVideoAwareMetric

__all__ = ['BadVideoAwareMetric']
