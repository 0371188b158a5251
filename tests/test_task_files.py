"""Task files: export, one shared backbone, per-request switching, refusal."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from official_reference import (OfficialSTAdapter, randomize_,
                                save_official_checkpoint, save_openai_clip,
                                tiny_config_text, write_video)
from stadapter_mm.apis import (MultiTaskInferencer, TaskBank, TaskFileError,
                               load_task, make_task, read_label_map,
                               save_task)
from stadapter_mm.checkpoints import clip_fingerprint

from conftest import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def build_task(root, name, pre_attn, classes, clip, frozen=None, seed=0):
    """Official-style model -> converted full checkpoint + config + labels."""
    convert = load_tool('tools/convert/official_to_mmaction.py')
    ref = randomize_(
        OfficialSTAdapter(32, 8, 64, 2, 4, classes, 16, 2, (3, 1, 1),
                          pre_attn, True), seed=seed)
    if frozen is None:
        save_openai_clip(ref, clip)
    else:
        ref.load_state_dict(frozen, strict=False)
    official = str(root / f'{name}_official.pth')
    save_official_checkpoint(ref, official)
    cfg = root / f'{name}.py'
    cfg.write_text(tiny_config_text(
        positions=('attn', 'mlp') if pre_attn else ('mlp', ),
        num_classes=classes))
    ckpt = str(root / f'{name}.pth')
    convert.main(['--official', official, '--clip', clip, '--config',
                  str(cfg), '--out', ckpt])
    labels = root / f'{name}_labels.txt'
    labels.write_text(''.join(f'{name}_class_{i}\n' for i in range(classes)))
    return dict(cfg=str(cfg), ckpt=ckpt, labels=str(labels), ref=ref)


@pytest.fixture(scope='module')
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp('tasks')
    clip = str(root / 'clip.pt')
    k400 = build_task(root, 'k400', False, 5, clip)
    frozen = {k: v for k, v in k400['ref'].state_dict().items()
              if 'adapter' not in k and not k.startswith('fc.')}
    ssv2 = build_task(root, 'ssv2', True, 7, clip, frozen, seed=1)
    export = load_tool('tools/convert/export_adapter.py')
    for name, item in (('k400', k400), ('ssv2', ssv2)):
        item['task'] = str(root / f'{name}.task.pth')
        export.main([item['cfg'], item['ckpt'], '--label-map',
                     item['labels'], '--name', name, '--out', item['task']])
    video = write_video(str(root / 'clip.mp4'), frames=20)
    return dict(root=root, clip=clip, k400=k400, ssv2=ssv2, video=video)


def test_task_file_content(tasks):
    from mmaction.apis import init_recognizer
    item = tasks['ssv2']
    task = load_task(item['task'])
    model = init_recognizer(item['cfg'], item['ckpt'], device='cpu')
    assert task['name'] == 'ssv2'
    assert task['label_map'] == read_label_map(item['labels'])
    assert task['clip_fingerprint'] == clip_fingerprint(model.backbone)
    assert task['backbone']['width'] == 64
    keys = set(task['state_dict'])
    expected = {k for k, p in model.named_parameters() if p.requires_grad}
    assert keys == expected
    assert all('adapter_pre_' in k or k.startswith('cls_head.') for k in keys)
    assert all(torch.equal(task['state_dict'][k], model.state_dict()[k])
               for k in keys)
    total = sum(p.numel() for p in model.parameters())
    assert task['meta']['num_params'] < 0.1 * total
    cfg = Config.fromstring(task['config'], '.py')
    assert cfg.model.cls_head.num_classes == 7


def test_bank_matches_standalone_models_and_shares_backbone(tasks):
    from mmaction.apis import inference_recognizer, init_recognizer
    bank = TaskBank(tasks['clip'], arch=dict(input_resolution=32,
                                             patch_size=8, width=64,
                                             layers=2, heads=4))
    assert bank.add_task(tasks['k400']['task']) == 'k400'
    assert bank.add_task(tasks['ssv2']['task']) == 'ssv2'
    assert bank.tasks == ['k400', 'ssv2']
    # Alternate tasks per request; each equals its standalone model.
    for name in ('k400', 'ssv2', 'k400', 'ssv2'):
        item = tasks[name]
        alone = init_recognizer(item['cfg'], item['ckpt'], device='cpu')
        expected = inference_recognizer(alone, tasks['video']).pred_score
        got = bank.infer(tasks['video'], name).pred_score
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-6, rtol=0)
        top = bank.predict(tasks['video'], name, topk=3)
        assert top[0][0] == bank.labels(name)[int(expected.argmax())]
    # One copy of the frozen tower: the task models hold the same tensors.
    k400, ssv2 = bank.model('k400'), bank.model('ssv2')
    for key, param in bank.backbone.named_parameters():
        assert dict(k400.backbone.named_parameters())[key] is param
        assert dict(ssv2.backbone.named_parameters())[key] is param
        assert not param.requires_grad
    adapters = [p for n, p in ssv2.backbone.named_parameters()
                if 'adapter' in n]
    assert adapters and all(p.requires_grad for p in adapters)
    # MMAction2's own API takes a task model as is.
    sample = inference_recognizer(bank.model('ssv2'), tasks['video'])
    assert sample.pred_score.shape == (7, )
    bank.remove_task('k400')
    assert bank.tasks == ['ssv2']
    with pytest.raises(KeyError, match='unknown task'):
        bank.model('k400')


def test_task_for_other_clip_weights_is_refused(tasks, tmp_path):
    other_clip = str(tmp_path / 'other_clip.pt')
    other = build_task(tmp_path, 'other', False, 5, other_clip, seed=7)
    export = load_tool('tools/convert/export_adapter.py')
    task_file = str(tmp_path / 'other.task.pth')
    export.main([other['cfg'], other['ckpt'], '--out', task_file])
    bank = TaskBank.for_task_file(tasks['clip'], tasks['k400']['task'])
    with pytest.raises(TaskFileError, match='other CLIP weights'):
        bank.add_task(task_file)
    assert bank.tasks == []
    # The same task loads on a bank holding its own CLIP weights.
    TaskBank.for_task_file(other_clip, task_file).add_task(task_file)


def test_task_for_other_architecture_is_refused(tasks, tmp_path):
    deeper = OfficialSTAdapter(32, 8, 64, 3, 4, 5, 16, 3)
    clip3 = str(tmp_path / 'clip3.pt')
    save_openai_clip(randomize_(deeper), clip3)
    bank = TaskBank(clip3, arch=dict(input_resolution=32, patch_size=8,
                                     width=64, layers=3, heads=4))
    with pytest.raises(TaskFileError, match='architecture'):
        bank.add_task(tasks['k400']['task'])


def test_bad_task_files(tasks, tmp_path):
    with pytest.raises(TaskFileError, match='not a stadapter-mm task file'):
        load_task(tasks['k400']['ckpt'])
    with pytest.raises(FileNotFoundError):
        load_task(str(tmp_path / 'missing.task.pth'))
    task = load_task(tasks['k400']['task'])
    broken = dict(task, state_dict={
        k: v for k, v in task['state_dict'].items()
        if not k.startswith('cls_head.')
    })
    bank = TaskBank.for_task_file(tasks['clip'], tasks['k400']['task'])
    with pytest.raises(TaskFileError, match='do not fit'):
        bank.add_task(broken)
    newer = dict(task, version=99)
    path = str(tmp_path / 'newer.task.pth')
    torch.save(newer, path)
    with pytest.raises(TaskFileError, match='version 99'):
        load_task(path)


def test_label_map_must_match_head(tasks, tmp_path):
    from mmaction.apis import init_recognizer
    item = tasks['k400']
    model = init_recognizer(item['cfg'], item['ckpt'], device='cpu')
    cfg = Config.fromfile(item['cfg'])
    with pytest.raises(TaskFileError, match='3 names.*5 classes'):
        make_task(model, cfg, ['a', 'b', 'c'])
    task = make_task(model, cfg, None, 'numbers')
    assert task['label_map'] == ['0', '1', '2', '3', '4']
    path = save_task(task, str(tmp_path / 'sub' / 'numbers.task.pth'))
    assert load_task(path)['name'] == 'numbers'


def test_export_from_trainable_only_checkpoint(tasks, tmp_path):
    convert = load_tool('tools/convert/official_to_mmaction.py')
    export = load_tool('tools/convert/export_adapter.py')
    item = tasks['k400']
    slim = str(tmp_path / 'slim.pth')
    convert.main(['--official', str(tasks['root'] / 'k400_official.pth'),
                  '--clip', tasks['clip'], '--config', item['cfg'], '--out',
                  slim, '--trainable-only'])
    out = str(tmp_path / 'slim.task.pth')
    task = export.main([item['cfg'], slim, '--clip', tasks['clip'], '--out',
                        out, '--name', 'k400'])
    full = load_task(item['task'])
    assert task['clip_fingerprint'] == full['clip_fingerprint']
    assert task['state_dict'].keys() == full['state_dict'].keys()
    assert all(torch.equal(task['state_dict'][k], full['state_dict'][k])
               for k in full['state_dict'])


def test_multi_task_inferencer_and_demo(tasks, capsys):
    inferencer = MultiTaskInferencer(
        tasks['clip'], {'a': tasks['k400']['task'],
                        'b': tasks['ssv2']['task']})
    assert inferencer.tasks == ['a', 'b']
    one = inferencer(tasks['video'], task='b', topk=2)
    assert [p['index'] for p in one['predictions']] == \
        torch.tensor(one['pred_score']).topk(2).indices.tolist()
    assert one['predictions'][0]['label'].startswith('ssv2_class_')
    both = inferencer(tasks['video'])
    assert set(both) == {'a', 'b'} and len(both['a']['pred_score']) == 5
    demo = load_tool('demo/multi_task_demo.py')
    results = demo.main([
        '--clip', tasks['clip'], '--task', tasks['k400']['task'], '--task',
        tasks['ssv2']['task'], '--request', 'ssv2', tasks['video'],
        '--topk', '3'
    ])
    assert len(results) == 1 and results[0]['task'] == 'ssv2'
    assert results[0]['pred_score'] == pytest.approx(one['pred_score'],
                                                     abs=1e-6)
    out = capsys.readouterr().out
    assert '[ssv2]' in out and out.count('ssv2_class_') == 3
    with pytest.raises(SystemExit, match='unknown task'):
        demo.main(['--clip', tasks['clip'], '--task', tasks['k400']['task'],
                   '--request', 'ssv2', tasks['video']])
