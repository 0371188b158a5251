"""Backbones (registered in MMAction2's ``MODELS``): one per file."""
from .mmpretrain_stadapter import MMPretrainSTAdapter
from .vit_clip_stadapter import ViTCLIPSTAdapter

__all__ = ['MMPretrainSTAdapter', 'ViTCLIPSTAdapter']
