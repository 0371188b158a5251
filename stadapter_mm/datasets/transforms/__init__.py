"""Data transforms registered in MMAction2's ``TRANSFORMS``.

The frame samplers, float resizes and three-crop reproduce the official
ST-Adapter loader (docs/recipes.md lists where each one is used).
"""
from .float_resize import FloatRandomResizedCrop, FloatShortSideResize
from .frame_sampling import FixedStrideSample, UniformSegmentSample
from .three_crop import LongSideThreeCrop
from .video_rand_augment import VideoRandAugment

__all__ = [
    'FixedStrideSample', 'FloatRandomResizedCrop', 'FloatShortSideResize',
    'LongSideThreeCrop', 'UniformSegmentSample', 'VideoRandAugment'
]
