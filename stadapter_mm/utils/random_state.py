"""Process random state: capture, restore, and per-sample seeding.

Three global generators drive the randomness of a training run: Python's
``random``, NumPy's legacy ``np.random`` (MMAction2's transforms draw from
both) and torch's default CPU generator (dropout, ``torch.rand``), plus one
CUDA generator per device. :func:`get_rng_state` captures them as plain data
(ints, lists, ``uint8`` tensors) that ``torch.load(weights_only=True)`` reads
without an allow-list; :func:`set_rng_state` puts them back.

:func:`seeded_rng` runs a block with the CPU generators seeded from a key
such as ``(seed, epoch, sample index)`` and restores the outer state after,
so what the block draws depends on the key only: not on the data-loader
worker that runs it, on how many samples that worker loaded before, or on
whether the run was resumed. It never touches CUDA (data-loader workers must
not initialise it).

:class:`SharedSampleKey` holds ``(seed, epoch)`` in shared memory, so that the
main process can change the epoch while persistent data-loader workers keep
running.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch


def _cuda_ready() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def get_rng_state(with_cuda: bool = True) -> Dict[str, Any]:
    """The state of the global generators of this process, as plain data.

    Args:
        with_cuda (bool): Include the current CUDA device's generator if CUDA
            is initialised. Defaults to True.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and ``cuda`` (or None) states.
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(
        python=(version, list(internal), gauss),
        numpy=(kind, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state()
        if with_cuda and _cuda_ready() else None)


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured.

    Args:
        state (dict): A :func:`get_rng_state` result (tensors may be on any
            device, e.g. after ``torch.load(map_location='cuda')``).
    """
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos,
                         has_gauss, cached))
    torch.set_rng_state(state['torch'].cpu())
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Run a block without changing the global generators' state."""
    outer = get_rng_state(with_cuda=False)
    cuda = torch.cuda.get_rng_state() if _cuda_ready() else None
    try:
        yield
    finally:
        set_rng_state(dict(outer, cuda=cuda))


@contextmanager
def seeded_rng(*key: int) -> Iterator[None]:
    """Run a block with the CPU generators seeded from ``key``.

    Python's ``random``, ``np.random`` and torch's CPU generator are seeded
    from ``numpy.random.SeedSequence(key)``; their outer state is restored
    afterwards, whatever the block raised. CUDA is left alone.

    Args:
        *key (int): Non-negative integers, e.g. seed, epoch, sample index.
    """
    words = np.random.SeedSequence([int(k) for k in key]).generate_state(4)
    outer = get_rng_state(with_cuda=False)
    try:
        random.seed(int(words[0]))
        np.random.seed(words[:2])
        torch.default_generator.manual_seed(
            int(words[2]) << 32 | int(words[3]))
        yield
    finally:
        set_rng_state(outer)


class SharedSampleKey:
    """``(seed, epoch)`` in shared memory, read by data-loader workers.

    Unset (the default) it yields no key: samples then draw from the global
    generators as usual.
    """

    def __init__(self) -> None:
        self._key = torch.full((2, ), -1, dtype=torch.int64).share_memory_()

    def set(self, seed: int, epoch: int) -> None:
        """Key the samples of the coming epoch.

        Args:
            seed (int): The run's seed (``>= 0``).
            epoch (int): The epoch about to start (``>= 0``).
        """
        if seed < 0 or epoch < 0:
            raise ValueError(f'seed and epoch must be >= 0, got {seed}, '
                             f'{epoch}')
        self._key[0] = int(seed)
        self._key[1] = int(epoch)

    def get(self) -> Optional[Tuple[int, int]]:
        """``(seed, epoch)``, or None when unset."""
        seed, epoch = (int(v) for v in self._key.tolist())
        return None if seed < 0 else (seed, epoch)
