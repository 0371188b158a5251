"""Resizing on float frames with PyTorch, as the official loader does.

The official ST-Adapter loader (``video_dataset/dataset.py`` and
``video_dataset/transform.py`` of linziyi96/st-adapter) resizes normalised
float frames with ``torch.nn.functional.interpolate`` (bicubic,
``align_corners=False``, no antialiasing, no clipping) and rounds the new
long side down. MMAction2's ``Resize`` works on uint8 through OpenCV and
rounds half up, which leaves a mean difference of about 2.6/255 at test
time even with bicubic interpolation. These transforms output float32
frames in 0-255 units (interpolation is linear, so resizing before the
``data_preprocessor``'s normalisation equals resizing after it); later
crops, flips and ``FormatShape`` keep the float values.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

_MODES = ('bicubic', 'bilinear', 'nearest')


def _check_mode(interpolation: str) -> str:
    if interpolation not in _MODES:
        raise ValueError(f'interpolation must be one of {_MODES}, got '
                         f'{interpolation!r}')
    return interpolation


def as_float_clip(imgs) -> np.ndarray:
    """Frames (list of (H, W, C) or a (T, H, W, C) array) as float32."""
    clip = np.stack(imgs) if isinstance(imgs, (list, tuple)) else imgs
    return np.asarray(clip, dtype=np.float32)


def resize_clip(clip: np.ndarray, size: Tuple[int, int],
                interpolation: str) -> np.ndarray:
    """Resize (T, H, W, C) float frames to ``size`` = (height, width).

    ``torch.nn.functional.interpolate`` with ``align_corners=False`` for the
    bilinear and bicubic modes and no antialiasing; values are not clipped.
    """
    frames = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)
    kwargs = {} if interpolation == 'nearest' else dict(align_corners=False)
    out = F.interpolate(frames, size=tuple(size), mode=interpolation,
                        **kwargs)
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def _store(results: dict, clip: np.ndarray) -> dict:
    results['imgs'] = list(clip)
    results['img_shape'] = tuple(clip.shape[1:3])
    return results


@TRANSFORMS.register_module()
class FloatShortSideResize(BaseTransform):
    """Resize the short side, rounding the long side down, on float frames.

    With ``scale=S`` (test): the short side becomes ``S`` and the long side
    ``long * S // short``. With ``scale_range=(lo, hi)`` (training scale
    jitter): ``S = int(round(uniform(lo, hi)))`` per clip, frames whose
    short side is already ``S`` are kept as they are, otherwise the long
    side becomes ``floor(long / short * S)``. The same size applies to
    every frame of the clip.

    Required keys: ``imgs``. Modified keys: ``imgs`` (float32, 0-255
    units), ``img_shape``. Added keys: ``short_side``.

    Args:
        scale (int, tuple, optional): Target short side, or MMAction2's
            ``(-1, S)`` form. Exactly one of ``scale`` and ``scale_range``.
        scale_range (tuple[int, int], optional): Range of the random short
            side, both ends included after rounding.
        interpolation (str): ``'bicubic'``, ``'bilinear'`` or
            ``'nearest'``. Defaults to ``'bicubic'``.
        keep_ratio (bool): Must be True (accepted so that tools editing
            ``Resize`` steps can edit this one). Defaults to True.
    """

    def __init__(self,
                 scale=None,
                 scale_range: Optional[Sequence[int]] = None,
                 interpolation: str = 'bicubic',
                 keep_ratio: bool = True) -> None:
        if (scale is None) == (scale_range is None):
            raise ValueError('give exactly one of scale (test) and '
                             f'scale_range (training); got scale={scale!r}, '
                             f'scale_range={scale_range!r}')
        if not keep_ratio:
            raise ValueError('FloatShortSideResize keeps the aspect ratio; '
                             'use Resize for a fixed (h, w)')
        if isinstance(scale, (tuple, list)):
            if len(scale) != 2 or scale[0] not in (-1, None):
                raise ValueError(f'scale must be S or (-1, S), got {scale!r}')
            scale = scale[1]
        if scale is not None and (not isinstance(scale, int) or scale < 1):
            raise ValueError(f'scale must be a positive int, got {scale!r}')
        if scale_range is not None:
            lo, hi = scale_range
            if not 1 <= lo <= hi:
                raise ValueError('scale_range must be (lo, hi) with '
                                 f'1 <= lo <= hi, got {scale_range!r}')
            scale_range = (lo, hi)
        self.scale = scale
        self.scale_range = scale_range
        self.interpolation = _check_mode(interpolation)

    def transform(self, results: dict) -> dict:
        """Resize every frame of the clip to the drawn or given short side.

        Args:
            results (dict): Pipeline results with ``imgs``.

        Returns:
            dict: ``results`` with float32 ``imgs``, ``img_shape`` and
            ``short_side``.
        """
        clip = as_float_clip(results['imgs'])
        height, width = clip.shape[1:3]
        short, long = min(height, width), max(height, width)
        if self.scale is not None:
            size = self.scale
            new_long = long * size // short
        else:
            size = int(round(np.random.uniform(*self.scale_range)))
            new_long = int(math.floor(float(long) / short * size))
        results['short_side'] = size
        if short != size:
            new_size = ((size, new_long) if height <= width else
                        (new_long, size))
            clip = resize_clip(clip, new_size, self.interpolation)
        return _store(results, clip)

    def __repr__(self) -> str:
        target = (f'scale={self.scale}' if self.scale is not None else
                  f'scale_range={self.scale_range}')
        return (f'{self.__class__.__name__}({target}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class FloatRandomResizedCrop(BaseTransform):
    """Inception-style random crop of the full frame, resized on floats.

    Up to ``max_attempts`` draws of an area fraction uniform in ``scale``
    and a log-uniform aspect ratio in ``ratio``; the crop is
    ``w = round(sqrt(area * ratio))``, ``h = round(sqrt(area / ratio))``
    at a uniform position. If no draw fits, the central crop of the whole
    frame clamped to ``ratio``. The crop is resized to ``size`` with
    PyTorch (bicubic by default, ``align_corners=False``). One crop per
    clip.

    Required keys: ``imgs``. Modified keys: ``imgs`` (float32, 0-255
    units), ``img_shape``. Added keys: ``crop_bbox`` (x1, y1, x2, y2).

    Args:
        size (int): Output side. Defaults to 224.
        scale (tuple[float, float]): Range of the crop's area fraction.
            Defaults to (0.08, 1.0).
        ratio (tuple[float, float]): Range of width / height. Defaults to
            (3/4, 4/3).
        interpolation (str): Defaults to ``'bicubic'``.
        max_attempts (int): Draws before the central fallback. Defaults
            to 10.
    """

    def __init__(self,
                 size: int = 224,
                 scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3),
                 interpolation: str = 'bicubic',
                 max_attempts: int = 10) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f'scale must satisfy 0 < lo <= hi <= 1, got '
                             f'{scale!r}')
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'ratio must satisfy 0 < lo <= hi, got {ratio!r}')
        if not isinstance(size, int) or size < 1:
            raise ValueError(f'size must be a positive int, got {size!r}')
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = _check_mode(interpolation)
        self.max_attempts = int(max_attempts)

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """Draw (top, left, h, w) for a frame of ``height`` x ``width``."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.max_attempts):
            target = np.random.uniform(*self.scale) * area
            aspect = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(np.random.randint(0, height - h + 1))
                left = int(np.random.randint(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            w, h = int(round(height * max(self.ratio))), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        """Crop one random box of the clip and resize it to the output side.

        Args:
            results (dict): Pipeline results with ``imgs``.

        Returns:
            dict: ``results`` with float32 ``imgs`` of ``size`` x ``size``,
            ``img_shape`` and ``crop_bbox``.
        """
        clip = as_float_clip(results['imgs'])
        top, left, h, w = self.crop_box(*clip.shape[1:3])
        clip = resize_clip(clip[:, top:top + h, left:left + w],
                           (self.size, self.size), self.interpolation)
        results['crop_bbox'] = np.array([left, top, left + w, top + h])
        return _store(results, clip)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio}, '
                f'interpolation={self.interpolation!r})')
