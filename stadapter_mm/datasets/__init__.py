"""Datasets, transforms and test-view helpers of stadapter-mm.

Importing this package registers :class:`VideoRandAugment` in MMAction2's
``TRANSFORMS`` and :class:`RobustVideoDataset` in its ``DATASETS``.
"""
from .robust_video_dataset import RobustVideoDataset
from .synthetic import SWEEP_CLASSES, SweepSpec, generate_sweep_dataset
from .transforms import VideoRandAugment
from .views import parse_views, set_test_views

__all__ = [
    'RobustVideoDataset', 'SWEEP_CLASSES', 'SweepSpec', 'VideoRandAugment',
    'generate_sweep_dataset', 'parse_views', 'set_test_views'
]
