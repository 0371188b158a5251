"""Checkpoints written by the official ST-Adapter code, in MMAction2 layout.

The official training script (github.com/linziyi96/st-adapter, ``main.py``)
saves ``{'model': state_dict, 'optimizer': ..., 'lr_sched': ...,
'loss_scaler': ..., 'next_epoch': ...}`` where ``state_dict`` holds only the
parameters that train: the adapters
(``transformer.resblocks.{i}.adapter_pre_{attn,mlp}.{fc1,conv,fc2}.*``) and
the linear classifier ``fc.*``. Its frozen image tower uses OpenAI CLIP's
``visual.*`` names without the prefix, like our backbone, so the conversion
is a rename: ``fc.*`` becomes ``cls_head.fc_cls.*`` and every other key gets a
``backbone.`` prefix. The frozen weights come from the CLIP file the model was
trained from (or from the official file itself when it is a full state dict).

Everything here is pure (dicts of tensors in, dicts of tensors out) except
:func:`read_official_checkpoint`; the command line lives in
``tools/convert/official_to_mmaction.py``.
"""
from __future__ import annotations

import os.path as osp
import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from .adapter_state import ADAPTER_KEY, BACKBONE_PREFIX, is_adapter_key
from .clip_formats import CheckpointError, infer_arch, resize_pos_embed
from .io import error_summary

StateDict = Dict[str, Tensor]

#: Official classifier key -> MMAction2 ``TimeSformerHead`` key.
HEAD_RENAMES = {'fc.weight': 'cls_head.fc_cls.weight',
                'fc.bias': 'cls_head.fc_cls.bias'}
#: Keys of the official image tower besides the transformer blocks.
_STEM_KEYS = ('conv1.weight', 'class_embedding', 'positional_embedding',
              'ln_pre.weight', 'ln_pre.bias', 'ln_post.weight',
              'ln_post.bias')
_BLOCK_KEY = re.compile(
    r'^transformer\.resblocks\.(\d+)\.(attn\.in_proj_weight|attn\.in_proj_bias'
    r'|attn\.out_proj\.(weight|bias)|ln_[12]\.(weight|bias)'
    r'|mlp\.c_(fc|proj)\.(weight|bias))$')


