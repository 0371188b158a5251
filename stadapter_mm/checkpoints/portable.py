"""Checkpoint files that load with ``weights_only=True`` anywhere.

Two conversions write such files (both through :func:`save_portable`):

- ``tools/convert/export_full_checkpoint.py``: a trainable-only checkpoint
  plus the frozen CLIP weights, i.e. a self-contained model file for people
  who do not have the CLIP file (plain data only, so even a process without
  ``stadapter_mm`` loads it with ``torch.load(..., weights_only=True)``);
- ``tools/convert/trust_checkpoint.py``: the explicit one-file opt-in for a
  *trusted* legacy checkpoint that needs more than the weights-only
  allow-list (it is unpickled once with ``weights_only=False``, then written
  back as data).
"""
from __future__ import annotations

import io
import numbers
import os.path as osp
from typing import Any, Dict

import numpy as np
import torch

from .io import atomic_write_bytes, error_summary

#: Checkpoint parts that only matter for resuming a run.
RUN_STATE_KEYS = ('optimizer', 'param_schedulers', 'message_hub')


def plain_data(obj: Any) -> Any:
    """``obj`` with every value turned into plain Python data or tensors.

    NumPy scalars become Python numbers, NumPy arrays tensors, tuples and
    lists stay, mapping keys and unknown objects become strings.

    Args:
        obj: Checkpoint metadata (any nesting of dicts, lists, values).

    Returns:
        The same structure, loadable with ``torch.load(weights_only=True)``
        without any allow-list.
    """
    if obj is None or isinstance(obj, (bool, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, numbers.Number):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {
            k if isinstance(k, (str, int)) else str(k): plain_data(v)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain_data(v) for v in obj)
    return str(obj)


def save_portable(checkpoint: Dict[str, Any], path: str) -> int:
    """Write ``checkpoint`` atomically after checking it loads weights-only.

    Args:
        checkpoint (dict): ``state_dict``, ``meta`` and optional run state.
        path (str): Output file.

    Returns:
        int: Size of the written file in bytes.

    Raises:
        ValueError: If the checkpoint would not load with
            ``weights_only=True`` (the message names the offending type).
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = buffer.getvalue()
    try:
        torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types
        raise ValueError(
            f'refusing to write {path}: it would not load with '
            f'weights_only=True ({error_summary(err)})') from err
    atomic_write_bytes(data, path)
    return osp.getsize(path)


def load_trusted(path: str) -> Dict[str, Any]:
    """Unpickle one checkpoint file *with* its code (``weights_only=False``).

    Only for a file whose origin you trust: unpickling can run any code the
    file carries. This is the single place the package does it, and only
    ``tools/convert/trust_checkpoint.py`` calls it.

    Args:
        path (str): The trusted checkpoint.

    Returns:
        dict: The checkpoint (a bare state dict is wrapped as
        ``{'state_dict': ...}``).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        checkpoint = dict(state_dict=checkpoint)
    return checkpoint
