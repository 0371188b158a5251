"""Models of stadapter-mm."""
from ..checkpoints.clip_formats import CheckpointError
from .st_adapter import STConvAdapter
from .vit_clip_stadapter import ViTCLIPSTAdapter

__all__ = ['CheckpointError', 'STConvAdapter', 'ViTCLIPSTAdapter']
