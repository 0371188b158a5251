"""Interrupted runs: SIGKILL a real training process, resume, compare.

The training runs are subprocesses of ``tests/robust_helpers.py`` (mmengine
Runner, tiny ST-Adapter recognizer, generated videos). They are killed with
SIGKILL at chosen moments (during a checkpoint write, in the middle of an
epoch, during a validation), resumed with ``resume=True``, and must end
exactly where an uninterrupted run ends: same weights, schedule, metrics and
best checkpoint.
"""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import robust_helpers as helpers
from stadapter_mm.checkpoints.io import (atomic_write_bytes,
                                         stale_temp_files)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(ROOT, 'tests', 'robust_helpers.py')
EPOCHS = 4


def _start(work_dir, data, *flags, epochs=EPOCHS):
    log = open(osp.join(osp.dirname(work_dir), osp.basename(work_dir) +
                        '.out'), 'ab')
    return subprocess.Popen(
        [sys.executable, SCRIPT, '--work-dir', work_dir, '--data', data,
         '--max-epochs', str(epochs), '--recipe', *flags],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _wait_for(proc, condition, timeout=180.0):
    """Poll until ``condition()`` is truthy; fail if the process ends."""
    end = time.time() + timeout
    while time.time() < end:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f'training process ended (rc={proc.returncode}) '
                        'before the kill point')
        time.sleep(0.02)
    proc.kill()
    pytest.fail('kill point not reached in time')


def _sigkill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _progress(work_dir, name='progress'):
    try:
        with open(osp.join(work_dir, name)) as f:
            epoch, it = f.read().split()
        return int(epoch), int(it)
    except (OSError, ValueError):
        return None


def _val_top1(work_dir):
    """``{epoch: acc/top1}`` from every run (log folder) in ``work_dir``."""
    out = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'acc/top1' in rec:
                    out[rec['step']] = rec['acc/top1']
    return out


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('videos'))
    helpers.make_dataset(root)
    return root


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data_root):
    """An uninterrupted run, in this process, with the K400 recipe's
    random augmentations and dropout."""
    work_dir = str(tmp_path_factory.mktemp('reference'))
    cfg = helpers.tiny_cfg(work_dir, data_root, EPOCHS,
                           experiment_name='reference_uninterrupted',
                           with_recipe=True)
    assert cfg['model']['cls_head']['dropout_ratio'] == 0.5
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    return dict(work_dir=work_dir, iter=runner.iter,
                lr=runner.optim_wrapper.get_lr()['lr'][0],
                best=osp.basename(runner.message_hub.get_info('best_ckpt')),
                best_score=runner.message_hub.get_info('best_score'),
                top1=_val_top1(work_dir))


def test_atomic_write_survives_sigkill(tmp_path):
    """A writer killed mid-write leaves the old file whole, plus a temp."""
    target = tmp_path / 'ckpt.pth'
    target.write_bytes(b'old complete checkpoint')
    code = (
        'import importlib.util, sys, time\n'
        f'spec = importlib.util.spec_from_file_location("ck", '
        f'{osp.join(ROOT, "stadapter_mm", "checkpoints", "io.py")!r})\n'
        'ck = importlib.util.module_from_spec(spec)\n'
        'spec.loader.exec_module(ck)\n'
        'def pieces():\n'
        '    yield b"new " * 1000\n'
        '    time.sleep(60)\n'
        '    yield b"end"\n'
        f'ck.atomic_write_bytes(pieces(), {str(target)!r})\n')
    proc = subprocess.Popen([sys.executable, '-c', code])
    temps = _wait_for(
        proc, lambda: glob.glob(str(tmp_path / '.tmp-ckpt.pth.*')), 60)
    time.sleep(0.2)
    _sigkill(proc)
    assert target.read_bytes() == b'old complete checkpoint'
    assert len(temps) == 1 and osp.getsize(temps[0]) < 4003
    assert stale_temp_files(str(tmp_path)) == temps
    atomic_write_bytes(b'new', str(target))
    assert target.read_bytes() == b'new'


