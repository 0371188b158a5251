"""FrozenParamHook: reporting, checks and trainable-only checkpoints."""

import pytest
import torch
from mmaction.apis import init_recognizer
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from stadapter_mm import FrozenParamHook
from stadapter_mm.checkpoints import drop_frozen, is_adapter_key
from reference_clip import ReferenceCLIP
from conftest import TINY_ARCH
from runner_utils import recognizer_cfg, runner_cfg


@pytest.fixture
def clip_file(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / 'clip_tiny.pt'
    torch.save(ReferenceCLIP(**TINY_ARCH).state_dict(), path)
    return path


def _train(work_dir, model_cfg, hooks, max_epochs=2, **extra):
    runner = Runner.from_cfg(
        Config(runner_cfg(work_dir, model_cfg, max_epochs, hooks, **extra)))
    runner.train()
    return runner


def _outputs(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 4, 32, 32, generator=gen)
    model.eval()
    with torch.no_grad():
        return model.cls_head(model.backbone(x))


def test_trainable_only_checkpoints_and_every_load_path(tmp_path, clip_file):
    model_cfg = recognizer_cfg(clip_file)
    hook = dict(type='FrozenParamHook', save_trainable_only=True)
    runner = _train(tmp_path / 'run', model_cfg, [hook])
    trained = _outputs(runner.model)
    ckpt_path = tmp_path / 'run' / 'epoch_2.pth'
    ckpt = torch.load(ckpt_path, weights_only=True)
    keys = set(ckpt['state_dict'])
    assert 'backbone.conv1.weight' not in keys
    assert not any(k.startswith('backbone.transformer.resblocks.0.attn')
                   for k in keys)
    assert 'cls_head.fc_cls.weight' in keys
    assert {k for k in keys if is_adapter_key(k, 'backbone.')} == {
        'backbone.' + n for n in runner.model.backbone.trainable_names()
    }
    assert ckpt['meta']['trainable_only'] is True
    assert len(ckpt['meta']['clip_fingerprint']) == 16

    # init_recognizer (demo / inference path): CLIP weights come back.
    cfg = Config(dict(model=model_cfg))
    model = init_recognizer(cfg, str(ckpt_path), device='cpu')
    assert torch.allclose(_outputs(model), trained, atol=1e-6)

    # load_from in a new Runner (tools/test.py path).
    test_runner = Runner.from_cfg(
        Config(runner_cfg(tmp_path / 'test', model_cfg, 2, [hook],
                          load_from=str(ckpt_path))))
    test_runner.load_or_resume()
    assert torch.allclose(_outputs(test_runner.model), trained, atol=1e-6)

    # resume: continues to epoch 3 from the slim checkpoint.
    resumed = _train(tmp_path / 'run', model_cfg, [hook], max_epochs=3,
                     resume=True)
    assert resumed.epoch == 3 and resumed.iter == 6


def test_slim_checkpoint_under_ten_percent_at_vit_b16():
    model = MODELS.build(
        dict(recognizer_cfg(), backbone=dict(type='ViTCLIPSTAdapter',
                                             arch='ViT-B/16',
                                             adapter='12x384'),
             cls_head=dict(type='TimeSformerHead', num_classes=400,
                           in_channels=768)))
    full = model.state_dict()
    slim = drop_frozen(full, model.backbone)

    def nbytes(sd):
        return sum(v.numel() * v.element_size() for v in sd.values())

    ratio = nbytes(slim) / nbytes(full)
    assert sum(v.numel() for v in slim.values()) == 7_417_744
    assert ratio < 0.10


def test_without_clip_source_saves_full_checkpoints(tmp_path, caplog):
    hook = dict(type='FrozenParamHook', save_trainable_only=True)
    _train(tmp_path, recognizer_cfg(), [hook], max_epochs=1)
    ckpt = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    assert 'backbone.conv1.weight' in ckpt['state_dict']
    assert 'trainable_only' not in ckpt['meta']


def test_trainable_only_state_needs_clip_source():
    model = MODELS.build(recognizer_cfg())
    slim = drop_frozen(model.state_dict(), model.backbone)
    fresh = MODELS.build(recognizer_cfg())
    with pytest.raises(ValueError, match='only the trainable parameters'):
        fresh.load_state_dict(slim)


def test_trainable_only_state_with_unfrozen_conv1_is_refilled(clip_file):
    # conv1 trains, so it is in the trainable-only state dict: the refill
    # must still see the frozen weights missing and bring them back.
    cfg = recognizer_cfg(clip_file)
    cfg['backbone']['unfreeze'] = ('conv1', )
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():
        model.backbone.conv1.weight.add_(0.5)
    slim = drop_frozen(model.state_dict(), model.backbone)
    assert 'backbone.conv1.weight' in slim
    assert 'backbone.ln_pre.weight' not in slim
    fresh = MODELS.build(cfg)
    fresh.load_state_dict(slim)  # strict: every frozen key is filled in
    assert torch.allclose(_outputs(fresh), _outputs(model), atol=1e-6)


def test_fails_when_nothing_trains(tmp_path):
    cfg = recognizer_cfg(adapter=None)
    runner = Runner.from_cfg(
        Config(runner_cfg(tmp_path, cfg, 1, [dict(type='FrozenParamHook')])))
    runner.model.cls_head.requires_grad_(False)
    with pytest.raises(RuntimeError, match='No parameter trains'):
        runner.call_hook('before_train')


def test_fails_when_a_frozen_parameter_trains(tmp_path):
    runner = Runner.from_cfg(
        Config(runner_cfg(tmp_path, recognizer_cfg(), 1,
                          [dict(type='FrozenParamHook')])))
    runner.model.backbone.conv1.weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match='should be frozen'):
        runner.call_hook('before_train')


def test_reports_counts_and_ratio_limit(tmp_path):
    runner = Runner.from_cfg(
        Config(runner_cfg(tmp_path, recognizer_cfg(), 1,
                          [dict(type='FrozenParamHook')])))
    stats = FrozenParamHook.count(runner.model)
    model = runner.model
    assert stats['trainable'] == sum(p.numel() for p in model.parameters()
                                     if p.requires_grad)
    assert 0 < stats['ratio'] < 1
    limited = FrozenParamHook(max_trainable_ratio=stats['ratio'] / 2)
    with pytest.raises(RuntimeError, match='max_trainable_ratio'):
        limited.before_train(runner)


@pytest.mark.parametrize('kwargs', [dict(max_trainable_ratio=0),
                                    dict(max_trainable_ratio=1.5)])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        FrozenParamHook(**kwargs)


def test_adapter_key_format_matches_the_adapter_modules():
    """Bare-state-dict recognition agrees with recognition by module type."""
    from stadapter_mm.checkpoints import is_adapter_key
    from stadapter_mm.models import STConvAdapter
    model = MODELS.build(recognizer_cfg(adapter=dict(
        positions=('attn', 'mlp'), width=8, blocks=[1])))
    by_type = {f'{name}.{k}'
               for name, module in model.named_modules()
               if isinstance(module, STConvAdapter)
               for k, _ in module.named_parameters()}
    by_key = {k for k in model.state_dict()
              if is_adapter_key(k, prefix='backbone.')}
    assert by_type and by_key == by_type
    assert not is_adapter_key('transformer.resblocks.0.adapter_pre_mlp.fc1')
    assert not is_adapter_key('cls_head.adapter_pre_mlp.fc1.weight',
                              prefix='backbone.')
