"""Convert an official ST-Adapter checkpoint into an MMAction2 checkpoint.

Example::

    python tools/convert/official_to_mmaction.py \\
        --official checkpoint-11.pth --clip ViT-B-16.pt \\
        --config configs/stadapter_vitb16_k400.py --out stadapter_k400.pth

The output is an mmengine checkpoint (``{'meta', 'state_dict'}``) that
``mmaction.apis.init_recognizer(config, out)`` and ``tools/test.py`` load.
With ``--config`` the weights are checked against the model the config builds
(adapter layout, class count, every key and shape) before anything is
written; the model is built on the ``meta`` device, so this costs no memory.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import stadapter_mm  # noqa: F401
from stadapter_mm.checkpoints.clip_formats import (
    CheckpointError, load_clip_backbone_weights)
from stadapter_mm.checkpoints.official import (
    BACKBONE_PREFIX, ADAPTER_KEY, check_against_model, describe_layout,
    merge_clip_weights, official_layout, official_to_mmaction,
    read_official_checkpoint)
from stadapter_mm.utils.cli import add_cfg_options, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Official ST-Adapter checkpoint -> MMAction2 checkpoint')
    parser.add_argument('--official', required=True,
                        help='checkpoint-N.pth written by the official code')
    parser.add_argument(
        '--clip', default=None,
        help='CLIP weights the model was trained from (OpenAI .pt, '
        'open_clip, Hugging Face file/folder); optional when the official '
        'file already holds the frozen image tower')
    parser.add_argument('--out', required=True, help='output .pth')
    parser.add_argument(
        '--config', default=None,
        help='MMAction2 config the checkpoint is for; checks the converted '
        'weights against the model it builds (recommended)')
    add_cfg_options(parser)
    parser.add_argument(
        '--trainable-only', action='store_true',
        help='write only adapters and head (the backbone then reads the '
        'frozen weights from its init_cfg CLIP file at load time)')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='allow unpickling objects in --official')
    parser.add_argument('--trust-torchscript', action='store_true',
                        help='allow executing a TorchScript --clip file')
    return parser.parse_args(argv)


def build_meta_model(cfg: Config) -> torch.nn.Module:
    """Build the config's recognizer on the meta device (shapes only)."""
    from mmaction.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def convert(official: str,
            clip: Optional[str] = None,
            config: Optional[Config] = None,
            trainable_only: bool = False,
            trust_pickle: bool = False,
            trust_torchscript: bool = False) -> dict:
    """Convert; returns the mmengine checkpoint dict (not yet saved).

    Args:
        official (str): Official checkpoint file.
        clip (str, optional): CLIP weights file.
        config (Config, optional): Config to check against.
        trainable_only (bool): Drop the frozen image tower from the output.
        trust_pickle (bool): See ``--trust-pickle``.
        trust_torchscript (bool): See ``--trust-torchscript``.

    Returns:
        dict: ``{'meta': ..., 'state_dict': ...}``.
    """
    source = read_official_checkpoint(official, trust_pickle=trust_pickle)
    layout = official_layout(source)
    converted = official_to_mmaction(source)
    model = build_meta_model(config) if config is not None else None
    grid = tuple(model.backbone.grid) if model is not None else None
    clip_weights = None
    if clip is not None:
        clip_weights, _ = load_clip_backbone_weights(
            clip, trust_torchscript=trust_torchscript)
    merged, from_clip = merge_clip_weights(converted, clip_weights, grid)
    if model is not None:
        check_against_model(merged, layout, model)
    if trainable_only:
        merged = {
            k: v
            for k, v in merged.items()
            if not k.startswith(BACKBONE_PREFIX)
            or ADAPTER_KEY.match(k[len(BACKBONE_PREFIX):])
        }
    state_dict = {k: v.detach().cpu().contiguous() for k, v in merged.items()}
    meta = dict(
        converted_from='official ST-Adapter',
        official_file=osp.basename(official),
        clip_file=osp.basename(clip) if clip else None,
        adapter_layout=describe_layout(layout),
        num_classes=layout['num_classes'],
        tensors_from_clip=from_clip,
        trainable_only=trainable_only)
    return dict(meta=meta, state_dict=state_dict)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = None
    if args.config:
        cfg = load_config(args.config, args.cfg_options)
    try:
        checkpoint = convert(args.official, args.clip, cfg,
                             args.trainable_only, args.trust_pickle,
                             args.trust_torchscript)
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from err
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    torch.save(checkpoint, args.out)
    meta = checkpoint['meta']
    print(f'official checkpoint: {meta["adapter_layout"]}, '
          f'{meta["num_classes"]} classes')
    print(f'wrote {args.out}: {len(checkpoint["state_dict"])} tensors '
          f'({meta["tensors_from_clip"]} from the CLIP file)'
          f'{"; checked against " + args.config if args.config else ""}')
    return checkpoint


if __name__ == '__main__':
    main()
