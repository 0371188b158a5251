"""tools/train.py, tools/test.py and tools/dist_*.sh on generated videos."""
import json
import os
import os.path as osp
import pickle
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmaction.registry import DATASETS
from mmengine.config import Config

from stadapter_mm.datasets.views import parse_views, set_test_views
from stadapter_mm.models import ViTCLIPSTAdapter
from sweeps import SweepSpec, generate_sweep_dataset

from conftest import ROOT, load_tool

SYNTHETIC = osp.join(ROOT, 'projects', 'frame_order', 'configs',
                     'stadapter_vitw96l4p8-8x96_1xb32-8x2x1-10e_sweeps-rgb.py')

TRAIN_PER_CLASS = 3  # 12 training videos
TEST_VIDEOS = 4


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def config_file(tmp_path_factory):
    """A tiny version of the main job's config on 16 generated videos."""
    root = tmp_path_factory.mktemp('sweeps')
    generate_sweep_dataset(
        str(root),
        SweepSpec(train_per_class=TRAIN_PER_CLASS, val_per_class=1,
                  test_per_class=1, seed=3),
        progress=False)
    lines = [f'_base_ = [{SYNTHETIC!r}]']
    loaders = []
    for split, batch in (('train', 4), ('val', 4), ('test', 2)):
        loaders.append(
            f'{split}_dataloader = dict(batch_size={batch}, num_workers=0, '
            'persistent_workers=False, dataset=dict('
            f'ann_file={str(root / f"{split}_list.txt")!r}, '
            f'data_prefix=dict(video={str(root / "videos")!r})))')
    lines += loaders
    # A frozen random "CLIP" file, so that checkpoints can be slim (adapters
    # and head only) as in the Kinetics and SSv2 recipes.
    arch = dict(input_resolution=32, patch_size=8, width=64, layers=2,
                heads=4)
    torch.manual_seed(0)
    frozen = root / 'frozen_vit.pth'
    torch.save(ViTCLIPSTAdapter(arch=arch, adapter=None).state_dict(), frozen)
    lines += [
        f'model = dict(backbone=dict(arch={arch!r}, adapter=dict(width=16), '
        f'init_cfg=dict(type="Pretrained", checkpoint={str(frozen)!r})), '
        'cls_head=dict(in_channels=64))',
        'custom_hooks = [dict(type="FrozenParamHook", '
        'save_trainable_only=True)]',
        'train_cfg = dict(max_epochs=1)',
        'default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3),'
        ' logger=dict(interval=1))',
    ]
    path = tmp_path_factory.mktemp('configs') / 'tiny_sweeps.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def run(cmd, cwd, **env):
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True,
        env=dict(os.environ, **env), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope='module')
def trained(config_file, tmp_path_factory):
    """One epoch through tools/train.py, with validation."""
    work_dir = tmp_path_factory.mktemp('train')
    output = run([sys.executable, osp.join(ROOT, 'tools', 'train.py'),
                  config_file, '--work-dir', str(work_dir)],
                 cwd=str(tmp_path_factory.mktemp('cwd')))
    return work_dir, output


def test_train_one_epoch_with_validation(trained):
    work_dir, output = trained
    assert osp.isfile(work_dir / 'epoch_1.pth')
    with open(work_dir / 'last_checkpoint') as f:
        assert f.read().strip().endswith('epoch_1.pth')
    # 12 videos in batches of 4; then validation on the 4 val videos.
    assert 'Epoch(train) [1][3/3]' in output
    assert re.search(r'Epoch\(val\) \[1\]\[1/1\].*acc/top1', output)
    checkpoint = torch.load(work_dir / 'epoch_1.pth', map_location='cpu',
                            weights_only=True)
    assert checkpoint['meta']['epoch'] == 1
    # Slim: adapters and head, no frozen weights.
    state = checkpoint['state_dict']
    assert checkpoint['meta']['trainable_only'] is True
    assert any('adapter_pre_mlp' in k for k in state)
    assert 'cls_head.fc_cls.weight' in state
    assert 'backbone.conv1.weight' not in state
    assert not any('.attn.' in k or '.mlp.' in k for k in state)


