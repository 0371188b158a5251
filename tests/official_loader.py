"""The official ST-Adapter evaluation loader and schedule, restated for tests.

Restated (not copied) from linziyi96/st-adapter at bded03c:
``video_dataset/dataset.py`` (``VideoDataset.__getitem__`` test branch, lines
143-164; ``_generate_temporal_crops``, 176-203; ``_generate_spatial_crops``,
206-227), ``video_dataset/transform.py`` (``_get_param_spatial_crop``) and
``main.py`` (``lr_func``, lines 174-180). Frames come in decoded (the
official code decodes with PyAV; tests decode with the same reader for both
sides, so only the loaders differ).
"""
from __future__ import annotations

import math
import random
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

#: CLIP's normalisation in 0-1 units (dataset.py lines 34-35).
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])


def temporal_indices(total: int, num_frames: int, sampling_rate: int,
                     num_views: int) -> List[List[int]]:
    """Source frame of every temporal view (padding repeats the last)."""
    if sampling_rate <= 0:
        seg = (total - 1) / num_frames
        return [[(round(seg * i) + round(seg * (i + 1))) // 2
                 for i in range(num_frames)]]
    seg_len = (num_frames - 1) * sampling_rate + 1
    padded = max(total, seg_len)
    slide = padded - seg_len
    views = []
    for k in range(num_views):
        st = slide // 2 if num_views == 1 else round(
            slide / (num_views - 1) * k)
        views.append([min(i, total - 1) for i in range(
            st, st + num_frames * sampling_rate, sampling_rate)])
    return views


def eval_views(frames: np.ndarray, num_frames: int, sampling_rate: int,
               num_spatial: int, num_temporal: int, size: int = 224,
               interpolation: str = 'bicubic'
               ) -> Tuple[torch.Tensor, List[List[int]]]:
    """Official test input of one video.

    Args:
        frames: (N, H, W, 3) uint8 RGB, every decoded frame.

    Returns:
        (views (V, 3, T, size, size) normalised, source indices per view),
        views ordered spatial-major as the official loader stacks them.
    """
    x = torch.as_tensor(frames).float() / 255.
    x = ((x - MEAN) / STD).permute(3, 0, 1, 2)  # C, N, H, W
    h, w = x.shape[-2:]
    if h < w:
        new_h, new_w = size, w * size // h
    else:
        new_h, new_w = h * size // w, size
    x = F.interpolate(x, size=(new_h, new_w), mode=interpolation,
                      align_corners=False)
    if num_spatial == 1:
        top, left = (new_h - size) // 2, (new_w - size) // 2
        crops = [x[:, :, top:top + size, left:left + size]]
    else:
        margin = max(new_h, new_w) - size
        crops = [x[:, :, st:st + size] if new_h > new_w else
                 x[:, :, :, st:st + size]
                 for st in (0, margin // 2, margin)]
    inds = temporal_indices(len(frames), num_frames, sampling_rate,
                            num_temporal)
    views, view_inds = [], []
    for crop in crops:
        for idx in inds:
            views.append(crop[:, idx])
            view_inds.append(idx)
    return torch.stack(views), view_inds


def lr_factor(step: int, steps_per_epoch: int, warmup_epochs: int,
              epochs: int) -> float:
    """``main.py`` ``lr_func``: the factor at optimizer step ``step``."""
    epoch = step / steps_per_epoch
    if epoch < warmup_epochs:
        return epoch / warmup_epochs
    return 0.5 + 0.5 * math.cos(
        (epoch - warmup_epochs) / (epochs - warmup_epochs) * math.pi)


def random_resized_crop_box(height: int, width: int,
                            rng: random.Random,
                            scale=(0.08, 1.0),
                            ratio=(3 / 4, 4 / 3)) -> Tuple[int, int, int, int]:
    """``_get_param_spatial_crop`` (log-scale ratio, 10 tries): (i, j, h, w).
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
