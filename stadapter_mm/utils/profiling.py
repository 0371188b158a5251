"""Measurement primitives of ``tools/analysis_tools/benchmark.py``.

Time: :func:`interleaved_times` runs contenders in rounds, each once per
round with the order rotating, and :func:`ratio_summary` turns two of them
into per-round ratios. Memory: :func:`peak_memory` (CUDA's allocator peak, or
the peak resident set ``VmHWM`` on Linux), :func:`run_memory_probe` and
:func:`report_probe_result` (a child process that measures resident memory
without the parent's heap), and :func:`saved_activation_bytes` (what autograd
keeps for backward). Work: :func:`forward_macs` (mmengine's ``FlopAnalyzer``
per module), :func:`training_flops` (``torch.utils.flop_counter`` with the
fused CPU attention) and :func:`matmul_flops_per_s` (a dense matmul's rate).
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

#: Allocations from this size up are mmap-ed in a memory-probe child (bytes).
MMAP_THRESHOLD = 65536
_PROBE_TAG = 'BENCH_MEMORY_RESULT '


def synchronize(device: str) -> None:
    """Wait for the device's queued work (a no-op on CPU).

    Args:
        device (str): ``'cpu'`` or a CUDA device name.
    """
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def interleaved_times(fns: Dict[str, Callable[[], Any]], rounds: int,
                      device: str = 'cpu', warmup: int = 1,
                      progress: bool = False) -> Dict[str, List[float]]:
    """Seconds per run of each contender, in interleaved rounds.

    Every round runs each contender once, the order rotating from round to
    round, so a slow spell of the machine hits all of them alike.

    Args:
        fns (dict[str, Callable]): Name -> the function to time.
        rounds (int): Timed rounds, >= 1.
        device (str): Synchronized around every run. Defaults to ``'cpu'``.
        warmup (int): Untimed runs of each before the rounds. Defaults to 1.
        progress (bool): Show an mmengine progress bar. Defaults to False.

    Returns:
        dict[str, list[float]]: Name -> one time per round.

    Raises:
        ValueError: If ``rounds`` is below 1.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    from mmengine.utils import track_iter_progress
    names, times = list(fns), {name: [] for name in fns}
    for name in names * warmup:
        fns[name]()
    for r in track_iter_progress(range(rounds)) if progress else range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def ratio_summary(num: Sequence[float], den: Sequence[float]) -> dict:
    """Per-round ratios of two contenders' times.

    Args:
        num (Sequence[float]): The numerator's times, one per round.
        den (Sequence[float]): The denominator's, same rounds.

    Returns:
        dict: ``median`` (the figure), ``min``, ``max``, ``of_best`` (the
        ratio of the fastest runs, a second estimate) and ``rounds``.
    """
    ratios = [a / b for a, b in zip(num, den)]
    return dict(median=statistics.median(ratios), min=min(ratios),
                max=max(ratios), of_best=min(num) / min(den),
                rounds=len(ratios))


def matmul_flops_per_s(n: int, device: str, dtype: torch.dtype) -> float:
    """Dense ``torch.mm`` rate of two ``n x n`` matrices, best of 3.

    Args:
        n (int): Matrix size.
        device (str): Where to multiply.
        dtype (torch.dtype): Element type.

    Returns:
        float: FLOP/s (2 per multiply-add).
    """
    a, b = (torch.randn(n, n).to(device, dtype) for _ in range(2))
    runs = interleaved_times({'mm': lambda: torch.mm(a, b)}, 3, device)
    return 2.0 * n**3 / min(runs['mm'])


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f
                    if line.startswith(field + ':'))


