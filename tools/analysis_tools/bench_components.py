"""Before/after timing of each optimised hot path alone, for ``benchmark.py``.

A whole training step lasts seconds, so on a shared machine a few rounds
cannot resolve a change worth a few percent of it. Each optimised part
(adapter, QuickGELU, fused attention) is therefore also timed alone, at the
real token shapes, against its plain version from ``reference_impl.py``,
over many cheap interleaved rounds: forward without autograd (inference)
and forward plus backward with frozen weights (ST-Adapter training: the
gradient flows to the tokens; for the adapter, to its parameters too).
"""
from __future__ import annotations

import statistics
from typing import Any, Callable, Dict, Tuple

import torch
from torch import Tensor

from bench_common import interleaved_times, ratio_summary
from reference_impl import (ReferenceQuickGELU, reference_adapter_forward,
                            reference_attention)


def _pairs(arch: dict, adapter_cfg: dict, clips: int,
           frames: int) -> Dict[str, Tuple[Callable, Callable, Tensor]]:
    """(optimised, plain, input) for each component at the model's shapes."""
    from stadapter_mm.models import STConvAdapter
    from stadapter_mm.models.vit_clip_stadapter import (QuickGELU,
                                                        ResidualAttentionBlock)
    width, heads = arch['width'], arch['heads']
    side = arch['input_resolution'] // arch['patch_size']
    grid = (side, side)
    tokens = side * side + 1
    gen = torch.Generator().manual_seed(0)
    adapter = STConvAdapter(width, adapter_cfg['width'],
                            adapter_cfg['kernel_size'],
                            adapter_cfg['act_cfg'])
    with torch.no_grad():
        adapter.conv.weight.normal_(0.0, 0.1, generator=gen)
    block = ResidualAttentionBlock(width, heads).requires_grad_(False)
    x = torch.randn(clips * frames, tokens, width, generator=gen)
    hidden = torch.randn(clips * frames, tokens, 4 * width, generator=gen)
    return {
        'adapter': (lambda t: adapter(t, frames, grid),
                    lambda t: reference_adapter_forward(
                        adapter, t, frames, grid), x),
        'quick_gelu': (QuickGELU(), ReferenceQuickGELU(), hidden),
        'attention': (block.attention,
                      lambda t: reference_attention(block, t), x),
    }


def _infer(fn: Callable, x: Tensor) -> Callable[[], Any]:
    def run():
        with torch.no_grad():
            fn(x)

    return run


def _train(fn: Callable, x: Tensor) -> Callable[[], Any]:
    leaf = x.detach().requires_grad_()
    grad = torch.ones_like(x)

    def run():
        fn(leaf).backward(grad)

    return run


def component_ratios(arch: dict, adapter_cfg: dict, clips: int, frames: int,
                     rounds: int) -> Dict[str, dict]:
    """Plain / optimised time of each component, inference and training.

    Args:
        arch (dict): Resolved backbone arch settings.
        adapter_cfg (dict): Resolved adapter settings (``width``,
            ``kernel_size``, ``act_cfg``).
        clips (int): N.
        frames (int): T.
        rounds (int): Interleaved rounds.

    Returns:
        dict: component -> ``inference`` and ``train`` ratio summaries
        (> 1: the optimised version is faster) and median milliseconds.
    """
    out: Dict[str, dict] = {}
    for name, (fast, plain, x) in _pairs(arch, adapter_cfg, clips,
                                         frames).items():
        entry = {}
        for mode, wrap in (('inference', _infer), ('train', _train)):
            times = interleaved_times(
                dict(optimized=wrap(fast, x), plain=wrap(plain, x)), rounds,
                warmup=2)
            entry[mode] = dict(
                ratio_summary(times['plain'], times['optimized']),
                optimized_ms=1e3 * statistics.median(times['optimized']),
                plain_ms=1e3 * statistics.median(times['plain']))
        out[name] = entry
    return out


def block_inference_ratio(arch: dict, adapter: Any, clips: int, frames: int,
                          rounds: int) -> dict:
    """One transformer block with its adapters against the same block bare.

    The whole-model inference ratio moves by a few percent with the load of
    a shared machine; one block is cheap enough for many rounds. FLOPs of a
    block come from ``mmengine``'s FlopAnalyzer as the difference between a
    2-block and a 1-block backbone.

    Args:
        arch (dict): Resolved backbone arch settings.
        adapter (str | dict): Adapter preset or dict.
        clips (int): N.
        frames (int): T.
        rounds (int): Interleaved rounds.

    Returns:
        dict: ``time_ratio`` (summary, adapted / bare), ``flops_ratio`` and
        the blocks' ``gmacs``.
    """
    from stadapter_mm.models import ViTCLIPSTAdapter

    from bench_common import forward_macs
    side = arch['input_resolution']
    x = torch.randn(clips, 3, frames, side, side,
                    generator=torch.Generator().manual_seed(0))
    macs = {}
    models = {}
    for name, adapter_cfg in (('adapted', adapter), ('bare', None)):
        per_depth = []
        for layers in (1, 2):
            torch.manual_seed(0)
            model = ViTCLIPSTAdapter(dict(arch, layers=layers),
                                     adapter=adapter_cfg).eval()
            per_depth.append(forward_macs(model, x))
        macs[name] = per_depth[1] - per_depth[0]
        with torch.no_grad():
            for a in model.adapters():
                a.conv.weight.normal_(0.0, 0.1)
        models[name] = model.transformer.resblocks[-1]
    side //= arch['patch_size']
    tokens = torch.randn(clips * frames, side * side + 1, arch['width'],
                         generator=torch.Generator().manual_seed(1))

    def run(block):
        def fn():
            with torch.no_grad():
                block(tokens, frames, (side, side))

        return fn

    times = interleaved_times({k: run(v) for k, v in models.items()},
                              rounds, warmup=2)
    return dict(
        time_ratio=ratio_summary(times['adapted'], times['bare']),
        flops_ratio=macs['adapted'] / macs['bare'],
        adapted_gmacs=macs['adapted'] / 1e9,
        bare_gmacs=macs['bare'] / 1e9,
        adapted_ms=1e3 * statistics.median(times['adapted']),
        bare_ms=1e3 * statistics.median(times['bare']))
