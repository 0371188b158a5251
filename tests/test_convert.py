"""Official ST-Adapter checkpoints -> MMAction2, and CLIP -> backbone files.

The official model is restated in ``tests/official_reference.py``; a tiny
instance of it writes checkpoints the way the official ``save_model`` does,
and the converted MMAction2 model must give its logits to 1e-4 (fp32).
"""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from official_reference import (OfficialSTAdapter, randomize_,
                                save_official_checkpoint, save_openai_clip,
                                tiny_config_text)
from stadapter_mm.models import ViTCLIPSTAdapter
from stadapter_mm.checkpoints import is_adapter_key
from stadapter_mm.checkpoints.clip_formats import CheckpointError
from stadapter_mm.checkpoints.official import (
    check_against_model, describe_layout, mmaction_to_official,
    official_layout, official_to_mmaction, read_official_checkpoint)

from conftest import ROOT, load_tool

# (name, adapter_pre_attn, positions, classes, release config)
LAYOUTS = [('k400', False, ('mlp', ), 5, 'configs/stadapter_vitb16_k400.py'),
           ('ssv2', True, ('attn', 'mlp'), 7,
            'configs/stadapter_vitb16_ssv2.py')]


def make_official(pre_attn, classes, seed=0, layers=2):
    model = OfficialSTAdapter(32, 8, 64, layers, 4, classes, 16, layers,
                              (3, 1, 1), pre_attn, True)
    return randomize_(model, seed=seed).eval()


@pytest.fixture(scope='module')
def convert_tool():
    return load_tool('tools/convert/official_to_mmaction.py')


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """Official checkpoints of both layouts, sharing one CLIP file."""
    root = tmp_path_factory.mktemp('official')
    out = {}
    clip = str(root / 'clip.pt')
    frozen = None
    for name, pre_attn, positions, classes, _ in LAYOUTS:
        ref = make_official(pre_attn, classes, seed=len(out))
        if frozen is None:
            save_openai_clip(ref, clip)
            frozen = {k: v for k, v in ref.state_dict().items()
                      if 'adapter' not in k and not k.startswith('fc.')}
        else:
            ref.load_state_dict(frozen, strict=False)
        ckpt = str(root / f'{name}_checkpoint-11.pth')
        save_official_checkpoint(ref, ckpt)
        cfg = root / f'{name}_tiny.py'
        cfg.write_text(tiny_config_text(positions=positions,
                                        num_classes=classes))
        out[name] = dict(ref=ref, ckpt=ckpt, cfg=str(cfg), classes=classes)
    out['clip'] = clip
    out['root'] = root
    return out


def recognizer_logits(model, video):
    with torch.no_grad():
        logits, _ = model.extract_feat(video[:, None], stage='head')
    return logits


@pytest.mark.parametrize('name', ['k400', 'ssv2'])
def test_round_trip_matches_official_logits(release, convert_tool, tmp_path,
                                            name):
    from mmaction.apis import init_recognizer
    item = release[name]
    out = str(tmp_path / 'converted.pth')
    convert_tool.main(['--official', item['ckpt'], '--clip', release['clip'],
                       '--config', item['cfg'], '--out', out])
    model = init_recognizer(item['cfg'], out, device='cpu')
    video = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator()
                        .manual_seed(1))
    with torch.no_grad():
        expected = item['ref'](video)
    got = recognizer_logits(model, video)
    assert got.shape == (3, item['classes'])
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    # The adapters matter: without them the logits are far off, so the
    # comparison above does check the adapters' conversion.
    bare = make_official(name == 'ssv2', item['classes'])
    bare.load_state_dict(item['ref'].state_dict())
    for block in bare.transformer.resblocks:
        for adapter in (block.adapter_pre_attn, block.adapter_pre_mlp):
            if adapter is not None:
                torch.nn.init.zeros_(adapter.fc2.weight)
                torch.nn.init.zeros_(adapter.fc2.bias)
    with torch.no_grad():
        assert (bare(video) - expected).abs().max() > 1e-2


@pytest.mark.parametrize('name', ['k400', 'ssv2'])
def test_release_configs_have_the_official_layout(release, convert_tool,
                                                  tmp_path, name):
    """The project's release configs, shrunk, accept the official layout."""
    item = release[name]
    release_cfg = [r[4] for r in LAYOUTS if r[0] == name][0]
    cfg = Config.fromfile(osp.join(ROOT, release_cfg))
    backbone = cfg.model.backbone
    backbone.arch = dict(input_resolution=32, patch_size=8, width=64,
                         layers=2, heads=4)
    backbone.adapter = dict(preset=backbone.adapter, width=16)
    backbone.num_frames = 4
    backbone.init_cfg = None
    cfg.model.cls_head.in_channels = 64
    cfg.model.cls_head.num_classes = item['classes']
    other = 'ssv2' if name == 'k400' else 'k400'
    other_ckpt = release[other]['ckpt']
    checkpoint = convert_tool.convert(item['ckpt'], release['clip'], cfg)
    assert checkpoint['meta']['num_classes'] == item['classes']
    cfg.model.cls_head.num_classes = release[other]['classes']
    with pytest.raises(CheckpointError, match='adapter layout mismatch'):
        convert_tool.convert(other_ckpt, release['clip'], cfg)


