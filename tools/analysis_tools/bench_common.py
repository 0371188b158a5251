"""Measurement helpers for ``benchmark.py``: models, timing, memory, FLOPs.

Everything here measures within one process and one run, because the
machines this runs on are shared and noisy:

- times are compared as *interleaved* ratios: every round runs each
  contender once (in a rotating order) and the ratio of each round is kept;
  the reported figure is the median ratio over rounds;
- peak memory is the growth of the process's resident set (Linux
  ``VmHWM`` reset through ``/proc/self/clear_refs`` after returning freed
  heap memory with ``malloc_trim``) on CPU, and
  ``torch.cuda.max_memory_allocated`` growth on CUDA, while the model is
  built and trained for two steps, so weights, gradients, optimizer state
  and activations all count;
- FLOPs come from libraries: ``mmengine.analysis.FlopAnalyzer`` for a
  forward pass and ``torch.utils.flop_counter.FlopCounterMode`` for a whole
  training step, both taught to count the fused attention kernel.
"""
from __future__ import annotations

import ctypes
import gc
import os
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

#: CLIP's mean and std in 0-255, as the configs' data preprocessor uses.
CLIP_MEAN = [122.769, 116.74, 104.04]
CLIP_STD = [68.493, 66.63, 70.32]


# --------------------------------------------------------------- models
def recognizer_cfg(arch: Any,
                   adapter: Any,
                   num_frames: int,
                   unfreeze: Any = (),
                   with_cp: bool = False,
                   frozen_fp16: bool = False,
                   num_classes: int = 400) -> dict:
    """Config of the training model: backbone, ``TimeSformerHead``, CLIP
    normalisation (as in ``configs/recognition/stadapter``).

    Args:
        arch (str | dict): Backbone arch.
        adapter (str | dict | None): Adapter preset or dict.
        num_frames (int): T.
        unfreeze (str | Sequence[str]): ``'all'`` for full fine-tuning.
        with_cp (bool): Gradient checkpointing.
        frozen_fp16 (bool): Frozen weights in fp16.
        num_classes (int): Classes of the head.

    Returns:
        dict: A ``Recognizer3D`` config.
    """
    from mmaction.registry import MODELS
    backbone_cls = MODELS.get('ViTCLIPSTAdapter')
    width = backbone_cls._resolve_arch(arch, None)['width']
    return dict(
        type='Recognizer3D',
        backbone=dict(
            type='ViTCLIPSTAdapter',
            arch=arch,
            adapter=adapter,
            num_frames=num_frames,
            unfreeze=unfreeze,
            with_cp=with_cp,
            frozen_fp16=frozen_fp16),
        cls_head=dict(
            type='TimeSformerHead',
            num_classes=num_classes,
            in_channels=width,
            dropout_ratio=0.5,
            average_clips='prob'),
        data_preprocessor=dict(
            type='ActionDataPreprocessor',
            mean=CLIP_MEAN,
            std=CLIP_STD,
            format_shape='NCTHW'))


def build_model(cfg: dict, device: str, seed: int = 0) -> nn.Module:
    """Build a recognizer with random weights and non-zero adapters.

    A trained adapter has a non-zero convolution; random ones make the
    benchmark exercise the same arithmetic.

    Args:
        cfg (dict): From :func:`recognizer_cfg`.
        device (str): ``'cpu'`` or ``'cuda'``.
        seed (int): Seed for the random weights.

    Returns:
        nn.Module: The model, on ``device``, in train mode.
    """
    from mmaction.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    with torch.no_grad():
        for adapter in model.backbone.adapters():
            adapter.conv.weight.normal_(0.0, 0.1)
    return model.to(device).train()


def make_batch(batch_size: int, num_frames: int, size: int,
               num_classes: int = 400) -> Dict[str, list]:
    """A batch as ``PackActionInputs`` and the default collate make it.

    Args:
        batch_size (int): Clips.
        num_frames (int): T.
        size (int): Frame height and width.
        num_classes (int): Labels are drawn below this.

    Returns:
        dict: ``inputs`` (uint8 tensors (1, 3, T, H, W)) and
        ``data_samples`` (``ActionDataSample`` with a label).
    """
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(batch_size):
        inputs.append(
            torch.randint(0, 256, (1, 3, num_frames, size, size),
                          generator=gen, dtype=torch.uint8))
        samples.append(ActionDataSample().set_gt_label(i % num_classes))
    return dict(inputs=inputs, data_samples=samples)