def test_multi_view_test_with_dump(trained, config_file, tmp_path):
    work_dir, _ = trained
    dump = tmp_path / 'preds.pkl'
    output = run([
        sys.executable, osp.join(ROOT, 'tools', 'test.py'), config_file,
        str(work_dir / 'epoch_1.pth'), '--work-dir', str(tmp_path / 'test'),
        '--views', '3x3', '--dump', str(dump)
    ], cwd=str(tmp_path))
    assert re.search(r'Epoch\(test\).*acc/top1', output)
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == TEST_VIDEOS
    for sample in predictions:
        scores = sample['pred_score']
        assert scores.shape == (4, )
        # average_clips='prob': the mean of 9 views' probabilities.
        assert float(scores.sum()) == pytest.approx(1.0, abs=1e-4)
        assert int(sample['gt_label']) in range(4)


@pytest.mark.parametrize('views, expected', [('3x3', 9), ('2x1', 2),
                                             ('1x3', 3)])
def test_views_change_the_test_inputs(config_file, views, expected):
    cfg = Config.fromfile(config_file)
    set_test_views(cfg, *parse_views(views))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    inputs = dataset[0]['inputs']
    assert tuple(inputs.shape) == (expected, 3, 8, 32, 32)


@pytest.mark.parametrize('text', ['3', '3x2', '0x1', 'axb'])
def test_bad_views(text):
    with pytest.raises(ValueError, match='views'):
        parse_views(text)


def test_resume_from_the_last_checkpoint(trained, config_file, tmp_path):
    work_dir, _ = trained
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    # A copy of the finished run, resumed with one more epoch.
    for name in ('epoch_1.pth', 'last_checkpoint'):
        content = (work_dir / name).read_bytes()
        if name == 'last_checkpoint':
            content = str(resumed / 'epoch_1.pth').encode()
        (resumed / name).write_bytes(content)
    output = run([
        sys.executable, osp.join(ROOT, 'tools', 'train.py'), config_file,
        '--work-dir', str(resumed), '--resume', '--cfg-options',
        'train_cfg.max_epochs=2'
    ], cwd=str(tmp_path))
    assert 'resumed epoch: 1, iter: 3' in output
    assert 'Epoch(train) [1]' not in output
    assert 'Epoch(train) [2][3/3]' in output
    assert osp.isfile(resumed / 'epoch_2.pth')
    state = torch.load(resumed / 'epoch_2.pth', map_location='cpu',
                       weights_only=True)
    assert state['meta']['iter'] == 6


def test_two_process_gloo_training_and_testing(config_file, tmp_path):
    work_dir = tmp_path / 'dist'
    output = run([
        'bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config_file, '2',
        '--work-dir', str(work_dir)
    ], cwd=str(tmp_path), PORT=str(free_port()), OMP_NUM_THREADS='1',
        PYTHON=sys.executable)
    assert 'Distributed training: True' in output
    # 12 videos over 2 processes in batches of 4: 2 iterations per epoch.
    assert 'Epoch(train) [1][2/2]' in output
    assert osp.isfile(work_dir / 'epoch_1.pth')

    dump = tmp_path / 'dist_preds.pkl'
    output = run([
        'bash', osp.join(ROOT, 'tools', 'dist_test.sh'), config_file,
        str(work_dir / 'epoch_1.pth'), '2', '--work-dir',
        str(tmp_path / 'dist_test'), '--views', '2x1', '--dump', str(dump)
    ], cwd=str(tmp_path), PORT=str(free_port()), OMP_NUM_THREADS='1',
        PYTHON=sys.executable)
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    # Both ranks' results are gathered, each sample once.
    assert len(predictions) == TEST_VIDEOS


def test_train_options_merge(config_file, tmp_path):
    train = load_tool('tools/train.py')
    cfg = Config.fromfile(config_file)
    args = train.parse_args([config_file, '--resume', '--auto-scale-lr',
                             '--seed', '5'])
    train.merge_args(cfg, args)
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.auto_scale_lr.enable is True
    assert cfg.randomness['seed'] == 5
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny_sweeps')

    cfg = Config.fromfile(config_file)
    cfg.optim_wrapper.type = 'CudaAmpOptimWrapper'
    train.merge_args(cfg, train.parse_args([config_file, '--amp']))
    assert cfg.optim_wrapper.type == 'CudaAmpOptimWrapper'  # declared


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path')
def test_amp_flag_on_cpu_is_a_clear_error(config_file):
    train = load_tool('tools/train.py')
    cfg = Config.fromfile(config_file)
    with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
        train.merge_args(cfg, train.parse_args([config_file, '--amp']))


