"""Every config loads, builds (tiny override) and says what it contains."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmaction.registry import MODELS, TRANSFORMS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from stadapter_mm.models import ViTCLIPSTAdapter, resolve_adapter_cfg

from conftest import ROOT, TINY_ARCH

CONFIG_DIR = osp.join(ROOT, 'configs')
#: Paths relative to CONFIG_DIR: configs/**, then projects/*/configs/*.
ALL_CONFIGS = sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
) + sorted(
    osp.relpath(p, CONFIG_DIR)
    for p in glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*.py')))
#: Configs named by the pattern (the short aliases are checked separately).
NAMED_CONFIGS = [c for c in ALL_CONFIGS if '/' in c]

NAME_PATTERN = re.compile(
    r'^(?P<method>stadapter|linearprobe)_(?P<arch>vit[a-z0-9]+)'
    r'(?:-(?P<count>\d+)x(?P<width>\d+))?'
    r'_(?P<gpus>\d+)xb(?P<batch>\d+)'
    r'-(?:(?P<clip>\d+)x(?P<interval>\d+)x(?P<clips>\d+)|u(?P<uniform>\d+))'
    r'-(?P<epochs>\d+)e_(?P<dataset>[a-z0-9]+)-rgb\.py$')
ARCH_NAMES = {'vitb16': 'ViT-B/16', 'vitl14': 'ViT-L/14'}
#: MMPretrain image models named in config names (MMPretrainSTAdapter).
MMPRETRAIN_ARCH_NAMES = {
    'vitb14dinov2': dict(type='VisionTransformer', arch='base', patch_size=14,
                         layer_scale_init_value=1e-5),
    'vitb16clip': dict(type='VisionTransformer', arch='b', patch_size=16,
                       pre_norm=True),
}
DATASETS = {'k400': ('kinetics400', 400), 'sthv2': ('sthv2', 174),
            'sweeps': ('synthetic_sweeps', 4),
            'ek100': ('epic-kitchens-100', (97, 300))}


def head_classes(head):
    """``num_classes``, or (verbs, nouns) of a ``VerbNounHead``."""
    if head.get('type') == 'VerbNounHead':
        return (head.num_verb_classes, head.num_noun_classes)
    return head.num_classes


def load(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def sampler(pipeline):
    found = [t for t in pipeline
             if t['type'] in ('SampleFrames', 'UniformSample',
                              'FixedStrideSample', 'UniformSegmentSample')]
    assert len(found) == 1, pipeline
    return found[0]


def tiny_model_cfg(cfg):
    """The config's model on the 2-layer test ViT, without CLIP weights."""
    model = cfg.model.copy()
    backbone = dict(model.backbone)
    backbone.update(init_cfg=None, with_cp=False)
    if backbone['type'] == 'MMPretrainSTAdapter':
        # The same MMPretrain model type and options at the test size.
        backbone['image_model'] = dict(
            backbone['image_model'], img_size=32, patch_size=8,
            init_cfg=None, arch=dict(embed_dims=64, num_layers=2,
                                     num_heads=4, feedforward_channels=256))
    else:
        backbone['arch'] = dict(TINY_ARCH)
    adapter = backbone.get('adapter')
    if isinstance(adapter, str):
        adapter = dict(preset=adapter)
    if adapter is not None:
        # Same positions and blocks; a bottleneck that fits width 64.
        backbone['adapter'] = dict(adapter, width=32)
    model.backbone = backbone
    model.cls_head = dict(model.cls_head, in_channels=TINY_ARCH['width'])
    return model


