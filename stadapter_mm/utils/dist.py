"""Distributed runs on machines without CUDA (compat item 5).

mmengine's ``init_dist`` for ``launcher='pytorch'`` always calls
``torch.cuda.set_device`` and its runner wraps the model with
``device_ids=[LOCAL_RANK]``; both fail on a CPU-only machine. The tools call
:func:`setup_cpu_distributed` before building the runner; nothing happens at
import.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

def setup_cpu_distributed(cfg: Any, launcher: str) -> bool:
    """Prepare a config for distributed training on a CPU-only machine.

    On a machine without CUDA, initialises a gloo process group (mmengine's
    ``init_dist`` would call ``torch.cuda.set_device``) and sets a
    ``model_wrapper_cfg`` whose DDP uses no ``device_ids``. Does nothing when
    CUDA is available or ``launcher`` is ``'none'``.

    Args:
        cfg (mmengine.Config): The config to update in place.
        launcher (str): The job launcher (``'none'``, ``'pytorch'``, ...).

    Returns:
        bool: True if CPU distributed mode was set up.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'CPU-only distributed training supports launcher="pytorch" '
            f'(torchrun), got {launcher!r}.')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    env_cfg = dict(cfg.get('env_cfg') or {})
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = env_cfg
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    return True