def test_test_tool_errors(config_file, tmp_path):
    test = load_tool('tools/test.py')
    with pytest.raises(SystemExit, match='checkpoint not found'):
        test.main([config_file, str(tmp_path / 'missing.pth')])
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(SystemExit, match='--views'):
        test.main([config_file, str(ckpt), '--views', '3x2'])
    with pytest.raises(SystemExit, match='--dump must name a .pkl'):
        test.main([config_file, str(ckpt), '--dump', 'out.json'])


def test_annotations_from_ssv2_json(tmp_path):
    tool = load_tool('tools/data/make_annotations.py')
    label_map = osp.join(ROOT, 'data', 'label_maps', 'label_map_sthv2.txt')
    with open(label_map) as f:
        names = f.read().splitlines()
    labels = tmp_path / 'labels.json'
    labels.write_text(json.dumps({n: str(i) for i, n in enumerate(names)}))
    split = tmp_path / 'train.json'
    split.write_text(json.dumps([
        dict(id='78687', template='Holding [something] next to [something]',
             label='holding potato next to vicks vaporub bottle'),
        dict(id='42326', template='Pushing [something] from left to right'),
    ]))
    out = tmp_path / 'train_list.txt'
    assert tool.main(['sthv2', '--labels', str(labels), '--split',
                      str(split), '--out', str(out)]) == 0
    assert out.read_text().splitlines() == [
        f'78687.webm {names.index("Holding something next to something")}',
        f'42326.webm {names.index("Pushing something from left to right")}',
    ]
    # Unlabelled test split: paths only.
    test = tmp_path / 'test.json'
    test.write_text(json.dumps([dict(id='1'), dict(id='2')]))
    assert tool.main(['sthv2', '--labels', str(labels), '--split', str(test),
                      '--out', str(out)]) == 0
    assert out.read_text().splitlines() == ['1.webm', '2.webm']
    # Labels json of another release: a clear error, nothing written.
    labels.write_text(json.dumps({'Holding something': '0'}))
    with pytest.raises(tool.AnnotationError, match='does not match'):
        tool.sthv2_entries(str(labels), str(split), label_map)


def test_annotations_from_kinetics_tree_and_csv(tmp_path):
    tool = load_tool('tools/data/make_annotations.py')
    tree = tmp_path / 'videos_val'
    for folder, name in [('air_drumming', 'abc_000010_000020.mp4'),
                         ('zumba', 'xyz_000001_000011.mp4'),
                         ('zumba', 'notes.txt')]:
        (tree / folder).mkdir(parents=True, exist_ok=True)
        (tree / folder / name).write_bytes(b'')
    out = tmp_path / 'list.txt'
    assert tool.main(['kinetics', '--tree', str(tree), '--out',
                      str(out)]) == 0
    assert out.read_text().splitlines() == [
        'air_drumming/abc_000010_000020.mp4 1',
        'zumba/xyz_000001_000011.mp4 399'
    ]
    table = tmp_path / 'validate.csv'
    table.write_text('label,youtube_id,time_start,time_end,split\n'
                     'air drumming,abc,10,20,validate\n'
                     'zumba,xyz,1,11,validate\n'
                     'zumba,gone,5,15,validate\n')
    entries, missing = tool.kinetics_csv_entries(
        str(table), str(tree),
        osp.join(ROOT, 'data', 'label_maps', 'label_map_k400.txt'))
    assert entries == [('air_drumming/abc_000010_000020.mp4', 1),
                       ('zumba/xyz_000001_000011.mp4', 399)]
    assert missing == 1
    # A folder that is no Kinetics class, and paths with spaces.
    (tree / 'not a class').mkdir()
    assert tool.main(['kinetics', '--tree', str(tree), '--out',
                      str(out)]) == 1
    with pytest.raises(tool.AnnotationError, match='delimiter'):
        tool.write_entries([('air drumming/a.mp4', 1)], str(out))
