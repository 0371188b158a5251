"""The K400 and SSv2 recipes against the official code (docs/recipes.md).

Test inputs are compared with a restated official evaluation loader
(tests/official_loader.py) on generated videos; the learning-rate curve with
the official ``lr_func``; training augmentation statistically.
"""
import ast
import copy
import os.path as osp
import random
import re

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS, TRANSFORMS
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.optim import OptimWrapper

import official_loader as official
from conftest import ROOT, load_tool
from stadapter_mm.datasets.transforms import (FloatRandomResizedCrop,
                                              VideoRandAugment)
from stadapter_mm.datasets.views import set_test_views, with_frame_sampling
from stadapter_mm.engine.schedulers import WarmupCosineLR
from stadapter_mm.utils.video import write_video

RECIPES = {'k400': 'configs/stadapter_vitb16_k400.py',
           'ssv2': 'configs/stadapter_vitb16_ssv2.py'}


def load(recipe):
    return Config.fromfile(osp.join(ROOT, RECIPES[recipe]))


def make_video(tmp_path, frames, width, height, seed=0):
    """Smooth random colours with moving edges, written as a video."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, (3, 4)).astype(np.float32)
    clip = []
    for t in range(frames):
        chans = [base[c, 0] + base[c, 1] * np.sin(xx / 5.0 + t / 3.0 + c) *
                 np.cos(yy / 7.0 - base[c, 2] / 50) for c in range(3)]
        img = np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)
        img[(xx + 2 * t) % 17 < 3] = 255  # sharp moving stripes
        clip.append(img)
    return write_video(str(tmp_path / f'v{frames}_{width}x{height}.mp4'),
                       clip, fps=25)


def our_views(cfg, path, pipeline=None):
    """Our test pipeline + data_preprocessor: (V, 3, T, S, S), indices."""
    results = dict(filename=path, label=0, start_index=0, modality='RGB')
    inds = None
    for step in pipeline or cfg.test_pipeline:
        results = TRANSFORMS.build(step)(results)
        if 'frame_inds' in results and inds is None:
            inds = results['frame_inds'].reshape(results['num_clips'],
                                                 -1).tolist()
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    data = preprocessor(dict(inputs=[results['inputs']],
                             data_samples=[results['data_samples']]))
    return data['inputs'][0], inds


def decoded(path):
    import decord
    return decord.VideoReader(path).get_batch(
        list(range(len(decord.VideoReader(path))))).asnumpy()


def to_255(x):
    """Normalised CLIP input back to 0-255 units."""
    shape = (1, 3) + (1, ) * (x.dim() - 2)
    return x * (official.STD * 255).view(shape) + (
        official.MEAN * 255).view(shape)


def pixel_error(ours, theirs):
    diff = (to_255(ours) - to_255(theirs)).abs().flatten()
    return diff.mean().item(), torch.quantile(diff[::7], 0.999).item()


PROTOCOLS = {  # frames, width, height, official args
    'k400': [(40, 64, 48), (150, 64, 48)],  # shorter / longer than 113
    'ssv2': [(45, 64, 46), (30, 46, 64)],  # odd margin; portrait
}
OFFICIAL_ARGS = {'k400': dict(num_frames=8, sampling_rate=16,
                              num_spatial=1, num_temporal=3),
                 'ssv2': dict(num_frames=8, sampling_rate=0,
                              num_spatial=3, num_temporal=1)}


@pytest.mark.parametrize('recipe', ['k400', 'ssv2'])
def test_test_inputs_equal_the_official_loader(recipe, tmp_path):
    cfg = load(recipe)
    for frames, width, height in PROTOCOLS[recipe]:
        path = make_video(tmp_path, frames, width, height)
        ours, inds = our_views(cfg, path)
        theirs, their_inds = official.eval_views(decoded(path),
                                                 **OFFICIAL_ARGS[recipe])
        assert ours.shape == theirs.shape == (3, 3, 8, 224, 224)
        # Same frames per view (our clips repeat for every crop).
        spatial = OFFICIAL_ARGS[recipe]['num_spatial']
        assert inds * spatial == their_inds
        mean, p999 = pixel_error(ours, theirs)
        assert mean <= 0.5 and p999 <= 2, (recipe, frames, mean, p999)


def test_test_input_check_catches_interpolation_and_crop_offsets(tmp_path):
    """The comparison above fails for bilinear resizing or ThreeCrop."""
    cfg = load('ssv2')
    path = make_video(tmp_path, 45, 64, 46)
    theirs, _ = official.eval_views(decoded(path), **OFFICIAL_ARGS['ssv2'])
    bilinear = [dict(t, interpolation='bilinear')
                if t['type'] == 'FloatShortSideResize' else t
                for t in cfg.test_pipeline]
    mmaction_crop = [dict(type='ThreeCrop', crop_size=224)
                     if t['type'] == 'LongSideThreeCrop' else t
                     for t in cfg.test_pipeline]
    for pipeline in (bilinear, mmaction_crop):
        mean, p999 = pixel_error(our_views(cfg, path, pipeline)[0], theirs)
        assert mean > 0.5 or p999 > 2


# ------------------------------------------------------------ lr schedule
def _lrs(cfg, epoch_length, steps, counts=1, state=None, start=0):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=cfg.optim_wrapper.optimizer.lr)
    wrapper = OptimWrapper(optimizer, accumulative_counts=counts)
    spec = dict(cfg.param_scheduler[0])
    spec.pop('type'), spec.pop('convert_to_iter_based')
    scheduler = WarmupCosineLR.build_iter_from_epoch(
        wrapper, epoch_length=epoch_length, **spec)
    if state is not None:  # as mmengine's resume: optimizer, then scheduler
        wrapper.load_state_dict(state[0])
        scheduler.load_state_dict(state[1])
    lrs = []
    for _ in range(start, steps):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs, (wrapper.state_dict(), scheduler.state_dict())


@pytest.mark.parametrize('recipe', ['k400', 'ssv2'])
def test_lr_curve_is_the_official_one_also_after_resume(recipe):
    cfg = load(recipe)
    epoch_length = 7
    total = epoch_length * cfg.train_cfg.max_epochs
    base = 1e-3 * cfg.total_batch / 256
    want = [base * official.lr_factor(s, epoch_length, 2,
                                      cfg.train_cfg.max_epochs)
            for s in range(total)]
    ours, _ = _lrs(cfg, epoch_length, total)
    np.testing.assert_allclose(ours, want, rtol=1e-9, atol=0)
    assert ours[0] == 0 and ours[2 * epoch_length] == base

    # Resume after 30 steps from the scheduler's saved state.
    _, state = _lrs(cfg, epoch_length, 30)
    rest, _ = _lrs(cfg, epoch_length, total, state=state, start=30)
    np.testing.assert_allclose(rest, want[30:], rtol=1e-9, atol=0)


def test_lr_with_accumulation_is_held_per_optimizer_step():
    """4 GPUs x 24 x 2 steps: the official lr at every optimizer step."""
    cfg = load('k400')
    steps_per_epoch, counts = 5, 2
    total = steps_per_epoch * counts * cfg.train_cfg.max_epochs
    ours, _ = _lrs(cfg, steps_per_epoch * counts, total, counts=counts)
    want = [7.5e-4 * official.lr_factor(i // counts, steps_per_epoch, 2, 12)
            for i in range(total)]
    np.testing.assert_allclose(ours, want, rtol=1e-9, atol=0)


def test_auto_scale_lr_with_accumulation_is_refused():
    """mmengine's scale_lr ignores accumulation; tools/train.py says so."""
    from types import SimpleNamespace

    from mmengine.runner import Runner

    train = load_tool('tools/train.py')
    config = osp.join(ROOT, RECIPES['k400'])
    # 4 GPUs x 24 x 2 = the official 192: mmengine would halve the lr.
    cfg = load('k400')
    cfg.optim_wrapper.accumulative_counts = 2
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.AdamW([param], lr=7.5e-4))
    runner = SimpleNamespace(
        _train_dataloader=dict(cfg.train_dataloader), world_size=4,
        logger=SimpleNamespace(info=lambda msg: None), param_schedulers=None)
    Runner.scale_lr(runner, wrapper, dict(cfg.auto_scale_lr, enable=True))
    assert wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(
        7.5e-4 / 2)

    args = train.parse_args([
        config, '--auto-scale-lr', '--cfg-options',
        'optim_wrapper.accumulative_counts=2'
    ])
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(args.cfg_options)
    with pytest.raises(SystemExit, match=r'accumulative_counts=2.*1/2 of '
                       r'the right factor.*Drop --auto-scale-lr'):
        train.merge_args(cfg, args)
    # Enabled in the config rather than by the flag: refused as well.
    cfg = load('ssv2')
    cfg.merge_from_dict({'auto_scale_lr.enable': True,
                         'optim_wrapper.accumulative_counts': 4})
    with pytest.raises(SystemExit, match='accumulative_counts=4'):
        train.merge_args(cfg, train.parse_args([config]))
    # Without accumulation the flag works as in MMAction2.
    cfg = load('k400')
    train.merge_args(cfg, train.parse_args([config, '--auto-scale-lr']))
    assert cfg.auto_scale_lr.enable is True


