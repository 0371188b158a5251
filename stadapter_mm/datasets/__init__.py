"""Datasets, transforms and test-view helpers of stadapter-mm.

Importing this package registers :class:`VideoRandAugment` and
:class:`SegmentFrameRange` in MMAction2's ``TRANSFORMS`` and
:class:`RobustVideoDataset` and :class:`EpicKitchensDataset` in its
``DATASETS``.
"""
from .epic_kitchens import EpicKitchensDataset, SegmentFrameRange
from .robust_video_dataset import RobustVideoDataset
from .transforms import VideoRandAugment
from .views import parse_views, set_test_views

__all__ = [
    'EpicKitchensDataset', 'RobustVideoDataset', 'SegmentFrameRange',
    'VideoRandAugment', 'parse_views', 'set_test_views'
]