def build_optim_wrapper(model: nn.Module, amp: bool,
                        amp_dtype: str = 'float16') -> Any:
    """AdamW as the configs use it, through mmengine (AMP on CUDA).

    Args:
        model (nn.Module): The model.
        amp (bool): Use ``AmpOptimWrapper``.
        amp_dtype (str): ``'float16'`` or ``'bfloat16'``.

    Returns:
        OptimWrapper: mmengine's optimizer wrapper.
    """
    from mmengine.optim import build_optim_wrapper as build
    cfg = dict(
        type='AmpOptimWrapper' if amp else 'OptimWrapper',
        optimizer=dict(
            type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
        paramwise_cfg=dict(bias_decay_mult=0.0))
    if amp:
        cfg['dtype'] = amp_dtype
    return build(model, cfg)


class CheckpointedBlock(nn.Module):
    """Runs one transformer block under activation checkpointing.

    Lets the benchmark checkpoint a chosen subset of blocks (the backbone's
    ``with_cp`` checkpoints all of them).

    Args:
        block (nn.Module): A ``ResidualAttentionBlock``.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor, num_frames: int, grid: tuple) -> Tensor:
        if self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint
            return checkpoint(self.block, x, num_frames, grid,
                              use_reentrant=False)
        return self.block(x, num_frames, grid)


def build_variant(spec: dict, device: str) -> nn.Module:
    """Build the model a variant spec describes.

    Args:
        spec (dict): ``cfg`` (from :func:`recognizer_cfg`), optional
            ``parts`` (plain versions to swap in, see
            ``reference_impl.use_reference``) and ``cp_blocks`` (indices of
            blocks to checkpoint).
        device (str): Device.

    Returns:
        nn.Module: The model in train mode.
    """
    model = build_model(spec['cfg'], device)
    if spec.get('parts'):
        from reference_impl import use_reference
        use_reference(model.backbone, spec['parts'])
    blocks = model.backbone.transformer.resblocks
    for i in spec.get('cp_blocks') or ():
        blocks[i] = CheckpointedBlock(blocks[i])
    return model.train()


def build_trained(spec: dict, data: dict, device: str, amp: bool,
                  amp_dtype: str = 'float16', steps: int = 2) -> tuple:
    """Build a variant and its optimizer and train ``steps`` steps.

    Two steps create the optimizer state, so a later step is a steady one.

    Returns:
        tuple: (model, optim wrapper).
    """
    model = build_variant(spec, device)
    wrapper = build_optim_wrapper(model, amp, amp_dtype)
    for _ in range(steps):
        model.train_step(data, wrapper)
    synchronize(device)
    return model, wrapper


# ----------------------------------------------------------------- timing
def synchronize(device: str) -> None:
    """Wait for queued device work (CUDA); nothing on CPU."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def interleaved_times(fns: Dict[str, Callable[[], Any]],
                      rounds: int,
                      device: str = 'cpu',
                      warmup: int = 1) -> Dict[str, List[float]]:
    """Time contenders in interleaved rounds.

    Each round runs every contender once; the order rotates from round to
    round so that slow drifts of a shared machine hit all of them alike.

    Args:
        fns (dict[str, callable]): Name to a no-argument function.
        rounds (int): Rounds (>= 1).
        device (str): For synchronisation.
        warmup (int): Untimed runs of each contender first.

    Returns:
        dict[str, list[float]]: Seconds per run, in round order.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def ratio_summary(num: Sequence[float], den: Sequence[float]) -> dict:
    """Per-round ratios ``num[i] / den[i]``: median (the headline), min,
    max, and ``of_best``, the ratio of the fastest runs (a check that is
    insensitive to slow-downs from other processes, which only add time).
    """
    ratios = [a / b for a, b in zip(num, den)]
    return dict(
        median=statistics.median(ratios),
        min=min(ratios),
        max=max(ratios),
        of_best=min(num) / min(den),
        rounds=len(ratios))


def matmul_flops_per_s(n: int = 2048,
                       device: str = 'cpu',
                       tries: int = 3,
                       dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul throughput: best of ``tries`` (n x n) @ (n x n).

    Args:
        n (int): Matrix side.
        device (str): Device.
        tries (int): Back-to-back products; the fastest counts.
        dtype (torch.dtype): Element type (the training compute type).

    Returns:
        float: FLOP/s, counting 2 n^3 FLOPs per product.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    torch.mm(a, b)
    best = float('inf')
    for _ in range(tries):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


# ----------------------------------------------------------------- memory
def _rss_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'/proc/self/status has no {field}')


def cpu_peak_supported() -> bool:
    """Whether the Linux peak-RSS reset this module relies on works here."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        _rss_kib('VmHWM')
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass  # not glibc: freed memory may stay resident


