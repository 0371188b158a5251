"""Broken videos never stop a run: replaced, reported, logged once, listed."""
import glob
import importlib.util
import json
import logging
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from torch.utils.data import DataLoader

import robust_helpers as helpers
from stadapter_mm.datasets.robust_video_dataset import (RobustVideoDataset,
                                                        VideoLoadError)
from stadapter_mm.evaluation.metrics import BadVideoAwareMetric

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VAL_BROKEN = ('truncated', 'missing')


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_seen():
    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture(scope='module')
def messy(tmp_path_factory):
    """Good clips plus every broken kind in train, two broken in val."""
    root = str(tmp_path_factory.mktemp('messy'))
    info = helpers.make_dataset(root, broken=helpers.BROKEN_KINDS)
    good = osp.join(root, 'videos', 'train_0_0.mp4')
    with open(info['val']) as f:
        lines = f.read().splitlines()
    clean_val = osp.join(root, 'val_clean.txt')
    shutil.copy(info['val'], clean_val)
    val_bad = []
    for i, kind in enumerate(VAL_BROKEN):
        name = f'videos/val_broken_{kind}.mp4'
        helpers.make_broken(osp.join(root, name), kind, good)
        lines.insert(2 + 3 * i, f'{name} {i}')
        val_bad.append(osp.join(root, name))
    with open(info['val'], 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(root=root, train=info['train'], val=info['val'],
                clean_val=clean_val, train_bad=info['broken'],
                val_bad=val_bad)


def _dataset(ann, root, tmp_path, **kwargs):
    return RobustVideoDataset(
        ann_file=ann, data_prefix=dict(video=root),
        pipeline=helpers.pipeline(), num_classes=4,
        bad_video_log=str(tmp_path / 'bad.jsonl'), **kwargs)


def test_training_replaces_each_broken_kind_and_logs_once(
        messy, tmp_path, warnings_seen):
    ds = _dataset(messy['train'], messy['root'], tmp_path)
    broken = set(messy['train_bad'])
    names = [ds.get_data_info(i)['filename'] for i in range(len(ds))]
    assert broken <= set(names)
    good_inputs = [ds[i]['inputs'] for i, n in enumerate(names)
                   if n not in broken]
    for _ in range(2):  # two epochs
        for i, name in enumerate(names):
            inputs = ds[i]['inputs']
            assert inputs.shape == (1, 3, 4, 32, 32)
            if name in broken:  # replaced by a real, readable sample
                assert any(torch.equal(inputs, g) for g in good_inputs)
    assert set(ds.bad_videos.filenames()) == broken
    for path in broken:
        assert sum(path in m for m in warnings_seen) == 1, path
    reasons = {e['filename']: e['reason'] for e in ds.bad_videos.entries()}
    assert reasons[osp.join(messy['root'], 'videos/broken_missing.mp4')] \
        .startswith('DecordInit: FileNotFoundError')
    # A file that opens but whose frames do not decode fails later on.
    assert reasons[osp.join(messy['root'], 'videos/broken_corrupt.mp4')] \
        .startswith('DecordDecode')


def test_loader_workers_record_each_bad_video_once(messy, tmp_path):
    ds = _dataset(messy['train'], messy['root'], tmp_path)
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=True,
                        collate_fn=pseudo_collate)
    for _ in range(2):
        for batch in loader:
            assert all(x.shape == (1, 3, 4, 32, 32) for x in batch['inputs'])
    with open(ds.bad_videos.path) as f:
        lines = [json.loads(line)['filename'] for line in f]
    assert sorted(lines) == sorted(messy['train_bad'])  # once, not per worker


def test_nothing_loads_fails_fast_with_the_likely_cause(messy, tmp_path):
    ds = RobustVideoDataset(
        ann_file=messy['train'], data_prefix=dict(video='/no/such/folder'),
        pipeline=helpers.pipeline(), num_classes=4,
        bad_video_log=str(tmp_path / 'bad.jsonl'))
    with pytest.raises(VideoLoadError, match=r'first 10 videos.*data_prefix'):
        ds[0]


def test_metric_scores_readable_samples_and_counts_the_rest():
    metric = BadVideoAwareMetric(dict(type='AccMetric'))
    assert metric.prefix == 'acc'
    samples = []
    for i, (label, pred, bad) in enumerate([(0, 0, None), (1, 1, None),
                                            (2, 0, '/v/a.mp4'),
                                            (3, 0, None), (1, 0, '/v/b.mp4'),
                                            (0, 0, None)]):
        score = torch.full((4, ), 0.1)
        score[pred] = 0.7
        sample = dict(pred_score=score, gt_label=torch.tensor([label]))
        if bad:
            sample['bad_video'] = bad
        samples.append(sample)
    metric.process({}, samples[:3])
    metric.process({}, samples[3:])
    # A video that was not scored keeps no prediction for later metrics
    # (e.g. the DumpResults of --dump); the others keep theirs.
    assert [('pred_score' in s) for s in samples] == [
        True, True, False, True, False, True]
    # size=5: the last sample is sampler padding and must be dropped.
    result = metric.evaluate(5)
    assert result['acc/num_scored'] == 3
    assert result['acc/num_bad_videos'] == 2
    assert result['acc/top1'] == pytest.approx(2 / 3)


