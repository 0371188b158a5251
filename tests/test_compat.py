"""The upstream-defect fixes of stadapter_mm.compat."""
import importlib.util
import os
import pickle
import sys
import types

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import Runner

from stadapter_mm import compat
from stadapter_mm.utils.dist import setup_cpu_distributed
from runner_utils import recognizer_cfg, runner_cfg


def test_mmaction_models_imports_and_drn_placeholder_is_clear():
    import mmaction.models  # noqa: F401
    from mmaction.models.localizers import DRN
    with pytest.raises(ImportError, match='2714'):
        DRN()
    # Applying again is a no-op.
    assert compat.fix_missing_drn() is False


def test_drn_fix_is_inert_when_upstream_ships_it(tmp_path, monkeypatch):
    pkg = tmp_path / 'mmaction'
    (pkg / 'models' / 'localizers' / 'drn').mkdir(parents=True)
    spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: spec)
    monkeypatch.delitem(sys.modules, compat._DRN_MODULE)
    assert compat.fix_missing_drn() is False
    assert compat._DRN_MODULE not in sys.modules


def test_transformers_switch(monkeypatch):
    import mmaction.utils.dependency as dependency
    tf = compat._installed_version('transformers')
    if tf and compat._version_tuple(tf) >= (4, 57, 0):
        assert dependency.WITH_MULTIMODAL is False
    assert compat._version_tuple('4.57.0.dev0') == (4, 57, 0)
    assert compat._version_tuple('5.23.0') > (4, 57, 0)
    # Too late once mmaction.models is imported: nothing is touched.
    assert compat.fix_transformers_multimodal() is False
    # Old transformers: inert.
    monkeypatch.setattr(compat, '_installed_version',
                        lambda d: '4.40.0' if d == 'transformers' else '1.2.0')
    monkeypatch.delitem(sys.modules, 'mmaction.models')
    assert compat.fix_transformers_multimodal() is False


def _params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_with_weights_only_matches_uninterrupted_run(tmp_path):
    """Save, then resume under torch's default weights_only=True."""
    model = recognizer_cfg(dropout=0.0)  # RNG state is not checkpointed
    straight = Runner.from_cfg(
        Config(runner_cfg(tmp_path / 'a', model, max_epochs=2)))
    straight.train()
    first = Runner.from_cfg(
        Config(runner_cfg(tmp_path / 'b', model, max_epochs=1)))
    first.train()
    # The checkpoint is loadable with weights_only=True (torch's default).
    ckpt = torch.load(tmp_path / 'b' / 'epoch_1.pth', weights_only=True)
    assert 'message_hub' in ckpt and 'optimizer' in ckpt
    resumed = Runner.from_cfg(
        Config(runner_cfg(tmp_path / 'b', model, max_epochs=2, resume=True)))
    resumed.train()
    assert resumed.epoch == 2
    a, b = _params(straight.model), _params(resumed.model)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    lr_a = straight.optim_wrapper.get_lr()['lr']
    assert resumed.optim_wrapper.get_lr()['lr'] == pytest.approx(lr_a)


def test_weights_only_still_refuses_code(tmp_path):
    class Payload:

        def __reduce__(self):
            return (os.system, ('true', ))

    path = tmp_path / 'bad.pth'
    with open(path, 'wb') as f:
        torch.save({'x': Payload()}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_weights_only_loader_is_mmengines_local_loader():
    """``import stadapter_mm`` made it mmengine's loader for local paths.

    Fails if mmengine stops dispatching local paths through the
    ``CheckpointLoader`` scheme table (then the fix would silently not act).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from stadapter_mm.checkpoints.io import load_local_weights_only
    assert CheckpointLoader._get_checkpoint_loader('/a/local/file.pth') is \
        load_local_weights_only
    assert compat.fix_weights_only_loader() is True  # again: harmless
    assert CheckpointLoader._get_checkpoint_loader('file.pth') is \
        load_local_weights_only


def test_setup_cpu_distributed(monkeypatch):
    """Item 5 (a set-up the tools call, not an import-time patch)."""
    cfg = Config(dict(model=dict()))
    assert setup_cpu_distributed(cfg, 'none') is False
    assert 'model_wrapper_cfg' not in cfg
    if torch.cuda.is_available():
        pytest.skip('CPU-only behaviour')
    with pytest.raises(RuntimeError, match='pytorch'):
        setup_cpu_distributed(cfg, 'slurm')
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT='29533',
                           RANK='0', WORLD_SIZE='1',
                           LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    try:
        assert setup_cpu_distributed(cfg, 'pytorch') is True
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_sdpa_flops_count_both_attention_matmuls():
    """Fix 9's formula equals the multiply-adds of the two plain matmuls."""
    from torch.utils.flop_counter import FlopCounterMode

    from stadapter_mm.utils.flops import sdpa_flops
    q, k, v = torch.ones(2, 3, 5, 8), torch.ones(2, 3, 7, 8), \
        torch.ones(2, 3, 7, 4)
    with FlopCounterMode(display=False) as counter:
        (q @ k.transpose(-1, -2)).softmax(-1) @ v
    assert sdpa_flops(q.shape, k.shape, v.shape) == \
        counter.get_total_flops() // 2 == 2 * 3 * 5 * 7 * (8 + 4)


def test_json_log_keeps_numpy_integers(monkeypatch):
    """Fix 6: mmengine's LoggerHook drops np.int64 from the JSON record."""
    import numpy as np
    from mmengine.hooks import LoggerHook

    tags = {'acc/top1': np.float64(0.5), 'acc/num_bad_videos': np.int64(2),
            'nested': [np.int32(3)]}
    patched = LoggerHook._process_tags
    assert getattr(patched, '_keeps_numpy_scalars', False)
    out = patched(dict(tags))
    assert out['acc/num_bad_videos'] == 2
    assert type(out['acc/num_bad_videos']) is int
    assert out['acc/top1'] == 0.5
    assert out['nested'] == [3]
    # The defect is real: mmengine's own version (unwrapped) turns the
    # integers into None.
    original = patched.__closure__[0].cell_contents
    assert original(dict(tags))['acc/num_bad_videos'] is None
    # Applying again keeps the single wrapper.
    assert compat.fix_json_log_numpy_integers() is True
    assert LoggerHook._process_tags is patched
