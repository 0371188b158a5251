"""Bad input fails early and clearly; untrusted files never run code.

Every case goes through mmengine's Runner the way a training job does and
must fail before the first training iteration (no step taken, no checkpoint
written), with a message that says what to change.
"""
import glob
import io
import os.path as osp
import pickle
import zipfile

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import BaseLoop, Runner

import robust_helpers as helpers
from conftest import TINY_ARCH
from reference_clip import ReferenceCLIP
from stadapter_mm.datasets.annotation import AnnotationError
from stadapter_mm.checkpoints.clip_formats import CheckpointError
from stadapter_mm.compat import fix_weights_only_loader


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('videos'))
    helpers.make_dataset(root, train_per_class=1, val_per_class=1)
    return root


def _cfg(tmp_path, data_root, **backbone):
    cfg = helpers.tiny_cfg(str(tmp_path / 'work'), data_root, 2,
                           experiment_name=f'bad_{tmp_path.name}')
    cfg['model']['backbone'].update(backbone)
    return cfg


def _fails_before_training(cfg, error, match):
    """Build the runner and train; the error must come before any step."""
    runner = None
    with pytest.raises(error, match=match):
        runner = Runner.from_cfg(Config(cfg))
        runner.train()
    if runner is not None:  # built: no loop ran a step
        loop = runner._train_loop
        assert not isinstance(loop, BaseLoop) or loop.iter == 0
    assert not glob.glob(osp.join(cfg['work_dir'], '*.pth'))


# ------------------------------------------------------------------ config
@pytest.mark.parametrize('backbone,match', [
    (dict(arch='ViT-Q/7'), r"Unknown CLIP arch 'ViT-Q/7'; choose one of"),
    (dict(adapter=dict(width=16, kernel_size=(2, 1, 1))),
     r'kernel_size must be three positive odd integers.*\(2, 1, 1\)'),
    (dict(adapter=dict(width=16, kernel_size=(0, 1, 1))),
     r'positive odd integers'),
    (dict(adapter=dict(width=16, blocks=[0, 5])),
     r'indices \[5\] are out of range for a 2-block model \(valid: 0..1\)'),
    (dict(num_frames=2, adapter=dict(width=16, kernel_size=(3, 1, 1))),
     r'num_frames=2 is fewer than the temporal kernel size 3: sample more'),
    (dict(adapter=dict(width=128)),
     r'bottleneck\) must be in \[1, 64\] for a model of width 64'),
])
def test_impossible_config(tmp_path, data_root, backbone, match):
    _fails_before_training(_cfg(tmp_path, data_root, **backbone), ValueError,
                           match)


# -------------------------------------------------------------- annotations
def _with_train_list(tmp_path, data_root, text, num_classes=4):
    ann = tmp_path / 'train.txt'
    ann.write_text(text)
    cfg = _cfg(tmp_path, data_root)
    cfg['train_dataloader']['dataset'].update(ann_file=str(ann),
                                              num_classes=num_classes)
    return cfg, str(ann)


@pytest.mark.parametrize('text,error,match', [
    ('videos/train_0_0.mp4 0\nvideos/train_1_0.mp4 1\n'
     'videos/train_2_0.mp4 two\n', AnnotationError,
     r"train.txt:3: label 'two' is not an integer class index"),
    ('videos/train_0_0.mp4 0\nvideos/train_1_0.mp4\n', AnnotationError,
     r'train.txt:2: no label'),
    ('videos/train_0_0.mp4 0\nvideos/train_1_0.mp4 9\n', AnnotationError,
     r'train.txt:2: label 9 is outside the class range \[0, 3\] of '
     r'num_classes=4'),
    ('videos/train_0_0.mp4 0\nvideos/train_1_0.mp4 -1\n', AnnotationError,
     r'train.txt:2: label -1 is outside the class range'),
    ('\n\n', AnnotationError, r'lists no videos'),
])
def test_bad_annotation_list(tmp_path, data_root, text, error, match):
    cfg, _ = _with_train_list(tmp_path, data_root, text)
    _fails_before_training(cfg, error, match)


def test_label_beyond_the_head_without_dataset_num_classes(tmp_path,
                                                           data_root):
    cfg, ann = _with_train_list(
        tmp_path, data_root, 'videos/train_0_0.mp4 0\nvideos/x.mp4 5\n',
        num_classes=None)
    _fails_before_training(
        cfg, ValueError, r'uses label 5 but the model head has num_classes=4')


def test_missing_annotation_file(tmp_path, data_root):
    cfg = _cfg(tmp_path, data_root)
    cfg['train_dataloader']['dataset']['ann_file'] = str(tmp_path / 'no.txt')
    _fails_before_training(cfg, FileNotFoundError, r'no.txt.*check ann_file')


# -------------------------------------------------------------- checkpoints
def _clip_file(path, width=64):
    torch.manual_seed(0)
    arch = dict(TINY_ARCH, width=width)
    torch.save(ReferenceCLIP(**arch).state_dict(), path)
    return str(path)


