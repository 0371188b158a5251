"""Data-loading throughput of the real training pipeline, for ``benchmark.py``.

A synthetic video (moving shapes over a textured background, written with
``cv2.VideoWriter`` as MPEG-4 part 2, like Kinetics clips re-encoded at
320x240) goes through the ``train_pipeline`` of a training config (decord
decoding, scale jitter, crop, flip, format, pack) the way one DataLoader
worker runs it: one process, one torch and one OpenCV thread.
"""
from __future__ import annotations

import copy
import os
import time
from typing import List, Optional

import numpy as np

#: The Kinetics-400 recipe whose ``train_pipeline`` is measured by default.
DEFAULT_PIPELINE_CONFIG = os.path.join(
    'configs', 'recognition', 'stadapter',
    'stadapter_vitb16-12x384_8xb8-8x16x1-12e_k400-rgb.py')


def write_video(path: str,
                width: int = 320,
                height: int = 240,
                seconds: float = 10.0,
                fps: int = 30,
                seed: int = 0) -> str:
    """Write a synthetic MPEG-4 video with motion and texture.

    Args:
        path (str): Output ``.mp4`` path (its folder must exist).
        width (int): Frame width.
        height (int): Frame height.
        seconds (float): Duration.
        fps (int): Frames per second.
        seed (int): Texture seed.

    Returns:
        str: ``path``.

    Raises:
        RuntimeError: If OpenCV cannot open an ``mp4v`` writer.
    """
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    if not writer.isOpened():
        raise RuntimeError(
            f'OpenCV could not open an mp4v video writer for {path}; '
            'install opencv-python with video support.')
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 3)
    ys, xs = np.mgrid[0:height, 0:width]
    frames = int(round(seconds * fps))
    for i in range(frames):
        dx, dy = (3 * i) % width, (2 * i) % height
        frame = texture[dy:dy + height, dx:dx + width].copy()
        cx = int(width / 2 + width / 3 * np.sin(i / 15))
        cy = int(height / 2 + height / 3 * np.cos(i / 20))
        cv2.circle(frame, (cx, cy), 30, (255, 60, 20), -1)
        cv2.rectangle(frame, (width - cx - 25, cy - 25),
                      (width - cx + 25, cy + 25), (20, 200, 90), -1)
        shade = ((xs + 4 * i) % 64 < 32)[..., None]
        frame = np.where(shade, frame, frame // 2 + 60).astype(np.uint8)
        writer.write(frame)
    writer.release()
    return path


def load_train_pipeline(config: str,
                        num_frames: Optional[int] = None) -> List[dict]:
    """The ``train_pipeline`` of a training config.

    Args:
        config (str): Config path.
        num_frames (int, optional): Override ``SampleFrames.clip_len``.

    Returns:
        list[dict]: Transform configs.

    Raises:
        FileNotFoundError: If the config does not exist.
        KeyError: If it has no ``train_pipeline``.
    """
    from mmengine.config import Config
    if not os.path.isfile(config):
        raise FileNotFoundError(
            f'pipeline config {config} not found; pass --pipeline-config '
            'with a training config that defines train_pipeline (run from '
            'the repository root for the default).')
    cfg = Config.fromfile(config)
    if 'train_pipeline' not in cfg:
        raise KeyError(f'{config} defines no train_pipeline.')
    pipeline = copy.deepcopy(cfg.train_pipeline)
    for step in pipeline:
        if step['type'] == 'SampleFrames' and num_frames is not None:
            step['clip_len'] = num_frames
    return pipeline


def pipeline_throughput(pipeline_cfg: List[dict],
                        video: str,
                        samples: int = 20,
                        warmup: int = 2) -> dict:
    """Clips per second of a pipeline run as one DataLoader worker.

    Torch and OpenCV are limited to one thread while it runs, as in a
    worker process of mmengine's runner.

    Args:
        pipeline_cfg (list[dict]): Transform configs (mmaction scope).
        video (str): Video file.
        samples (int): Timed samples.
        warmup (int): Untimed samples first.

    Returns:
        dict: ``clips_per_s``, ``ms_per_clip`` (median), ``samples`` and
        the ``input_shape`` the pipeline produced.
    """
    import cv2
    import torch
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    init_default_scope('mmaction')
    pipeline = Compose(pipeline_cfg)
    info = dict(filename=video, label=0, start_index=0, modality='RGB')
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        for _ in range(warmup):
            out = pipeline(dict(info))
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            out = pipeline(dict(info))
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    times.sort()
    median = times[len(times) // 2]
    return dict(
        clips_per_s=len(times) / sum(times),
        ms_per_clip=1e3 * median,
        samples=samples,
        input_shape=list(out['inputs'].shape))