# ------------------------------------------------- training augmentation
def test_random_resized_crop_distribution_matches_official():
    np.random.seed(0)
    rng = random.Random(0)
    ours = [FloatRandomResizedCrop().crop_box(240, 320) for _ in range(3000)]
    theirs = [official.random_resized_crop_box(240, 320, rng)
              for _ in range(3000)]
    for boxes in (ours, theirs):
        _, _, h, w = np.array(boxes).T
        assert (w * h).min() >= 0.08 * 240 * 320 * 0.95
        assert np.log(w / h).min() >= np.log(3 / 4) - 0.02
    qs = np.linspace(0.05, 0.95, 19)
    ours_a, theirs_a = (np.array(b, float) for b in (ours, theirs))
    for col in (2, 3):  # h, w quantiles agree within sampling error
        diff = np.quantile(ours_a[:, col], qs) - np.quantile(
            theirs_a[:, col], qs)
        assert np.abs(diff).max() < 10, (col, diff)
    for col in (0, 1):  # positions
        assert abs(ours_a[:, col].mean() - theirs_a[:, col].mean()) < 6


def test_rand_augment_magnitudes_and_one_policy_per_clip():
    aug = VideoRandAugment(num_ops=4, magnitude=7, magnitude_std=0.5)
    rng = np.random.default_rng(0)
    plans = [aug.sample_plan(rng) for _ in range(3000)]
    applied = [step for plan in plans for step in plan]
    # Each of 4 ops applies with probability 0.5.
    assert abs(len(applied) / (4 * len(plans)) - 0.5) < 0.02
    magnitudes = np.array([m for _, m, _ in applied])
    assert abs(magnitudes.mean() - 7) < 0.03
    assert abs(magnitudes.std() - 0.5) < 0.03
    counts = np.bincount([aug.op_names.index(op) for op, _, _ in applied])
    assert counts.min() > 0.8 * counts.mean()  # uniform over the 15 ops
    # Same op and magnitude on every frame: identical frames stay so.
    frame = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for plan in plans[:30]:
        out = aug.apply_plan(np.stack([frame] * 3), plan)
        assert (out == out[0]).all()