def _recognizer_file(path, width):
    cfg = helpers.tiny_cfg('unused', 'unused')['model']
    cfg['backbone']['arch'] = dict(TINY_ARCH, width=width)
    cfg['cls_head']['in_channels'] = width
    torch.save(dict(meta={}, state_dict=MODELS.build(cfg).state_dict()),
               path)
    return str(path)


@pytest.mark.parametrize('resume', [False, True])
def test_load_from_checkpoint_of_another_architecture(tmp_path, data_root,
                                                      resume):
    cfg = _cfg(tmp_path, data_root)
    cfg['load_from'] = _recognizer_file(tmp_path / 'w32.pth', 32)
    cfg['resume'] = resume
    _fails_before_training(
        cfg, CheckpointError,
        r'w32.pth was saved from a model of another architecture.*'
        r'backbone.*\(32,\) in the file vs \(64,\) in the model')


def test_clip_file_given_as_load_from(tmp_path, data_root):
    cfg = _cfg(tmp_path, data_root)
    cfg['load_from'] = _clip_file(tmp_path / 'clip.pt')
    _fails_before_training(cfg, CheckpointError,
                           r'shares no parameter name.*init_cfg')


def test_clip_weights_of_another_architecture(tmp_path, data_root):
    clip = _clip_file(tmp_path / 'clip_w32.pt', width=32)
    cfg = _cfg(tmp_path, data_root,
               init_cfg=dict(type='Pretrained', checkpoint=clip))
    _fails_before_training(cfg, CheckpointError,
                           r'another architecture.*width 32 vs 64')


def test_missing_clip_file(tmp_path, data_root):
    cfg = _cfg(tmp_path, data_root, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'ViT-B-16.pt')))
    _fails_before_training(cfg, FileNotFoundError,
                           r"ViT-B-16.pt' does not exist; set the backbone")


# ---------------------------------------------------------- untrusted files
class _Payload:
    """Unpickling it creates a file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_pickled_code_in_clip_file_is_refused(tmp_path, data_root):
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil_clip.pt'
    state = torch.load(_clip_file(tmp_path / 'clip.pt'), weights_only=True)
    state['visual.proj'] = _Payload(str(marker))
    torch.save(state, evil)
    cfg = _cfg(tmp_path, data_root,
               init_cfg=dict(type='Pretrained', checkpoint=str(evil)))
    _fails_before_training(cfg, CheckpointError, r'cannot read .*evil_clip')
    assert not marker.exists()


def test_pickled_code_in_checkpoint_is_refused(tmp_path, data_root):
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil_run.pth'
    torch.save(dict(meta={}, state_dict={}, message_hub=_Payload(
        str(marker))), evil)
    for resume in (False, True):
        cfg = _cfg(tmp_path, data_root)
        cfg.update(load_from=str(evil), resume=resume,
                   experiment_name=f'evil_{resume}')
        _fails_before_training(cfg, pickle.UnpicklingError,
                               r'Weights only load failed')
        assert not marker.exists()


def test_weights_only_even_when_the_environment_turns_it_off(
        tmp_path, data_root, monkeypatch):
    """torch's default can be switched off; the registered loader cannot."""
    fix_weights_only_loader()
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'code_ran'
    evil = tmp_path / 'evil_run.pth'
    torch.save(dict(meta={}, state_dict={}, message_hub=_Payload(
        str(marker))), evil)
    cfg = _cfg(tmp_path, data_root)
    cfg['load_from'] = str(evil)
    _fails_before_training(cfg, pickle.UnpicklingError,
                           r'Weights only load failed')
    assert not marker.exists()


def _torchscript_needing_code(tmp_path, marker):
    """A real TorchScript CLIP archive whose data.pkl calls ``open``."""
    torch.manual_seed(0)
    ref = ReferenceCLIP(**TINY_ARCH).eval()
    plain = tmp_path / 'plain.pt'
    torch.jit.trace(ref, torch.randn(1, 3, 32, 32)).save(str(plain))
    evil = tmp_path / 'ViT-evil.pt'
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(evil, 'w') as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith('/data.pkl'):
                buffer = io.BytesIO()
                pickle.dump(_Payload(str(marker)), buffer, protocol=2)
                data = buffer.getvalue()
            dst.writestr(item, data)
    return str(evil)


def test_torchscript_needing_code_is_refused(tmp_path, data_root):
    marker = tmp_path / 'code_ran'
    evil = _torchscript_needing_code(tmp_path, marker)
    cfg = _cfg(tmp_path, data_root,
               init_cfg=dict(type='Pretrained', checkpoint=evil))
    _fails_before_training(
        cfg, CheckpointError,
        r'needs .*open to be unpickled.*refusing to execute it.*'
        r'trust_torchscript=True only if you trust the file')
    assert not marker.exists()
