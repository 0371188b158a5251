"""Classify a stream of frames with a sliding window."""
from __future__ import annotations

import copy
from collections import deque
from typing import Deque, List, Optional, Tuple

import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from torch import nn

from ..datasets.views import FRAME_SAMPLERS

#: Samplers whose clips span ``clip_len * frame_interval`` frames.
_STRIDED = ('SampleFrames', 'FixedStrideSample')

#: Pipeline steps that open or decode files; a stream gives decoded frames.
_DECODE_STEPS = ('DecordInit', 'DecordDecode', 'PyAVInit', 'PyAVDecode',
                 'PyAVDecodeMotionVector', 'OpenCVInit', 'OpenCVDecode',
                 'RawFrameDecode', 'ImageDecode', 'RawFrameInit')


def frames_pipeline(test_pipeline: List[dict]) -> Tuple[Compose, dict]:
    """Split a file test pipeline into its frame sampler and the rest.

    Args:
        test_pipeline (list[dict]): The config's ``test_pipeline``.

    Returns:
        tuple: (``Compose`` of the steps after decoding, the sampler step's
        config).

    Raises:
        ValueError: If the pipeline has no frame sampler.
    """
    steps, sampler = [], None
    for step in test_pipeline:
        kind = step['type']
        if kind in _DECODE_STEPS:
            continue
        if kind in FRAME_SAMPLERS:
            sampler = copy.deepcopy(dict(step))
            continue
        steps.append(copy.deepcopy(step))
    if sampler is None:
        raise ValueError(
            'the test pipeline has no frame sampler '
            f'({", ".join(FRAME_SAMPLERS)}); cannot tell how many frames a clip '
            'takes.')
    return Compose(steps), sampler


class StreamRecognizer:
    """Keep the last frames of a stream and classify them every few frames.

    Frames are pushed one at a time (RGB, H x W x 3). Once ``window`` frames
    are in, every ``stride``-th push runs the config's own test sampler
    (``SampleFrames``, ``UniformSample``...) on the window as if it were a
    video of ``window`` frames, takes the frames it picks, runs the rest of
    the test pipeline and the model, and returns the class scores averaged
    over the last ``average_size`` windows. A video of exactly ``window``
    frames therefore gets the scores ``inference_recognizer`` gives the file.

    Args:
        model (nn.Module): Recognizer from ``init_recognizer`` (with
            ``model.cfg``).
        window (int, optional): Frames the clips are sampled from. Defaults
            to ``clip_len * frame_interval * num_clips`` for
            ``SampleFrames``/``FixedStrideSample`` and
            ``4 * clip_len * num_clips`` for samplers without a frame
            interval.
        stride (int): Classify every this many new frames. Defaults to 8.
        average_size (int): Windows averaged per prediction. Defaults to 1.
        num_clips (int, optional): Clips per window. Defaults to 1 (a
            stream is classified one clip at a time; consecutive windows can
            be averaged with ``average_size``). None keeps the test
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
        self.pipeline, sampler_cfg = frames_pipeline(model.cfg.test_pipeline)
        if num_clips is not None:
            if num_clips < 1:
                raise ValueError(f'num_clips must be >= 1, got {num_clips}')
            sampler_cfg['num_clips'] = int(num_clips)
        sampler_cfg['test_mode'] = True
        self.sampler_cfg = sampler_cfg
        self.sampler = TRANSFORMS.build(sampler_cfg)
        clip_len = int(sampler_cfg.get('clip_len', 1))
        clips = int(sampler_cfg.get('num_clips', 1))
        if window is None:
            if sampler_cfg['type'] in _STRIDED:
                interval = int(sampler_cfg.get('frame_interval', 1))
            else:
                interval = 4
            window = clip_len * interval * clips
        if window < clip_len:
            raise ValueError(
                f'window={window} frames is shorter than clip_len={clip_len}')
        if stride < 1 or average_size < 1:
            raise ValueError('stride and average_size must be >= 1')
        self.window = int(window)
        self.stride = int(stride)
        self.frames: Deque[np.ndarray] = deque(maxlen=self.window)
        self.scores: Deque[torch.Tensor] = deque(maxlen=average_size)
        self.seen = 0
        self._since = 0

    def _sample(self) -> Tuple[np.ndarray, dict]:
        results = self.sampler(
            dict(total_frames=self.window, start_index=0, label=-1,
                 modality='RGB', filename=None))
        return results['frame_inds'].reshape(-1) % self.window, results

    def frame_indices(self) -> np.ndarray:
        """Indices, within the window, of the frames the sampler picks."""
        return self._sample()[0]

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
        indices, data = self._sample()
        frames = list(self.frames)
        data['imgs'] = [frames[i] for i in indices]
        height, width = data['imgs'][0].shape[:2]
        data['img_shape'] = data['original_shape'] = (height, width)
        batch = pseudo_collate([self.pipeline(data)])
        with torch.no_grad():
            sample = self.model.test_step(batch)[0]
        self.scores.append(sample.pred_score.detach().float().cpu())
        return torch.stack(list(self.scores)).mean(dim=0)
