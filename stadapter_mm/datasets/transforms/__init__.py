"""Data transforms registered in MMAction2's ``TRANSFORMS``."""
from .video_rand_augment import VideoRandAugment

__all__ = ['VideoRandAugment']
