"""Models of stadapter-mm."""
from .clip_checkpoint import CheckpointError
from .st_adapter import STConvAdapter
from .vit_clip_stadapter import ViTCLIPSTAdapter

__all__ = ['CheckpointError', 'STConvAdapter', 'ViTCLIPSTAdapter']