def test_wrong_class_count_is_refused(release, convert_tool, tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(tiny_config_text(positions=('mlp', ), num_classes=9))
    out = tmp_path / 'x.pth'
    with pytest.raises(SystemExit, match='class count mismatch.*5.*9'):
        convert_tool.main(['--official', release['k400']['ckpt'], '--clip',
                           release['clip'], '--config', str(cfg), '--out',
                           str(out)])
    assert not out.exists()


def test_wrong_adapter_layout_is_refused(release, convert_tool, tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(tiny_config_text(positions=('mlp', ), num_classes=7))
    with pytest.raises(SystemExit, match='adapter layout mismatch'):
        convert_tool.main(['--official', release['ssv2']['ckpt'], '--clip',
                           release['clip'], '--config', str(cfg), '--out',
                           str(tmp_path / 'x.pth')])
    cfg.write_text(tiny_config_text(positions=('mlp', ), adapter_width=32))
    with pytest.raises(SystemExit, match='adapter layout mismatch'):
        convert_tool.main(['--official', release['k400']['ckpt'], '--clip',
                           release['clip'], '--config', str(cfg), '--out',
                           str(tmp_path / 'x.pth')])


def test_clip_of_another_width_is_refused(release, convert_tool, tmp_path):
    wide = OfficialSTAdapter(32, 8, 96, 2, 4, 5, 16, 2)
    clip = str(tmp_path / 'wide_clip.pt')
    save_openai_clip(wide, clip)
    with pytest.raises(CheckpointError, match='width 96.*expect width 64'):
        convert_tool.convert(release['k400']['ckpt'], clip)


def test_trainable_only_checkpoint_needs_clip(release, convert_tool):
    with pytest.raises(CheckpointError, match='--clip'):
        convert_tool.convert(release['k400']['ckpt'], None)


def test_full_official_state_dict_needs_no_clip(release, convert_tool,
                                                tmp_path):
    from mmaction.apis import init_recognizer
    item = release['k400']
    full = str(tmp_path / 'full.pth')
    save_official_checkpoint(item['ref'], full, full=True)
    out = str(tmp_path / 'out.pth')
    convert_tool.main(['--official', full, '--config', item['cfg'],
                       '--out', out])
    model = init_recognizer(item['cfg'], out, device='cpu')
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = item['ref'](video)
    assert torch.allclose(recognizer_logits(model, video), expected,
                          atol=1e-4, rtol=0)


def test_trainable_only_output_loads_through_init_cfg(release, convert_tool,
                                                      tmp_path):
    from mmaction.apis import init_recognizer
    item = release['ssv2']
    out = str(tmp_path / 'slim.pth')
    checkpoint = convert_tool.main([
        '--official', item['ckpt'], '--clip', release['clip'], '--config',
        item['cfg'], '--out', out, '--trainable-only'
    ])
    assert all('adapter_pre_' in k or k.startswith('cls_head.')
               for k in checkpoint['state_dict'])
    cfg = tmp_path / 'with_clip.py'
    cfg.write_text(tiny_config_text(positions=('attn', 'mlp'), num_classes=7,
                                    clip_file=release['clip']))
    model = init_recognizer(str(cfg), out, device='cpu')
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = item['ref'](video)
    assert torch.allclose(recognizer_logits(model, video), expected,
                          atol=1e-4, rtol=0)


def test_not_an_official_checkpoint(tmp_path, release):
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match='cannot read'):
        read_official_checkpoint(str(junk))
    with pytest.raises(FileNotFoundError):
        read_official_checkpoint(str(tmp_path / 'missing.pth'))
    clip_only = read_official_checkpoint(release['clip'])
    with pytest.raises(CheckpointError, match='no ST-Adapter weights'):
        official_layout(clip_only)


def test_pure_key_functions(release):
    state = read_official_checkpoint(release['ssv2']['ckpt'])
    layout = official_layout(state)
    assert layout['positions'] == ('attn', 'mlp')
    assert layout['blocks'] == [0, 1]
    assert (layout['width'], layout['in_channels']) == (16, 64)
    assert layout['kernel_size'] == (3, 1, 1)
    assert layout['num_classes'] == 7 and not layout['has_frozen']
    assert describe_layout(layout).startswith('4x16 before attn+mlp')
    converted = official_to_mmaction(state)
    assert 'cls_head.fc_cls.weight' in converted
    assert 'backbone.transformer.resblocks.1.adapter_pre_attn.conv.weight' \
        in converted
    back = mmaction_to_official(converted)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)
    with pytest.raises(CheckpointError, match='no MMAction2 counterpart'):
        official_to_mmaction({**state, 'text_projection': torch.zeros(1)})
    # An unevenly placed adapter set cannot be expressed by the backbone.
    uneven = {k: v for k, v in state.items()
              if not k.startswith('transformer.resblocks.0.adapter_pre_attn')}
    with pytest.raises(CheckpointError, match='not placed uniformly'):
        official_layout(uneven)


