"""Export a self-contained checkpoint: trainable weights plus frozen CLIP.

Example::

    python tools/convert/export_full_checkpoint.py \\
        configs/stadapter_vitb16_k400.py work_dirs/k400/best.pth \\
        stadapter_k400_full.pth [--clip ViT-B/16]

Training with ``FrozenParamHook(save_trainable_only=True)`` writes only the
adapters and head; loading such a file needs the CLIP weights the config
names. The exported file holds every weight of the recognizer (frozen CLIP
included) and plain metadata, without optimizer or log state, so it loads
with ``init_recognizer``, ``tools/test.py``, MMAction2's tools and even a
bare ``torch.load(..., weights_only=True)``, with no CLIP file anywhere.
``--clip`` overrides the CLIP file (path or name, see
``stadapter_mm/checkpoints/clip_resolver.py`` for where names are looked up).
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from mmengine.config import Config, DictAction

import stadapter_mm  # noqa: F401  (registers the backbone)
from stadapter_mm.checkpoints import load_local_weights_only
from stadapter_mm.checkpoints.portable import (RUN_STATE_KEYS, plain_data,
                                               save_portable)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description='Write a checkpoint with the frozen weights included')
    parser.add_argument('config', help='the model\'s config file')
    parser.add_argument('checkpoint', help='trainable-only or full checkpoint')
    parser.add_argument('out_file', help='output checkpoint path')
    parser.add_argument(
        '--clip', help='CLIP file (path or name) instead of the config\'s')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    from mmaction.apis import init_recognizer

    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.clip:
        cfg.model.backbone.init_cfg = dict(type='Pretrained',
                                           checkpoint=args.clip)
    # Loading completes a trainable-only file with the CLIP weights.
    model = init_recognizer(cfg, args.checkpoint, device='cpu')
    source = load_local_weights_only(args.checkpoint, map_location='cpu')
    meta = dict(source.get('meta') or {}) if isinstance(source, dict) else {}
    meta['exported_from'] = args.checkpoint
    meta['self_contained'] = True
    state_dict = {k: v.detach().clone()
                  for k, v in model.state_dict().items()}
    size = save_portable(dict(meta=plain_data(meta), state_dict=state_dict),
                         args.out_file)
    left_out = [k for k in RUN_STATE_KEYS
                if isinstance(source, dict) and k in source]
    print(f'wrote {args.out_file}: {len(state_dict)} tensors, '
          f'{size / 2**20:.1f} MiB'
          + (f' (left out: {", ".join(left_out)})' if left_out else ''))


if __name__ == '__main__':
    main()
