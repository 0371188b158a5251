"""Switch a config's multi-view test protocol (clips x crops) in place."""
from __future__ import annotations

from typing import Any, List, MutableMapping, Tuple

#: Frame samplers (MMAction2's and ours): each takes ``clip_len``,
#: ``num_clips`` and ``test_mode``. The one list every pipeline edit uses
#: (test views here, the sliding window of ``apis.StreamRecognizer``).
FRAME_SAMPLERS = ('SampleFrames', 'UniformSample', 'UniformSampleFrames',
                  'DenseSampleFrames', 'FixedStrideSample',
                  'UniformSegmentSample')
#: Crops a test pipeline may end with, by number of spatial views.
CROPS = {1: 'CenterCrop', 3: 'LongSideThreeCrop'}


def parse_views(text: str) -> Tuple[int, int]:
    """Parse ``'CLIPSxCROPS'`` (e.g. ``'3x1'``, ``'1x3'``, ``'3x3'``).

    Args:
        text (str): Temporal clips, ``x``, spatial crops (1 or 3).

    Returns:
        tuple[int, int]: (clips, crops).

    Raises:
        ValueError: For malformed text, clips < 1 or crops not in (1, 3).
    """
    parts = str(text).lower().split('x')
    try:
        clips, crops = (int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f'views must look like "3x1" (temporal clips x spatial crops), '
            f'got {text!r}') from None
    if clips < 1 or crops not in CROPS:
        raise ValueError(
            f'views {text!r}: clips must be >= 1 and crops one of '
            f'{sorted(CROPS)} (center crop or three crops along the long '
            'side).')
    return clips, crops


def _pipelines(dataset_cfg: MutableMapping) -> List[list]:
    """Pipelines of a dataset config, looking inside dataset wrappers."""
    found = []
    if dataset_cfg.get('pipeline') is not None:
        found.append(dataset_cfg['pipeline'])
    inner = dataset_cfg.get('dataset')
    if isinstance(inner, MutableMapping):
        found += _pipelines(inner)
    for sub in dataset_cfg.get('datasets') or []:
        found += _pipelines(sub)
    return found


def _set_pipeline_views(pipeline: list, clips: int, crops: int) -> None:
    samplers = [
        i for i, t in enumerate(pipeline) if t['type'] in FRAME_SAMPLERS
    ]
    croppers = [
        i for i, t in enumerate(pipeline)
        if t['type'] in ('CenterCrop', 'ThreeCrop', 'TenCrop',
                         'LongSideThreeCrop')
    ]
    if len(samplers) != 1 or len(croppers) != 1:
        raise ValueError(
            'cannot set test views: the test pipeline needs exactly one frame '
            f'sampler ({", ".join(FRAME_SAMPLERS)}) and one '
            f'CenterCrop/ThreeCrop/LongSideThreeCrop; it has {[t["type"] for t in pipeline]}.')
    sampler = pipeline[samplers[0]]
    sampler['num_clips'] = clips
    sampler['test_mode'] = True

    index = croppers[0]
    size = pipeline[index].get('crop_size', 224)
    if not isinstance(size, int):
        if len(set(size)) != 1:
            raise ValueError(
                f'multi-view crops need a square crop_size, got {size}')
        size = int(size[0])
    pipeline[index] = dict(type=CROPS[crops], crop_size=size)
    if crops == 3:
        # Three crops cover the long side with squares as tall as the short
        # side: the frames must be resized to a short side of crop_size.
        resize = next((i for i in range(index - 1, -1, -1)
                       if pipeline[i]['type'] in ('Resize',
                                                  'FloatShortSideResize')),
                      None)
        if resize is None:
            pipeline.insert(index, dict(type='Resize', scale=(-1, size)))
        else:
            step = dict(pipeline[resize], scale=(-1, size))
            if step['type'] == 'Resize':
                step['keep_ratio'] = True
            pipeline[resize] = step


def set_test_views(cfg: Any, clips: int, crops: int) -> None:
    """Make ``cfg``'s test pipeline sample ``clips`` clips x ``crops`` crops.

    The frame sampler's ``num_clips`` becomes ``clips``; the crop becomes
    ``CenterCrop`` (1) or ``LongSideThreeCrop`` (3: the official
    left/top, centre, right/bottom crops) of the same size, with the short
    side resized to the crop size for three crops. Scores of all views are
    averaged by the head (``average_clips`` in the model config).

    Args:
        cfg (mmengine.Config): Config with a ``test_dataloader``.
        clips (int): Temporal views.
        crops (int): Spatial views (1 or 3).

    Raises:
        ValueError: If the config has no test pipeline this can edit.
    """
    parse_views(f'{clips}x{crops}')
    loader = cfg.get('test_dataloader')
    if not loader or 'dataset' not in loader:
        raise ValueError('the config has no test_dataloader.dataset to edit')
    pipelines = _pipelines(loader['dataset'])
    if not pipelines:
        raise ValueError('the test dataset config has no pipeline')
    for pipeline in pipelines:
        _set_pipeline_views(pipeline, clips, crops)
    if cfg.get('test_pipeline') is not None:
        cfg.test_pipeline = pipelines[0]
