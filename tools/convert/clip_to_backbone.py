"""Turn any supported CLIP file into a plain image-tower state dict.

Reads OpenAI TorchScript archives or state dicts, open_clip files, Hugging
Face ``CLIPModel``/``CLIPVisionModel`` files or ``save_pretrained`` folders,
and MMAction2 checkpoints, without running code from them, and writes the
image tower (text tower and projection dropped) in one of two key layouts:

- ``--layout ours`` (default): ``ViTCLIPSTAdapter``'s. The output loads with
  ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` (or ``--prefix
  backbone.`` for ``load_from`` of a recognizer).
- ``--layout mmpretrain``: MMPretrain's ``VisionTransformer``
  (``pre_norm=True``), keys prefixed ``visual.`` by default, as the output of
  MMPretrain's ``openai-clip_to_mmpretrain-clip.py`` (which reads plain state
  dicts only, not OpenAI's TorchScript files). The output loads with
  ``image_model.init_cfg=dict(type='Pretrained', checkpoint=OUT,
  prefix='visual.')`` of ``MMPretrainSTAdapter``.

Example::

    python tools/convert/clip_to_backbone.py ViT-B-16.pt vitb16_backbone.pth
    python tools/convert/clip_to_backbone.py openai/clip-vit-base-patch16 \\
        vitb16.safetensors --resolution 288
    python tools/convert/clip_to_backbone.py ViT-B-16.pt \\
        vit-base-p16_openai-clip_mmpretrain.pth --layout mmpretrain
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import Dict, List, Optional

import torch
from torch import Tensor

from stadapter_mm.checkpoints.adapter_state import is_adapter_key
from stadapter_mm.checkpoints.clip_formats import (
    CheckpointError, infer_arch, load_clip_backbone_weights, resize_pos_embed)
from stadapter_mm.checkpoints.mmpretrain_clip import clip_to_mmpretrain

_DTYPES = {'keep': None, 'fp32': torch.float32, 'fp16': torch.float16}
#: Key prefix of each layout when ``--prefix`` is not given.
DEFAULT_PREFIX = {'ours': '', 'mmpretrain': 'visual.'}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CLIP file -> image-tower state dict for '
        'ViTCLIPSTAdapter or MMPretrain')
    parser.add_argument('src', help='CLIP file or Hugging Face folder')
    parser.add_argument('out', help='output .pth or .safetensors')
    parser.add_argument(
        '--layout', choices=sorted(DEFAULT_PREFIX), default='ours',
        help='key layout: ours (ViTCLIPSTAdapter) or mmpretrain '
        '(MMPretrain VisionTransformer with pre_norm=True; load with '
        'prefix="visual.") (default: ours)')
    parser.add_argument(
        '--prefix', default=None,
        help='key prefix, e.g. "backbone." (default: none for --layout '
        'ours, "visual." for --layout mmpretrain)')
    parser.add_argument('--dtype', choices=sorted(_DTYPES), default='keep',
                        help='tensor dtype of the output (default: keep)')
    parser.add_argument(
        '--resolution', type=int, default=None,
        help='resize the positional embedding for this input size')
    parser.add_argument('--trust-torchscript', action='store_true',
                        help='allow executing a TorchScript archive that '
                        'cannot be read as plain data')
    return parser.parse_args(argv)


def clip_to_backbone(src: str,
                     prefix: str = '',
                     dtype: Optional[torch.dtype] = None,
                     resolution: Optional[int] = None,
                     trust_torchscript: bool = False,
                     layout: str = 'ours') -> tuple:
    """Read ``src`` and return (state dict, arch info, ignored keys).

    Args:
        src (str): CLIP file or folder.
        prefix (str): Prefix for every key.
        dtype (torch.dtype, optional): Cast floating tensors to this dtype.
        resolution (int, optional): Input size to resize the positional
            embedding for; must be a multiple of the patch size.
        trust_torchscript (bool): See ``--trust-torchscript``.
        layout (str): ``'ours'`` or ``'mmpretrain'``, see ``--layout``.

    Returns:
        tuple: (dict[str, Tensor], dict from ``infer_arch``, list of ignored
        keys).
    """
    if layout not in DEFAULT_PREFIX:
        raise ValueError(f'layout must be one of {sorted(DEFAULT_PREFIX)}, '
                         f'not {layout!r}')
    state_dict, ignored = load_clip_backbone_weights(
        src, trust_torchscript=trust_torchscript)
    # An MMAction2 checkpoint also carries adapters: keep the frozen tower.
    ignored += [k for k in state_dict if is_adapter_key(k)]
    state_dict = {k: v for k, v in state_dict.items() if not is_adapter_key(k)}
    arch = infer_arch(state_dict)
    if resolution is not None:
        patch = arch['patch_size']
        if resolution % patch:
            raise CheckpointError(
                f'--resolution {resolution} is not a multiple of the patch '
                f'size {patch}')
        grid = (resolution // patch, ) * 2
        state_dict['positional_embedding'] = resize_pos_embed(
            state_dict['positional_embedding'], grid)
        arch['grid'] = grid[0]
    if layout == 'mmpretrain':
        state_dict = clip_to_mmpretrain(state_dict)
    out: Dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        out[prefix + key] = value.contiguous()
    return out, arch, ignored


def main(argv: Optional[List[str]] = None) -> Dict[str, Tensor]:
    args = parse_args(argv)
    prefix = DEFAULT_PREFIX[args.layout] if args.prefix is None \
        else args.prefix
    try:
        state_dict, arch, ignored = clip_to_backbone(
            args.src, prefix, _DTYPES[args.dtype], args.resolution,
            args.trust_torchscript, args.layout)
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from err
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if args.out.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(state_dict, args.out)
    else:
        torch.save(state_dict, args.out)
    print(f'{args.src}: ViT width {arch["width"]}, {arch["layers"]} layers, '
          f'patch {arch["patch_size"]}, grid {arch["grid"]}x{arch["grid"]}; '
          f'{len(state_dict)} tensors in {args.layout} layout written to '
          f'{args.out}, {len(ignored)} unused keys dropped.')
    if args.layout == 'mmpretrain':
        prefix_arg = f", prefix='{prefix}'" if prefix else ''
        print(f"MMPretrain's VisionTransformer(pre_norm=True) loads it with "
              f"init_cfg=dict(type='Pretrained', checkpoint='{args.out}'"
              f'{prefix_arg}).')
    return state_dict


if __name__ == '__main__':
    main()
