"""CPU peak-memory probe for ``benchmark.py``, run in a separate process.

Measuring peak memory on CPU needs an allocator that gives freed memory
back: glibc keeps freed blocks of up to 32 MiB in its heap, so the resident
set would count memory that no tensor uses any more. The probe process
starts with ``MALLOC_MMAP_THRESHOLD_=65536``: every allocation of 64 KiB or
more (every activation, weight and gradient of a real-size model) is its
own ``mmap`` and returns to the system when freed, so the resident set
follows live memory, and its high-water mark (``VmHWM``, reset before each
measurement) is the peak. After one unmeasured warm-up build, each variant
is built, trained for two steps (creating the optimizer state) and freed in
turn. Timing never runs in this
process, since the allocator setting slows allocation down.

Usage (internal)::

    echo '<json>' | python tools/analysis_tools/bench_memory.py
"""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys
from typing import List

_HERE = osp.dirname(osp.abspath(__file__))
_ROOT = osp.dirname(osp.dirname(_HERE))

#: Allocations from this size up are mmap-ed in the probe process.
MMAP_THRESHOLD = 65536
_RESULT_TAG = 'BENCH_MEMORY_RESULT '


def probe(specs: List[dict],
          batch_size: int,
          num_frames: int,
          size: int,
          threads: int = None,
          timeout: float = 3600) -> List[int]:
    """Peak CPU memory of each variant, measured in a fresh process.

    Args:
        specs (list[dict]): Variant specs (see
            ``bench_common.build_variant``); must be JSON-serialisable.
        batch_size (int): Clips per step.
        num_frames (int): T.
        size (int): Frame size.
        threads (int, optional): Torch threads in the probe.
        timeout (float): Seconds before giving up.

    Returns:
        list[int]: Peak growth in bytes (weights, gradients, optimizer
        state and activations), one per spec.

    Raises:
        RuntimeError: If the probe process fails.
    """
    request = dict(specs=specs, batch_size=batch_size,
                   num_frames=num_frames, size=size, threads=threads)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD))
    proc = subprocess.run([sys.executable, osp.abspath(__file__)],
                          input=json.dumps(request),
                          capture_output=True,
                          text=True,
                          env=env,
                          timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_TAG):
            return json.loads(line[len(_RESULT_TAG):])
    raise RuntimeError(
        f'memory probe failed (exit {proc.returncode}):\n'
        f'{proc.stderr[-3000:]}')


def _main() -> None:
    for path in (_ROOT, _HERE):
        if path not in sys.path:
            sys.path.insert(0, path)
    import torch
    import stadapter_mm  # noqa: F401
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import bench_common as bc
    init_default_scope('mmaction')
    MMLogger.get_instance('bench_memory', log_level='WARNING')
    request = json.loads(sys.stdin.read())
    if request.get('threads'):
        torch.set_num_threads(request['threads'])
    data = bc.make_batch(request['batch_size'], request['num_frames'],
                         request['size'])
    # One unmeasured build first: one-time allocations (thread pools,
    # kernel caches) must not count against the first variant.
    warm = bc.build_trained(request['specs'][0], data, 'cpu', False)
    del warm
    peaks = []
    for spec in request['specs']:
        peak, trained = bc.peak_memory(
            lambda spec=spec: bc.build_trained(spec, data, 'cpu', False),
            'cpu')
        del trained
        peaks.append(peak)
    print(_RESULT_TAG + json.dumps(peaks), flush=True)


if __name__ == '__main__':
    _main()
