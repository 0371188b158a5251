"""MMAction2's own data tools on our configs: browse_dataset, test --dump.

The scripts are the copies the mmaction2 wheel installs under
``mmaction/.mim/tools/``, run as a user would (a subprocess, config file on
disk), on a tiny recognizer and generated videos, broken ones included.
"""
import glob
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import mmaction
import pytest
import torch
from mmengine.config import Config

import robust_helpers as helpers

TOOLS = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools')
BROKEN = ('truncated', 'missing')


def _run(script, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, osp.join(TOOLS, script), *args],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Videos with broken ones in the val list, a config file, weights."""
    root = tmp_path_factory.mktemp('tools')
    data = str(root / 'data')
    info = helpers.make_dataset(data, broken=BROKEN, broken_split='val')
    cfg = helpers.tiny_cfg(str(root / 'work'), data, 1, with_recipe=True)
    cfg['custom_imports'] = dict(imports=['stadapter_mm'],
                                 allow_failed_imports=False)
    cfg['test_dataloader'] = cfg['val_dataloader']
    cfg['test_evaluator'] = cfg['val_evaluator']
    cfg['test_cfg'] = dict(type='TestLoop')
    config = str(root / 'tiny_recipe.py')
    Config(cfg).dump(config)

    from mmaction.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg['model'])
    checkpoint = str(root / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    with open(info['val']) as f:
        lines = [line.rsplit(' ', 1) for line in f.read().splitlines()]
    return dict(root=root, config=config, checkpoint=checkpoint,
                val=[(osp.join(data, p), int(lab)) for p, lab in lines],
                broken=set(info['broken']))


def test_browse_dataset_shows_the_recipe_pipeline(setup):
    """MMAction2's browse_dataset.py wraps the dataset's pipeline in an
    InspectCompose; RobustVideoDataset must call it (it used to run the
    transforms itself and the script crashed with an IndexError)."""
    out = str(setup['root'] / 'browse')
    _run('visualizations/browse_dataset.py', setup['config'], out,
         '--phase', 'train', '--show-number', '3', '--mode', 'pipeline',
         cwd=str(setup['root']))
    videos = sorted(glob.glob(osp.join(out, '**', 'video_*'),
                              recursive=True))
    assert [osp.basename(v).split('.')[0] for v in videos][:3] == \
        ['video_0', 'video_1', 'video_2'], videos


def test_test_py_dump_and_results_json_say_what_was_scored(setup):
    """MMAction2's test.py --dump with two broken videos in the test list:
    the dump keeps one record per listed video, in list order; a broken
    video's record has its own label, ``bad_video`` and no prediction; the
    results JSON carries the counts as numbers (it used to say null)."""
    work = str(setup['root'] / 'test_work')
    dump = str(setup['root'] / 'preds.pkl')
    log = _run('test.py', setup['config'], setup['checkpoint'], '--dump',
               dump, '--work-dir', work, cwd=str(setup['root']))
    with open(dump, 'rb') as f:
        records = pickle.load(f)
    assert len(records) == len(setup['val'])
    for record, (path, label) in zip(records, setup['val']):
        assert int(record['gt_label'][0]) == label, path
        if path in setup['broken']:
            assert record['bad_video'] == path
            assert not [k for k in record if k.startswith('pred_')], record
        else:
            assert 'bad_video' not in record
            assert record['pred_score'].shape == (4, )
    results = glob.glob(osp.join(work, '*', '*.json'))
    assert len(results) == 1, results
    with open(results[0]) as f:
        metrics = json.load(f)
    assert metrics['acc/num_scored'] == len(setup['val']) - len(BROKEN)
    assert metrics['acc/num_bad_videos'] == len(BROKEN)
    assert isinstance(metrics['acc/top1'], float)
    assert f'acc/num_bad_videos: {len(BROKEN)}' in log
