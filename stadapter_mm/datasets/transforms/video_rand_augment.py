"""RandAugment for videos: one random policy per clip, applied to every frame.

Image RandAugment (Cubuk et al., 2020) picks ``num_ops`` operations with a
shared magnitude for every image. For video the official ST-Adapter SSv2
recipe (timm's ``rand-m7-n4-mstd0.5-inc1``) samples the operations once per
clip and applies them with the same parameters to all frames, so the clip
stays temporally coherent. This is a NumPy/OpenCV implementation (no
torchvision, no PIL) of that policy with the "increasing" operation set
(larger magnitude always means a stronger change).

As in the official recipe (timm/SlowFast operations on PIL images, one
frame at a time), geometric operations fill with grey 128 and interpolate
bicubically, shears pivot on the top-left corner, and data-dependent
operations (``AutoContrast``, ``Equalize``, ``Contrast``) take their
statistics from each frame; ``clip_statistics=True`` takes them from the
whole clip instead, so every frame gets the same pixel mapping.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

#: (operation name, uses the sign of the magnitude).
_OPS: Dict[str, bool] = {
    'AutoContrast': False,
    'Equalize': False,
    'Invert': False,
    'Rotate': True,
    'Posterize': False,
    'Solarize': False,
    'SolarizeAdd': False,
    'Color': True,
    'Contrast': True,
    'Brightness': True,
    'Sharpness': True,
    'ShearX': True,
    'ShearY': True,
    'TranslateX': True,
    'TranslateY': True,
}

#: Operations whose pixel mapping depends on image statistics.
_DATA_DEPENDENT = ('AutoContrast', 'Equalize', 'Contrast')

#: Operation, magnitude in [0, max_magnitude], sign (+1 or -1).
Plan = List[Tuple[str, float, int]]


def _blend(degenerate: np.ndarray, clip: np.ndarray,
           factor: float) -> np.ndarray:
    """``degenerate + factor * (clip - degenerate)``, clipped to uint8."""
    out = degenerate.astype(np.float32) + factor * (
        clip.astype(np.float32) - degenerate.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gray(clip: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of RGB frames, shape (T, H, W, 1), float32."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (clip.astype(np.float32) @ weights)[..., None]


def _lut(clip: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """Apply one 256-entry lookup table per channel."""
    out = np.empty_like(clip)
    for c in range(clip.shape[-1]):
        out[..., c] = tables[c][clip[..., c]]
    return out


_INTERPOLATION = {'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC,
                  'nearest': cv2.INTER_NEAREST}


def _warp(clip: np.ndarray, matrix: np.ndarray, fill: Tuple[int, ...],
          interpolation: str, inverse: bool = False) -> np.ndarray:
    """Warp every frame with the same 2x3 affine matrix.

    ``inverse=True``: ``matrix`` maps output pixels to input pixels (PIL's
    convention) instead of input to output.
    """
    height, width = clip.shape[1:3]
    flags = _INTERPOLATION[interpolation]
    if inverse:
        flags |= cv2.WARP_INVERSE_MAP
    return np.stack([
        cv2.warpAffine(frame, matrix, (width, height), flags=flags,
                       borderMode=cv2.BORDER_CONSTANT,
                       borderValue=fill) for frame in clip
    ])


def _centred_affine(linear: np.ndarray, height: int,
                    width: int) -> np.ndarray:
    """2x3 matrix applying ``linear`` (2x2) about the image centre."""
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    offset = centre - linear @ centre
    return np.hstack([linear, offset[:, None]]).astype(np.float64)


@TRANSFORMS.register_module()
class VideoRandAugment(BaseTransform):
    """RandAugment with one policy per clip, applied identically to frames.

    For each clip, ``num_ops`` operations are drawn uniformly with
    replacement from ``ops``; each is applied with probability ``prob`` at a
    magnitude drawn from ``N(magnitude, magnitude_std)`` clipped to
    ``[0, max_magnitude]``, and with a random sign for the operations that
    have a direction. The defaults are timm's ``rand-m7-n4-mstd0.5-inc1``
    used by the official ST-Adapter SSv2 recipe.

    Magnitude ``m`` maps to (with ``r = m / max_magnitude``): rotate by
    ``30 r`` degrees; shear by ``0.3 r``; translate by ``0.45 r`` of the
    side; posterize to ``max(1, 4 - int(4 r))`` bits; solarize above
    ``256 - int(256 r)``; add ``int(110 r)`` below 128 (``SolarizeAdd``);
    colour / contrast / brightness / sharpness factors ``1 +- 0.9 r``.

    Required keys: ``imgs`` (list of (H, W, 3) uint8 RGB frames, or a
    (T, H, W, 3) array). Modified keys: ``imgs``. Added keys:
    ``rand_augment`` (the applied plan, for inspection).

    Args:
        num_ops (int): Operations per clip. Defaults to 4.
        magnitude (float): Mean magnitude in ``[0, max_magnitude]``.
            Defaults to 7.
        magnitude_std (float): Standard deviation of the magnitude; 0 uses
            ``magnitude`` as is. Defaults to 0.5.
        max_magnitude (float): Magnitude of the strongest setting.
            Defaults to 10.
        prob (float): Probability of applying each drawn operation.
            Defaults to 0.5.
        ops (Sequence[str], optional): Subset of :attr:`op_names`. Defaults
            to all of them.
        fill (Sequence[int]): RGB value for pixels that geometric operations
            uncover. Defaults to the official ``(128, 128, 128)``.
        interpolation (str): Of geometric operations: ``'bicubic'``
            (official), ``'bilinear'`` or ``'nearest'``. Defaults to
            ``'bicubic'``.
        clip_statistics (bool): Data-dependent operations use statistics
            of the whole clip (True) or of each frame (False, official).
            Defaults to False.
    """

    op_names: Tuple[str, ...] = tuple(_OPS)

    def __init__(self,
                 num_ops: int = 4,
                 magnitude: float = 7.0,
                 magnitude_std: float = 0.5,
                 max_magnitude: float = 10.0,
                 prob: float = 0.5,
                 ops: Optional[Sequence[str]] = None,
                 fill: Sequence[int] = (128, 128, 128),
                 interpolation: str = 'bicubic',
                 clip_statistics: bool = False) -> None:
        if not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f'num_ops must be an int >= 0, got {num_ops!r}')
        if max_magnitude <= 0:
            raise ValueError(
                f'max_magnitude must be positive, got {max_magnitude}')
        if not 0 <= magnitude <= max_magnitude:
            raise ValueError(
                f'magnitude must be in [0, max_magnitude={max_magnitude}], '
                f'got {magnitude}')
        if magnitude_std < 0:
            raise ValueError(
                f'magnitude_std must be >= 0, got {magnitude_std}')
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        ops = tuple(self.op_names if ops is None else ops)
        unknown = [op for op in ops if op not in _OPS]
        if unknown or not ops:
            raise ValueError(
                f'Unknown or empty ops {unknown or list(ops)}; choose from '
                f'{list(self.op_names)}.')
        fill = tuple(int(v) for v in fill)
        if len(fill) != 3 or not all(0 <= v <= 255 for v in fill):
            raise ValueError(f'fill must be three values in [0, 255], got '
                             f'{fill}')
        self.num_ops = num_ops
        self.magnitude = float(magnitude)
        self.magnitude_std = float(magnitude_std)
        self.max_magnitude = float(max_magnitude)
        self.prob = float(prob)
        self.ops = ops
        if interpolation not in _INTERPOLATION:
            raise ValueError(f'interpolation must be one of '
                             f'{sorted(_INTERPOLATION)}, got {interpolation!r}')
        self.fill = fill
        self.interpolation = interpolation
        self.clip_statistics = bool(clip_statistics)

    # --------------------------------------------------------------- policy
    def sample_plan(self, rng: Optional[np.random.Generator] = None) -> Plan:
        """Draw the operations applied to one clip.

        Args:
            rng: Random generator. Defaults to one seeded from
                ``np.random`` (which mmengine seeds per worker).

        Returns:
            list: ``(op, magnitude, sign)`` for each operation that applies.
        """
        if rng is None:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        plan: Plan = []
        for _ in range(self.num_ops):
            op = self.ops[int(rng.integers(len(self.ops)))]
            if rng.random() >= self.prob:
                continue
            magnitude = self.magnitude
            if self.magnitude_std > 0:
                magnitude = rng.normal(magnitude, self.magnitude_std)
            magnitude = float(np.clip(magnitude, 0.0, self.max_magnitude))
            sign = -1 if _OPS[op] and rng.random() < 0.5 else 1
            plan.append((op, magnitude, sign))
        return plan

    def apply_plan(self, clip: np.ndarray, plan: Plan) -> np.ndarray:
        """Apply a plan to every frame of a clip.

        Args:
            clip (np.ndarray): (T, H, W, 3) uint8 RGB.
            plan (list): From :meth:`sample_plan`.

        Returns:
            np.ndarray: (T, H, W, 3) uint8.
        """
        for op, magnitude, sign in plan:
            fn = getattr(self, f'_op_{op.lower()}')
            r = magnitude / self.max_magnitude
            if op in _DATA_DEPENDENT and not self.clip_statistics:
                clip = np.stack([fn(frame[None], r, sign)[0]
                                 for frame in clip])
            else:
                clip = fn(clip, r, sign)
        return clip

    def transform(self, results: dict) -> dict:
        """Augment ``results['imgs']`` with one plan for the whole clip."""
        imgs = results['imgs']
        as_list = isinstance(imgs, (list, tuple))
        clip = np.stack(imgs) if as_list else np.asarray(imgs)
        if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
            raise ValueError(
                'VideoRandAugment expects uint8 RGB frames of shape '
                f'(H, W, 3) before normalisation, got array {clip.shape} '
                f'{clip.dtype}; place it right after decoding (before any '
                'float resize or crop) and '
                'before FormatShape.')
        plan = self.sample_plan()
        clip = self.apply_plan(clip, plan)
        results['imgs'] = list(clip) if as_list else clip
        results['rand_augment'] = plan
        return results

    # ------------------------------------------------------------ operations
    @staticmethod
    def _op_autocontrast(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        tables = []
        for c in range(clip.shape[-1]):
            lo, hi = int(clip[..., c].min()), int(clip[..., c].max())
            values = np.arange(256, dtype=np.float32)
            if hi > lo:
                values = (values - lo) * (255.0 / (hi - lo))
            tables.append(np.clip(np.rint(values), 0, 255).astype(np.uint8))
        return _lut(clip, np.stack(tables))

    @staticmethod
    def _op_equalize(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        tables = []
        for c in range(clip.shape[-1]):
            hist = np.bincount(clip[..., c].ravel(), minlength=256)
            cdf = np.cumsum(hist)
            first = cdf[np.nonzero(hist)[0][0]]
            total = cdf[-1]
            if total == first:  # a single grey level: nothing to spread
                tables.append(np.arange(256, dtype=np.uint8))
                continue
            values = (cdf - first) * 255.0 / (total - first)
            tables.append(np.clip(np.rint(values), 0, 255).astype(np.uint8))
        return _lut(clip, np.stack(tables))

    @staticmethod
    def _op_invert(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        return 255 - clip

    def _op_rotate(self, clip: np.ndarray, r: float, s: int) -> np.ndarray:
        height, width = clip.shape[1:3]
        angle = np.deg2rad(30.0 * r * s)
        linear = np.array([[np.cos(angle), np.sin(angle)],
                           [-np.sin(angle), np.cos(angle)]])
        return _warp(clip, _centred_affine(linear, height, width), self.fill,
                     self.interpolation)

    @staticmethod
    def _op_posterize(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        bits = max(1, 4 - int(4 * r))
        mask = np.uint8((0xFF << (8 - bits)) & 0xFF)
        return clip & mask

    @staticmethod
    def _op_solarize(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        threshold = 256 - int(256 * r)
        return np.where(clip >= threshold, 255 - clip, clip).astype(np.uint8)

    @staticmethod
    def _op_solarizeadd(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        added = np.minimum(clip.astype(np.int16) + int(110 * r), 255)
        return np.where(clip < 128, added, clip).astype(np.uint8)

    @staticmethod
    def _op_color(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        return _blend(np.broadcast_to(_gray(clip), clip.shape), clip,
                      1.0 + 0.9 * r * s)

    @staticmethod
    def _op_contrast(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        mean = np.full(clip.shape, _gray(clip).mean(), dtype=np.float32)
        return _blend(mean, clip, 1.0 + 0.9 * r * s)

    @staticmethod
    def _op_brightness(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        return _blend(np.zeros(clip.shape, np.float32), clip,
                      1.0 + 0.9 * r * s)

    @staticmethod
    def _op_sharpness(clip: np.ndarray, r: float, s: int) -> np.ndarray:
        kernel = np.ones((3, 3), np.float32)
        kernel[1, 1] = 5.0
        kernel /= kernel.sum()
        smooth = clip.astype(np.float32)
        if clip.shape[1] > 2 and clip.shape[2] > 2:
            inner = np.stack([
                cv2.filter2D(frame, -1, kernel,
                             borderType=cv2.BORDER_REPLICATE)
                for frame in clip.astype(np.float32)
            ])
            # The one-pixel border keeps its original value.
            smooth[:, 1:-1, 1:-1] = inner[:, 1:-1, 1:-1]
        return _blend(smooth, clip, 1.0 + 0.9 * r * s)

    # Shears map output (x, y) to input (x + f y, y) about the image's
    # top-left corner, PIL's affine convention (pixel centres at +0.5).
    def _op_shearx(self, clip: np.ndarray, r: float, s: int) -> np.ndarray:
        f = 0.3 * r * s
        matrix = np.array([[1.0, f, 0.5 * f], [0.0, 1.0, 0.0]])
        return _warp(clip, matrix, self.fill, self.interpolation, True)

    def _op_sheary(self, clip: np.ndarray, r: float, s: int) -> np.ndarray:
        f = 0.3 * r * s
        matrix = np.array([[1.0, 0.0, 0.0], [f, 1.0, 0.5 * f]])
        return _warp(clip, matrix, self.fill, self.interpolation, True)

    def _op_translatex(self, clip: np.ndarray, r: float,
                       s: int) -> np.ndarray:
        width = clip.shape[2]
        matrix = np.array([[1.0, 0.0, 0.45 * r * s * width],
                           [0.0, 1.0, 0.0]])
        return _warp(clip, matrix, self.fill, self.interpolation)

    def _op_translatey(self, clip: np.ndarray, r: float,
                       s: int) -> np.ndarray:
        height = clip.shape[1]
        matrix = np.array([[1.0, 0.0, 0.0],
                           [0.0, 1.0, 0.45 * r * s * height]])
        return _warp(clip, matrix, self.fill, self.interpolation)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_ops={self.num_ops}, '
                f'magnitude={self.magnitude}, '
                f'magnitude_std={self.magnitude_std}, prob={self.prob}, '
                f'ops={len(self.ops)} ops)')