def test_sigkill_at_any_moment_then_resume_matches_uninterrupted_run(
        tmp_path, data_root, reference):
    work_dir = str(tmp_path / 'run')

    # 1. Killed while epoch_2.pth is being written (slowed-down save).
    proc = _start(work_dir, data_root, '--slow-save')
    temps = _wait_for(proc, lambda: glob.glob(
        osp.join(work_dir, '.tmp-epoch_2.pth.*')))
    time.sleep(0.3)
    _sigkill(proc)
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    assert all(osp.exists(t) for t in temps)  # the torn write, aside
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    assert osp.basename(last) == 'epoch_1.pth'
    ckpt = _state(last)  # complete, and loads with weights_only=True
    assert ckpt['meta']['epoch'] == 1

    # 2. Resumed (with 2 persistent loader workers, where the reference
    #    loads in the main process), then killed again in epoch 3.
    proc = _start(work_dir, data_root, '--resume', '--num-workers', '2',
                  '--persistent-workers')
    _wait_for(proc, lambda: (_progress(work_dir) or (0, 0)) >= (2, 7))
    _sigkill(proc)
    assert not glob.glob(osp.join(work_dir, '.tmp-epoch_2.pth.*'))
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))

    # 3. Resumed, then killed during the validation of the last epoch,
    #    after epoch_4.pth was written.
    proc = _start(work_dir, data_root, '--resume', '--slow-val')
    _wait_for(proc, lambda: _progress(work_dir, 'val_progress') == (EPOCHS,
                                                                    1))
    _sigkill(proc)
    assert osp.isfile(osp.join(work_dir, f'epoch_{EPOCHS}.pth'))

    # 4. Resumed again: the lost validation runs, then the run ends.
    proc = _start(work_dir, data_root, '--resume')
    assert proc.wait(300) == 0, open(work_dir + '.out').read()[-3000:]
    with open(work_dir + '.out') as f:
        assert f'Resumed at epoch {EPOCHS}, whose validation did not ' \
            'complete' in f.read()
    with open(osp.join(work_dir, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['epoch'] == EPOCHS
    assert summary['iter'] == reference['iter']
    assert summary['lr'] == pytest.approx(reference['lr'], rel=1e-9)
    assert osp.basename(summary['best']) == reference['best']
    assert summary['best_score'] == reference['best_score']

    # Same weights and optimizer state as the uninterrupted run, final and
    # best: bit for bit, although every epoch drew random clips, scales,
    # crops, flips and dropout masks.
    for name in (f'epoch_{EPOCHS}.pth', reference['best']):
        ours = _state(osp.join(work_dir, name))
        ref = _state(osp.join(reference['work_dir'], name))
        assert ours['state_dict'].keys() == ref['state_dict'].keys()
        for key in ref['state_dict']:
            assert torch.equal(ours['state_dict'][key],
                               ref['state_dict'][key]), (name, key)
        if 'optimizer' not in ref:
            continue  # best checkpoints carry no optimizer
        moments = ref['optimizer']['state']
        assert moments and ours['optimizer']['state'].keys() == moments.keys()
        for pid, entry in moments.items():
            for key, value in entry.items():
                assert torch.equal(ours['optimizer']['state'][pid][key],
                                   value), (name, pid, key)

    # Metrics continue: every epoch validated, as in the uninterrupted run.
    top1 = _val_top1(work_dir)
    assert set(top1) == set(range(1, EPOCHS + 1))
    for epoch in top1:
        assert top1[epoch] == reference['top1'][epoch], epoch

    # Only the files an uninterrupted run leaves (max_keep_ckpts=1).
    names = sorted(n for n in os.listdir(work_dir) if n.endswith('.pth'))
    assert names == sorted([f'epoch_{EPOCHS}.pth', reference['best']])
    assert not glob.glob(osp.join(work_dir, '.tmp-*'))


def test_plain_checkpoint_hook_loses_the_run(tmp_path, data_root):
    """Baseline: mmengine's CheckpointHook killed the same way.

    With ``max_keep_ckpts=1`` it deletes epoch_1.pth before writing
    epoch_2.pth in place, so a kill during the write leaves a torn file and
    a ``last_checkpoint`` naming a deleted one: nothing to resume from.
    """
    work_dir = str(tmp_path / 'plain')
    proc = _start(work_dir, data_root, '--slow-save', '--plain')
    _wait_for(proc, lambda: osp.exists(
        osp.join(work_dir, 'epoch_2.pth.saving')))
    time.sleep(0.4)
    _sigkill(proc)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    assert osp.basename(last) == 'epoch_1.pth' and not osp.exists(last)
    with pytest.raises(Exception):
        _state(osp.join(work_dir, 'epoch_2.pth'))


def test_kill_during_first_checkpoint_write_leaves_no_temp_file(
        tmp_path, data_root):
    """Killed while epoch_1.pth is written: nothing to resume from, so the
    resumed run starts from scratch, and removes the torn temporary file."""
    work_dir = str(tmp_path / 'first')
    proc = _start(work_dir, data_root, '--slow-save', epochs=1)
    temps = _wait_for(proc, lambda: glob.glob(
        osp.join(work_dir, '.tmp-epoch_1.pth.*')))
    time.sleep(0.3)
    _sigkill(proc)
    assert not osp.exists(osp.join(work_dir, 'last_checkpoint'))
    assert all(osp.exists(t) for t in temps)

    proc = _start(work_dir, data_root, '--resume', epochs=1)
    assert proc.wait(300) == 0, open(work_dir + '.out').read()[-3000:]
    with open(work_dir + '.out') as f:
        log = f.read()
    assert 'Removed unfinished checkpoint writes of an interrupted run: ' \
        + temps[0] in log
    assert not glob.glob(osp.join(work_dir, '.tmp-*'))
    assert _state(osp.join(work_dir, 'epoch_1.pth'))['meta']['epoch'] == 1
