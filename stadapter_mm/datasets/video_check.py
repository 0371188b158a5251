"""Check that a video file can be decoded, the way training will read it."""
from __future__ import annotations

import os.path as osp
from typing import Dict

import numpy as np


def check_video(path: str, num_frames: int = 8,
                full: bool = False) -> Dict[str, object]:
    """Open a video with decord and decode some (or all) of its frames.

    A truncated download usually still opens and reports all its frames;
    decoding fails only past the cut. So besides opening the file, frames
    spread over the whole clip, the last one included, are decoded.

    Args:
        path (str): Video file.
        num_frames (int): Frames decoded, evenly spaced from first to last.
            Defaults to 8.
        full (bool): Decode every frame instead (slow, most thorough).
            Defaults to False.

    Returns:
        dict: ``ok`` (bool), ``reason`` (str, empty when ok), ``frames``
        (frame count reported by the container, 0 if it did not open) and
        ``fps`` (float or None).
    """
    result: Dict[str, object] = dict(ok=False, reason='', frames=0, fps=None)
    if not osp.exists(path):
        result['reason'] = 'missing: no such file'
        return result
    if not osp.isfile(path):
        result['reason'] = 'not a regular file'
        return result
    if osp.getsize(path) == 0:
        result['reason'] = 'empty file (0 bytes)'
        return result
    import decord
    try:
        reader = decord.VideoReader(path, num_threads=1)
        total = len(reader)
        result['frames'] = total
        result['fps'] = float(reader.get_avg_fps())
        if total <= 0:
            result['reason'] = 'no video frames'
            return result
        if full:
            indices = np.arange(total)
        else:
            indices = np.unique(
                np.linspace(0, total - 1, max(1, num_frames)).round()
                .astype(int))
        for start in range(0, len(indices), 64):
            batch = reader.get_batch(indices[start:start + 64].tolist())
            if batch.shape[0] != len(indices[start:start + 64]):
                result['reason'] = 'decoded fewer frames than requested'
                return result
    except Exception as err:  # noqa: BLE001 - decord raises many types
        text = ' '.join(str(err).split())
        result['reason'] = f'{type(err).__name__}: {text[:300]}'
        return result
    result['ok'] = True
    return result

