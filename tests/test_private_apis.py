"""Private mmengine code the package relies on, pinned to mmengine 0.10.7.

Each use of a private mmengine name in ``stadapter_mm`` has a comment saying
why no public point serves; these tests fail when an mmengine upgrade changes
what the comment relies on. Then read the new mmengine source, adapt the
user named in the failing test, and update the pin.
"""
import hashlib
import inspect

import pytest
from mmengine.hooks import CheckpointHook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner

from stadapter_mm.engine.hooks import bad_video_report_hook


def _digest(obj) -> str:
    """sha256 (first 16 hex digits) of the source of ``obj``."""
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


#: CheckpointHook methods AtomicCheckpointHook overrides or relies on.
PINNED_CHECKPOINT_HOOK = {
    '_save_checkpoint': 'ec62a0a4f987522f',
    '_save_checkpoint_with_step': 'cdbc1b54c7c88d95',
    '_save_best_checkpoint': '8e1e477297ea08d7',
}


def test_overridden_private_mmengine_methods_are_unchanged():
    """AtomicCheckpointHook overrides two private CheckpointHook methods
    (mmengine has no public point between writing a checkpoint and removing
    outdated ones). If this fails, mmengine changed them: compare the new
    source with AtomicCheckpointHook's copies, adapt, then update the pins.
    """
    found = {
        name: _digest(getattr(CheckpointHook, name))
        for name in PINNED_CHECKPOINT_HOOK
    }
    assert found == PINNED_CHECKPOINT_HOOK


#: Runner properties whose private attributes BadVideoReportHook and
#: AtomicCheckpointHook.after_val_epoch read (a built loop, or the config of
#: one the property would build on first access).
PINNED_RUNNER_LOOPS = {
    'train_loop': 'ae36c8bf98e2999f',
    'val_loop': '007ef0b94accb8eb',
    'test_loop': 'f61e594f9b3e5e09',
}


def test_runner_loop_attributes_are_unchanged():
    """``runner._<split>_loop`` holds a built loop or its config; the public
    property builds it on first access, a side effect the hooks avoid."""
    found = {
        name: _digest(getattr(Runner, name).fget)
        for name in PINNED_RUNNER_LOOPS
    }
    assert found == PINNED_RUNNER_LOOPS
    for split, attr in bad_video_report_hook._SPLITS:
        source = inspect.getsource(getattr(Runner, f'{split}_loop').fget)
        assert f'isinstance(self.{attr}, BaseLoop)' in source


@pytest.mark.parametrize('loop, digest', [
    (EpochBasedTrainLoop, '51b1db1aa2338c08'),
    (IterBasedTrainLoop, 'c08db29129b36e10'),
])
def test_loop_val_interval_refresh_is_unchanged(loop, digest):
    """AtomicCheckpointHook._position refreshes a resumed loop's
    ``val_interval`` (dynamic intervals) before the loop's ``run`` does."""
    assert _digest(loop._decide_current_val_interval) == digest
