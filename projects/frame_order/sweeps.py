"""A generated video dataset that only temporal modelling can solve.

Every video shows two coloured squares, one after the other: during the first
half of the video one square sweeps along a straight line, during the second
half the other square sweeps along its own line (only one square is visible
at a time). The four classes are

====  ==================================
 id   name
====  ==================================
 0    ``red-then-blue_rightward``
 1    ``red-then-blue_leftward``
 2    ``blue-then-red_rightward``
 3    ``blue-then-red_leftward``
====  ==================================

All four classes are built from the same *base* video (red sweeps rightward,
then blue sweeps rightward) by permuting its frames: reversing time turns
"red then blue, rightward" into "blue then red, leftward", swapping the two
halves turns it into "blue then red, rightward", and doing both gives "red
then blue, leftward". The base video's random parameters (line directions,
positions, lengths, square sizes, background) are drawn the same way whatever
the class, so the *set* of frames of a video carries no information about its
class: no single frame, and no average or other order-free pooling over
frames, does better than chance. Only the order of the frames tells the
classes apart, which is what ST-Adapter's temporal convolutions add to a
frame-wise image model.

Videos are written with :func:`stadapter_mm.utils.video.write_video`
(OpenCV's ``mp4v`` codec) and listed in MMAction2's ``VideoDataset``
annotation format (``relative/path.mp4 label``).
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from stadapter_mm.utils.video import write_video

#: Frame rate written in the videos.
FPS = 12

#: Class names in label order.
SWEEP_CLASSES: Tuple[str, ...] = (
    'red-then-blue_rightward',
    'red-then-blue_leftward',
    'blue-then-red_rightward',
    'blue-then-red_leftward',
)

#: Frame permutation (reverse time, swap halves) that maps the base video
#: (class 0) to each class.
_CLASS_PERMUTATION: Dict[int, Tuple[bool, bool]] = {
    0: (False, False),
    1: (True, True),
    2: (False, True),
    3: (True, False),
}

_RED = (220, 40, 40)  # RGB
_BLUE = (40, 70, 230)


@dataclass(frozen=True)
class SweepSpec:
    """Settings of a generated sweep dataset.

    Args:
        num_frames (int): Frames per video (even: each square sweeps for
            half of them).
        height (int): Frame height in pixels.
        width (int): Frame width in pixels.
        train_per_class (int): Training videos per class.
        val_per_class (int): Validation videos per class.
        test_per_class (int): Test videos per class.
        max_angle (float): Largest angle (degrees) between a sweep and the
            horizontal axis.
        seed (int): Seed of the generator; the same spec always gives the same
            videos.
    """

    num_frames: int = 24
    height: int = 32
    width: int = 40
    train_per_class: int = 160
    val_per_class: int = 40
    test_per_class: int = 40
    max_angle: float = 40.0
    seed: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` for settings that cannot make valid videos."""
        if self.num_frames < 4 or self.num_frames % 2:
            raise ValueError(
                f'num_frames must be an even number >= 4, got '
                f'{self.num_frames}.')
        if min(self.height, self.width) < 16 or self.height % 2 or \
                self.width % 2:
            raise ValueError(
                f'frames must be at least 16x16 with even sides (mp4v), got '
                f'{self.height}x{self.width}.')
        for split in ('train', 'val', 'test'):
            if getattr(self, f'{split}_per_class') < 0:
                raise ValueError(f'{split}_per_class must be >= 0')
        if not 0 <= self.max_angle < 90:
            raise ValueError(
                f'max_angle must be in [0, 90) degrees so that rightward and '
                f'leftward stay distinct, got {self.max_angle}.')


def _sweep_positions(rng: np.random.Generator, spec: SweepSpec,
                     size: int) -> np.ndarray:
    """Top-left corners of a square sweeping rightward along a line.

    Returns:
        np.ndarray: (num_frames // 2, 2) float (x, y) positions.
    """
    steps = spec.num_frames // 2
    angle = math.radians(rng.uniform(-spec.max_angle, spec.max_angle))
    direction = np.array([math.cos(angle), math.sin(angle)])
    span_x = spec.width - size
    span_y = spec.height - size
    # Long enough to be seen moving, short enough to fit in the frame.
    length = rng.uniform(0.6, 0.85) * min(span_x / max(abs(direction[0]),
                                                       1e-6),
                                          span_y / max(abs(direction[1]),
                                                       1e-6),
                                          float(span_x))
    half = 0.5 * length * direction
    lo = np.abs(half)
    hi = np.array([span_x, span_y]) - np.abs(half)
    centre = rng.uniform(lo, hi)
    t = np.linspace(-1.0, 1.0, steps)[:, None]
    return centre + t * half


