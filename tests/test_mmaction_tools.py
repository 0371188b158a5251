"""MMAction2's own tools (the copies its wheel installs) on our configs.

One tiny run of MMAction2's ``tools/train.py`` on generated videos, with a
config that inherits our K400 recipe (AMP declared by ``CudaAmpOptimWrapper``,
trainable-only checkpoints, a CLIP file given *by name*), feeds the other
tools: ``vis_cam.py``, ``confusion_matrix.py``, ``clip_feature_extraction.py``,
``publish_model.py``, our full-checkpoint export and MMAction2's visualizer.
Docs: docs/mmaction2_tools.md.
"""
import glob
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

import robust_helpers as helpers
from reference_clip import ReferenceCLIP
from stadapter_mm.checkpoints import is_adapter_key
from stadapter_mm.checkpoints.clip_resolver import (CLIP_DIR_ENV,
                                                    ClipCheckpointNotFoundError)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LAUNCHER = osp.join(ROOT, 'tools', 'mmaction_tool.py')
CLIP_NAME = 'tiny-clip.pt'
NUM_CLASSES = 4

TINY_CONFIG = '''
_base_ = [{base!r}]
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, input_resolution=32, patch_size=8, width=64,
                  layers=2, heads=4),
        adapter=dict(_delete_=True, width=16), num_frames=4,
        init_cfg=dict(type='Pretrained', checkpoint={clip!r})),
    cls_head=dict(num_classes={classes}, in_channels=64))
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='FixedStrideSample', clip_len=4, frame_interval=2),
    dict(type='DecordDecode'),
    dict(type='FloatShortSideResize', scale_range=(32, 36)),
    dict(type='RandomCrop', size=32),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='FixedStrideSample', clip_len=4, frame_interval=2, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='FloatShortSideResize', scale=(-1, 32)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')]
_data = dict(num_classes={classes}, data_prefix=dict(video={data!r}))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file={data!r} + '/train.txt', pipeline=train_pipeline,
                 **_data))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file={data!r} + '/val.txt', pipeline=test_pipeline,
                 test_mode=True, **_data))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file={data!r} + '/val.txt', pipeline=test_pipeline,
                 test_mode=True, **_data))
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True,
                        begin=0, end=1)]
default_hooks = dict(logger=dict(interval=1))
'''


def _wheel_tool(relpath):
    import mmaction
    return osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools', relpath)


def _run(args, cwd, env=None, launcher=True):
    """Run a tool in a fresh process; returns its combined output."""
    cmd = [sys.executable] + ([LAUNCHER] if launcher else []) + list(args)
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    done = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """MMAction2's train.py, run from an unrelated folder, CLIP by name."""
    tmp = tmp_path_factory.mktemp('mma_tools')
    data = str(tmp / 'data')
    helpers.make_dataset(data, num_classes=NUM_CLASSES, train_per_class=1,
                         val_per_class=1)
    clip_dir = tmp / 'clip_files'
    clip_dir.mkdir()
    torch.manual_seed(0)
    torch.save(ReferenceCLIP(**helpers.TINY_ARCH).state_dict(),
               clip_dir / CLIP_NAME)
    config = tmp / 'tiny_k400.py'
    config.write_text(TINY_CONFIG.format(
        base=osp.join(ROOT, 'configs', 'stadapter_vitb16_k400.py'),
        clip=CLIP_NAME, classes=NUM_CLASSES, data=data))
    elsewhere = tmp / 'elsewhere'
    elsewhere.mkdir()
    env = {CLIP_DIR_ENV: str(clip_dir)}
    work_dir = tmp / 'work'
    log = _run([_wheel_tool('train.py'), str(config), '--work-dir',
                str(work_dir)], cwd=elsewhere, env=env, launcher=False)
    return dict(tmp=tmp, data=data, config=str(config), env=env, log=log,
                elsewhere=elsewhere, ckpt=str(work_dir / 'epoch_1.pth'),
                video=osp.join(data, 'videos', 'val_1_0.mp4'))


@pytest.fixture(scope='module')
def full_ckpt(trained):
    """Our one-command export: a self-contained checkpoint."""
    out = str(trained['tmp'] / 'full.pth')
    _run([osp.join(ROOT, 'tools', 'convert', 'export_full_checkpoint.py'),
          trained['config'], trained['ckpt'], out], cwd=trained['elsewhere'],
         env=trained['env'], launcher=False)
    return out


def test_wheel_train_py_declared_amp_falls_back_on_cpu(trained):
    if torch.cuda.is_available():
        pytest.skip('checks the CPU fallback')
    assert trained['log'].count('CUDA is not available, training in fp32') \
        == 1
    state = torch.load(trained['ckpt'], weights_only=True)['state_dict']
    # Trainable-only: adapters and head, no frozen CLIP weight.
    assert 'backbone.conv1.weight' not in state
    assert any(is_adapter_key(k, 'backbone.') for k in state)
    assert 'cls_head.fc_cls.weight' in state


def _scores(config, ckpt, video):
    from mmaction.apis import inference_recognizer, init_recognizer
    model = init_recognizer(config, ckpt, device='cpu')
    return inference_recognizer(model, video).pred_score


