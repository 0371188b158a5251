"""Edit a config's frame sampling: test views (clips x crops) and variants.

:func:`set_test_views` switches a built config's multi-view test protocol in
place (``tools/test.py --views``); :func:`with_frame_sampling` gives a
variant config its base's pipelines and data loaders with other sampler
arguments (e.g. 16 frames at interval 8 instead of 8 at 16).
"""
from __future__ import annotations

import copy
from typing import Any, List, Mapping, MutableMapping, Tuple

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


def _positions(pipeline: list, types: Tuple[str, ...]) -> List[int]:
    """Indices of the steps of ``pipeline`` whose type is in ``types``."""
    return [i for i, t in enumerate(pipeline) if t['type'] in types]


def _set_pipeline_views(pipeline: list, clips: int, crops: int) -> None:
    samplers = _positions(pipeline, FRAME_SAMPLERS)
    croppers = _positions(pipeline, ('CenterCrop', 'ThreeCrop', 'TenCrop',
                                     'LongSideThreeCrop'))
    if len(samplers) != 1 or len(croppers) != 1:
        raise ValueError(
            'cannot set test views: the test pipeline needs exactly one frame '
            f'sampler ({", ".join(FRAME_SAMPLERS)}) and one '
            'CenterCrop/ThreeCrop/LongSideThreeCrop; it has '
            f'{[t["type"] for t in pipeline]}.')
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


def with_frame_sampling(base: Mapping, **sampler_args: Any) -> tuple:
    """A variant config's pipelines and data loaders with other sampling.

    For a config that changes only the frame sampling of its base config:
    copies of the base's ``train_pipeline``, ``val_pipeline`` and
    ``test_pipeline`` with ``sampler_args`` set in their one frame sampler
    (:data:`FRAME_SAMPLERS`), and the three ``*_dataloader`` overrides that
    use them. In a config (``_base_`` first: mmengine reads a config whose
    first import comes before it as a lazy-import config)::

        _base_ = ['./stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py']
        from stadapter_mm.datasets.views import with_frame_sampling

        (train_pipeline, val_pipeline, test_pipeline, train_dataloader,
         val_dataloader, test_dataloader) = with_frame_sampling(
             _base_, clip_len=16, frame_interval=8)

    Args:
        base (Mapping): The base config (``_base_`` inside a config file),
            with the three pipelines.
        **sampler_args: Arguments of the frame sampler to set, e.g.
            ``clip_len`` and ``frame_interval``.

    Returns:
        tuple: ``(train_pipeline, val_pipeline, test_pipeline,
        train_dataloader, val_dataloader, test_dataloader)``.

    Raises:
        ValueError: Without ``sampler_args``, or if a pipeline has no or
            several frame samplers.
    """
    if not sampler_args:
        raise ValueError('with_frame_sampling needs the sampler arguments to '
                         'set, e.g. clip_len=16, frame_interval=8')
    pipelines = []
    for split in ('train', 'val', 'test'):
        pipeline = copy.deepcopy(list(base[f'{split}_pipeline']))
        samplers = _positions(pipeline, FRAME_SAMPLERS)
        if len(samplers) != 1:
            raise ValueError(
                f'{split}_pipeline needs exactly one frame sampler '
                f'({", ".join(FRAME_SAMPLERS)}) to set {sampler_args}; it has '
                f'{[t["type"] for t in pipeline]}.')
        pipeline[samplers[0]].update(sampler_args)
        pipelines.append(pipeline)
    loaders = [dict(dataset=dict(pipeline=p)) for p in pipelines]
    return (*pipelines, *loaders)
