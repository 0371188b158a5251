"""The benchmark's measurement primitives (stadapter_mm/utils/profiling.py).

- the FLOP counters count the fused attention exactly;
- the timing rounds interleave, ratios are per round;
- peak memory sees an allocation, in this process and in a probe child;
- the dense-matmul rate is a rate.
"""
import sys

import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from torch.utils.flop_counter import FlopCounterMode

from stadapter_mm.models import ViTCLIPSTAdapter
from stadapter_mm.utils import profiling
from stadapter_mm.utils.profiling import (forward_macs, interleaved_times,
                                          matmul_flops_per_s, ratio_summary,
                                          run_memory_probe, training_flops)

TINY_ADAPTER = dict(preset='12x384', width=16)
LINUX = sys.platform.startswith('linux')


# ------------------------------------------------------------------ FLOPs
def _attention_macs(arch, clips, frames):
    tokens = (arch['input_resolution'] // arch['patch_size'])**2 + 1
    return (arch['layers'] * clips * frames * tokens * tokens * 2 *
            arch['width'])


def test_forward_macs_count_fused_attention(tiny_arch):
    model = ViTCLIPSTAdapter(tiny_arch, adapter=TINY_ADAPTER).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        without = FlopAnalyzer(model, (x, ))
        without.set_op_handle('aten::scaled_dot_product_attention',
                              lambda inputs, outputs: 0)
        without.unsupported_ops_warnings(False)
        without = without.total()
    macs = forward_macs(model, x)
    assert macs[''] - without == _attention_macs(tiny_arch, 2, 4)
    blocks = [macs[f'transformer.resblocks.{i}'] for i in (0, 1)]
    assert blocks[0] == blocks[1] and sum(blocks) < macs['']


def test_training_flops_count_attention_forward_and_backward(tiny_arch):
    model = ViTCLIPSTAdapter(tiny_arch, adapter=None, unfreeze='all')
    x = torch.randn(1, 3, 4, 32, 32)

    def step():
        model(x).sum().backward()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    attention = _attention_macs(tiny_arch, 1, 4)
    # 2 FLOPs per multiply-add; backward does twice the forward's products.
    assert training_flops(step) - counter.get_total_flops() == \
        2 * attention + 4 * attention


def test_matmul_rate_is_positive_and_finite():
    rate = matmul_flops_per_s(64, 'cpu', torch.float32)
    assert 0 < rate < float('inf')


# ----------------------------------------------------------------- timing
def test_interleaved_times_rotate_the_order():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    times = interleaved_times(fns, rounds=3, warmup=1)
    assert calls[:3] == ['a', 'b', 'c']  # warm-up
    assert calls[3:] == ['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']
    assert all(len(v) == 3 and min(v) >= 0 for v in times.values())
    with pytest.raises(ValueError):
        interleaved_times(fns, rounds=0)


def test_ratio_summary_is_per_round():
    summary = ratio_summary([2.0, 3.0, 10.0], [1.0, 2.0, 4.0])
    assert summary == dict(median=2.0, min=1.5, max=2.5, of_best=2.0,
                           rounds=3)


# ----------------------------------------------------------------- memory
@pytest.mark.skipif(not LINUX, reason='VmHWM is Linux-only')
def test_memory_probe_child_reports_its_peak():
    """A fresh process sees a temporary (written, then freed) allocation.

    In a process of its own only: in the test process, memory freed by
    earlier tests is reused without growing the resident set.
    """
    child = ('import json, os, sys, torch\n'
             'from stadapter_mm.utils import profiling as p\n'
             'n = json.loads(sys.stdin.read())["mib"] * 2**18\n'
             'print("noise")\n'
             'p.report_probe_result([\n'
             '    p.peak_memory(lambda: torch.ones(n).sum(), "cpu")[0],\n'
             '    os.environ["MALLOC_MMAP_THRESHOLD_"]])\n')
    grown, threshold = run_memory_probe([sys.executable, '-c', child],
                                        dict(mib=32))
    assert 30 * 2**20 <= grown < 128 * 2**20
    assert threshold == str(profiling.MMAP_THRESHOLD)
    with pytest.raises(RuntimeError, match='exit 3'):
        run_memory_probe([sys.executable, '-c', 'raise SystemExit(3)'], {})
