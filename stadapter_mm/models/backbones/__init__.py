"""Backbones (registered in MMAction2's ``MODELS``): one per file."""
from .vit_clip_stadapter import ViTCLIPSTAdapter

__all__ = ['ViTCLIPSTAdapter']
