"""Linear warm-up from zero, then half-cosine to zero: the official schedule.

The official ST-Adapter training (``main.py`` of linziyi96/st-adapter,
``lr_func``) multiplies the learning rate at optimizer step ``s`` by
``e / w`` while ``e = s / steps_per_epoch`` is below the warm-up ``w``
epochs, then by ``0.5 + 0.5 * cos(pi * (e - w) / (E - w))``. mmengine's
``LinearLR`` cannot start from zero (its chained form stays at zero) and
reaches the full rate one step early, so this closed-form scheduler
computes the official factor directly, which also makes it exact after a
resume. With gradient accumulation (``optim_wrapper.accumulative_counts``
= k) the factor is held for the k micro-batches of one optimizer step.
"""
from __future__ import annotations

import math
from typing import List

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS


class WarmupCosineParamScheduler(_ParamScheduler):
    """Closed-form linear warm-up from 0 and half-cosine decay to 0.

    Args:
        optimizer (Optimizer or OptimWrapper): Wrapped optimizer.
        param_name (str): Scheduled parameter.
        warmup (float): Warm-up length in epochs (``by_epoch``) or steps.
        begin (int): First step of the schedule. Defaults to 0.
        end (int): Step after the last one; the decay reaches 0 there.
        epoch_length (int): Steps per epoch; set by
            ``convert_to_iter_based``. Defaults to 1.
        last_step (int): Defaults to -1.
        by_epoch (bool): Defaults to True.
        verbose (bool): Defaults to False.
    """

    def __init__(self,
                 optimizer,
                 param_name: str,
                 warmup: float,
                 begin: int = 0,
                 end: int = INF,
                 epoch_length: int = 1,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False) -> None:
        if end == INF:
            raise ValueError('WarmupCosine needs a finite end (the step the '
                             'cosine reaches zero)')
        if not 0 <= warmup * epoch_length < end - begin:
            raise ValueError(f'warmup ({warmup} epochs of {epoch_length} '
                             f'steps) must be in [0, end - begin = '
                             f'{end - begin})')
        self.warmup_epochs = float(warmup)
        self.total_epochs = (end - begin) / epoch_length
        self.epoch_length = epoch_length
        super().__init__(optimizer, param_name=param_name, begin=begin,
                         end=end, last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, warmup: float, begin: int = 0,
                              end: int = INF, by_epoch: bool = True,
                              epoch_length: int = None, **kwargs):
        """Per-step instance of an epoch-based config."""
        if not by_epoch or not epoch_length or epoch_length < 1:
            raise ValueError('convert_to_iter_based needs by_epoch=True and '
                             f'a positive epoch_length, got {epoch_length}')
        return cls(*args, warmup=warmup, begin=int(begin * epoch_length),
                   end=int(end * epoch_length), by_epoch=False,
                   epoch_length=epoch_length, **kwargs)

    def factor(self, step: int) -> float:
        """Multiplier of the base value at ``step`` steps after ``begin``."""
        counts = getattr(self.optimizer, '_accumulative_counts', 1)
        epoch = (step - step % counts) / self.epoch_length
        warmup, total = self.warmup_epochs, self.total_epochs
        if epoch < warmup:
            return epoch / warmup
        return 0.5 + 0.5 * math.cos(
            (epoch - warmup) / (total - warmup) * math.pi)

    def _get_value(self) -> List[float]:
        factor = self.factor(self.last_step)
        return [base * factor for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class WarmupCosineLR(LRSchedulerMixin, WarmupCosineParamScheduler):
    """Learning rate: linear warm-up from 0, then half-cosine to 0.

    Example:
        >>> param_scheduler = [
        >>>     dict(type='WarmupCosineLR', warmup=2, begin=0, end=12,
        >>>          by_epoch=True, convert_to_iter_based=True)]
    """
