"""CLIP image-tower checkpoints: reading files and converting key layouts.

The backbone uses OpenAI's ``visual.*`` parameter names (without the
``visual.`` prefix), so OpenAI / open_clip files need only a prefix strip, and
Hugging Face ``CLIPModel`` / ``CLIPVisionModel`` files go through the explicit
rename table :data:`HF_RENAMES` (query, key and value projections are fused
into ``attn.in_proj_*``). The functions here are pure and shared by the
backbone's ``init_weights`` and ``tools/convert/clip_to_backbone.py``; they
import no model.
"""
from __future__ import annotations

import json
import math
import os.path as osp
import re
import zipfile
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .adapter_state import is_adapter_key
from .io import load_weights_only
from .torchscript import (TorchScriptReadError, is_torchscript_archive,
                          read_torchscript_weights)

StateDict = Dict[str, Tensor]

#: Keys of CLIP's image tower that a video classifier does not use.
OPENAI_UNUSED = ('proj', )

#: Hugging Face names (after ``vision_model.``) -> backbone names.
HF_RENAMES: Tuple[Tuple[str, str], ...] = (
    (r'^embeddings\.class_embedding$', 'class_embedding'),
    (r'^embeddings\.patch_embedding\.weight$', 'conv1.weight'),
    (r'^embeddings\.position_embedding\.weight$', 'positional_embedding'),
    (r'^pre_layrnorm\.(weight|bias)$', r'ln_pre.\1'),
    (r'^post_layernorm\.(weight|bias)$', r'ln_post.\1'),
    (r'^encoder\.layers\.(\d+)\.layer_norm1\.(weight|bias)$',
     r'transformer.resblocks.\1.ln_1.\2'),
    (r'^encoder\.layers\.(\d+)\.layer_norm2\.(weight|bias)$',
     r'transformer.resblocks.\1.ln_2.\2'),
    (r'^encoder\.layers\.(\d+)\.mlp\.fc1\.(weight|bias)$',
     r'transformer.resblocks.\1.mlp.c_fc.\2'),
    (r'^encoder\.layers\.(\d+)\.mlp\.fc2\.(weight|bias)$',
     r'transformer.resblocks.\1.mlp.c_proj.\2'),
    (r'^encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)$',
     r'transformer.resblocks.\1.attn.out_proj.\2'),
)
_HF_QKV = re.compile(
    r'^encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(weight|bias)$')
#: Hugging Face keys outside ``vision_model.`` that carry no image features.
_HF_UNUSED = re.compile(
    r'^(text_model\.|visual_projection\.|text_projection\.|logit_scale$|'
    r'vision_model\.embeddings\.position_ids$)')
_CONTAINER_KEYS = ('state_dict', 'model', 'module', 'model_state_dict')


class CheckpointError(ValueError):
    """A checkpoint that is not a usable CLIP image tower."""


def unwrap_container(obj: object) -> StateDict:
    """Return the tensor dict inside a checkpoint (``state_dict``/``model``).

    Args:
        obj: What ``torch.load`` returned.

    Returns:
        dict[str, Tensor]: The flat tensor mapping.
    """
    for _ in range(3):
        if isinstance(obj, dict) and not any(
                isinstance(v, Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _CONTAINER_KEYS if k in obj), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f'expected a dict of tensors, got {type(obj).__name__}')
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def detect_layout(state_dict: StateDict) -> str:
    """Name the key layout of a CLIP checkpoint.

    Returns:
        str: ``'openai'`` (OpenAI / open_clip, with or without ``visual.``),
        ``'hf'`` (Hugging Face ``CLIPModel``/``CLIPVisionModel``) or
        ``'mmaction'`` (a recognizer checkpoint with ``backbone.*`` keys).

    Raises:
        CheckpointError: If no CLIP image tower is recognised.
    """
    keys = state_dict.keys()
    if any(k.endswith('embeddings.patch_embedding.weight') for k in keys):
        return 'hf'
    if 'visual.conv1.weight' in keys or 'conv1.weight' in keys:
        return 'openai'
    if 'backbone.conv1.weight' in keys:
        return 'mmaction'
    sample = ', '.join(sorted(keys)[:5])
    raise CheckpointError(
        'no CLIP image tower found: expected OpenAI/open_clip keys '
        '("visual.conv1.weight") or Hugging Face keys '
        '("vision_model.embeddings.patch_embedding.weight"); the file has '
        f'{len(state_dict)} tensors, e.g. {sample}')


