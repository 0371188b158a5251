"""CLIP image tower: our backbone key layout -> MMPretrain's ViT layout.

:func:`~stadapter_mm.checkpoints.clip_formats.load_clip_backbone_weights`
reads every CLIP format (OpenAI TorchScript archives and state dicts,
open_clip, Hugging Face) into the key layout of ``ViTCLIPSTAdapter``
(OpenAI's ``visual.*`` names without ``visual.``). The explicit rename table
here turns that into the layout of MMPretrain's ``VisionTransformer`` built
with ``pre_norm=True``: the renames of MMPretrain's own
``tools/model_converters/openai-clip_to_mmpretrain-clip.py``, whose
``visual.*`` output this reproduces key for key and tensor for tensor (a
test checks it). The functions are pure and import no model.

Example:
    >>> from stadapter_mm.checkpoints import load_clip_backbone_weights
    >>> from stadapter_mm.checkpoints.mmpretrain_clip import (
    >>>     clip_to_mmpretrain)
    >>> tower, _ = load_clip_backbone_weights('ViT-B-16.pt')
    >>> state_dict = clip_to_mmpretrain(tower, prefix='visual.')
"""
from __future__ import annotations

from typing import Dict, Tuple

from torch import Tensor

from .clip_formats import CheckpointError

StateDict = Dict[str, Tensor]

#: Our key -> MMPretrain's, outside the blocks (exact key or module prefix).
CLIP_TO_MMPRETRAIN: Tuple[Tuple[str, str], ...] = (
    ('conv1.', 'patch_embed.projection.'),
    ('class_embedding', 'cls_token'),
    ('positional_embedding', 'pos_embed'),
    ('ln_pre.', 'pre_norm.'),
    ('ln_post.', 'ln1.'),
)
#: Block prefixes: ``transformer.resblocks.{i}.`` -> ``layers.{i}.``.
CLIP_BLOCKS, MMPRETRAIN_BLOCKS = 'transformer.resblocks.', 'layers.'
#: Names inside a block (exact name or module prefix).
CLIP_BLOCK_TO_MMPRETRAIN: Tuple[Tuple[str, str], ...] = (
    ('ln_1.', 'ln1.'),
    ('ln_2.', 'ln2.'),
    ('attn.in_proj_weight', 'attn.qkv.weight'),
    ('attn.in_proj_bias', 'attn.qkv.bias'),
    ('attn.out_proj.', 'attn.proj.'),
    ('mlp.c_fc.', 'ffn.layers.0.0.'),
    ('mlp.c_proj.', 'ffn.layers.1.'),
)
#: Tokens MMPretrain keeps with leading batch (and token) dimensions.
_UNSQUEEZED = {'class_embedding': 2, 'positional_embedding': 1}


def _rename(name: str, table: Tuple[Tuple[str, str], ...]) -> str:
    """Apply the first entry of ``table`` that matches ``name``.

    Raises:
        KeyError: If no entry matches.
    """
    for old, new in table:
        if name == old or old.endswith('.') and name.startswith(old):
            return new + name[len(old):]
    raise KeyError(name)


def rename_key(key: str) -> str:
    """MMPretrain's name for one key of our CLIP backbone layout.

    Args:
        key (str): E.g. ``'transformer.resblocks.3.mlp.c_fc.weight'``.

    Returns:
        str: E.g. ``'layers.3.ffn.layers.0.0.weight'``.

    Raises:
        CheckpointError: If the key is not part of CLIP's image tower (an
            ST-Adapter, the text-aligned ``proj``, a text-tower key).
    """
    try:
        if key.startswith(CLIP_BLOCKS):
            index, name = key[len(CLIP_BLOCKS):].split('.', 1)
            if not index.isdigit():
                raise KeyError(key)
            return (f'{MMPRETRAIN_BLOCKS}{index}.'
                    f'{_rename(name, CLIP_BLOCK_TO_MMPRETRAIN)}')
        return _rename(key, CLIP_TO_MMPRETRAIN)
    except (KeyError, ValueError):
        raise CheckpointError(
            f'{key!r} is not a key of the CLIP image tower in backbone '
            'layout (conv1, class_embedding, positional_embedding, ln_pre, '
            'transformer.resblocks.*, ln_post); MMPretrain\'s '
            'VisionTransformer has no place for it') from None


def convert_tensor(key: str, value: Tensor) -> Tensor:
    """Reshape one tensor of our layout for MMPretrain (same values).

    The class token ``(D,)`` becomes ``(1, 1, D)`` and the positional
    embedding ``(L, D)`` becomes ``(1, L, D)``; every other tensor is kept.
    """
    for _ in range(_UNSQUEEZED.get(key, 0)):
        value = value.unsqueeze(0)
    return value


def clip_to_mmpretrain(state_dict: StateDict, prefix: str = '') -> StateDict:
    """Convert a CLIP image tower in backbone layout to MMPretrain's layout.

    Args:
        state_dict (dict[str, Tensor]): Keys as produced by
            ``load_clip_backbone_weights`` (ST-Adapter keys not allowed).
        prefix (str): Prefix for every output key; ``'visual.'`` gives the
            ``visual.*`` keys of MMPretrain's own CLIP converter.

    Returns:
        dict[str, Tensor]: Keys of MMPretrain's ``VisionTransformer``
        (``pre_norm=True``), in the input's order.

    Raises:
        CheckpointError: If a key has no MMPretrain counterpart.
    """
    return {
        prefix + rename_key(key): convert_tensor(key, value)
        for key, value in state_dict.items()
    }
