"""VideoRandAugment: one policy per clip, exact pixel operations."""
import os
import subprocess
import sys

import numpy as np
import pytest
from mmaction.registry import TRANSFORMS
from mmcv.transforms import Compose

from stadapter_mm.datasets.transforms import VideoRandAugment

from conftest import ROOT

#: Operations whose result on a frame does not depend on the other frames.
FRAMEWISE_OPS = ('Invert', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd',
                 'Color', 'Brightness', 'Sharpness', 'ShearX', 'ShearY',
                 'TranslateX', 'TranslateY')


def random_clip(seed=0, t=6, h=20, w=24):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


def test_registered_and_builds_from_config():
    aug = TRANSFORMS.build(
        dict(type='VideoRandAugment', num_ops=4, magnitude=7,
             magnitude_std=0.5))
    assert isinstance(aug, VideoRandAugment)
    assert (aug.num_ops, aug.magnitude, aug.magnitude_std) == (4, 7.0, 0.5)
    assert len(aug.ops) == 15


@pytest.mark.parametrize('seed', range(20))
def test_identical_frames_stay_identical(seed):
    """The same parameters go to every frame, whatever the plan."""
    frame = random_clip(seed, t=1)[0]
    clip = np.stack([frame] * 5)
    aug = VideoRandAugment(num_ops=4, magnitude=9, prob=1.0)
    plan = aug.sample_plan(np.random.default_rng(seed))
    assert len(plan) == 4
    out = aug.apply_plan(clip, plan)
    assert out.shape == clip.shape and out.dtype == np.uint8
    for t in range(1, 5):
        np.testing.assert_array_equal(out[t], out[0])


@pytest.mark.parametrize('op', FRAMEWISE_OPS)
def test_framewise_ops_equal_per_frame_application(op):
    clip = random_clip(1)
    aug = VideoRandAugment(ops=[op])
    plan = [(op, 6.0, -1)]
    whole = aug.apply_plan(clip, plan)
    single = np.concatenate([aug.apply_plan(f[None], plan) for f in clip])
    np.testing.assert_array_equal(whole, single)


@pytest.mark.parametrize('op', ['Rotate', 'ShearX', 'ShearY', 'TranslateX',
                                'TranslateY', 'Color', 'Contrast',
                                'Brightness', 'Sharpness', 'Solarize',
                                'SolarizeAdd'])
def test_zero_magnitude_is_identity(op):
    clip = random_clip(2)
    out = VideoRandAugment().apply_plan(clip, [(op, 0.0, 1)])
    np.testing.assert_array_equal(out, clip)


def test_pixel_values_of_simple_ops():
    clip = random_clip(3)
    aug = VideoRandAugment()
    np.testing.assert_array_equal(
        aug.apply_plan(clip, [('Invert', 0.0, 1)]), 255 - clip)
    # Full solarize: every pixel >= 0 is inverted.
    np.testing.assert_array_equal(
        aug.apply_plan(clip, [('Solarize', 10.0, 1)]), 255 - clip)
    # Magnitude 5 posterizes to 4 - int(4 * 0.5) = 2 bits.
    np.testing.assert_array_equal(
        aug.apply_plan(clip, [('Posterize', 5.0, 1)]), clip & 0b11000000)
    # Brightness factor 1 - 0.9 * 0.5 = 0.55.
    np.testing.assert_array_equal(
        aug.apply_plan(clip, [('Brightness', 5.0, -1)]),
        np.clip(np.rint(clip * np.float32(0.55)), 0, 255).astype(np.uint8))
    # SolarizeAdd adds int(110 * 0.5) = 55 below 128.
    expected = np.where(clip < 128, np.minimum(clip.astype(int) + 55, 255),
                        clip)
    np.testing.assert_array_equal(
        aug.apply_plan(clip, [('SolarizeAdd', 5.0, 1)]), expected)