def openai_to_backbone(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """Convert OpenAI / open_clip keys to backbone keys.

    Args:
        state_dict: Full CLIP (``visual.*`` plus text tower) or image tower.

    Returns:
        tuple: (backbone state dict, list of ignored keys).
    """
    prefixed = 'visual.conv1.weight' in state_dict
    out: StateDict = {}
    ignored: List[str] = []
    for key, value in state_dict.items():
        if prefixed:
            if not key.startswith('visual.'):
                ignored.append(key)
                continue
            key = key[len('visual.'):]
        if key in OPENAI_UNUSED:
            ignored.append(('visual.' if prefixed else '') + key)
            continue
        out[key] = value
    return out, ignored


def backbone_to_openai(state_dict: StateDict,
                       prefix: str = 'visual.') -> StateDict:
    """Inverse of :func:`openai_to_backbone` (frozen CLIP keys only).

    Args:
        state_dict: Backbone state dict (adapter keys are dropped).
        prefix: Prefix to add, ``'visual.'`` for a full CLIP layout.
    """
    return {
        prefix + k: v
        for k, v in state_dict.items() if not is_adapter_key(k)
    }


def hf_to_backbone(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """Convert Hugging Face CLIP keys to backbone keys.

    Args:
        state_dict: ``CLIPModel``, ``CLIPVisionModel`` or
            ``CLIPVisionModelWithProjection`` state dict.

    Returns:
        tuple: (backbone state dict, list of ignored keys).

    Raises:
        CheckpointError: For a vision key with no known counterpart, or a
            layer missing one of its q/k/v projections.
    """
    out: StateDict = {}
    ignored: List[str] = []
    qkv: Dict[Tuple[str, str], Dict[str, Tensor]] = {}
    for full_key, value in state_dict.items():
        if _HF_UNUSED.match(full_key):
            ignored.append(full_key)
            continue
        key = full_key[len('vision_model.'):] if full_key.startswith(
            'vision_model.') else full_key
        match = _HF_QKV.match(key)
        if match:
            layer, which, kind = match.groups()
            qkv.setdefault((layer, kind), {})[which] = value
            continue
        for pattern, repl in HF_RENAMES:
            if re.match(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            raise CheckpointError(
                f'unknown Hugging Face CLIP key {full_key!r}')
    for (layer, kind), parts in sorted(qkv.items()):
        if set(parts) != {'q', 'k', 'v'}:
            raise CheckpointError(
                f'layer {layer} lacks {sorted({"q", "k", "v"} - set(parts))} '
                f'projection {kind}')
        out[f'transformer.resblocks.{layer}.attn.in_proj_{kind}'] = torch.cat(
            [parts['q'], parts['k'], parts['v']], dim=0)
    return out, ignored


def to_backbone_state_dict(obj: object) -> Tuple[StateDict, List[str]]:
    """Convert any supported checkpoint object to backbone keys.

    Args:
        obj: A loaded checkpoint (dict of tensors or a container of one).

    Returns:
        tuple: (backbone state dict, list of ignored keys).
    """
    state_dict = unwrap_container(obj)
    layout = detect_layout(state_dict)
    if layout == 'hf':
        return hf_to_backbone(state_dict)
    if layout == 'mmaction':
        out = {
            k[len('backbone.'):]: v
            for k, v in state_dict.items() if k.startswith('backbone.')
        }
        return out, [k for k in state_dict if not k.startswith('backbone.')]
    return openai_to_backbone(state_dict)


def infer_arch(state_dict: StateDict) -> Dict[str, int]:
    """Read the architecture of a backbone-layout state dict.

    Returns:
        dict: ``width``, ``layers``, ``patch_size`` and ``grid`` (patches per
        side of the positional embedding).
    """
    try:
        conv = state_dict['conv1.weight']
        pos = state_dict['positional_embedding']
    except KeyError as err:
        raise CheckpointError(
            f'CLIP image tower is incomplete: missing {err}') from None
    layers = {
        int(m.group(1))
        for k in state_dict
        for m in [re.match(r'transformer\.resblocks\.(\d+)\.', k)] if m
    }
    return dict(
        width=int(conv.shape[0]),
        layers=len(layers),
        patch_size=int(conv.shape[-1]),
        grid=int(round(math.sqrt(pos.shape[0] - 1))))


def resize_pos_embed(pos_embed: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Bicubically resize a ``(1 + g*g, D)`` positional embedding.

    Args:
        pos_embed (Tensor): Class-token row followed by a square grid.
        grid (tuple[int, int]): Target (H, W) patch grid.

    Returns:
        Tensor: ``(1 + H*W, D)``, same dtype as the input.
    """
    old = int(round(math.sqrt(pos_embed.shape[0] - 1)))
    if old * old != pos_embed.shape[0] - 1:
        raise CheckpointError(
            f'positional embedding with {pos_embed.shape[0] - 1} patch rows '
            'is not a square grid')
    if (old, old) == tuple(grid):
        return pos_embed
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    patch_pos = patch_pos.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(
        patch_pos.float(), size=tuple(grid), mode='bicubic',
        align_corners=False).to(pos_embed.dtype)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)
    return torch.cat([cls_pos, patch_pos], dim=0)


def check_clip_arch(state_dict: StateDict, path: str, width: int,
                    layers: int, patch_size: int,
                    mlp_act: str = 'quick_gelu') -> None:
    """Check that a backbone-layout CLIP tower has the expected shape.

    Args:
        state_dict: Output of :func:`load_clip_backbone_weights`.
        path (str): The file, for messages (and its Hugging Face config).
        width, layers, patch_size (int): What the model expects.
        mlp_act (str): The model's MLP activation, checked against a
            Hugging Face ``config.json`` beside the file if there is one.

    Raises:
        CheckpointError: Naming what differs and what to pick instead.
    """
    found = infer_arch(state_dict)
    want = dict(width=width, layers=layers, patch_size=patch_size)
    diff = {k: (found[k], v) for k, v in want.items() if found[k] != v}
    if diff:
        details = ', '.join(f'{k} {a} vs {b}' for k, (a, b) in diff.items())
        raise CheckpointError(
            f'{path} holds a CLIP ViT of another architecture '
            f'(checkpoint vs model: {details}); pick the matching '
            f'backbone arch (file: width {found["width"]}, '
            f'{found["layers"]} layers, patch {found["patch_size"]}).')
    hf_cfg = read_hf_vision_config(path)
    if hf_cfg and hf_cfg.get('hidden_act', mlp_act) != mlp_act:
        raise CheckpointError(
            f'{path} was trained with hidden_act={hf_cfg["hidden_act"]!r} '
            f'but the backbone uses {mlp_act!r}; set arch=dict(..., '
            'mlp_act=...) to match.')


def check_clip_keys(state_dict: StateDict, expected: List[str],
                    path: str) -> None:
    """Check that a CLIP tower has exactly the expected keys.

    Args:
        state_dict: Backbone-layout CLIP weights.
        expected (list[str]): Keys the model takes from CLIP (its parameters
            but the adapters).
        path (str): The file, for messages.

    Raises:
        CheckpointError: For keys the model lacks or the file lacks.
    """
    own = set(expected)
    unexpected = [k for k in state_dict if k not in own]
    if unexpected:
        raise CheckpointError(
            f'{path}: {len(unexpected)} keys match no backbone parameter, '
            f'e.g. {unexpected[:5]}')
    missing = [k for k in expected if k not in state_dict]
    if missing:
        raise CheckpointError(
            f'{path}: the CLIP image tower lacks {len(missing)} weights, '
            f'e.g. {missing[:5]}')


def _hf_weight_file(directory: str) -> str:
    for name in ('model.safetensors', 'pytorch_model.bin'):
        if osp.isfile(osp.join(directory, name)):
            return osp.join(directory, name)
    raise CheckpointError(
        f'{directory} is a directory without model.safetensors or '
        'pytorch_model.bin (a Hugging Face save_pretrained folder)')


def read_hf_vision_config(path: str) -> Optional[dict]:
    """The vision part of a Hugging Face ``config.json`` beside ``path``."""
    directory = path if osp.isdir(path) else osp.dirname(path)
    cfg_file = osp.join(directory, 'config.json')
    if not osp.isfile(cfg_file):
        return None
    with open(cfg_file) as f:
        cfg = json.load(f)
    return cfg.get('vision_config', cfg)


def load_checkpoint_file(path: str, trust_torchscript: bool = False) -> object:
    """Read a CLIP checkpoint file without running code from it.

    Supports OpenAI TorchScript archives (read as data), ``torch.save`` files
    (``weights_only=True``), ``.safetensors`` and Hugging Face
    ``save_pretrained`` folders.

    Args:
        path (str): File or folder.
        trust_torchscript (bool): Allow ``torch.jit.load`` for a TorchScript
            archive that cannot be read as plain data. Only for files you
            trust: it runs the archive's code. Defaults to False.

    Returns:
        object: The loaded mapping.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is truncated or not a checkpoint.
    """
    if not osp.exists(path):
        raise FileNotFoundError(
            f'CLIP checkpoint {path!r} does not exist; set the backbone\'s '
            'init_cfg=dict(type="Pretrained", checkpoint=...) to a CLIP file '
            '(e.g. OpenAI ViT-B-16.pt or a Hugging Face model folder).')
    if osp.isdir(path):
        path = _hf_weight_file(path)
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path} is empty (0 bytes)')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        try:
            return load_file(path, device='cpu')
        except Exception as err:  # safetensors raises its own error types
            raise CheckpointError(
                f'{path} is not a readable safetensors file '
                f'(truncated or corrupt?): {err}') from err
    if zipfile.is_zipfile(path) and is_torchscript_archive(path):
        try:
            return read_torchscript_weights(path)
        except (TorchScriptReadError, zipfile.BadZipFile, KeyError) as err:
            if not trust_torchscript:
                raise CheckpointError(
                    f'{path} is a TorchScript archive that cannot be read as '
                    f'plain weights ({err}). Loading it would execute its '
                    'code: pass trust_torchscript=True only if you trust '
                    'the file.') from err
            return torch.jit.load(path, map_location='cpu').state_dict()
    return load_weights_only(
        path, CheckpointError, 'a checkpoint: it is truncated, corrupt or not '
        'a PyTorch/safetensors file')


def load_clip_backbone_weights(
        path: str,
        trust_torchscript: bool = False) -> Tuple[StateDict, List[str]]:
    """Load a CLIP file of any supported format in backbone layout.

    Returns:
        tuple: (backbone state dict, ignored keys).
    """
    state_dict, ignored = to_backbone_state_dict(
        load_checkpoint_file(path, trust_torchscript=trust_torchscript))
    return state_dict, ignored
