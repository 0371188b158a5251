"""Datasets, transforms and test-view helpers of stadapter-mm.

Importing this package registers :class:`VideoRandAugment` in MMAction2's
``TRANSFORMS`` and :class:`RobustVideoDataset` in its ``DATASETS``.
"""
from .robust_video_dataset import RobustVideoDataset
from .transforms import VideoRandAugment
from .views import parse_views, set_test_views

__all__ = [
    'RobustVideoDataset', 'VideoRandAugment', 'parse_views', 'set_test_views'
]