def peak_memory(fn: Callable[[], Any], device: str) -> tuple:
    """Peak memory growth while ``fn`` runs, measured in this process.

    On CUDA: growth of ``torch.cuda.max_memory_allocated``. On CPU: growth
    of the peak resident set (Linux ``VmHWM``, reset first). The CPU figure
    tracks live tensors only when freed memory goes back to the system,
    i.e. when large allocations are ``mmap``-ed: run it in a process started
    by :func:`bench_memory.probe` (which sets ``MALLOC_MMAP_THRESHOLD_``).

    Args:
        fn (callable): Work to measure; its return value is passed back.
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        tuple: (peak growth in bytes, ``fn``'s result).

    Raises:
        RuntimeError: On a CPU system without ``/proc/self/clear_refs``.
    """
    _release_free_memory()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base, result
    if not cpu_peak_supported():
        raise RuntimeError(
            'CPU peak memory needs Linux /proc/self/clear_refs (kernel '
            '>= 4.0); run without the memory figures (--no-memory).')
    base = _rss_kib('VmRSS')
    result = fn()
    return (_rss_kib('VmHWM') - base) * 1024, result


def saved_activation_bytes(fn: Callable[[], Any], model: nn.Module) -> int:
    """Bytes autograd saves for backward while ``fn`` runs a forward pass.

    Tensors are counted once per storage; the model's parameters and
    buffers (and views of them, such as a transposed weight) are left out,
    so the figure is the activation memory backward needs.

    Args:
        fn (callable): Runs a forward pass (with autograd recording).
        model (nn.Module): Whose parameters and buffers are excluded.

    Returns:
        int: Bytes.
    """
    own = {t.untyped_storage().data_ptr()
           for t in list(model.parameters()) + list(model.buffers())}
    storages: Dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(v for k, v in storages.items() if k not in own)


# ------------------------------------------------------------------ FLOPs
def _sdpa_macs(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> int:
    """Multiply-adds of softmax(q k^T) v for (..., L, E) shaped q, k, v."""
    batch = 1
    for dim in q[:-2]:
        batch *= dim
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def sdpa_jit_handle(inputs: List[Any], outputs: List[Any]) -> int:
    """``mmengine.analysis`` handle for ``aten::scaled_dot_product_attention``
    (fvcore convention: one multiply-add counts one)."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    return _sdpa_macs(q, k, v)


def _sdpa_fwd_flops(query, key, value, *args, out_shape=None, **kwargs):
    return 2 * _sdpa_macs(query, key, value)


def _sdpa_bwd_flops(grad_out, query, key, value, *args, out_shape=None,
                    **kwargs):
    return 4 * _sdpa_macs(query, key, value)  # dQ, dK, dV and dP products


def training_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one training step (forward and backward, 2 per MAC).

    Counted by ``torch.utils.flop_counter.FlopCounterMode``, with the CPU
    flash-attention kernels (which it does not know) added.

    Args:
        step (callable): Runs one training step.

    Returns:
        int: FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    mapping = {}
    for name, fn in (('_scaled_dot_product_flash_attention_for_cpu',
                      _sdpa_fwd_flops),
                     ('_scaled_dot_product_flash_attention_for_cpu_backward',
                      _sdpa_bwd_flops)):
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = fn
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        step()
    return counter.get_total_flops()


def forward_macs(model: nn.Module, inputs: Tensor) -> int:
    """Multiply-adds of one forward pass, by ``mmengine``'s FlopAnalyzer.

    Args:
        model (nn.Module): Model (traced in eval mode, without autograd).
        inputs (Tensor): Its input.

    Returns:
        int: Multiply-adds (mmengine reports them as "flops").
    """
    from mmengine.analysis import FlopAnalyzer
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, (inputs, ))
            analyzer.set_op_handle('aten::scaled_dot_product_attention',
                                   sdpa_jit_handle)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            return int(analyzer.total())
    finally:
        model.train(was_training)


def env_summary(device: str) -> dict:
    """Versions and hardware the figures were measured on."""
    import platform
    info = dict(
        torch=torch.__version__,
        python=platform.python_version(),
        machine=platform.machine(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=device)
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name()
    return info


def _cpu_model() -> Optional[str]:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None