def read_official_checkpoint(path: str, trust_pickle: bool = False
                             ) -> StateDict:
    """Read the model weights of an official ST-Adapter checkpoint.

    Args:
        path (str): A ``checkpoint-N.pth`` written by the official code (a
            dict with a ``'model'`` entry) or a bare state dict.
        trust_pickle (bool): Fall back to ``torch.load(weights_only=False)``
            when the file holds objects other than plain data. That runs code
            from the file: only for files you trust. Defaults to False.

    Returns:
        dict[str, Tensor]: The model state dict, ``module.`` prefixes removed.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file cannot be read or holds no model.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'official ST-Adapter checkpoint {path!r} does not exist')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle raises many error types
        if not trust_pickle:
            raise CheckpointError(
                f'cannot read {path} as plain data ({error_summary(err)}). '
                'If the file is a checkpoint you trust that pickles other objects, '
                'pass --trust-pickle (it runs code from the file).') from err
        obj = torch.load(path, map_location='cpu', weights_only=False)
    if isinstance(obj, Mapping) and 'model' in obj and isinstance(
            obj['model'], Mapping):
        obj = obj['model']
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f'{path} holds no model state dict: expected the official '
            "{'model': state_dict, ...} file or a bare state dict")
    state_dict = {}
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            continue
        state_dict[key[len('module.'):] if key.startswith('module.') else
                   key] = value
    return state_dict


def official_layout(state_dict: Mapping[str, Tensor]) -> dict:
    """Describe the adapters and classifier of an official state dict.

    Args:
        state_dict: Official-layout state dict (trainable-only or full).

    Returns:
        dict: ``positions`` (tuple of ``'attn'``/``'mlp'``), ``blocks``
        (sorted block indices), ``width`` (adapter bottleneck),
        ``kernel_size`` (kt, kh, kw), ``in_channels`` (token width),
        ``num_classes``, ``feat_channels`` (classifier input) and
        ``has_frozen`` (whether the image tower is in the file).

    Raises:
        CheckpointError: If the file has no adapters or no classifier, or
            adapters whose shapes or placement disagree with each other.
    """
    adapters: Dict[Tuple[int, str], Dict[str, Tensor]] = {}
    for key, value in state_dict.items():
        match = ADAPTER_KEY.match(key)
        if match:
            block, pos, layer, kind = match.groups()
            adapters.setdefault((int(block), pos), {})[
                f'{layer}.{kind}'] = value
    if not adapters:
        raise CheckpointError(
            'no ST-Adapter weights found (expected keys like '
            '"transformer.resblocks.0.adapter_pre_mlp.fc1.weight"); is this '
            'a checkpoint of the official ST-Adapter code?')
    missing_head = [k for k in HEAD_RENAMES if k not in state_dict]
    if missing_head:
        raise CheckpointError(
            f'the checkpoint has no classifier {missing_head}: the official '
            'model ends with a linear layer named "fc".')
    need = {'fc1.weight', 'fc1.bias', 'conv.weight', 'conv.bias',
            'fc2.weight', 'fc2.bias'}
    shapes = set()
    for (block, pos), parts in sorted(adapters.items()):
        lack = need - set(parts)
        if lack:
            raise CheckpointError(
                f'adapter_pre_{pos} of block {block} lacks {sorted(lack)}')
        shapes.add((tuple(parts['fc1.weight'].shape),
                    tuple(parts['conv.weight'].shape[2:])))
    if len(shapes) != 1:
        raise CheckpointError(
            f'adapters of different shapes in one checkpoint: {shapes}')
    (width, in_channels), kernel = next(iter(shapes))
    blocks = sorted({b for b, _ in adapters})
    positions = tuple(p for p in ('attn', 'mlp')
                      if any(q == p for _, q in adapters))
    uneven = [(b, p) for b in blocks for p in positions
              if (b, p) not in adapters]
    if uneven:
        raise CheckpointError(
            f'adapters are not placed uniformly (missing {uneven[:4]}): the '
            'official code puts the same adapters in each adapted block.')
    fc_weight = state_dict['fc.weight']
    return dict(
        positions=positions,
        blocks=blocks,
        width=int(width),
        kernel_size=tuple(int(k) for k in kernel),
        in_channels=int(in_channels),
        num_classes=int(fc_weight.shape[0]),
        feat_channels=int(fc_weight.shape[1]),
        has_frozen='conv1.weight' in state_dict)


def describe_layout(layout: Mapping) -> str:
    """A short readable adapter layout.

    Example: ``'12x384 before mlp in blocks 0-11, kernel (3, 1, 1)'``.
    """
    count = len(layout['blocks']) * len(layout['positions'])
    kernel = tuple(layout['kernel_size'])
    return (f'{count}x{layout["width"]} before '
            f'{"+".join(layout["positions"])} in blocks '
            f'{_ranges(layout["blocks"])}, kernel {kernel}')


def _ranges(indices: List[int]) -> str:
    if indices and indices == list(range(indices[0], indices[-1] + 1)):
        return f'{indices[0]}-{indices[-1]}'
    return ','.join(str(i) for i in indices)


def official_to_mmaction(state_dict: Mapping[str, Tensor]) -> StateDict:
    """Rename official keys to a ``Recognizer3D`` state dict.

    Args:
        state_dict: Official-layout state dict.

    Returns:
        dict[str, Tensor]: ``backbone.*`` and ``cls_head.fc_cls.*`` keys.

    Raises:
        CheckpointError: For a key that belongs to neither the image tower,
            the adapters nor the classifier.
    """
    out: StateDict = {}
    unknown = []
    for key, value in state_dict.items():
        if key in HEAD_RENAMES:
            out[HEAD_RENAMES[key]] = value
        elif (key in _STEM_KEYS or is_adapter_key(key)
              or _BLOCK_KEY.match(key)):
            out[BACKBONE_PREFIX + key] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f'{len(unknown)} keys of the official checkpoint have no '
            f'MMAction2 counterpart, e.g. {unknown[:5]}')
    return out


def mmaction_to_official(state_dict: Mapping[str, Tensor],
                         trainable_only: bool = True) -> StateDict:
    """Inverse of :func:`official_to_mmaction`.

    Args:
        state_dict: A ``Recognizer3D`` state dict with our backbone.
        trainable_only (bool): Keep only adapters and classifier, as the
            official ``save_model`` does. Defaults to True.

    Returns:
        dict[str, Tensor]: Official-layout state dict.
    """
    inverse = {v: k for k, v in HEAD_RENAMES.items()}
    out: StateDict = {}
    for key, value in state_dict.items():
        if key in inverse:
            out[inverse[key]] = value
        elif key.startswith(BACKBONE_PREFIX):
            name = key[len(BACKBONE_PREFIX):]
            if trainable_only and not is_adapter_key(name):
                continue
            out[name] = value
    return out


def merge_clip_weights(converted: Mapping[str, Tensor],
                       clip_backbone: Optional[Mapping[str, Tensor]],
                       grid: Optional[Tuple[int, int]] = None
                       ) -> Tuple[StateDict, int]:
    """Complete converted adapters and head with frozen CLIP weights.

    Weights already in ``converted`` (a full official state dict) win; the
    CLIP file fills the rest.

    Args:
        converted: Output of :func:`official_to_mmaction`.
        clip_backbone: CLIP image tower in backbone layout (from
            :func:`~stadapter_mm.checkpoints.clip_formats.
            load_clip_backbone_weights`), or None when ``converted`` is full.
        grid (tuple[int, int], optional): Patch grid of the target model; the
            CLIP positional embedding is resized to it if needed.

    Returns:
        tuple: (full state dict, number of tensors taken from CLIP).

    Raises:
        CheckpointError: If frozen weights are missing and no CLIP weights
            are given, or the CLIP tower's width disagrees with the adapters.
    """
    out = dict(converted)
    have_frozen = BACKBONE_PREFIX + 'conv1.weight' in out
    if clip_backbone is None:
        if not have_frozen:
            raise CheckpointError(
                'the official checkpoint holds only the trainable weights '
                '(adapters and fc); pass the CLIP file it was trained from '
                '(--clip ViT-B-16.pt) to supply the frozen image tower.')
        return out, 0
    arch = infer_arch(dict(clip_backbone))
    fc1 = next((v for k, v in out.items()
                if is_adapter_key(k, BACKBONE_PREFIX)
                and k.endswith('.fc1.weight')), None)
    if fc1 is not None and fc1.shape[1] != arch['width']:
        raise CheckpointError(
            f'the CLIP file is a ViT of width {arch["width"]} '
            f'({arch["layers"]} layers, patch {arch["patch_size"]}) but the '
            f'official adapters expect width {fc1.shape[1]}: pass the CLIP '
            'weights the model was trained from (e.g. ViT-B-16.pt for '
            'ViT-B/16 checkpoints).')
    taken = 0
    for key, value in clip_backbone.items():
        full_key = BACKBONE_PREFIX + key
        if full_key in out:
            continue
        if key == 'positional_embedding' and grid is not None:
            value = resize_pos_embed(value, grid)
        out[full_key] = value
        taken += 1
    return out, taken


def check_against_model(state_dict: Mapping[str, Tensor],
                        layout: Mapping,
                        model: torch.nn.Module) -> None:
    """Check a converted state dict against a built recognizer.

    The model may live on the ``meta`` device (no memory, no init cost): only
    its structure and shapes are read.

    Args:
        state_dict: Converted, merged state dict.
        layout: Output of :func:`official_layout`.
        model: A ``Recognizer3D`` with a ``ViTCLIPSTAdapter`` backbone and a
            head with ``fc_cls``.

    Raises:
        CheckpointError: With the first disagreement found: adapter layout,
            activation, class count, feature width, then any missing,
            unexpected or mis-shaped key.
    """
    backbone = model.backbone
    adapter_cfg = getattr(backbone, 'adapter_cfg', None)
    if adapter_cfg is None:
        raise CheckpointError(
            'the config builds a backbone without adapters, but the '
            f'checkpoint has {describe_layout(layout)}: use the matching '
            'adapter setting (adapter="12x384" for the official K400 model, '
            '"24x384" for SSv2).')
    want = dict(positions=tuple(adapter_cfg['positions']),
                blocks=list(adapter_cfg['blocks']),
                width=int(adapter_cfg['width']),
                kernel_size=tuple(adapter_cfg['kernel_size']))
    have = {k: layout[k] for k in want}
    if dict(want, positions=tuple(sorted(want['positions']))) != dict(
            have, positions=tuple(sorted(have['positions']))):
        raise CheckpointError(
            f'adapter layout mismatch: the checkpoint has '
            f'{describe_layout(layout)}, the config builds '
            f'{describe_layout(dict(want))}. Pick the config of that release '
            '(configs/stadapter_vitb16_k400.py: 12x384 before the MLP; '
            'configs/stadapter_vitb16_ssv2.py: 24x384 before attention and '
            'MLP) or set model.backbone.adapter to match.')
    if adapter_cfg.get('act_cfg'):
        raise CheckpointError(
            f'the config adds an activation inside the adapters '
            f'({adapter_cfg["act_cfg"]}); the official adapters have none. '
            'Set adapter act_cfg=None.')
    head = model.cls_head
    num_classes = getattr(head, 'num_classes', None)
    if num_classes != layout['num_classes']:
        raise CheckpointError(
            f'class count mismatch: the checkpoint classifies '
            f'{layout["num_classes"]} classes, the config\'s head '
            f'{num_classes}. Set model.cls_head.num_classes='
            f'{layout["num_classes"]} (400 for Kinetics-400, 174 for SSv2).')
    if getattr(backbone, 'width', None) != layout['in_channels']:
        raise CheckpointError(
            f'the checkpoint is for a ViT of width {layout["in_channels"]}, '
            f'the config builds width {backbone.width}: pick the matching '
            'backbone arch.')
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f'converted weights do not match the model: missing '
            f'{len(missing)} (e.g. {missing[:4]}), unexpected '
            f'{len(unexpected)} (e.g. {unexpected[:4]}).')
    bad = [(k, tuple(state_dict[k].shape), tuple(v.shape))
           for k, v in expected.items()
           if tuple(state_dict[k].shape) != tuple(v.shape)]
    if bad:
        raise CheckpointError(
            f'{len(bad)} weights have another shape than the model expects '
            f'(key, checkpoint, model): {bad[:4]}')