def test_config_list_is_complete():
    assert 'stadapter_vitb16_k400.py' in ALL_CONFIGS
    assert 'stadapter_vitb16_ssv2.py' in ALL_CONFIGS
    assert len(NAMED_CONFIGS) >= 9


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_builds_and_runs(name):
    cfg = load(name)
    model = MODELS.build(tiny_model_cfg(cfg))
    pipeline = cfg.train_dataloader.dataset.pipeline
    clip_len = sampler(pipeline)['clip_len']
    num_classes = head_classes(cfg.model.cls_head)
    inputs = torch.rand(2, 1, 3, clip_len, 32, 32) * 255
    samples = [ActionDataSample().set_gt_label(
        [i % n for n in num_classes] if isinstance(num_classes, tuple) else
        i % num_classes) for i in range(2)]
    data = model.data_preprocessor(
        dict(inputs=list(inputs), data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(loss)
    loss.backward()
    adapters = model.backbone.adapters()
    if adapters:
        assert adapters[0].fc2.weight.grad is not None
    for key in ('train_pipeline', 'val_pipeline', 'test_pipeline'):
        for transform in cfg[key]:
            TRANSFORMS.build(transform)
    build_optim_wrapper(model, cfg.optim_wrapper)


@pytest.mark.parametrize('name', NAMED_CONFIGS)
def test_name_matches_contents(name):
    match = NAME_PATTERN.match(osp.basename(name))
    assert match, f'{name} does not follow the naming pattern'
    m = match.groupdict()
    cfg = load(name)
    backbone = cfg.model.backbone

    # Architecture.
    if m['arch'] in MMPRETRAIN_ARCH_NAMES:
        image_model = backbone.image_model
        expected = MMPRETRAIN_ARCH_NAMES[m['arch']]
        assert {k: image_model.get(k) for k in expected} == expected
        zoo = MMPRETRAIN_MODELS.get(image_model.type).arch_zoo[
            image_model.arch]
        settings = dict(width=zoo['embed_dims'], layers=zoo['num_layers'],
                        patch_size=image_model.patch_size)
    elif m['arch'] in ARCH_NAMES:
        assert backbone.arch == ARCH_NAMES[m['arch']]
        settings = ViTCLIPSTAdapter.arch_zoo[backbone.arch]
    else:
        # Custom size; the suffix 'mmpretrain' names MMPretrain's ViT.
        arch = re.fullmatch(r'vitw(\d+)l(\d+)p(\d+)(mmpretrain)?', m['arch'])
        assert arch, m['arch']
        settings = backbone.get('arch')
        if arch.group(4):
            image_model = backbone.image_model
            settings = dict(width=image_model.arch.embed_dims,
                            layers=image_model.arch.num_layers,
                            patch_size=image_model.patch_size)
        assert (settings['width'], settings['layers'],
                settings['patch_size']) == tuple(map(int, arch.groups()[:3]))
    assert cfg.model.cls_head.in_channels == settings['width']

    # Adapters: count x bottleneck width (none for a linear probe).
    resolved = resolve_adapter_cfg(
        backbone.adapter, settings['width'], settings['layers'])
    if m['method'] == 'linearprobe':
        assert resolved is None and m['count'] is None
    else:
        count = len(resolved['blocks']) * len(resolved['positions'])
        assert (count, resolved['width']) == (int(m['count']),
                                              int(m['width']))

    # Batch per GPU; the GPU count is what auto_scale_lr scales from.
    assert cfg.train_dataloader.batch_size == int(m['batch'])
    if 'total_batch' in cfg:  # GPUs x batch x accumulation = total batch
        assert int(m['gpus']) * int(m['batch']) * cfg.optim_wrapper.get(
            'accumulative_counts', 1) == cfg.total_batch

    # Frames.
    for key in ('train_pipeline', 'val_pipeline', 'test_pipeline'):
        frames = sampler(cfg[key])
        if m['uniform']:
            assert frames['type'] in ('UniformSample',
                                      'UniformSegmentSample')
            assert frames['clip_len'] == int(m['uniform'])
        else:
            assert frames['type'] in ('SampleFrames', 'FixedStrideSample')
            assert (frames['clip_len'], frames['frame_interval']) == (
                int(m['clip']), int(m['interval']))
    if not m['uniform']:
        assert sampler(cfg.train_pipeline).get('num_clips', 1) == int(
            m['clips'])
    assert backbone.num_frames == sampler(cfg.train_pipeline)['clip_len']
    # The dataloaders use the pipelines the config defines.
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline

    # Epochs, with the schedule ending where training ends.
    assert cfg.train_cfg.max_epochs == int(m['epochs'])
    assert cfg.param_scheduler[-1]['end'] == int(m['epochs'])

    # Dataset.
    folder, num_classes = DATASETS[m['dataset']]
    assert head_classes(cfg.model.cls_head) == num_classes
    assert folder in cfg.train_dataloader.dataset.ann_file
    assert folder in cfg.test_dataloader.dataset.ann_file


def test_short_names_are_the_official_recipes():
    for short, full in [
        ('stadapter_vitb16_k400.py',
         'recognition/stadapter/'
         'stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py'),
        ('stadapter_vitb16_ssv2.py',
         'recognition/stadapter/'
         'stadapter_vitb16-24x384_8xb32-u8-50e_sthv2-rgb.py'),
    ]:
        a, b = load(short).to_dict(), load(full).to_dict()
        a.pop('filename', None)
        b.pop('filename', None)
        assert a == b


def test_k400_recipe():
    cfg = load('stadapter_vitb16_k400.py')
    assert cfg.model.backbone.adapter == '12x384'
    types = [t['type'] for t in cfg.train_pipeline]
    assert 'Flip' in types
    rescale = cfg.train_pipeline[types.index('FloatShortSideResize')]
    assert rescale['scale_range'] == (224, 258)  # 1.0-1.15 x 224
    assert cfg.train_pipeline[types.index('RandomCrop')]['size'] == 224
    test = cfg.test_pipeline
    assert sampler(test)['num_clips'] == 3
    assert [t['type'] for t in test].count('CenterCrop') == 1
    assert cfg.model.data_preprocessor.mean == pytest.approx(
        [122.7709383, 116.7460125, 104.09373615], abs=1e-9)
    assert cfg.model.data_preprocessor.std == pytest.approx(
        [68.50053270, 66.63215790, 70.32316305], abs=1e-9)
    assert cfg.model.cls_head.average_clips == 'prob'
    # Checkpoints hold adapters and head only; CLIP reloads from the file.
    assert cfg.custom_hooks[0]['save_trainable_only'] is True
    assert cfg.model.backbone.init_cfg.checkpoint == cfg.clip_checkpoint


def test_ssv2_recipe():
    cfg = load('stadapter_vitb16_ssv2.py')
    assert cfg.model.backbone.adapter == '24x384'
    types = [t['type'] for t in cfg.train_pipeline]
    assert 'Flip' not in types, 'SSv2 labels depend on left and right'
    aug = cfg.train_pipeline[types.index('VideoRandAugment')]
    assert (aug['magnitude'], aug['num_ops']) == (7, 4)
    assert types.index('VideoRandAugment') < types.index('FormatShape')
    test = cfg.test_pipeline
    assert sampler(test)['num_clips'] == 1
    assert [t['type'] for t in test].count('LongSideThreeCrop') == 1
    # RandAugment on the full frames, then the random resized crop.
    assert types.index('VideoRandAugment') < types.index(
        'FloatRandomResizedCrop')
    assert cfg.param_scheduler[0]['warmup'] == 2


@pytest.mark.parametrize('name', ['stadapter_vitb16_k400.py',
                                  'stadapter_vitb16_ssv2.py'])
def test_optimizer_schedule_and_no_decay_on_biases(name):
    cfg = load(name)
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'
    # Official lr: 1e-3 per 256 clips of the total batch, fixed (mmengine's
    # auto_scale_lr would ignore gradient accumulation).
    assert optimizer.lr == pytest.approx(1e-3 * cfg.total_batch / 256)
    assert optimizer.weight_decay == 0.01
    assert cfg.auto_scale_lr.enable is False
    # AMP on CUDA, fp32 elsewhere, decided by the wrapper for every tool.
    assert 'mixed_precision' not in cfg
    assert cfg.optim_wrapper.type == 'CudaAmpOptimWrapper'
    schedule, = cfg.param_scheduler
    assert (schedule.type, schedule.warmup, schedule.end) == (
        'WarmupCosineLR', 2, cfg.train_cfg.max_epochs)

    model = MODELS.build(tiny_model_cfg(cfg))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert decay['cls_head.fc_cls.bias'] == 0
    assert decay['cls_head.fc_cls.weight'] == 0.01
    fc1 = 'backbone.transformer.resblocks.0.adapter_pre_mlp.fc1'
    assert decay[fc1 + '.bias'] == 0 and decay[fc1 + '.weight'] == 0.01


@pytest.mark.parametrize('name, classes', [('label_map_k400.txt', 400),
                                           ('label_map_sthv2.txt', 174)])
def test_label_maps(name, classes):
    path = osp.join(ROOT, 'data', 'label_maps', name)
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) == classes == len(set(lines))
    assert all(line.strip() == line and line for line in lines)
    assert lines == sorted(lines)  # official label order is alphabetical
