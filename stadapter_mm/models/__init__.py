"""Models of stadapter-mm: backbones, heads, layers.

Importing this package registers the backbones and heads in MMAction2's
``MODELS``.
"""
from ..checkpoints.clip_formats import CheckpointError
from .arch import CLIP_ARCHS, resolve_arch
from .backbones import MMPretrainSTAdapter, ViTCLIPSTAdapter
from .heads import VerbNounHead
from .layers import STConvAdapter, resolve_adapter_cfg
from .utils import (AdapterBackboneMixin, freeze_all_but, param_names_of_type,
                    trainable_param_names)

__all__ = [
    'AdapterBackboneMixin', 'CLIP_ARCHS', 'CheckpointError',
    'MMPretrainSTAdapter', 'STConvAdapter', 'VerbNounHead', 'ViTCLIPSTAdapter',
    'freeze_all_but', 'param_names_of_type', 'resolve_adapter_cfg',
    'resolve_arch', 'trainable_param_names'
]