def peak_memory(fn: Callable[[], Any], device: str) -> Tuple[int, Any]:
    """Peak memory growth while ``fn`` runs, and its result.

    CUDA: ``max_memory_allocated`` over what was allocated before. CPU
    (Linux): the peak resident set ``VmHWM``, reset first, over the resident
    set before; meaningful in a process of its own (see
    :func:`run_memory_probe`).

    Args:
        fn (Callable): What to measure.
        device (str): ``'cpu'`` or a CUDA device name.

    Returns:
        tuple[int, Any]: The growth in bytes and ``fn()``.
    """
    gc.collect()
    synchronize(device)
    if device.startswith('cuda'):
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base, result
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident set
    base = _status_kib('VmRSS')
    result = fn()
    return (_status_kib('VmHWM') - base) * 1024, result


def run_memory_probe(command: List[str], request: Any) -> Any:
    """Run a memory-measuring child process and return what it reports.

    The child gets ``request`` as JSON on stdin and ``MALLOC_MMAP_THRESHOLD_``
    set (glibc would otherwise keep freed blocks resident, counting memory no
    tensor uses any more); it answers with :func:`report_probe_result`.

    Args:
        command (list[str]): The child's command line.
        request (Any): JSON-serialisable input for the child.

    Returns:
        Any: The child's result, decoded from JSON.

    Raises:
        RuntimeError: If the child reported nothing (its stderr's end
            included).
    """
    proc = subprocess.run(
        command, input=json.dumps(request), capture_output=True, text=True,
        env=dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD)))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_PROBE_TAG):
            return json.loads(line[len(_PROBE_TAG):])
    raise RuntimeError(f'memory probe failed (exit {proc.returncode}):\n'
                       f'{proc.stderr[-3000:]}')


def report_probe_result(result: Any) -> None:
    """Child side of :func:`run_memory_probe`: print the tagged result.

    Args:
        result (Any): JSON-serialisable result.
    """
    print(_PROBE_TAG + json.dumps(result), flush=True)


def saved_activation_bytes(fn: Callable[[], Any], model: nn.Module) -> int:
    """Bytes autograd saves for backward while ``fn`` runs a forward.

    Args:
        fn (Callable): Runs the forward pass.
        model (nn.Module): Its parameters and buffers are left out.

    Returns:
        int: Bytes of the saved tensors' storages, each storage once.
    """
    own = {t.untyped_storage().data_ptr()
           for t in [*model.parameters(), *model.buffers()]}
    storages: Dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storages.setdefault(t.untyped_storage().data_ptr(),
                            t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(v for k, v in storages.items() if k not in own)


def forward_macs(model: nn.Module, x: Tensor) -> Dict[str, int]:
    """Multiply-adds of one forward by mmengine's ``FlopAnalyzer``.

    The fused attention is counted (``stadapter_mm.compat`` teaches the
    analyzer). Puts ``model`` in eval mode.

    Args:
        model (nn.Module): The model.
        x (Tensor): Its input.

    Returns:
        dict[str, int]: Module name -> multiply-adds (``''``: the model).
    """
    from mmengine.analysis import FlopAnalyzer
    with torch.no_grad():
        analyzer = FlopAnalyzer(model.eval(), (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return {k: int(v) for k, v in analyzer.by_module().items()}


def training_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one training step by ``torch.utils.flop_counter``.

    Adds the CPU flash-attention kernels torch does not count (forward:
    ``q k^T`` and ``P v``; backward: dQ, dK, dV and dP).

    Args:
        step (Callable): Runs the forward and backward pass.

    Returns:
        int: FLOPs (2 per multiply-add).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from .flops import sdpa_flops

    def sdpa(factor, offset):  # backward: grad_out comes first
        def count(*args, out_shape=None, **kwargs):
            return factor * sdpa_flops(*args[offset:offset + 3])
        return count

    name = '_scaled_dot_product_flash_attention_for_cpu'
    counter = FlopCounterMode(display=False, custom_mapping={
        getattr(torch.ops.aten, n): sdpa(f, o)
        for n, f, o in ((name, 2, 0), (name + '_backward', 4, 1))
        if hasattr(torch.ops.aten, n)})
    with counter:
        step()
    return counter.get_total_flops()