def test_meta_model_check_reports_shape_problems(release):
    from mmaction.registry import MODELS
    cfg = Config.fromstring(tiny_config_text(positions=('mlp', )), '.py')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    state = read_official_checkpoint(release['k400']['ckpt'])
    converted = official_to_mmaction(state)
    with pytest.raises(CheckpointError, match='missing'):
        check_against_model(converted, official_layout(state), model)


# ----------------------------------------------------------- clip_to_backbone
@pytest.fixture(scope='module')
def clip_tool():
    return load_tool('tools/convert/clip_to_backbone.py')


def test_clip_to_backbone_state_dict(release, clip_tool, tmp_path, tiny_arch):
    out = str(tmp_path / 'backbone.pth')
    written = clip_tool.main([release['clip'], out, '--dtype', 'fp32'])
    loaded = torch.load(out, weights_only=True)
    assert loaded.keys() == written.keys()
    assert 'proj' not in loaded and 'conv1.weight' in loaded
    assert all(v.dtype == torch.float32 for v in loaded.values())
    backbone = ViTCLIPSTAdapter(
        arch=tiny_arch, adapter=dict(width=16),
        init_cfg=dict(type='Pretrained', checkpoint=out))
    backbone.init_weights()
    ref = release['k400']['ref']
    assert torch.equal(backbone.conv1.weight, ref.conv1.weight)
    assert torch.equal(backbone.transformer.resblocks[1].attn.in_proj_weight,
                       ref.transformer.resblocks[1].attn.in_proj_weight)


def test_clip_to_backbone_options(release, clip_tool, tmp_path):
    out = str(tmp_path / 'b.safetensors')
    clip_tool.main([release['clip'], out, '--prefix', 'backbone.',
                    '--resolution', '48'])
    from safetensors.torch import load_file
    loaded = load_file(out)
    assert loaded['backbone.positional_embedding'].shape == (1 + 36, 64)
    assert loaded['backbone.conv1.weight'].dtype == torch.float16
    with pytest.raises(SystemExit, match='multiple of the patch size'):
        clip_tool.main([release['clip'], out, '--resolution', '50'])
    with pytest.raises(SystemExit, match='does not exist'):
        clip_tool.main([str(tmp_path / 'nope.pt'), out])


def test_clip_to_backbone_from_mmaction_checkpoint(release, clip_tool,
                                                   convert_tool, tmp_path):
    converted = str(tmp_path / 'mm.pth')
    convert_tool.main(['--official', release['ssv2']['ckpt'], '--clip',
                       release['clip'], '--out', converted])
    out = str(tmp_path / 'tower.pth')
    written = clip_tool.main([converted, out])
    assert not any(is_adapter_key(k, 'backbone.') for k in written)
    assert len(written) == len(torch.load(release['clip'])) - 3
    assert os.path.getsize(out) > 0


def test_converted_checkpoint_through_tools_test(release, convert_tool,
                                                 tmp_path):
    """tools/test.py evaluates the converted checkpoint (MMAction2 Runner)."""
    from mmaction.apis import inference_recognizer, init_recognizer
    from official_reference import write_video
    if not osp.isfile(osp.join(ROOT, 'tools', 'test.py')):
        pytest.skip('tools/test.py is not in this checkout')
    item = release['ssv2']
    ckpt = str(tmp_path / 'converted.pth')
    convert_tool.main(['--official', item['ckpt'], '--clip', release['clip'],
                       '--config', item['cfg'], '--out', ckpt])
    model = init_recognizer(item['cfg'], ckpt, device='cpu')
    lines, scores = [], []
    for seed in range(3):
        name = f'v{seed}.mp4'
        write_video(str(tmp_path / name), frames=16, seed=seed)
        pred = inference_recognizer(model, str(tmp_path / name)).pred_score
        lines.append(f'{name} {int(pred.argmax())}')
        scores.append(pred)
    (tmp_path / 'ann.txt').write_text('\n'.join(lines) + '\n')
    cfg = tmp_path / 'eval.py'
    cfg.write_text(
        tiny_config_text(positions=('attn', 'mlp'), num_classes=7) +
        "test_evaluator = dict(type='AccMetric')\n"
        "test_cfg = dict(type='TestLoop')\n")
    dump = str(tmp_path / 'preds.pkl')
    data = 'test_dataloader.dataset'
    metrics = load_tool('tools/test.py').main([
        str(cfg), ckpt, '--work-dir', str(tmp_path / 'work'), '--dump', dump,
        '--cfg-options', f'{data}.ann_file={tmp_path / "ann.txt"}',
        f'{data}.data_prefix.video={tmp_path}'
    ])
    # Labels are the converted model's own predictions, and the Runner's
    # scores are those of init_recognizer with the converted file.
    assert metrics['acc/top1'] == 1.0
    import pickle
    with open(dump, 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 3
    for result, expected in zip(dumped, scores):
        assert torch.allclose(torch.as_tensor(result['pred_score']),
                              expected, atol=1e-5)
