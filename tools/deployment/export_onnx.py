"""Export an ST-Adapter recognizer to ONNX (dynamic batch) and verify it.

Example::

    python tools/deployment/export_onnx.py configs/stadapter_vitb16_k400.py \\
        stadapter_k400.pth --out stadapter_k400.onnx --verify

The ONNX model takes ``video``: float32 RGB in 0-255 of shape
``(N, 3, T, H, W)`` (what the test pipeline produces for one view, before
normalisation) and returns ``logits`` ``(N, num_classes)``; normalisation
with the config's mean/std is inside the graph, ``N`` is dynamic. Apply a
softmax and average over views yourself, as ``average_clips='prob'`` does.

``--verify`` runs the file with onnxruntime on random videos of two batch
sizes and compares with MMAction2's own path (data preprocessor, then
``extract_feat(stage='head')``).

Exporter: torch 2.13's default, the ``torch.export``-based one
(``dynamo=True``, needs ``onnxscript``); the batch dimension is declared with
``torch.export.Dim``. ``--legacy`` uses the deprecated TorchScript exporter
(``dynamic_axes``), which needs no ``onnxscript``.
Export runs on the CPU; no GPU is needed.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

import stadapter_mm  # noqa: F401
from stadapter_mm.utils.cli import add_cfg_options, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a recognizer to ONNX (dynamic batch)')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (omit to export random weights)')
    parser.add_argument('--out', required=True, help='output .onnx')
    parser.add_argument('--num-frames', type=int, default=None,
                        help='frames per view (default: the backbone\'s '
                        'num_frames or 8)')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='frame size S or H W (default: the arch\'s)')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--legacy', action='store_true',
                        help='use the TorchScript-based exporter')
    parser.add_argument('--verify', action='store_true',
                        help='check against PyTorch with onnxruntime')
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='max abs logit difference allowed by --verify')
    add_cfg_options(parser)
    return parser.parse_args(argv)


class ONNXRecognizer(nn.Module):
    """Normalisation, backbone (and neck) and head of a recognizer.

    Args:
        recognizer (nn.Module): A ``Recognizer3D`` whose data preprocessor
            uses ``format_shape='NCTHW'``.

    Shapes:
        - video: (N, 3, T, H, W) float, RGB (or the channel order the
          preprocessor converts from), 0-255.
        - output: (N, num_classes) logits.
    """

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer
        prep = recognizer.data_preprocessor
        if getattr(prep, 'format_shape', 'NCTHW') != 'NCTHW':
            raise ValueError(
                f'export expects format_shape="NCTHW", the config has '
                f'{prep.format_shape!r}')
        self.to_rgb = bool(getattr(prep, 'to_rgb', False))
        if getattr(prep, '_enable_normalize', False):
            mean = prep.mean.detach().float().reshape(1, 3, 1, 1, 1)
            std = prep.std.detach().float().reshape(1, 3, 1, 1, 1)
        else:
            mean, std = torch.zeros(1, 3, 1, 1, 1), torch.ones(1, 3, 1, 1, 1)
        self.register_buffer('mean', mean)
        self.register_buffer('std', std)

    def forward(self, video: Tensor) -> Tensor:
        if self.to_rgb:
            video = video.flip(1)
        video = (video - self.mean) / self.std
        feat = self.recognizer.backbone(video)
        if getattr(self.recognizer, 'with_neck', False):
            feat, _ = self.recognizer.neck(feat)
        return self.recognizer.cls_head(feat)


def load_model(cfg: Config, checkpoint: Optional[str]) -> nn.Module:
    """Build the recognizer on the CPU, with ``checkpoint`` if given."""
    from mmaction.apis import init_recognizer
    if checkpoint is None:
        cfg.model.backbone.init_cfg = None
    return init_recognizer(cfg, checkpoint, device='cpu')


def input_shape(model: nn.Module, num_frames: Optional[int],
                shape: Optional[Sequence[int]]) -> tuple:
    """(3, T, H, W) of one view for this model."""
    backbone = model.backbone
    frames = num_frames or getattr(backbone, 'num_frames', None) or 8
    if shape is None:
        size = getattr(backbone, 'input_resolution', 224)
        shape = (size, size)
    height, width = (shape[0], shape[0]) if len(shape) == 1 else shape[:2]
    return (3, int(frames), int(height), int(width))


def export(model: nn.Module, path: str, view_shape: tuple,
           opset: int = 18, legacy: bool = False) -> str:
    """Export ``model`` to ``path`` with a dynamic batch dimension.

    Args:
        model (nn.Module): The recognizer (eval mode, CPU).
        path (str): Output ``.onnx``.
        view_shape (tuple): (3, T, H, W).
        opset (int): ONNX opset. Defaults to 18.
        legacy (bool): Use the TorchScript exporter. Defaults to False.

    Returns:
        str: ``path``.
    """
    wrapper = ONNXRecognizer(model).eval()
    example = torch.rand((2, ) + tuple(view_shape)) * 255
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if legacy:
            torch.onnx.export(
                wrapper, (example, ), path, input_names=['video'],
                output_names=['logits'], opset_version=opset, dynamo=False,
                dynamic_axes={'video': {0: 'batch'}, 'logits': {0: 'batch'}})
        else:
            batch = torch.export.Dim('batch', min=1, max=1024)
            program = torch.onnx.export(
                wrapper, (example, ), input_names=['video'],
                output_names=['logits'], opset_version=opset, dynamo=True,
                dynamic_shapes={'video': {0: batch}}, verbose=False)
            # ONNX protobufs stop at 2 GB: larger models keep their weights
            # in a side file (path + '.data').
            size = sum(p.numel() * p.element_size()
                       for p in wrapper.parameters())
            program.save(path, external_data=size > 1.5e9)
    return path


def pytorch_logits(model: nn.Module, video: Tensor) -> Tensor:
    """Logits through MMAction2's own path: preprocessor, then head.

    Args:
        model: The recognizer.
        video: (N, 3, T, H, W), 0-255.
    """
    data = model.data_preprocessor(
        dict(inputs=[v[None] for v in video], data_samples=None))
    with torch.no_grad():
        logits, _ = model.extract_feat(data['inputs'], stage='head')
    return logits


def verify(model: nn.Module, path: str, view_shape: tuple,
           batch_sizes: Sequence[int] = (1, 3),
           atol: float = 1e-4, seed: int = 0) -> Dict[int, float]:
    """Compare onnxruntime with PyTorch on random videos.

    Args:
        model: The recognizer.
        path: Exported ``.onnx``.
        view_shape: (3, T, H, W).
        batch_sizes: Batch sizes to try (different from the export's 2
            shows the batch is dynamic).
        atol: Max abs difference allowed.
        seed: Random seed.

    Returns:
        dict[int, float]: Max abs logit difference per batch size.

    Raises:
        AssertionError: If a difference exceeds ``atol``.
    """
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(seed)
    diffs = {}
    for batch in batch_sizes:
        video = torch.rand((batch, ) + tuple(view_shape), generator=gen) * 255
        expected = pytorch_logits(model, video).numpy()
        got = session.run(['logits'], {'video': video.numpy()})[0]
        if got.shape != expected.shape:
            raise AssertionError(
                f'batch {batch}: ONNX gives {got.shape}, PyTorch '
                f'{expected.shape}')
        diffs[batch] = float(np.abs(got - expected).max())
        if diffs[batch] > atol:
            raise AssertionError(
                f'batch {batch}: ONNX and PyTorch logits differ by '
                f'{diffs[batch]:.3g} > {atol}')
    return diffs


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    model = load_model(cfg, args.checkpoint)
    view_shape = input_shape(model, args.num_frames, args.shape)
    export(model, args.out, view_shape, args.opset, args.legacy)
    print(f'wrote {args.out}: video (N, {", ".join(map(str, view_shape))}) '
          f'-> logits (N, {model.cls_head.num_classes}), '
          f'{"TorchScript" if args.legacy else "torch.export"} exporter, '
          f'opset {args.opset}')
    result = dict(path=args.out, view_shape=view_shape)
    if args.verify:
        diffs = verify(model, args.out, view_shape, atol=args.atol)
        print('onnxruntime vs PyTorch, max |logit diff|: ' +
              ', '.join(f'batch {b}: {d:.2e}' for b, d in diffs.items()))
        result['diffs'] = diffs
    return result


if __name__ == '__main__':
    main()
