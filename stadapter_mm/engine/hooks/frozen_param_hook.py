"""Report, check and slim the checkpoints of a parameter-efficient model."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from torch import nn

from ...checkpoints.adapter_state import (clip_fingerprint, drop_frozen,
                                          is_pretrained_init, unwrap_model)

if TYPE_CHECKING:
    from mmengine.runner import Runner


@HOOKS.register_module()
class FrozenParamHook(Hook):
    """Log and enforce which parameters train; optionally save only those.

    Parameters are frozen when the model is built (the backbone does it at
    construction, before DDP wrapping and optimizer building). This hook runs
    before training and:

    - logs trainable / total parameters and the trainable share;
    - fails when nothing trains, or when a parameter the backbone declares
      frozen has ``requires_grad=True`` (someone unfroze it by hand);
    - with ``save_trainable_only=True``, drops frozen backbone weights from
      every checkpoint (adapters and head stay, usually < 10% of the file)
      and records the CLIP fingerprint; the backbone refills them from its
      CLIP ``init_cfg`` on every load path.

    Example:
        >>> custom_hooks = [
        >>>     dict(type='FrozenParamHook', save_trainable_only=True,
        >>>          max_trainable_ratio=0.2)
        >>> ]

    Args:
        save_trainable_only (bool): Slim checkpoints. Needs a backbone with a
            pretrained ``init_cfg`` (otherwise the frozen weights could not be
            restored); without one the hook warns and saves full
            checkpoints. Defaults to False.
        max_trainable_ratio (float, optional): Fail if more than this share
            of parameters trains (guards against accidental full
            fine-tuning). Defaults to None (no limit).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 save_trainable_only: bool = False,
                 max_trainable_ratio: Optional[float] = None) -> None:
        if not isinstance(save_trainable_only, bool):
            raise TypeError('save_trainable_only must be a bool')
        if max_trainable_ratio is not None and not \
                0 < max_trainable_ratio <= 1:
            raise ValueError(
                f'max_trainable_ratio must be in (0, 1], got '
                f'{max_trainable_ratio}')
        self.save_trainable_only = save_trainable_only
        self.max_trainable_ratio = max_trainable_ratio

    @staticmethod
    def _backbone(model: nn.Module) -> Optional[nn.Module]:
        """The backbone if it declares its frozen weights, else None."""
        backbone = getattr(model, 'backbone', None)
        return backbone if hasattr(backbone, 'frozen_state_keys') else None

    @staticmethod
    def count(model: nn.Module) -> Dict[str, float]:
        """Trainable and total parameter counts of ``model``."""
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
        return dict(trainable=trainable, total=total,
                    ratio=trainable / max(total, 1))

    def before_train(self, runner: 'Runner') -> None:
        """Log the trainable share and check the frozen parameters.

        Args:
            runner (Runner): The runner about to train.

        Raises:
            RuntimeError: If nothing trains, a parameter the backbone
                declares frozen trains, or more than
                ``max_trainable_ratio`` of the parameters train.
        """
        model = unwrap_model(runner.model)
        stats = self.count(model)
        runner.logger.info(
            f'FrozenParamHook: {stats["trainable"]:,} trainable of '
            f'{stats["total"]:,} parameters ({100 * stats["ratio"]:.2f}%).')
        if stats['trainable'] == 0:
            raise RuntimeError(
                'No parameter trains: check the backbone adapter settings '
                'and the head.')
        backbone = self._backbone(model)
        if backbone is not None:
            named = dict(backbone.named_parameters())
            expected_frozen = backbone.frozen_state_keys()
            wrong = [k for k in expected_frozen if named[k].requires_grad]
            if wrong:
                raise RuntimeError(
                    f'{len(wrong)} backbone parameters that should be frozen '
                    f'train, e.g. {wrong[:5]}; use the backbone\'s '
                    '`unfreeze` option instead of setting requires_grad.')
        if self.max_trainable_ratio is not None and \
                stats['ratio'] > self.max_trainable_ratio:
            raise RuntimeError(
                f'{100 * stats["ratio"]:.1f}% of parameters train, above '
                f'max_trainable_ratio={self.max_trainable_ratio}.')
        if self.save_trainable_only and (
                backbone is None or not is_pretrained_init(backbone.init_cfg)):
            runner.logger.warning(
                'FrozenParamHook: save_trainable_only needs a backbone with '
                'init_cfg=dict(type="Pretrained", ...) to restore the frozen '
                'weights; saving full checkpoints instead.')
            self.save_trainable_only = False

    def before_save_checkpoint(self, runner: 'Runner',
                               checkpoint: dict) -> None:
        """Record the CLIP fingerprint; drop frozen weights if asked.

        Args:
            runner (Runner): The runner saving ``checkpoint``.
            checkpoint (dict): The checkpoint about to be written (changed
                in place: ``meta.clip_fingerprint``, and with
                ``save_trainable_only`` a ``state_dict`` without the frozen
                backbone weights and ``meta.trainable_only=True``).
        """
        backbone = self._backbone(unwrap_model(runner.model))
        if backbone is None:
            return
        meta = checkpoint.setdefault('meta', {})
        meta['clip_fingerprint'] = clip_fingerprint(backbone)
        if not self.save_trainable_only:
            return
        checkpoint['state_dict'] = drop_frozen(checkpoint['state_dict'],
                                               backbone)
        meta['trainable_only'] = True