def test_trainable_only_checkpoint_from_another_directory(
        trained, full_ckpt, monkeypatch):
    monkeypatch.chdir(trained['elsewhere'])
    monkeypatch.setenv(CLIP_DIR_ENV, trained['env'][CLIP_DIR_ENV])
    found_by_name = _scores(trained['config'], trained['ckpt'],
                            trained['video'])
    # Without the folder the name cannot be resolved: the error lists every
    # place searched ...
    monkeypatch.delenv(CLIP_DIR_ENV)
    with pytest.raises(ClipCheckpointNotFoundError) as err:
        _scores(trained['config'], trained['ckpt'], trained['video'])
    message = str(err.value)
    for place in (osp.join(str(trained['elsewhere']), CLIP_NAME),
                  osp.expanduser(osp.join('~', '.cache', 'clip', CLIP_NAME)),
                  osp.join(ROOT, 'checkpoints', 'clip', CLIP_NAME)):
        assert place in message
    assert CLIP_DIR_ENV in message
    # ... while the exported checkpoint needs no CLIP file at all and gives
    # the same predictions.
    self_contained = _scores(trained['config'], full_ckpt, trained['video'])
    torch.testing.assert_close(self_contained, found_by_name)
    # Plain data: loads without any allow-list.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        full_ckpt) == []


def test_vis_cam_on_token_backbone(trained, full_ckpt):
    out = str(trained['tmp'] / 'cam.gif')
    _run(['vis_cam', trained['config'], full_ckpt, trained['video'],
          '--device', 'cpu', '--target-layer-name', 'backbone/token_map',
          '--out-filename', out], cwd=trained['elsewhere'])
    from PIL import Image
    with Image.open(out) as gif:
        assert gif.size == (32, 32)
        assert gif.n_frames == 4  # one heat map per input frame


def test_gradcam_maps_follow_the_frames(trained, full_ckpt):
    from mmaction.apis import init_recognizer
    from mmaction.utils import GradCAM
    from mmengine.dataset import Compose, pseudo_collate
    model = init_recognizer(trained['config'], full_ckpt, device='cpu')
    data = Compose(model.cfg.test_pipeline)(
        dict(filename=trained['video'], label=-1, start_index=0,
             modality='RGB'))
    cam = GradCAM(model, 'backbone/token_map')
    blended, preds = cam(pseudo_collate([data]), alpha=1.0)
    assert blended.shape == (1, 4, 32, 32, 3)
    assert preds.shape == (1, NUM_CLASSES)
    # The heat maps differ from frame to frame and within a frame.
    heat = blended[0].mean(-1).flatten(1)  # (frames, pixels)
    assert heat.std(dim=0).max() > 0.05  # some pixel changes over time
    assert heat.std(dim=1).max() > 0.05  # some frame is not uniform


def test_confusion_matrix(trained):
    out = str(trained['tmp'] / 'cm.pkl')
    _run(['confusion_matrix', trained['config'], trained['ckpt'], '--out',
          out], cwd=trained['elsewhere'], env=trained['env'])
    import mmengine
    matrix = mmengine.load(out)
    assert tuple(matrix.shape) == (NUM_CLASSES, NUM_CLASSES)
    assert int(matrix.sum()) == NUM_CLASSES  # one val video per class
    assert matrix.sum(1).tolist() == [1] * NUM_CLASSES


def test_clip_feature_extraction(trained):
    prefix = str(trained['tmp'] / 'features')
    _run(['clip_feature_extraction', trained['config'], trained['ckpt'],
          prefix], cwd=trained['elsewhere'], env=trained['env'])
    import mmengine
    files = sorted(glob.glob(osp.join(prefix, 'videos', '*.pkl')))
    assert len(files) == NUM_CLASSES
    features = [mmengine.load(f) for f in files]
    assert all(tuple(f.shape) == (64, ) for f in features)
    assert not torch.allclose(features[0], features[1])


def test_publish_model(trained, full_ckpt):
    out_dir = trained['tmp'] / 'published'
    out_dir.mkdir()
    # A run's checkpoint (log history inside) needs our allow-list ...
    _run(['publish_model', trained['ckpt'], str(out_dir / 'run.pth')],
         cwd=trained['elsewhere'])
    # ... the exported one loads in MMAction2's script as it is.
    _run([_wheel_tool('deployment/publish_model.py'), full_ckpt,
          str(out_dir / 'full.pth')], cwd=trained['elsewhere'],
         launcher=False)
    run_file, = glob.glob(str(out_dir / 'run_*-*.pth'))
    full_file, = glob.glob(str(out_dir / 'full_*-*.pth'))
    published = torch.load(run_file, weights_only=True)
    assert not {'optimizer', 'message_hub'} & set(published)
    source = torch.load(trained['ckpt'], weights_only=True)['state_dict']
    assert set(published['state_dict']) == set(source) - {
        'data_preprocessor.mean', 'data_preprocessor.std'}
    full = torch.load(full_file, weights_only=True)['state_dict']
    assert 'backbone.conv1.weight' in full


