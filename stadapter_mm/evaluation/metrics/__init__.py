"""Evaluation metrics."""
from .bad_video_aware_metric import BadVideoAwareMetric
from .epic_kitchens_metric import EpicKitchensMetric

__all__ = ['BadVideoAwareMetric', 'EpicKitchensMetric']
