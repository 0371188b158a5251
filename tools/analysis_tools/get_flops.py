"""Parameters and GFLOPs per view of an ST-Adapter recognizer.

Examples::

    python tools/analysis_tools/get_flops.py \\
        configs/stadapter_vitb16_k400.py
    python tools/analysis_tools/get_flops.py \\
        configs/stadapter_vitb16_k400.py \\
        --num-frames 8 16 32 --arch ViT-B/16 ViT-L/14 --counter torch

One row per (arch, frames): total and trainable parameters of the whole
recognizer and the GFLOPs of one view (one clip, one crop: input
``1 x 3 x T x H x W`` through backbone and head). GFLOPs follow the fvcore /
MMAction2 / paper convention: one multiply-add counts as one FLOP (ViT-B/16
with 12x384 adapters on 8x224x224 gives about 152, the paper's 455 for three
views).

Counters (both maintained libraries, nothing hand-written but one formula):

- ``mmengine`` (default): ``mmengine.analysis.FlopAnalyzer``, the counter of
  MMAction2's own ``get_flops.py``; traces a real forward pass (about 10 s for
  B/16 x 8 frames on a CPU, minutes for L/14 x 32). mmengine 0.10.7 has no
  rule for ``aten::scaled_dot_product_attention``; ``import stadapter_mm``
  adds one (``compat.fix_flop_analyzer_sdpa``): ``q @ k^T`` and ``attn @ v``,
  i.e. ``B*H*L*S*(E + Ev)`` multiply-adds.
- ``torch``: ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta``
  device (no memory, no arithmetic, instant at any size); counts matrix
  products, convolutions and attention but not normalisation layers (about
  0.1% less). Its FLOPs (2 per multiply-add) are halved.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

import stadapter_mm  # noqa: F401
from stadapter_mm.utils.cli import add_cfg_options, load_config

COUNTERS = ('mmengine', 'torch')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and GFLOPs per view of a recognizer')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--num-frames', type=int, nargs='+', default=None,
                        help='frames per view (default: the config\'s)')
    parser.add_argument('--arch', nargs='+', default=None,
                        help='backbone archs, e.g. ViT-B/16 ViT-L/14 '
                        '(default: the config\'s)')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='frame size: S or H W (default: the arch\'s)')
    parser.add_argument('--counter', choices=COUNTERS, default='mmengine')
    parser.add_argument('--json', default=None, help='also write rows here')
    add_cfg_options(parser)
    return parser.parse_args(argv)


class ViewForward(nn.Module):
    """One view through backbone (and neck) and head: what a view costs."""

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        feat = self.recognizer.backbone(video)
        if getattr(self.recognizer, 'with_neck', False):
            feat, _ = self.recognizer.neck(feat)
        return self.recognizer.cls_head(feat)


def model_config(cfg: Config, arch: Optional[str],
                 num_frames: Optional[int]) -> Config:
    """The config's model with another arch / frame count, no weights."""
    model_cfg = copy.deepcopy(cfg.model)
    backbone = model_cfg.backbone
    backbone.init_cfg = None
    if arch is not None:
        from stadapter_mm.models import ViTCLIPSTAdapter
        with torch.device('meta'):
            width = ViTCLIPSTAdapter(arch=arch, adapter=None).width
        backbone.arch = arch
        backbone.pop('input_resolution', None)
        if 'in_channels' in model_cfg.get('cls_head', {}):
            model_cfg.cls_head.in_channels = width
    if num_frames is not None and 'num_frames' in backbone:
        backbone.num_frames = num_frames
    return model_cfg


def count(cfg: Config,
          arch: Optional[str] = None,
          num_frames: Optional[int] = None,
          shape: Optional[Sequence[int]] = None,
          counter: str = 'mmengine') -> Dict[str, Any]:
    """Count parameters and multiply-adds of one view.

    Args:
        cfg (Config): Recognizer config.
        arch (str, optional): Override the backbone arch.
        num_frames (int, optional): Frames per view; defaults to the
            backbone's ``num_frames`` or 8.
        shape (Sequence[int], optional): (H, W); defaults to the arch's
            input resolution.
        counter (str): ``'mmengine'`` or ``'torch'``.

    Returns:
        dict: ``arch, frames, input, params, trainable, flops`` (one view,
        multiply-adds) and ``counter``; ``unsupported`` lists ops the
        mmengine counter skipped.
    """
    if counter not in COUNTERS:
        raise ValueError(f'counter must be one of {COUNTERS}')
    from mmaction.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = model_config(cfg, arch, num_frames)
    device = torch.device('meta') if counter == 'torch' else None
    with device if device is not None else contextlib.nullcontext():
        model = MODELS.build(model_cfg).eval()
    backbone = model.backbone
    frames = num_frames or getattr(backbone, 'num_frames', None) or 8
    if shape is None:
        size = getattr(backbone, 'input_resolution', 224)
        shape = (size, size)
    shape = tuple(shape) if len(shape) == 2 else (shape[0], shape[0])
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    view = ViewForward(model).eval()
    unsupported: Dict[str, int] = {}
    with torch.no_grad():
        video = torch.zeros((1, 3, frames) + shape, device=device)
        if counter == 'torch':
            from torch.utils.flop_counter import FlopCounterMode
            with FlopCounterMode(display=False) as flop_counter:
                view(video)
            flops = flop_counter.get_total_flops() // 2
        else:
            from mmengine.analysis import FlopAnalyzer
            analyzer = FlopAnalyzer(view, (video, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            flops = analyzer.total()
            unsupported = dict(analyzer.unsupported_ops())
    arch_name = arch or _arch_name(cfg.model.backbone.get('arch', '?'))
    return dict(arch=arch_name, frames=frames,
                input=f'{frames}x{shape[0]}x{shape[1]}', params=params,
                trainable=trainable, flops=int(flops), counter=counter,
                unsupported=unsupported)


def _arch_name(arch: Any) -> str:
    if isinstance(arch, str):
        return arch
    keys = ('width', 'layers', 'patch_size')
    return 'ViT(' + ','.join(f'{k}={arch.get(k)}' for k in keys) + ')'


def format_table(rows: List[Dict[str, Any]]) -> str:
    """Rows as a fixed-width text table."""
    header = (f'{"arch":<36}{"input":>14}{"params (M)":>12}'
              f'{"trainable (M)":>15}{"trainable %":>13}{"GFLOPs/view":>13}')
    lines = [header, '-' * len(header)]
    for r in rows:
        lines.append(
            f'{r["arch"]:<36}{r["input"]:>14}{r["params"] / 1e6:>12.2f}'
            f'{r["trainable"] / 1e6:>15.2f}'
            f'{100 * r["trainable"] / max(r["params"], 1):>13.2f}'
            f'{r["flops"] / 1e9:>13.2f}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    rows = []
    for arch in args.arch or [None]:
        for frames in args.num_frames or [None]:
            rows.append(count(cfg, arch, frames, args.shape, args.counter))
    print(f'{args.config} ({args.counter} counter; one view = one clip, one '
          'crop; GFLOPs = 1e9 multiply-adds)')
    print(format_table(rows))
    skipped = sorted({op for r in rows for op in r['unsupported']})
    if skipped:
        print('ops without FLOPs (element-wise, negligible): ' +
              ', '.join(skipped))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