def test_flop_analyzer_counts_sdpa():
    from mmengine.analysis import FlopAnalyzer

    from stadapter_mm.models import ViTCLIPSTAdapter
    backbone = ViTCLIPSTAdapter(arch=dict(helpers.TINY_ARCH),
                                adapter=dict(width=16), num_frames=4)
    clip = torch.zeros(1, 3, 4, 32, 32)
    by_operator = FlopAnalyzer(backbone, clip).by_operator()
    # q k^T and attn v per frame, head and block: 2 blocks, 4 frames,
    # 4 heads of width 16, 17 tokens.
    assert by_operator['scaled_dot_product_attention'] == \
        2 * 4 * 4 * 17 * 17 * (16 + 16)


def test_visualizer_draws_the_prediction(trained, full_ckpt, tmp_path):
    from mmaction.apis import inference_recognizer, init_recognizer
    from mmaction.visualization import ActionVisualizer

    from stadapter_mm import compat
    assert compat._pred_labels_defect()  # mmaction2 1.2.0 has it
    assert compat.fix_action_visualizer_pred_labels() is False  # applied
    model = init_recognizer(trained['config'], full_ckpt, device='cpu')
    result = inference_recognizer(model, trained['video'])
    assert 'pred_labels' not in result  # what recognizers return
    frames = [np.full((240, 320, 3), 90, np.uint8) for _ in range(3)]
    vis = ActionVisualizer()
    vis.dataset_meta = dict(classes=['right', 'left', 'down', 'up'])
    kwargs = dict(draw_gt=False, show_frames=False)
    without = vis.add_datasample('clip', frames, result, draw_pred=False,
                                 **kwargs)
    drawn = vis.add_datasample('clip', frames, result, **kwargs)
    assert 'pred_labels' not in result  # the caller's sample is untouched
    changed = np.abs(drawn.astype(int) - without).sum(-1) > 0
    assert changed[:, :120, :].any()  # a prediction line in the text box
    assert not changed[:, 160:, :].any()  # nothing far from it
    assert (drawn[:, 200:, 280:] == 90).all()
    # The mp4 writer works (moviepy < 2 comes with the requirements).
    vis.add_datasample('clip', frames, result, out_type='video',
                       out_path=str(tmp_path / 'clip.mp4'), **kwargs)
    assert osp.getsize(tmp_path / 'clip.mp4') > 0


def test_video_writer_without_moviepy_editor_is_a_clear_error(monkeypatch):
    from stadapter_mm import compat
    monkeypatch.setitem(sys.modules, 'moviepy.editor', None)
    with pytest.raises(ImportError, match=r'moviepy<2'):
        compat.check_video_writer('video')
    compat.check_video_writer('img')  # frames as images need no moviepy


def test_clip_name_lookup_order(tmp_path, monkeypatch):
    from stadapter_mm.checkpoints import clip_resolver
    first, second = tmp_path / 'a', tmp_path / 'b'
    for folder in (first, second):
        folder.mkdir()
        (folder / 'ViT-B-16.pt').write_bytes(b'x')
    monkeypatch.chdir(tmp_path)
    env = {CLIP_DIR_ENV: os.pathsep.join([str(first), str(second)])}
    # OpenAI's model name maps to the file clip.load() saves.
    assert clip_resolver.resolve_clip_checkpoint('ViT-B/16', env) == \
        str(first / 'ViT-B-16.pt')
    # An explicit path wins over the folders; a missing one falls back to
    # its file name there.
    assert clip_resolver.resolve_clip_checkpoint(
        str(second / 'ViT-B-16.pt'), env) == str(second / 'ViT-B-16.pt')
    assert clip_resolver.resolve_clip_checkpoint(
        'checkpoints/clip/ViT-B-16.pt', env) == str(first / 'ViT-B-16.pt')
    tried = clip_resolver.candidate_paths('ViT-B/16', {})
    assert tried.index(osp.expanduser('~/.cache/clip/ViT-B-16.pt')) < \
        tried.index(osp.join(ROOT, 'checkpoints', 'clip', 'ViT-B-16.pt'))


def test_trusted_legacy_checkpoint_opt_in(tmp_path):
    import argparse
    import pickle

    from conftest import load_tool
    from stadapter_mm.checkpoints import load_local_weights_only
    legacy = tmp_path / 'legacy.pth'
    weights = {'w': torch.arange(3.)}
    torch.save(dict(meta=dict(args=argparse.Namespace(lr=0.1),
                              epoch=np.int64(3)), state_dict=weights), legacy)
    with pytest.raises(pickle.UnpicklingError,
                       match=r'trust_checkpoint\.py .*legacy\.pth'):
        load_local_weights_only(str(legacy))
    load_tool('tools/convert/trust_checkpoint.py').main(
        [str(legacy), str(tmp_path / 'safe.pth')])
    safe = load_local_weights_only(str(tmp_path / 'safe.pth'))
    torch.testing.assert_close(safe['state_dict'], weights)
    assert safe['meta'] == dict(args='Namespace(lr=0.1)', epoch=3)