def render_base_video(rng: np.random.Generator,
                      spec: SweepSpec) -> np.ndarray:
    """Draw the parameters of one base video and render it.

    The base video is class 0: the red square sweeps rightward during the
    first half, then the blue square sweeps rightward.

    Args:
        rng: Random generator (the only source of randomness).
        spec: Dataset settings.

    Returns:
        np.ndarray: (num_frames, height, width, 3) uint8 RGB frames.
    """
    background = int(rng.integers(30, 90))
    frames = np.full((spec.num_frames, spec.height, spec.width, 3),
                     background, dtype=np.uint8)
    steps = spec.num_frames // 2
    for half, colour in enumerate((_RED, _BLUE)):
        size = int(rng.integers(6, 9))
        positions = _sweep_positions(rng, spec, size)
        for i, (x, y) in enumerate(np.rint(positions).astype(int)):
            frames[half * steps + i, y:y + size, x:x + size] = colour
    return frames


def permute_to_class(base: np.ndarray, label: int) -> np.ndarray:
    """Reorder the frames of a base video into a video of class ``label``.

    Args:
        base (np.ndarray): (T, H, W, 3) base video (class 0).
        label (int): Target class in ``range(len(SWEEP_CLASSES))``.

    Returns:
        np.ndarray: (T, H, W, 3) frames of the same set, in the class order.
    """
    if label not in _CLASS_PERMUTATION:
        raise ValueError(
            f'label must be one of {sorted(_CLASS_PERMUTATION)}, got {label}')
    reverse, swap = _CLASS_PERMUTATION[label]
    frames = base
    if swap:
        half = len(frames) // 2
        frames = np.concatenate([frames[half:], frames[:half]])
    if reverse:
        frames = frames[::-1]
    return np.ascontiguousarray(frames)


def generate_sweep_dataset(root: str,
                           spec: Optional[SweepSpec] = None,
                           progress: bool = True) -> Dict[str, str]:
    """Generate the sweep dataset under ``root`` (reused if already there).

    Layout::

        root/videos/{train,val,test}/{index:05d}.mp4
        root/{train,val,test}_list.txt     # "train/00000.mp4 2"
        root/label_map.txt                 # one class name a line
        root/spec.json                     # the settings that made it

    A folder whose ``spec.json`` matches ``spec`` and whose lists exist is
    reused as is; any other content is regenerated.

    Args:
        root (str): Output folder.
        spec (SweepSpec, optional): Settings. Defaults to ``SweepSpec()``.
        progress (bool): Show a tqdm progress bar.

    Returns:
        dict: Paths ``video_root``, ``train``, ``val``, ``test`` (annotation
        lists) and ``label_map``.
    """
    spec = spec or SweepSpec()
    spec.check()
    paths = dict(
        video_root=osp.join(root, 'videos'),
        train=osp.join(root, 'train_list.txt'),
        val=osp.join(root, 'val_list.txt'),
        test=osp.join(root, 'test_list.txt'),
        label_map=osp.join(root, 'label_map.txt'))
    spec_file = osp.join(root, 'spec.json')
    if osp.isfile(spec_file) and osp.isdir(paths['video_root']) and all(
            osp.isfile(paths[k]) for k in ('train', 'val', 'test')):
        with open(spec_file) as f:
            if json.load(f) == asdict(spec):
                return paths

    splits = [('train', spec.train_per_class), ('val', spec.val_per_class),
              ('test', spec.test_per_class)]
    total = sum(n for _, n in splits) * len(SWEEP_CLASSES)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc='Generating sweep videos', unit='video')
    # One independent stream per split, so changing one split's size does
    # not change the others.
    seeds = np.random.SeedSequence(spec.seed).spawn(len(splits))
    for (split, per_class), seed in zip(splits, seeds):
        rng = np.random.default_rng(seed)
        folder = osp.join(paths['video_root'], split)
        os.makedirs(folder, exist_ok=True)
        labels = np.tile(np.arange(len(SWEEP_CLASSES)), per_class)
        rng.shuffle(labels)
        lines: List[str] = []
        for index, label in enumerate(labels):
            frames = permute_to_class(render_base_video(rng, spec),
                                      int(label))
            name = f'{split}/{index:05d}.mp4'
            write_video(osp.join(paths['video_root'], name), frames, fps=FPS)
            lines.append(f'{name} {int(label)}')
            if bar is not None:
                bar.update()
        with open(paths[split], 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))
    if bar is not None:
        bar.close()
    with open(paths['label_map'], 'w') as f:
        f.write('\n'.join(SWEEP_CLASSES) + '\n')
    with open(spec_file, 'w') as f:
        json.dump(asdict(spec), f, indent=2)
    return paths


def frame_multiset_key(frames: Sequence[np.ndarray]) -> List[bytes]:
    """Order-free fingerprint of a video's frames (for checks and tests).

    Args:
        frames: Frames of one video.

    Returns:
        list[bytes]: The frames' bytes, sorted.
    """
    return sorted(np.ascontiguousarray(f).tobytes() for f in frames)
