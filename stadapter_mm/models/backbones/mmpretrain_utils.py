"""Building and vetting the MMPretrain image model of ``MMPretrainSTAdapter``.

Pure helpers of :class:`~stadapter_mm.models.backbones.MMPretrainSTAdapter`:
build an MMPretrain backbone from its config, check that ST-Adapters fit it,
and swap its QuickGELU for the memory-efficient one.
"""
from __future__ import annotations

import copy
from typing import Dict, Tuple

from mmengine.registry import DefaultScope
from torch import nn

from ...compat import import_mmpretrain_models
from ..layers.clip_transformer import QuickGELU


def supported_types() -> Dict[type, Tuple[type, ...]]:
    """Verified MMPretrain image models and their block types."""
    from mmpretrain.models.backbones.vision_transformer import (
        TransformerEncoderLayer, VisionTransformer)
    from mmpretrain.models.backbones.vit_eva02 import (EVA02EndcoderLayer,
                                                        ViTEVA02)
    return {VisionTransformer: (TransformerEncoderLayer, ),
            ViTEVA02: (EVA02EndcoderLayer, )}


def swap_quick_gelu(model: nn.Module) -> int:
    """Replace MMPretrain's QuickGELU modules by ours, found by type.

    Both compute ``x * sigmoid(1.702 * x)`` with the same values (ours
    bit-identical in the forward pass). MMPretrain's runs in plain autograd,
    which keeps the input and the sigmoid (two MLP-hidden-sized tensors per
    block) for backward; ours keeps the input alone (see
    :class:`~stadapter_mm.models.layers.clip_transformer.QuickGELU`).
    Neither has parameters, so state dicts are unchanged.

    Args:
        model (nn.Module): An MMPretrain model (changed in place).

    Returns:
        int: How many modules were replaced.
    """
    from mmpretrain.models.utils.clip_generator_helper import \
        QuickGELU as MMPretrainQuickGELU
    found = [(parent, name) for parent in model.modules()
             for name, child in parent.named_children()
             if type(child) is MMPretrainQuickGELU]
    for parent, name in found:
        setattr(parent, name, QuickGELU())
    return len(found)


def build_image_model(cfg: dict) -> nn.Module:
    """Build an MMPretrain backbone from its config, in MMPretrain's scope.

    Args:
        cfg (dict): MMPretrain backbone config; ``type`` may carry the
            ``'mmpretrain.'`` prefix.

    Returns:
        nn.Module: The backbone (weights not loaded yet).
    """
    import_mmpretrain_models()  # registers MMPretrain's models
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    cfg = copy.deepcopy(dict(cfg))
    if not isinstance(cfg.get('type'), str):
        raise TypeError(
            'image_model must be an MMPretrain backbone config dict with a '
            f'string type, e.g. dict(type="VisionTransformer", arch="b"); '
            f'got type={cfg.get("type")!r}')
    cfg['type'] = cfg['type'].split('mmpretrain.', 1)[-1]
    if cfg['type'] not in MMPRETRAIN_MODELS.module_dict:
        raise ValueError(
            f'image_model type {cfg["type"]!r} is not an MMPretrain model; '
            'supported: VisionTransformer, ViTEVA02.')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(cfg)


def check_supported(model: nn.Module, type_name: str) -> None:
    """Check that ST-Adapters fit an MMPretrain image model.

    Args:
        model (nn.Module): The built image model.
        type_name (str): Its config ``type`` (named in the errors).

    Raises:
        ValueError: If the model type or one of its blocks is not a verified
            one, or the model has not exactly one class token.
    """
    supported = supported_types()
    names = ', '.join(t.__name__ for t in supported)
    blocks = supported.get(type(model))
    if blocks is None:
        raise ValueError(
            f'MMPretrain backbone {type_name!r} '
            f'({type(model).__name__}) cannot take ST-Adapters: it has '
            'no verified per-block residual token stream (a transformer '
            '`layers` list over a class-token sequence). Supported: '
            f'{names}. For MAE, DeiT or CLIP weights in MMPretrain layout '
            'use type="VisionTransformer" with the matching arch.')
    for i, block in enumerate(model.layers):
        if not isinstance(block, blocks):
            raise ValueError(
                f'{type_name}: block {i} is a {type(block).__name__}; '
                f'ST-Adapters support {[b.__name__ for b in blocks]} '
                'blocks (pre-norm residual attention and MLP branches).')
    if model.num_extra_tokens != 1:
        raise ValueError(
            f'{type_name} has {model.num_extra_tokens} extra tokens; '
            'ST-Adapters need exactly one class token before the patch '
            'tokens (with_cls_token=True).')