def test_translate_moves_content_by_the_expected_offset():
    clip = np.zeros((3, 20, 40, 3), np.uint8)
    clip[:, 10, 5] = 255
    aug = VideoRandAugment(fill=(0, 0, 0))
    # 0.45 * (10 / 10 * ... ) -> magnitude 5: 0.45 * 0.5 * 40 = 9 pixels.
    out = aug.apply_plan(clip, [('TranslateX', 5.0, 1)])
    ys, xs = np.nonzero(out[..., 0].max(axis=0))
    assert (ys.tolist(), xs.tolist()) == ([10], [14])
    out = aug.apply_plan(clip, [('TranslateY', 5.0, -1)])
    ys, xs = np.nonzero(out[..., 0].max(axis=0))
    # 0.45 * 0.5 * 20 = 4.5 pixels up: bilinear spreads over rows 5 and 6.
    assert set(ys.tolist()) <= {5, 6} and xs.tolist() == [5] * len(xs)


def test_data_dependent_ops_use_frame_statistics_by_default():
    """Official: each frame is auto-contrasted on its own (PIL per frame)."""
    clip = np.zeros((2, 8, 8, 3), np.uint8)
    clip[:, :4] = 100
    clip[0, 4:] = 110
    clip[1, 4:] = 200
    out = VideoRandAugment().apply_plan(clip, [('AutoContrast', 0.0, 1)])
    assert out[:, :4].max() == 0 and out[:, 4:].min() == 255


def test_data_dependent_ops_use_clip_statistics():
    """Equal pixel values map to equal outputs in every frame."""
    clip = np.zeros((4, 8, 8, 3), np.uint8)
    clip[:2] = 100
    clip[2:] = 110
    aug = VideoRandAugment(clip_statistics=True)
    out = aug.apply_plan(clip, [('AutoContrast', 0.0, 1)])
    assert out[:2].max() == 0 and out[2:].min() == 255
    out = aug.apply_plan(clip, [('Equalize', 0.0, 1)])
    assert len(np.unique(out[:2])) == 1 and len(np.unique(out[2:])) == 1
    assert out[2:].min() == 255 and out[:2].max() < 255


def test_transform_keeps_frame_list_and_is_seeded_by_numpy():
    clip = list(random_clip(4))
    aug = VideoRandAugment(magnitude=9, prob=1.0)

    def run():
        np.random.seed(7)
        return aug(dict(imgs=[f.copy() for f in clip]))

    first, second = run(), run()
    assert isinstance(first['imgs'], list) and len(first['imgs']) == 6
    assert first['rand_augment'] == second['rand_augment']
    np.testing.assert_array_equal(np.stack(first['imgs']),
                                  np.stack(second['imgs']))
    assert not np.array_equal(np.stack(first['imgs']), np.stack(clip))


def test_in_a_pipeline_before_format_shape():
    pipeline = Compose([
        dict(type='VideoRandAugment', num_ops=2, magnitude=7),
        dict(type='FormatShape', input_format='NCTHW'),
    ])
    results = pipeline(
        dict(imgs=list(random_clip(5, t=8, h=16, w=16)), num_clips=1,
             clip_len=8, modality='RGB'))
    assert results['imgs'].shape == (1, 3, 8, 16, 16)


@pytest.mark.parametrize('kwargs, match', [
    (dict(ops=['Flip']), 'Unknown or empty ops'),
    (dict(magnitude=11), 'magnitude must be in'),
    (dict(prob=1.5), 'prob must be in'),
    (dict(num_ops=-1), 'num_ops'),
    (dict(fill=(0, 0)), 'fill'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VideoRandAugment(**kwargs)


def test_rejects_normalised_float_frames():
    aug = VideoRandAugment()
    with pytest.raises(ValueError, match='uint8 RGB'):
        aug(dict(imgs=random_clip(6).astype(np.float32)))


def test_needs_no_torchvision():
    code = ('import sys; import stadapter_mm.datasets; '
            'from mmaction.registry import TRANSFORMS; '
            'TRANSFORMS.build(dict(type="VideoRandAugment")); '
            'assert "torchvision" not in sys.modules, "torchvision imported"')
    subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=ROOT))
