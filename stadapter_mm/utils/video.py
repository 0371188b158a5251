"""The one video reader and writer of stadapter-mm.

Demos, the frame-order project, the benchmark and the tests all read and
write videos through this module. Writing uses OpenCV (``.mp4``/``.avi``) and
Pillow (``.gif``), both already installed with MMAction2, so nothing needs
``moviepy``; reading uses decord, like MMAction2's ``DecordInit``.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

VIDEO_EXTS = ('.mp4', '.avi', '.gif')
#: Default OpenCV FourCC codec per extension (``mp4v``: MPEG-4 part 2).
DEFAULT_CODECS = {'.mp4': 'mp4v', '.avi': 'MJPG'}


def read_frames(path: str,
                target_resolution: Optional[Tuple[int, int]] = None
                ) -> List[np.ndarray]:
    """Decode every frame of a video file with decord.

    Args:
        path (str): Video file.
        target_resolution (tuple[int, int], optional): (width, height) to
            resize to; -1 in one of them keeps the aspect ratio.

    Returns:
        list[np.ndarray]: RGB frames of shape (H, W, 3), uint8.
    """
    import decord
    if not osp.isfile(path):
        raise FileNotFoundError(f'video {path!r} does not exist')
    reader = decord.VideoReader(path)
    frames = [reader[i].asnumpy() for i in range(len(reader))]
    if target_resolution is not None and frames:
        width, height = target_resolution
        frame_h, frame_w = frames[0].shape[:2]
        if width == -1 and height == -1:
            raise ValueError('target resolution cannot be -1 x -1')
        if width == -1:
            width = int(round(height / frame_h * frame_w))
        if height == -1:
            height = int(round(width / frame_w * frame_h))
        frames = [cv2.resize(f, (width, height)) for f in frames]
    return frames


def draw_lines(frame: np.ndarray,
               lines: Sequence[str],
               font_scale: float = 0.5,
               color: Tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Draw text lines, top left, on a dark band so they stay readable.

    Args:
        frame (np.ndarray): RGB image (H, W, 3), uint8; not modified.
        lines (Sequence[str]): Text lines, top to bottom.
        font_scale (float): OpenCV font scale. Defaults to 0.5.
        color (tuple): RGB text color. Defaults to white.

    Returns:
        np.ndarray: A drawn copy.
    """
    out = np.ascontiguousarray(frame).copy()
    font = cv2.FONT_HERSHEY_DUPLEX
    pad = max(2, int(6 * font_scale))
    y = pad
    for line in lines:
        (tw, th), base = cv2.getTextSize(line, font, font_scale, 1)
        top, bottom = y, min(out.shape[0], y + th + base + pad)
        right = min(out.shape[1], tw + 2 * pad)
        out[top:bottom, :right] = (out[top:bottom, :right] * 0.4).astype(
            out.dtype)
        cv2.putText(out, line, (pad, y + th), font, font_scale, color, 1,
                    cv2.LINE_AA)
        y = bottom
    return out


def check_output_path(path: str) -> str:
    """Validate an output video name; returns its extension."""
    ext = osp.splitext(path)[1].lower()
    if ext not in VIDEO_EXTS:
        raise ValueError(
            f'cannot write {path!r}: use one of {", ".join(VIDEO_EXTS)}')
    return ext


class VideoSink:
    """Write RGB frames to ``.mp4``/``.avi`` (OpenCV) or ``.gif`` (Pillow).

    The output folder is created if needed. Frames are RGB, like decord
    returns them; the sink converts to OpenCV's BGR itself.

    Example:
        >>> with VideoSink('out.mp4', fps=12) as sink:
        ...     for frame in frames:
        ...         sink.write(frame)

    Args:
        path (str): Output file; its extension picks the format.
        fps (float): Frame rate. Defaults to 30.
        codec (str, optional): OpenCV FourCC code (4 characters) for
            ``.mp4``/``.avi``. Defaults to :data:`DEFAULT_CODECS` of the
            extension (``mp4v`` for ``.mp4``, ``MJPG`` for ``.avi``).

    Raises:
        ValueError: For an unsupported extension, a non-positive ``fps`` or
            a codec that is not 4 characters (or given for a ``.gif``).
    """

    def __init__(self, path: str, fps: float = 30.0,
                 codec: Optional[str] = None) -> None:
        self.path = path
        self.ext = check_output_path(path)
        if fps <= 0:
            raise ValueError(f'fps must be positive, got {fps}')
        if codec is not None and (self.ext == '.gif' or len(codec) != 4):
            raise ValueError(
                f'codec must be a 4-character OpenCV FourCC code for .mp4 '
                f'or .avi output, got {codec!r} for {path!r}')
        self.fps = float(fps)
        self.codec = codec or DEFAULT_CODECS.get(self.ext)
        self._writer = None
        self._gif: List[np.ndarray] = []
        self.count = 0
        directory = osp.dirname(osp.abspath(path))
        os.makedirs(directory, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame (H, W, 3), uint8."""
        if self.ext == '.gif':
            self._gif.append(np.asarray(frame, dtype=np.uint8))
        else:
            if self._writer is None:
                height, width = frame.shape[:2]
                self._writer = cv2.VideoWriter(
                    self.path, cv2.VideoWriter_fourcc(*self.codec),
                    self.fps, (width, height))
                if not self._writer.isOpened():
                    self._writer = None
                    raise RuntimeError(
                        f'OpenCV cannot open a {self.codec} writer for '
                        f'{self.path}; check that the folder is writable and '
                        'that OpenCV was built with FFmpeg support.')
            self._writer.write(
                cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8),
                             cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._gif:
            from PIL import Image
            images = [Image.fromarray(f) for f in self._gif]
            images[0].save(self.path, save_all=True,
                           append_images=images[1:],
                           duration=max(1, int(round(1000 / self.fps))),
                           loop=0)
            self._gif = []

    def __enter__(self) -> 'VideoSink':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str, frames: Iterable[np.ndarray],
                fps: float = 30.0, codec: Optional[str] = None) -> str:
    """Write RGB frames to ``path`` (format from its extension).

    Args:
        path (str): Output file (``.mp4``, ``.avi`` or ``.gif``).
        frames (Iterable[np.ndarray]): RGB frames (H, W, 3), uint8: an array
            (T, H, W, 3), a list or a generator (written as they come).
        fps (float): Frame rate. Defaults to 30.
        codec (str, optional): OpenCV FourCC code; see :class:`VideoSink`.

    Returns:
        str: ``path``.
    """
    with VideoSink(path, fps, codec) as sink:
        for frame in frames:
            sink.write(frame)
    return path
