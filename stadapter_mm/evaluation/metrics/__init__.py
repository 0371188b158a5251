"""Evaluation metrics."""
from .bad_video_aware_metric import BadVideoAwareMetric

__all__ = ['BadVideoAwareMetric']