def test_training_samplers_and_scale_jitter():
    np.random.seed(0)
    cfg = load('k400')
    sampler = TRANSFORMS.build(cfg.train_pipeline[1])
    starts = [sampler.transform(dict(total_frames=130))['frame_inds'][0]
              for _ in range(2000)]
    assert set(starts) == set(range(0, 130 - 112))  # every start that fits
    short = sampler.transform(dict(total_frames=40))['frame_inds']
    assert short.tolist() == [0, 16, 32, 32, 32, 32, 32, 32]
    resize = TRANSFORMS.build(cfg.train_pipeline[3])
    sizes = {resize.transform(dict(imgs=[np.zeros((48, 64, 3), np.uint8)]))[
        'short_side'] for _ in range(400)}
    assert sizes == set(range(224, 259))
    ssv2 = TRANSFORMS.build(load('ssv2').train_pipeline[1])
    inds = np.array([ssv2.transform(dict(total_frames=45))['frame_inds']
                     for _ in range(2000)])
    segments = ssv2.segments(45)
    assert [(c.min(), c.max()) for c in inds.T] == segments


# ----------------------------------------------------------- the table
TABLE_KEY = re.compile(r'`([A-Za-z_][\w.\[\]]*)`\s*=\s*`([^`]+)`')


def _lookup(cfg, key):
    value = cfg
    for part in re.findall(r'[^.\[\]]+|\[[^\]]+\]', key):
        if part.startswith('['):
            value = next(t for t in value if t['type'] == part[1:-1])
        else:
            value = value[part]
    return value


