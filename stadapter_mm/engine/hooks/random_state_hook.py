"""Hook that makes a resumed run replay the random numbers it replaces."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import EpochBasedTrainLoop

from ...datasets.robust_video_dataset import iter_datasets
from ...utils.random_state import get_rng_state, set_rng_state

if TYPE_CHECKING:
    from mmengine.runner import Runner

#: Checkpoint key of the saved random state.
CKPT_KEY = 'random_state'


def _loader_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, 1]).generate_state(
        2, np.uint64)[0] >> 1)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Resume a run exactly: random state in the checkpoint, seeded samples.

    mmengine saves no random state, so a resumed run draws other dropout
    masks and augmentations than the run it replaces. This hook:

    1. Seeds data augmentation per sample: before each training epoch it
       calls ``set_sample_seed(seed, epoch)`` on every dataset of the train
       loader that has it (:class:`~stadapter_mm.datasets.RobustVideoDataset`
       does), so sample ``i`` of epoch ``e`` is transformed with generators
       seeded from ``(seed, e, i)``, whatever the worker or the number of
       workers. Validation and test datasets get epoch 0: every validation
       sees the same views.
    2. Gives each data loader its own ``generator`` (reseeded from
       ``(seed, epoch)``), so starting a data-loader iterator no longer draws
       from torch's global generator: persistent or not, with or without
       workers, the model's random numbers are the same.
    3. Saves, in every checkpoint (key ``'random_state'``), the state of
       Python's ``random``, ``np.random``, torch's CPU generator and the
       current CUDA device's generator of every rank, as it was when the
       training step before the checkpoint ended, and restores it on
       ``resume`` just before the next epoch (next iteration for an
       iteration-based loop) starts. A checkpoint given by ``load_from`` is
       not a resume: its state is ignored.
    4. Runs every validation with the random state saved and restored around
       it, so a validation (a re-run one after a resume included) does not
       change what training draws next.

    Exact for checkpoints that mmengine resumes at the same point it saved
    them: epoch ends for ``EpochBasedTrainLoop``, iterations for
    ``IterBasedTrainLoop``. Resuming on another number of ranks restores no
    generator (a warning says so); seeded samples still replay. Per-sample
    seeding needs the epoch, which only an epoch-based loop announces: with
    ``IterBasedTrainLoop`` samples draw from the global generators.

    Example:
        >>> custom_hooks = [dict(type='RandomStateHook')]

    Args:
        seed_samples (bool): Item 1. Defaults to True.
        isolate_validation (bool): Item 4. Defaults to True.
    """

    # After other hooks at ``before_train_epoch``; before CheckpointHook
    # (VERY_LOW) at ``after_train_epoch``/``after_train_iter``.
    priority = 'LOW'

    def __init__(self, seed_samples: bool = True,
                 isolate_validation: bool = True) -> None:
        self.seed_samples = bool(seed_samples)
        self.isolate_validation = bool(isolate_validation)
        self._snapshot: Optional[Dict[str, Any]] = None
        self._pending: Optional[Dict[str, Any]] = None
        self._outer: Optional[Dict[str, Any]] = None

    # ------------------------------------------------------------- datasets
    @staticmethod
    def _key_datasets(loader: Any, seed: int, epoch: int) -> None:
        for dataset in iter_datasets(loader.dataset):
            if callable(getattr(dataset, 'set_sample_seed', None)):
                dataset.set_sample_seed(seed, epoch)

    def _prepare_loader(self, loader: Any, seed: int, epoch: int,
                        key_samples: bool = True) -> None:
        """Own generator for ``loader``; seeded samples if enabled."""
        generator = torch.Generator()
        generator.manual_seed(_loader_seed(seed, epoch))
        loader.generator = generator  # a public DataLoader attribute
        if self.seed_samples and key_samples:
            self._key_datasets(loader, seed, epoch)

    @staticmethod
    def _epoch_based(runner: 'Runner') -> bool:
        return isinstance(runner.train_loop, EpochBasedTrainLoop)

    def before_train(self, runner: 'Runner') -> None:
        """Warn when per-sample seeding cannot follow the epochs."""
        if self.seed_samples and not self._epoch_based(runner):
            runner.logger.warning(
                'RandomStateHook: per-sample seeding needs an epoch-based '
                'loop; samples of this run draw from the global generators.')

    def before_train_epoch(self, runner: 'Runner') -> None:
        """Restore a resumed state, then key this epoch's samples."""
        epoch_based = self._epoch_based(runner)
        if epoch_based:
            self._restore_pending(runner)
        self._prepare_loader(runner.train_dataloader, int(runner.seed),
                             runner.epoch, key_samples=epoch_based)

    def before_train_iter(self, runner: 'Runner', batch_idx: int,
                          data_batch: Any = None) -> None:
        """Iteration-based loops restore a resumed state here."""
        if not self._epoch_based(runner):
            self._restore_pending(runner)

    def before_val(self, runner: 'Runner') -> None:
        """Save the training random state; fixed keys for validation."""
        if self.isolate_validation:
            self._outer = get_rng_state()
        self._prepare_loader(runner.val_dataloader, int(runner.seed), 0)

    def after_val(self, runner: 'Runner') -> None:
        """Put the training random state back."""
        if self._outer is not None:
            set_rng_state(self._outer)
            self._outer = None

    def before_test(self, runner: 'Runner') -> None:
        """Fixed keys for testing."""
        self._prepare_loader(runner.test_dataloader, int(runner.seed), 0)

    # ------------------------------------------------------------ snapshots
    def _snapshot_now(self, epoch: int, it: int, gather: bool) -> None:
        """Record the state (of every rank if ``gather``) at ``it``.

        ``epoch``/``it`` are what mmengine writes in the checkpoint's
        ``meta`` and sets the loop to on resume.
        """
        state = get_rng_state()
        world = get_world_size()
        ranks: List[Any] = [state]
        if world > 1:
            ranks = all_gather_object(state) if gather else [None] * world
        self._snapshot = dict(epoch=epoch, iter=it, world_size=world,
                              ranks=ranks)

    def _checkpoint_hooks(self, runner: 'Runner') -> Iterator[CheckpointHook]:
        return (h for h in runner.hooks if isinstance(h, CheckpointHook))

    def after_train_iter(self,
                         runner: 'Runner',
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Capture the state a checkpoint of this iteration will carry."""
        if self._epoch_based(runner):
            return
        gather = get_world_size() > 1 and any(
            self.every_n_train_iters(runner, h.interval, h.save_begin)
            or (h.save_last and self.is_last_train_iter(runner))
            for h in self._checkpoint_hooks(runner))
        self._snapshot_now(runner.epoch, runner.iter + 1, gather)

    def after_train_epoch(self, runner: 'Runner') -> None:
        """Capture the state a checkpoint of this epoch will carry."""
        self._snapshot_now(runner.epoch + 1, runner.iter, gather=True)

    # ---------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner: 'Runner',
                               checkpoint: dict) -> None:
        """Put the captured random state into ``checkpoint``."""
        if self._snapshot is not None:
            checkpoint[CKPT_KEY] = self._snapshot

    def after_load_checkpoint(self, runner: 'Runner',
                              checkpoint: dict) -> None:
        """Keep the checkpoint's random state for the resumed run."""
        state = checkpoint.get(CKPT_KEY)
        self._pending = state if isinstance(state, dict) else None
        self._snapshot = self._pending  # what a re-save must carry again

    def _restore_pending(self, runner: 'Runner') -> None:
        state, self._pending = self._pending, None
        if state is None or state.get('iter') != runner.iter:
            return  # nothing saved, or load_from (not a resume)
        ranks = state.get('ranks') or []
        if state.get('world_size') != get_world_size() or \
                len(ranks) != get_world_size() or ranks[get_rank()] is None:
            runner.logger.warning(
                f'RandomStateHook: the checkpoint holds the random state of '
                f'{state.get("world_size")} ranks and this run has '
                f'{get_world_size()}: generators not restored (samples stay '
                'seeded, dropout masks will differ).')
            return
        set_rng_state(ranks[get_rank()])
        runner.logger.info(
            f'RandomStateHook: random state of iteration {runner.iter} '
            'restored.')
