"""Frame index samplers of the official ST-Adapter recipes.

MMAction2's ``SampleFrames`` and ``UniformSample`` pick different frames
from the official loader (``video_dataset/dataset.py`` of
linziyi96/st-adapter) in several cases: the start range of a strided
training clip, videos shorter than the clip (MMAction2 loops), the start
of each test clip, and the frame of each uniform segment. The two samplers
here give the official indices and set the same keys as MMAction2's
samplers (``frame_inds``, ``clip_len``, ``frame_interval``, ``num_clips``),
so ``DecordDecode``, ``FormatShape`` and the multi-view test tools work
unchanged.
"""
from __future__ import annotations

from typing import List

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be an int >= 1, got {value!r}')


def _total_frames(results: dict) -> int:
    total = results.get('total_frames')
    if not isinstance(total, (int, np.integer)) or total < 1:
        raise ValueError(
            f'{results.get("filename", "video")}: total_frames must be a '
            f'positive int (set by DecordInit), got {total!r}')
    return int(total)


def _set_indices(results: dict, inds: List[int], clip_len: int,
                 frame_interval: int, num_clips: int) -> dict:
    results['frame_inds'] = np.asarray(inds, dtype=np.int64) + results.get(
        'start_index', 0)
    results['clip_len'] = clip_len
    results['frame_interval'] = frame_interval
    results['num_clips'] = num_clips
    return results


@TRANSFORMS.register_module()
class FixedStrideSample(BaseTransform):
    """Clips of ``clip_len`` frames ``frame_interval`` apart (Kinetics).

    Training (one clip): the start is uniform over every position where the
    clip fits, ``[0, n - (clip_len - 1) * frame_interval - 1]``; in a video
    too short for the clip, frame ``i * frame_interval`` is taken while it
    exists and the last such frame is repeated after it.

    Test (``num_clips`` clips): the video is padded with its last frame to
    the clip span ``(clip_len - 1) * frame_interval + 1``; the clips start
    at ``round(slide / (num_clips - 1) * k)`` for ``k < num_clips`` (one
    clip: ``slide // 2``), ``slide = n - span`` after padding. Indices past
    the end therefore read the last frame.

    Required keys: ``total_frames`` (and ``start_index`` if set). Added
    keys: ``frame_inds``, ``clip_len``, ``frame_interval``, ``num_clips``.

    Args:
        clip_len (int): Frames per clip.
        frame_interval (int): Distance between sampled frames.
        num_clips (int): Clips per video (test only; training takes 1).
            Defaults to 1.
        test_mode (bool): Deterministic test clips. Defaults to False.
    """

    def __init__(self,
                 clip_len: int,
                 frame_interval: int,
                 num_clips: int = 1,
                 test_mode: bool = False) -> None:
        _check_positive(clip_len=clip_len, frame_interval=frame_interval,
                        num_clips=num_clips)
        if num_clips != 1 and not test_mode:
            raise ValueError('FixedStrideSample draws one training clip per '
                             f'video; got num_clips={num_clips}')
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.num_clips = num_clips
        self.test_mode = test_mode

    @property
    def span(self) -> int:
        """Frames from the first to the last sampled frame, inclusive."""
        return (self.clip_len - 1) * self.frame_interval + 1

    def train_indices(self, total: int) -> List[int]:
        """Random training clip of a video with ``total`` frames."""
        step = self.frame_interval
        if self.span >= total:
            inds: List[int] = []
            for i in range(self.clip_len):
                inds.append(i * step if i * step < total else inds[-1])
            return inds
        start = int(np.random.randint(total - self.span + 1))
        return list(range(start, start + step * self.clip_len, step))

    def test_indices(self, total: int) -> List[int]:
        """Test clips (concatenated) of a video with ``total`` frames."""
        slide = max(total, self.span) - self.span
        inds: List[int] = []
        for k in range(self.num_clips):
            if self.num_clips == 1:
                start = slide // 2
            else:
                start = round(slide / (self.num_clips - 1) * k)
            inds += [
                min(start + i * self.frame_interval, total - 1)
                for i in range(self.clip_len)
            ]
        return inds

    def transform(self, results: dict) -> dict:
        """Pick the frame indices of the training clip or the test clips.

        Args:
            results (dict): Pipeline results with ``total_frames``.

        Returns:
            dict: ``results`` with ``frame_inds``, ``clip_len``,
            ``frame_interval`` and ``num_clips``.
        """
        total = _total_frames(results)
        inds = (self.test_indices(total)
                if self.test_mode else self.train_indices(total))
        return _set_indices(results, inds, self.clip_len,
                            self.frame_interval, self.num_clips)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval}, '
                f'num_clips={self.num_clips}, test_mode={self.test_mode})')


@TRANSFORMS.register_module()
class UniformSegmentSample(BaseTransform):
    """One frame from each of ``clip_len`` equal segments (SSv2).

    The segments split ``[0, n - 1]`` at ``round(s * i)`` with
    ``s = (n - 1) / clip_len`` (Python's round, half to even). Training
    takes a uniform random frame of ``[round(s * i), round(s * (i + 1))]``
    (both ends included); test takes the midpoint
    ``(round(s * i) + round(s * (i + 1))) // 2``.

    Required keys: ``total_frames`` (and ``start_index`` if set). Added
    keys: ``frame_inds``, ``clip_len``, ``frame_interval`` (None),
    ``num_clips`` (1).

    Args:
        clip_len (int): Frames per clip (segments).
        num_clips (int): Must be 1: uniform sampling covers the whole
            video, so there is no second temporal view. Defaults to 1.
        test_mode (bool): Segment midpoints instead of random frames.
            Defaults to False.
    """

    def __init__(self,
                 clip_len: int,
                 num_clips: int = 1,
                 test_mode: bool = False) -> None:
        _check_positive(clip_len=clip_len)
        if num_clips != 1:
            raise ValueError(
                'UniformSegmentSample covers the whole video with one clip; '
                f'got num_clips={num_clips} (use 1 temporal view)')
        self.clip_len = clip_len
        self.num_clips = 1
        self.test_mode = test_mode

    def segments(self, total: int) -> List[tuple]:
        """(first, last) frame of each segment, both included."""
        size = (total - 1) / self.clip_len
        return [(round(size * i), round(size * (i + 1)))
                for i in range(self.clip_len)]

    def transform(self, results: dict) -> dict:
        """Pick one frame per segment (random in training, else the middle).

        Args:
            results (dict): Pipeline results with ``total_frames``.

        Returns:
            dict: ``results`` with ``frame_inds``, ``clip_len``,
            ``frame_interval`` (None) and ``num_clips`` (1).
        """
        total = _total_frames(results)
        if self.test_mode:
            inds = [(a + b) // 2 for a, b in self.segments(total)]
        else:
            inds = [int(np.random.randint(a, b + 1))
                    for a, b in self.segments(total)]
        return _set_indices(results, inds, self.clip_len, None, 1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'test_mode={self.test_mode})')
