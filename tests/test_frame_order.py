"""The frame-order job end to end: a 1-block ViT, 1 epoch, 32 videos.

``sweeps`` is ``projects/frame_order/sweeps.py`` (on pytest's pythonpath).
"""
import json

import matplotlib.image
import pytest
import torch
from sweeps import (SWEEP_CLASSES, SweepSpec, frame_multiset_key,
                    permute_to_class, render_base_video)

from conftest import load_tool


def test_classes_share_their_frames():
    """Every class is a reordering of the same base frames."""
    rng = __import__('numpy').random.default_rng(0)
    spec = SweepSpec()
    for _ in range(5):
        base = render_base_video(rng, spec)
        videos = [permute_to_class(base, c) for c in range(4)]
        keys = [frame_multiset_key(v) for v in videos]
        assert all(k == keys[0] for k in keys)
        # ... but the order differs: no two classes give the same video.
        for a in range(4):
            for b in range(a + 1, 4):
                assert not (videos[a] == videos[b]).all()
    # Class 1 (red then blue, leftward) is class 0 played backwards with
    # its halves swapped: red sweeps first in both.
    half = spec.num_frames // 2
    red = (videos[1][:half, ..., 0] > 150).any()
    assert red and not (videos[1][half:, ..., 0] > 150).any()


def test_bad_spec():
    with pytest.raises(ValueError, match='even'):
        SweepSpec(num_frames=7).check()
    with pytest.raises(ValueError, match='max_angle'):
        SweepSpec(max_angle=90).check()
    with pytest.raises(ValueError, match='label'):
        permute_to_class(render_base_video(
            __import__('numpy').random.default_rng(0), SweepSpec()), 4)


def test_run_writes_results_and_reports_failure(tmp_path, capsys):
    run = load_tool('projects/frame_order/run.py')
    work_dir = tmp_path / 'work'
    status = run.main([
        '--work-dir', str(work_dir), '--data-root', str(tmp_path / 'data'),
        '--train-per-class', '4', '--eval-per-class', '2', '--views', '2x3',
        '--cfg-options', 'model.backbone.arch.layers=1',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=8'
    ])
    output = capsys.readouterr().out
    # One epoch on 16 videos cannot reach 90%: the job says FAIL, exits 1.
    assert status == 1
    assert 'FAIL' in output and 'ST-Adapter' in output
    summary = json.loads((work_dir / 'summary.json').read_text())
    assert summary['passed'] is False
    assert summary['chance'] == 1 / len(SWEEP_CLASSES)
    assert summary['views'] == '2x3'
    adapter, probe = summary['models']['ST-Adapter'], \
        summary['models']['linear probe']
    for model in (adapter, probe):
        assert 0 <= model['test_top1'] <= 1
        assert model['val_top1'] is not None
    # The probe trains only its head: 96 features x 4 classes + 4 biases.
    assert probe['trainable'] == 96 * 4 + 4
    assert adapter['trainable'] > 100 * probe['trainable']
    assert adapter['total'] - adapter['trainable'] == \
        probe['total'] - probe['trainable']
    image = matplotlib.image.imread(str(work_dir / 'learning_curves.png'))
    assert image.shape[0] > 300 and image.shape[1] > 800
    # Both models were built on the same frozen random ViT file.
    weights = torch.load(tmp_path / 'data' / 'random_vitw96l4p8.pth',
                         weights_only=True)
    assert 'transformer.resblocks.0.attn.in_proj_weight' in weights
    assert 'transformer.resblocks.1.attn.in_proj_weight' not in weights
