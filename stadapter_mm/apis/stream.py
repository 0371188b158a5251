"""Classify a stream of frames with a sliding window."""
from __future__ import annotations

import copy
from collections import deque
from typing import Deque, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from torch import nn

#: Pipeline steps that open or decode files; a stream gives decoded frames.
_DECODE_STEPS = ('DecordInit', 'DecordDecode', 'PyAVInit', 'PyAVDecode',
                 'PyAVDecodeMotionVector', 'OpenCVInit', 'OpenCVDecode',
                 'RawFrameDecode', 'ImageDecode', 'RawFrameInit')
#: Frame samplers whose clip layout the stream reproduces.
_SAMPLERS = ('SampleFrames', 'UniformSample', 'UniformSampleFrames',
             'DenseSampleFrames', 'SampleAVAFrames')


def frames_pipeline(test_pipeline: List[dict]) -> Tuple[Compose, dict]:
    """Turn a file test pipeline into one that takes decoded frames.

    Args:
        test_pipeline (list[dict]): The config's ``test_pipeline``.

    Returns:
        tuple: (``Compose`` of the remaining steps, sampler settings with
        ``clip_len``, ``num_clips`` and ``frame_interval``).

    Raises:
        ValueError: If the pipeline has no frame sampler.
    """
    steps, sampler = [], None
    for step in test_pipeline:
        kind = step['type']
        if kind in _DECODE_STEPS:
            continue
        if kind in _SAMPLERS:
            sampler = dict(clip_len=int(step.get('clip_len', 1)),
                           num_clips=int(step.get('num_clips', 1)),
                           frame_interval=step.get(
                               'frame_interval',
                               1 if kind == 'SampleFrames' else None))
            continue
        steps.append(copy.deepcopy(step))
    if sampler is None:
        raise ValueError(
            'the test pipeline has no frame sampler '
            f'({", ".join(_SAMPLERS)}); cannot tell how many frames a clip '
            'takes.')
    return Compose(steps), sampler


class StreamRecognizer:
    """Keep the last frames of a stream and classify them every few frames.

    Frames are pushed one at a time (RGB, H x W x 3). Once ``window`` frames
    are in, every ``stride``-th push samples the clip(s) the config's test
    sampler would take from the window (``num_clips`` segments of
    ``clip_len`` evenly spaced frames), runs the rest of the test pipeline
    and the model, and returns the scores averaged over the last
    ``average_size`` windows.

    Args:
        model (nn.Module): Recognizer from ``init_recognizer`` (with
            ``model.cfg``).
        window (int, optional): Frames the clip is sampled from. Defaults to
            ``clip_len * frame_interval * num_clips`` of the sampler, or
            ``2 * clip_len * num_clips`` for samplers without
            ``frame_interval``.
        stride (int): Classify every this many new frames. Defaults to 8.
        average_size (int): Windows averaged per prediction. Defaults to 1.
        num_clips (int, optional): Clips per window. Defaults to 1 (a
            stream is classified one clip at a time, and consecutive windows
            can be averaged with ``average_size``); None keeps the test
            sampler's ``num_clips``.
    """

    def __init__(self,
                 model: nn.Module,
                 window: Optional[int] = None,
                 stride: int = 8,
                 average_size: int = 1,
                 num_clips: Optional[int] = 1) -> None:
        init_default_scope(model.cfg.get('default_scope', 'mmaction'))
        self.model = model
        self.pipeline, self.sampler = frames_pipeline(model.cfg.test_pipeline)
        if num_clips is not None:
            if num_clips < 1:
                raise ValueError(f'num_clips must be >= 1, got {num_clips}')
            self.sampler['num_clips'] = int(num_clips)
        frames_per_view = self.sampler['clip_len'] * self.sampler['num_clips']
        if window is None:
            interval = self.sampler['frame_interval'] or 2
            window = frames_per_view * int(interval)
        if window < self.sampler['clip_len']:
            raise ValueError(
                f'window={window} frames is shorter than clip_len='
                f'{self.sampler["clip_len"]}')
        if stride < 1 or average_size < 1:
            raise ValueError('stride and average_size must be >= 1')
        self.window = int(window)
        self.stride = int(stride)
        self.frames: Deque[np.ndarray] = deque(maxlen=self.window)
        self.scores: Deque[torch.Tensor] = deque(maxlen=average_size)
        self.seen = 0
        self._since = 0

    def frame_indices(self) -> np.ndarray:
        """Indices, within the window, of the frames a clip is made of."""
        clip_len, num_clips = self.sampler['clip_len'], self.sampler[
            'num_clips']
        segment = self.window / num_clips
        starts = np.arange(num_clips) * segment
        offsets = (np.arange(clip_len) + 0.5) * segment / clip_len
        return np.clip((starts[:, None] + offsets[None, :]).astype(int), 0,
                       self.window - 1).reshape(-1)

    def push(self, frame: np.ndarray) -> Optional[torch.Tensor]:
        """Add one RGB frame; returns averaged class scores when it ran.

        Args:
            frame (np.ndarray): (H, W, 3) uint8 RGB.

        Returns:
            Tensor | None: (num_classes,) scores, or None when the window is
            not full or it is not yet time to classify again.
        """
        self.frames.append(frame)
        self.seen += 1
        self._since += 1
        if len(self.frames) < self.window:
            return None
        if self.scores and self._since < self.stride:
            return None
        self._since = 0
        return self.classify()

    def classify(self) -> torch.Tensor:
        """Classify the current window now (it must be full)."""
        if len(self.frames) < self.window:
            raise RuntimeError(
                f'the window holds {len(self.frames)} of {self.window} frames')
        frames = list(self.frames)
        imgs = [frames[i] for i in self.frame_indices()]
        height, width = imgs[0].shape[:2]
        data = dict(imgs=imgs, img_shape=(height, width),
                    original_shape=(height, width), modality='RGB',
                    label=-1, start_index=0, total_frames=len(imgs),
                    frame_inds=np.arange(len(imgs)),
                    clip_len=self.sampler['clip_len'],
                    num_clips=self.sampler['num_clips'],
                    frame_interval=self.sampler['frame_interval'])
        batch = pseudo_collate([self.pipeline(data)])
        with torch.no_grad():
            sample = self.model.test_step(batch)[0]
        self.scores.append(sample.pred_score.detach().float().cpu())
        return torch.stack(list(self.scores)).mean(dim=0)