def test_docs_table_matches_the_configs():
    """Every `key` = `value` in docs/recipes.md holds in the built config."""
    with open(osp.join(ROOT, 'docs', 'recipes.md')) as f:
        text = f.read()
    checked = 0
    for section, recipe in (('## Kinetics-400', 'k400'),
                            ('## Something-Something v2', 'ssv2')):
        body = text.split(section, 1)[1].split('\n## ', 1)[0]
        cfg = load(recipe)
        for row in body.splitlines():
            if not row.startswith('|'):
                continue
            for key, literal in TABLE_KEY.findall(row):
                want = ast.literal_eval(literal)
                got = _lookup(cfg, key)
                if isinstance(want, float) or (
                        isinstance(want, list) and
                        isinstance(want[0], float)):
                    assert got == pytest.approx(want, rel=1e-7), (key, got)
                else:
                    got = list(got) if isinstance(got, tuple) else got
                    want = list(want) if isinstance(want, tuple) else want
                    assert got == want, (recipe, key, got, want)
                checked += 1
    assert checked >= 40


@pytest.mark.parametrize('recipe, views', [('k400', (3, 1)),
                                           ('ssv2', (1, 3))])
def test_views_option_keeps_the_official_test_pipeline(recipe, views):
    """``--views`` with a recipe's own protocol changes nothing in it."""
    cfg = load(recipe)
    before = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    set_test_views(cfg, *views)
    assert cfg.test_dataloader.dataset.pipeline == before


def test_frame_sampling_variant_changes_only_the_sampler():
    """The 32x4 variant: the base's pipelines but for clip_len/interval."""
    base, cfg = load('k400'), Config.fromfile(osp.join(
        ROOT, 'configs/recognition/stadapter/'
        'stadapter_vitb16-12x384_8xb24-32x4x1-12e_k400-rgb.py'))
    for split in ('train', 'val', 'test'):
        ours, theirs = cfg[f'{split}_pipeline'], base[f'{split}_pipeline']
        changed = [(a, b) for a, b in zip(ours, theirs) if a != b]
        assert len(ours) == len(theirs) and len(changed) == 1
        assert changed[0][0] == dict(changed[0][1], clip_len=32,
                                     frame_interval=4)
        assert cfg[f'{split}_dataloader'].dataset.pipeline == ours
    before = copy.deepcopy(base.train_pipeline)
    with_frame_sampling(base, clip_len=16)
    assert base.train_pipeline == before  # copies, the base is left as is

    with pytest.raises(ValueError, match='exactly one frame sampler'):
        with_frame_sampling(
            dict(train_pipeline=[dict(type='DecordInit')],
                 val_pipeline=[], test_pipeline=[]), clip_len=4)
    with pytest.raises(ValueError, match='needs the sampler arguments'):
        with_frame_sampling(base)
