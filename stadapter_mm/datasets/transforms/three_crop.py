"""Three crops along the long side, in the official order and offsets."""
from __future__ import annotations

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class LongSideThreeCrop(BaseTransform):
    """Three ``crop_size`` squares at offsets (0, margin // 2, margin).

    ``margin`` is the long side minus ``crop_size``; the crops are
    left/top, centre, right/bottom in that order (MMAction2's ``ThreeCrop``
    gives left, right, centre and puts the right crop at ``2 * (margin //
    2)``, a pixel short for odd margins). The frames' short side must
    equal ``crop_size``. The crops are stored one after the other (all
    frames of the first crop, then the second, ...), the view order
    ``FormatShape`` expects.

    Required keys: ``imgs``, ``img_shape``. Modified keys: ``imgs``,
    ``img_shape``. Added keys: ``crop_bbox`` (one row per crop).

    Args:
        crop_size (int): Side of the square crops. Defaults to 224.
    """

    def __init__(self, crop_size: int = 224) -> None:
        if isinstance(crop_size, (tuple, list)):
            if len(set(crop_size)) != 1:
                raise ValueError(f'crop_size must be square, got {crop_size}')
            crop_size = crop_size[0]
        if not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError(f'crop_size must be a positive int, got '
                             f'{crop_size!r}')
        self.crop_size = crop_size

    def transform(self, results: dict) -> dict:
        """Replace the frames by their three crops, crop after crop.

        Args:
            results (dict): Pipeline results with ``imgs``.

        Returns:
            dict: ``results`` with three times as many ``imgs``, each
            ``crop_size`` square, ``img_shape`` and ``crop_bbox``.

        Raises:
            ValueError: If the frames' short side is not ``crop_size``.
        """
        height, width = results['imgs'][0].shape[:2]
        size = self.crop_size
        if min(height, width) != size:
            raise ValueError(
                f'LongSideThreeCrop needs frames with a short side of {size} '
                f'(resize them first), got {height}x{width}')
        margin = max(height, width) - size
        boxes = []
        for start in (0, margin // 2, margin):
            if height > width:
                boxes.append((0, start, size, start + size))
            else:
                boxes.append((start, 0, start + size, size))
        results['imgs'] = [
            img[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes
            for img in results['imgs']
        ]
        results['crop_bbox'] = np.array(boxes)
        results['img_shape'] = (size, size)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(crop_size={self.crop_size})'