def test_training_run_with_broken_videos_completes_and_reports(
        messy, tmp_path):
    cfg = helpers.tiny_cfg(str(tmp_path / 'run'), messy['root'], 1,
                           experiment_name='messy_run')
    cfg['train_dataloader']['dataset']['ann_file'] = messy['train']
    cfg['val_dataloader']['dataset']['ann_file'] = messy['val']
    cfg['default_hooks']['checkpoint']['save_best'] = None
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    assert runner.epoch == 1 and runner.iter > 0

    with open(osp.join(runner.log_dir, 'bad_videos.txt')) as f:
        listed = [line.split('\t') for line in f.read().splitlines()]
    assert sorted(p for s, p, _ in listed if s == 'train') == sorted(
        messy['train_bad'])
    assert sorted(p for s, p, _ in listed if s == 'val') == sorted(
        messy['val_bad'])
    with open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]) as f:
        log = f.read()
    assert '7 unreadable videos (train: 5, val: 2)' in log
    scalars = glob.glob(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    with open(scalars[0]) as f:
        val = [json.loads(x) for x in f if 'acc/num_scored' in x][-1]
    assert val['acc/num_scored'] == 8 and val['acc/num_bad_videos'] == 2

    # The score on the messy list is the score on its readable videos.
    test_cfg = helpers.tiny_cfg(str(tmp_path / 'clean'), messy['root'], 1,
                                experiment_name='clean_eval')
    test_cfg['load_from'] = osp.join(str(tmp_path / 'run'), 'epoch_1.pth')
    test_cfg['test_dataloader'] = dict(test_cfg['val_dataloader'])
    test_cfg['test_dataloader']['dataset'] = dict(
        test_cfg['val_dataloader']['dataset'], ann_file=messy['clean_val'])
    test_cfg['test_evaluator'] = dict(type='AccMetric')
    test_cfg['test_cfg'] = dict(type='TestLoop')
    clean = Runner.from_cfg(Config(test_cfg)).test()
    assert clean['acc/top1'] == pytest.approx(val['acc/top1'])


def _check_videos_tool():
    spec = importlib.util.spec_from_file_location(
        'check_videos', osp.join(ROOT, 'tools', 'data', 'check_videos.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_videos_tool_writes_clean_list_and_report(messy, tmp_path):
    ann = tmp_path / 'list.txt'
    with open(messy['train']) as f:
        original = f.read().splitlines()
    ann.write_text('\n'.join(original + ['videos/x.mp4 seven']) + '\n')
    out, report_path = tmp_path / 'clean.txt', tmp_path / 'report.json'
    report = _check_videos_tool().main([
        str(ann), '--data-prefix', messy['root'], '--workers', '2',
        '--out', str(out), '--report', str(report_path), '--no-progress'])
    broken = {osp.relpath(p, messy['root']) for p in messy['train_bad']}
    expected = [line for line in original if line.split()[0] not in broken]
    assert out.read_text().splitlines() == expected
    assert json.loads(report_path.read_text()) == report
    assert report['good'] == len(expected) and report['bad'] == 6
    by_line = {b['line']: b for b in report['bad_lines']}
    assert by_line[len(original) + 1]['problem'] == 'malformed line'
    assert f'list.txt:{len(original) + 1}' in by_line[len(original) + 1][
        'reason']
    assert {b['path'] for b in report['bad_lines'] if b['path']} == set(
        messy['train_bad'])
    # The cleaned list loads without a single bad video.
    ds = _dataset(str(out), messy['root'], tmp_path / 'after')
    for i in range(len(ds)):
        ds[i]
    assert ds.bad_videos.entries() == []


def test_seeded_samples_replay_whatever_the_workers(messy, tmp_path):
    """With set_sample_seed, the recipe's random transforms depend on
    (seed, epoch, index) only: equal with 0 or 2 workers and on a second
    pass, different from one epoch to the next, and the caller's global
    random state is left as it was."""
    import numpy as np
    ds = RobustVideoDataset(
        ann_file=messy['train'], data_prefix=dict(video=messy['root']),
        pipeline=helpers.recipe()['pipeline'], num_classes=4,
        bad_video_log=str(tmp_path / 'bad.jsonl'))

    def epoch(num_workers, index):
        ds.set_sample_seed(7, index)
        loader = DataLoader(ds, batch_size=4, num_workers=num_workers,
                            collate_fn=pseudo_collate)
        return [x for batch in loader for x in batch['inputs']]

    np.random.seed(3)
    outer = np.random.get_state()[1].copy()
    first = epoch(0, 1)
    assert np.array_equal(np.random.get_state()[1], outer)
    again, workers = epoch(0, 1), epoch(2, 1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(torch.equal(a, b) for a, b in zip(first, workers))
    other = epoch(0, 2)
    assert sum(not torch.equal(a, b) for a, b in zip(first, other)) > \
        len(first) // 2
