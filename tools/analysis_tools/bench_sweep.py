"""GPU sweep for ``benchmark.py``: AMP training throughput and peak memory.

For every (arch, frames) pair, ST-Adapter and full fine-tuning of the same
network (and, for ST-Adapter, gradient checkpointing and fp16 frozen
weights) train with mmengine's ``AmpOptimWrapper``; throughput is clips per
second over interleaved rounds, memory the growth of
``torch.cuda.max_memory_allocated`` while the model is built and trained.
A configuration that runs out of memory is recorded as such.
"""
from __future__ import annotations

import gc
import statistics
from typing import Any, Dict, List, Sequence

import torch

from bench_common import (build_trained, interleaved_times, make_batch,
                          peak_memory, recognizer_cfg)

#: Variants trained for each (arch, frames): name -> recognizer_cfg kwargs.
SWEEP_VARIANTS: Dict[str, dict] = {
    'st_adapter': dict(),
    'full_finetune': dict(unfreeze='all'),
    'st_adapter_cp': dict(with_cp=True),
    'st_adapter_fp16_frozen': dict(frozen_fp16=True),
}


def _is_oom(err: BaseException) -> bool:
    oom = getattr(torch.cuda, 'OutOfMemoryError', ())
    return isinstance(err, oom) or 'out of memory' in str(err)


def _input_size(arch: Any) -> int:
    from mmaction.registry import MODELS
    cls = MODELS.get('ViTCLIPSTAdapter')
    return cls._resolve_arch(arch, None)['input_resolution']


def sweep(archs: Sequence[Any],
          frames_list: Sequence[int],
          adapter: Any,
          batch_size: int,
          rounds: int,
          device: str = 'cuda',
          amp: bool = True,
          amp_dtype: str = 'float16',
          variants: Sequence[str] = tuple(SWEEP_VARIANTS)) -> List[dict]:
    """Train every variant of every (arch, frames) pair and measure it.

    Args:
        archs (Sequence[str | dict]): Backbone archs.
        frames_list (Sequence[int]): Frame counts.
        adapter (str | dict): Adapter preset or dict.
        batch_size (int): Clips per step.
        rounds (int): Interleaved timing rounds.
        device (str): ``'cuda'`` (``'cpu'`` runs the same code without AMP,
            for testing).
        amp (bool): Train with ``AmpOptimWrapper``.
        amp_dtype (str): ``'float16'`` or ``'bfloat16'``.
        variants (Sequence[str]): Keys of :data:`SWEEP_VARIANTS`.

    Returns:
        list[dict]: One entry per (arch, frames) with per-variant
        ``clips_per_s``, ``step_s`` and ``peak_memory_mib`` (or ``oom``) and
        the ST-Adapter / full fine-tuning ratios.
    """
    unknown = sorted(set(variants) - set(SWEEP_VARIANTS))
    if unknown:
        raise ValueError(f'Unknown sweep variants {unknown}; choose from '
                         f'{sorted(SWEEP_VARIANTS)}.')
    results = []
    for arch in archs:
        size = _input_size(arch)
        for frames in frames_list:
            data = make_batch(batch_size, frames, size)
            entry: Dict[str, Any] = dict(
                arch=arch, frames=frames, batch_size=batch_size,
                variants={})
            trained = {}
            for name in variants:
                spec = dict(cfg=recognizer_cfg(arch, adapter, frames,
                                               **SWEEP_VARIANTS[name]))

                def build_and_warm(spec=spec):
                    return build_trained(spec, data, device, amp, amp_dtype)

                try:
                    mem, (model, wrapper) = peak_memory(build_and_warm, device)
                except RuntimeError as err:
                    if not _is_oom(err):
                        raise
                    entry['variants'][name] = dict(oom=True)
                    gc.collect()
                    if device.startswith('cuda'):
                        torch.cuda.empty_cache()
                    continue
                entry['variants'][name] = dict(peak_memory_mib=mem / 2**20)
                trained[name] = (model, wrapper)
            fns = {
                name: (lambda m=m, w=w: m.train_step(data, w))
                for name, (m, w) in trained.items()
            }
            if fns:
                times = interleaved_times(fns, rounds, device, warmup=0)
                for name, ts in times.items():
                    step = statistics.median(ts)
                    entry['variants'][name].update(
                        step_s=step, clips_per_s=batch_size / step)
            entry['ratios'] = _ratios(entry['variants'], times if fns else {})
            results.append(entry)
            del trained, fns
            gc.collect()
            if device.startswith('cuda'):
                torch.cuda.empty_cache()
    return results


def _ratios(variants: Dict[str, dict],
            times: Dict[str, List[float]]) -> Dict[str, float]:
    """Per-round median time ratios and memory ratios against baselines."""
    out: Dict[str, float] = {}
    pairs = (('st_adapter', 'full_finetune'),
             ('st_adapter_cp', 'st_adapter'),
             ('st_adapter_fp16_frozen', 'st_adapter'))
    for num, den in pairs:
        if num in times and den in times:
            out[f'{num}/{den}_time'] = statistics.median(
                a / b for a, b in zip(times[num], times[den]))
        mem_num = variants.get(num, {}).get('peak_memory_mib')
        mem_den = variants.get(den, {}).get('peak_memory_mib')
        if mem_num and mem_den:
            out[f'{num}/{den}_memory'] = mem_num / mem_den
    return out
