"""Benchmark ST-Adapter: training and inference cost, FLOP/s, data loading.

One command prints a table and writes JSON. Contenders are never timed one
after the other: every round runs each of them once, in an order that
rotates from round to round, and the figure is the median of the per-round
ratios, so a shared machine whose speed drifts slows all of them alike.
Sections (``--sections``):

- ``train``: one training step (``model.train_step``: preprocessing,
  forward, loss, backward, AdamW through mmengine) of ST-Adapter against
  full fine-tuning (``unfreeze='all'``) and against ST-Adapter with blocks 1
  and 2 checkpointed by the backbone (``with_cp=[1, 2]``): time, peak memory,
  activations saved for backward. ``--compare NAME=SPEC`` adds a row.
- ``inference``: the adapted backbone against the bare CLIP image tower
  (``adapter=None``, same weights), without autograd: time ratio next to the
  FLOPs ratio; the same for its last block alone (many cheap rounds).
- ``flops``: FLOP/s of the ST-Adapter training step as a share of a dense
  matmul's rate, probed right before each timed step.
- ``data``: clips/s of the config's ``train_pipeline`` (decord decoding and
  augmentation) in one worker, against the clips/s training consumes.
- ``sweep`` (GPU): AMP clips/s and peak memory for ViT-B/16 and ViT-L/14 at
  8 and 32 frames: ST-Adapter, full fine-tuning, ``with_cp=True``,
  ``frozen_fp16=True``.

Peak memory on CPU is measured in a child process (this file run with
``--memory-probe``) whose large allocations are ``mmap``-ed, so its peak
resident set follows live tensors; on CUDA by ``max_memory_allocated``.

Example::

    python tools/analysis_tools/benchmark.py --threads 1 --repeats 9
    python tools/analysis_tools/benchmark.py --device cuda
    python tools/analysis_tools/benchmark.py --sections train \\
        --compare 'cp_all={"backbone": {"with_cp": true}}'
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

SECTIONS = ('train', 'inference', 'flops', 'data', 'sweep')
CPU_SECTIONS = ('train', 'inference', 'flops', 'data')
GPU_SECTIONS = ('sweep', 'train', 'inference', 'data')
#: Recipe whose ``model`` is the reference and whose ``train_pipeline`` is
#: timed (relative to the repository root).
DEFAULT_CONFIG = ('configs/recognition/stadapter/'
                  'stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py')
#: Sweep contenders: name -> overrides of the reference model config.
SWEEP_VARIANTS = {
    'st_adapter': {},
    'full_finetune': {'backbone': {'unfreeze': 'all'}},
    'st_adapter_cp': {'backbone': {'with_cp': True}},
    'st_adapter_fp16_frozen': {'backbone': {'frozen_fp16': True}},
}
#: (numerator, denominator) pairs reported as ratios, when both ran.
RATIO_PAIRS = (('st_adapter', 'full_finetune'),
               ('st_adapter_cp12', 'full_finetune'),
               ('st_adapter_cp', 'st_adapter'),
               ('st_adapter_fp16_frozen', 'st_adapter'))
MMAP_THRESHOLD = 65536  # bytes; allocations from this size up are mmap-ed
_PROBE_TAG = 'BENCH_MEMORY_RESULT '
_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# ----------------------------------------------------------------- models
def merged(cfg: dict, overrides: dict) -> dict:
    """``cfg`` with ``overrides`` merged in by mmengine's rules (nested
    dicts merge; ``_delete_=True`` replaces)."""
    from mmengine.config import Config
    out = Config(dict(model=copy.deepcopy(cfg)))
    out.merge_from_dict(dict(model=copy.deepcopy(overrides)))
    return out.model.to_dict()


def config_model(path: str, frames: int) -> dict:
    """A config's recognizer with random weights (no ``init_cfg``) and
    ``frames`` frames (where its backbone takes ``num_frames``)."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path} not found')
    cfg = Config.fromfile(path).model.to_dict()
    cfg['backbone'].pop('init_cfg', None)
    if 'num_frames' in cfg['backbone']:
        cfg['backbone']['num_frames'] = frames
    return cfg


def reference_model(config: str, arch: Any, adapter: Any,
                    frames: int) -> dict:
    """The config's ViTCLIPSTAdapter recognizer at ``arch`` and ``adapter``."""
    from stadapter_mm.models import resolve_arch
    cfg = config_model(config, frames)
    cfg['backbone'].update(arch=arch, adapter=adapter)
    cfg['cls_head']['in_channels'] = resolve_arch(arch)['width']
    return cfg


def compare_model(spec: str, reference: dict, frames: int) -> dict:
    """The model of a ``--compare`` SPEC: a config file (its ``model``) or
    JSON overrides of the reference model (see :func:`merged`)."""
    if spec.endswith('.py'):
        return config_model(spec, frames)
    return merged(reference, json.loads(spec))


def randomise_adapters(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-zero temporal convolutions: a trained adapter is not the identity
    a fresh one is, and the benchmark should do the same arithmetic."""
    from stadapter_mm.models import STConvAdapter
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, STConvAdapter):
                m.conv.weight.copy_(
                    torch.randn(m.conv.weight.shape, generator=gen) * 0.1)
    return model


def make_batch(batch_size: int, frames: int, size: int) -> dict:
    """A batch as ``PackActionInputs`` and the default collate make it."""
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(0)
    return dict(
        inputs=[torch.randint(0, 256, (1, 3, frames, size, size),
                              generator=gen, dtype=torch.uint8)
                for _ in range(batch_size)],
        data_samples=[ActionDataSample().set_gt_label(i % 10)
                      for i in range(batch_size)])


def build_trained(cfg: dict, data: dict, device: str, amp_dtype: str = None,
                  steps: int = 2) -> Tuple[nn.Module, Any]:
    """Build a recognizer and AdamW (``AmpOptimWrapper`` if ``amp_dtype``),
    and train ``steps`` steps so that the optimizer state exists."""
    from mmaction.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    model = randomise_adapters(MODELS.build(cfg)).to(device).train()
    wrapper = build_optim_wrapper(model, dict(
        type='AmpOptimWrapper' if amp_dtype else 'OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
        paramwise_cfg=dict(bias_decay_mult=0.0),
        **(dict(dtype=amp_dtype) if amp_dtype else {})))
    for _ in range(steps):
        model.train_step(data, wrapper)
    synchronize(device)
    return model, wrapper


# ---------------------------------------------------------------- measure
def synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def interleaved_times(fns: Dict[str, Callable[[], Any]], rounds: int,
                      device: str = 'cpu', warmup: int = 1,
                      progress: bool = False) -> Dict[str, List[float]]:
    """Seconds per run of each contender over interleaved rounds: every
    round runs each once, the order rotating from round to round (with
    ``progress``, an mmengine progress bar counts the rounds)."""
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    from mmengine.utils import ProgressBar
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    bar = ProgressBar(rounds) if progress else None
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
        if bar:
            bar.update()
    if bar:
        print(flush=True)  # the bar ends without a newline
    return times


def ratio_summary(num: Sequence[float], den: Sequence[float]) -> dict:
    """Per-round ratios: ``median`` (the figure), ``min``, ``max`` and
    ``of_best``, the ratio of the fastest runs (other processes only add
    time, so this is a second estimate)."""
    ratios = [a / b for a, b in zip(num, den)]
    return dict(median=statistics.median(ratios), min=min(ratios),
                max=max(ratios), of_best=min(num) / min(den),
                rounds=len(ratios))


def matmul_flops_per_s(n: int, device: str = 'cpu',
                       dtype: torch.dtype = torch.float32) -> float:
    """Dense ``torch.mm`` rate of two n x n matrices, best of 3."""
    a, b = (torch.randn(n, n).to(device, dtype) for _ in range(2))
    torch.mm(a, b)
    best = float('inf')
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f
                    if line.startswith(field + ':'))


def peak_memory(fn: Callable[[], Any], device: str) -> Tuple[int, Any]:
    """Peak memory growth (bytes) while ``fn`` runs, and its result: CUDA
    ``max_memory_allocated``, or on CPU the peak resident set (Linux
    ``VmHWM``, reset first; meaningful in the ``--memory-probe`` process)."""
    import gc
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
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


def probe_cpu_memory(cfgs: List[dict], batch_size: int, frames: int,
                     size: int, threads: int = None) -> List[int]:
    """Peak CPU memory of building and training each model two steps
    (weights, gradients, AdamW state, activations), in a child process with
    ``MALLOC_MMAP_THRESHOLD_`` set: glibc would otherwise keep freed blocks
    resident and the peak would count memory no tensor uses any more."""
    request = dict(cfgs=cfgs, batch_size=batch_size, frames=frames,
                   size=size, threads=threads)
    proc = subprocess.run(
        [sys.executable, osp.abspath(__file__), '--memory-probe'],
        input=json.dumps(request), capture_output=True, text=True,
        env=dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD)))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_PROBE_TAG):
            return json.loads(line[len(_PROBE_TAG):])
    raise RuntimeError(f'memory probe failed (exit {proc.returncode}):\n'
                       f'{proc.stderr[-3000:]}')


def _memory_probe_main() -> None:
    """Child side of :func:`probe_cpu_memory` (request on stdin)."""
    request = json.loads(sys.stdin.read())
    if request['threads']:
        torch.set_num_threads(request['threads'])
    data = make_batch(request['batch_size'], request['frames'],
                      request['size'])
    # An unmeasured build first: one-time allocations (thread pools, kernel
    # caches) must not count against the first model.
    build_trained(request['cfgs'][0], data, 'cpu')
    peaks = [peak_memory(lambda c=cfg: build_trained(c, data, 'cpu'),
                         'cpu')[0] for cfg in request['cfgs']]
    print(_PROBE_TAG + json.dumps(peaks), flush=True)


def saved_activation_bytes(fn: Callable[[], Any], model: nn.Module) -> int:
    """Bytes autograd saves for backward while ``fn`` runs a forward: once
    per storage, the model's parameters and buffers left out."""
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


def _sdpa_macs(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> int:
    """Multiply-adds of softmax(q k^T) v for (..., L, E) shaped q, k, v."""
    return int(np.prod(q[:-2])) * q[-2] * k[-2] * (q[-1] + v[-1])


def forward_macs(model: nn.Module, x: Tensor) -> Dict[str, int]:
    """Multiply-adds of one forward per module name (``''``: the whole
    model), by mmengine's ``FlopAnalyzer`` (which ``stadapter_mm.compat``
    teaches the fused attention)."""
    from mmengine.analysis import FlopAnalyzer
    with torch.no_grad():
        analyzer = FlopAnalyzer(model.eval(), (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return {k: int(v) for k, v in analyzer.by_module().items()}


def training_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one training step (2 per multiply-add) by
    ``torch.utils.flop_counter``, with the CPU flash-attention kernels
    (forward: q k^T and P v; backward: dQ, dK, dV and dP) added."""
    from torch.utils.flop_counter import FlopCounterMode
    aten = torch.ops.aten
    mapping = {}
    for name, factor in (('_scaled_dot_product_flash_attention_for_cpu', 2),
                         ('_scaled_dot_product_flash_attention_for_cpu_'
                          'backward', 4)):
        if hasattr(aten, name):
            offset = 1 if factor == 4 else 0  # backward: grad_out first
            mapping[getattr(aten, name)] = (
                lambda *a, f=factor, o=offset, out_shape=None, **kw: f *
                _sdpa_macs(*a[o:o + 3]))
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        step()
    return counter.get_total_flops()


def measure_training(cfgs: Dict[str, dict], data: dict, args,
                     pairs: Sequence[Tuple[str, str]] = RATIO_PAIRS) -> dict:
    """Build, train and time each model (interleaved rounds).

    Returns:
        dict: ``variants`` (per model: parameters, saved activations, peak
        memory, step time, or ``oom``), ``ratios`` (``'num/den'`` for each
        of ``pairs`` that ran: time summary, memory, saved activations) and
        ``runs`` (name -> trained (model, wrapper)).
    """
    cuda, clips = args.device.startswith('cuda'), len(data['inputs'])
    peaks = {}
    if not (args.no_memory or cuda):
        _, _, frames, _, size = data['inputs'][0].shape
        peaks = dict(zip(cfgs, probe_cpu_memory(
            list(cfgs.values()), clips, frames, size, args.threads)))
    variants, runs = {}, {}
    for name, cfg in cfgs.items():
        def build(cfg=cfg):
            return build_trained(cfg, data, args.device, args.amp_dtype)
        try:
            if cuda and not args.no_memory:
                peaks[name], (model, wrapper) = peak_memory(build, args.device)
            else:
                model, wrapper = build()
        except torch.cuda.OutOfMemoryError:
            variants[name] = dict(oom=True)
            torch.cuda.empty_cache()
            continue

        def forward(model=model, wrapper=wrapper):
            with wrapper.optim_context(model):
                model(**model.data_preprocessor(data, True), mode='loss')

        params = list(model.parameters())
        variants[name] = dict(
            trainable_params=sum(p.numel() for p in params if p.requires_grad),
            total_params=sum(p.numel() for p in params),
            saved_activations_mib=saved_activation_bytes(forward, model) /
            2**20)
        if name in peaks:
            variants[name]['peak_memory_mib'] = peaks[name] / 2**20
        runs[name] = (model, wrapper)
    times = interleaved_times(
        {k: (lambda m=m, w=w: m.train_step(data, w))
         for k, (m, w) in runs.items()}, args.repeats, args.device, warmup=0,
        progress=True)
    for name, ts in times.items():
        step = statistics.median(ts)
        variants[name].update(step_s=step, best_step_s=min(ts),
                              clips_per_s=clips / step)
    ratios = {}
    for num, den in pairs:
        if num in times and den in times:
            a, b = variants[num], variants[den]
            ratios[f'{num}/{den}'] = dict(
                time=ratio_summary(times[num], times[den]),
                saved_activations=a['saved_activations_mib'] /
                b['saved_activations_mib'],
                **({'memory': a['peak_memory_mib'] / b['peak_memory_mib']}
                   if 'peak_memory_mib' in a and 'peak_memory_mib' in b
                   else {}))
    return dict(variants=variants, ratios=ratios, runs=runs)


# --------------------------------------------------------------- sections
class Benchmark:
    """Runs the sections of ``args.sections``; :attr:`results` collects them.

    Args:
        args (argparse.Namespace): From :func:`parse_args`.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        from stadapter_mm.models import resolve_arch
        self.args = args
        self.arch = resolve_arch(args.arch)
        self.model = reference_model(args.config, args.arch, args.adapter,
                                     args.frames)
        self.data = make_batch(args.batch_size, args.frames,
                               self.arch['input_resolution'])
        self.compare = {name: compare_model(spec, self.model, args.frames)
                        for name, spec in args.compare.items()}
        self.results: Dict[str, dict] = {}
        self.st_run = None  # trained ST-Adapter (model, wrapper)
        self.st_step_s = None

    def train(self) -> dict:
        """ST-Adapter vs full fine-tuning, ``with_cp=[1, 2]`` and
        ``--compare`` models: step time, peak memory, saved activations."""
        cp12 = [i for i in (1, 2) if i < self.arch['layers']]
        cfgs = dict(
            st_adapter=self.model,
            full_finetune=merged(self.model, dict(backbone=dict(
                unfreeze='all'))),
            st_adapter_cp12=merged(self.model, dict(backbone=dict(
                with_cp=cp12))))
        cfgs.update(self.compare)
        res = measure_training(cfgs, self.data, self.args, RATIO_PAIRS + tuple(
            (name, 'st_adapter') for name in self.compare))
        self.st_run = res.pop('runs')['st_adapter']
        self.st_step_s = res['variants']['st_adapter']['step_s']
        return dict(res, cp12_blocks=cp12)

    def inference(self) -> dict:
        """Adapted backbone vs the bare CLIP tower with the same weights,
        and its last block vs the same block bare: time and FLOPs ratios."""
        from mmaction.registry import MODELS
        cfg = self.model['backbone']
        torch.manual_seed(0)
        adapted = randomise_adapters(MODELS.build(cfg)).eval()
        bare = MODELS.build(dict(cfg, adapter=None)).eval()
        bare.load_state_dict(adapted.state_dict(), strict=False)
        x = torch.randn(self.args.batch_size, 3, self.args.frames,
                        *[self.arch['input_resolution']] * 2,
                        generator=torch.Generator().manual_seed(0))
        models = dict(adapted=adapted, bare=bare)
        block = {k: m.transformer.resblocks[-1] for k, m in models.items()}
        name = next(n for n, b in adapted.named_modules()
                    if b is block['adapted'])  # the same in both
        macs = {k: forward_macs(m, x) for k, m in models.items()}
        inputs = []  # the last block's inputs in the adapted model
        hook = block['adapted'].register_forward_pre_hook(
            lambda mod, args: inputs.append(args))
        x = x.to(self.args.device)
        amp = dict(amp_dtype=self.args.amp_dtype)
        fns = {k: _no_grad(m.to(self.args.device), x, **amp)
               for k, m in models.items()}
        fns['adapted']()
        hook.remove()
        block_fns = {k: _no_grad(b, *inputs[0], **amp)
                     for k, b in block.items()}
        times = interleaved_times(fns, self.args.inference_repeats,
                                  self.args.device, progress=True)
        block_times = interleaved_times(block_fns, self.args.block_repeats,
                                        self.args.device, warmup=2,
                                        progress=True)
        res = dict(time_ratio=ratio_summary(times['adapted'], times['bare']),
                   flops_ratio=macs['adapted'][''] / macs['bare'][''])
        res['one_block'] = dict(
            time_ratio=ratio_summary(block_times['adapted'],
                                     block_times['bare']),
            flops_ratio=macs['adapted'][name] / macs['bare'][name])
        for k in models:
            res[f'{k}_s'] = statistics.median(times[k])
            res[f'{k}_gmacs'] = macs[k][''] / 1e9
            res['one_block'][f'{k}_ms'] = 1e3 * statistics.median(
                block_times[k])
            res['one_block'][f'{k}_gmacs'] = macs[k][name] / 1e9
        return res

    def _st_adapter(self) -> Tuple[nn.Module, Any]:
        if self.st_run is None:
            self.st_run = build_trained(self.model, self.data,
                                        self.args.device, self.args.amp_dtype)
        return self.st_run

    def flops(self) -> dict:
        """FLOP/s of the ST-Adapter step vs a dense matmul's, per step."""
        model, wrapper = self._st_adapter()

        def step():
            model.train_step(self.data, wrapper)

        flops = training_flops(step)
        dtype = getattr(torch, self.args.amp_dtype or 'float32')
        step()
        rates, peaks = [], []
        for _ in range(self.args.repeats):
            peaks.append(matmul_flops_per_s(self.args.matmul_size,
                                            self.args.device, dtype))
            rates.append(flops / interleaved_times(
                {'step': step}, 1, self.args.device, warmup=0)['step'][0])
        return dict(
            train_step_gflops=flops / 1e9,
            achieved_gflops_per_s=statistics.median(rates) / 1e9,
            matmul_gflops_per_s=statistics.median(peaks) / 1e9,
            matmul_best_gflops_per_s=max(peaks) / 1e9,
            share_of_matmul=statistics.median(
                r / p for r, p in zip(rates, peaks)),
            matmul=f'{dtype} torch.mm {self.args.matmul_size}^2, best of 3, '
            'before each timed step')

    def data_loading(self) -> dict:
        """Clips/s of one data worker vs clips/s training consumes."""
        with tempfile.TemporaryDirectory() as tmp:
            video = synthetic_video(osp.join(tmp, 'synthetic.mp4'),
                                    self.args.video_seconds)
            res = pipeline_throughput(self.args.config, self.args.frames,
                                      video, self.args.data_samples)
        if self.st_step_s is None:
            model, wrapper = self._st_adapter()
            self.st_step_s = statistics.median(interleaved_times(
                {'st': lambda: model.train_step(self.data, wrapper)},
                self.args.repeats, self.args.device, warmup=0)['st'])
        res['train_clips_per_s'] = self.args.batch_size / self.st_step_s
        res['workers_needed'] = res['train_clips_per_s'] / res['clips_per_s']
        return res

    def sweep(self) -> dict:
        """:data:`SWEEP_VARIANTS` for every arch and frame count."""
        from stadapter_mm.models import resolve_arch
        runs = []
        for arch in self.args.sweep_archs:
            size = resolve_arch(arch)['input_resolution']
            for frames in self.args.sweep_frames:
                model = reference_model(self.args.config, arch,
                                        self.args.adapter, frames)
                res = measure_training(
                    {k: merged(model, v) for k, v in SWEEP_VARIANTS.items()},
                    make_batch(self.args.batch_size, frames, size), self.args)
                del res['runs']
                runs.append(dict(res, arch=arch, frames=frames))
                if self.args.device.startswith('cuda'):
                    torch.cuda.empty_cache()
        return dict(runs=runs)

    def run(self) -> Dict[str, dict]:
        methods = dict(train=self.train, inference=self.inference,
                       flops=self.flops, data=self.data_loading,
                       sweep=self.sweep)
        for name in self.args.sections:
            print(f'[benchmark] {name} ...', flush=True)
            start = time.perf_counter()
            self.results[name] = methods[name]()
            self.results[name]['wall_s'] = time.perf_counter() - start
        return self.results


def _no_grad(fn: Callable, *inputs, amp_dtype: str = None) -> Callable:
    device = 'cuda' if amp_dtype else 'cpu'

    def run():
        with torch.no_grad(), torch.autocast(
                device, getattr(torch, amp_dtype or 'bfloat16'),
                enabled=bool(amp_dtype)):
            return fn(*inputs)

    return run


# ------------------------------------------------------------------- data
def synthetic_video(path: str, seconds: float, fps: int = 30) -> str:
    """A 320x240 MPEG-4 video like a re-encoded Kinetics clip: a drifting
    texture, a moving disc and square, moving shade bands."""
    import cv2
    from stadapter_mm.utils.video import write_video
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(
        rng.integers(0, 256, (480, 640, 3), np.uint8), (0, 0), 3)
    xs = np.arange(320)[None, :, None]

    def frames():
        for i in range(int(round(seconds * fps))):
            frame = texture[2 * i % 240:][:240, 3 * i % 320:][:, :320].copy()
            cx, cy = (int(160 + 107 * np.sin(i / 15)),
                      int(120 + 80 * np.cos(i / 20)))
            cv2.circle(frame, (cx, cy), 30, (20, 60, 255), -1)
            cv2.rectangle(frame, (295 - cx, cy - 25), (345 - cx, cy + 25),
                          (90, 200, 20), -1)
            yield np.where((xs + 4 * i) % 64 < 32, frame,
                           frame // 2 + 60).astype(np.uint8)

    return write_video(path, frames(), fps)


def pipeline_throughput(config: str, frames: int, video: str,
                        samples: int) -> dict:
    """Clips/s of the config's ``train_pipeline`` on ``video`` with one torch
    and one OpenCV thread, as in a DataLoader worker (2 warm-up clips)."""
    import cv2
    from mmengine.config import Config
    from mmengine.dataset import Compose
    pipeline_cfg = copy.deepcopy(Config.fromfile(config).train_pipeline)
    for step in pipeline_cfg:
        if 'clip_len' in step:  # the frame sampler
            step['clip_len'] = frames
    pipeline = Compose(pipeline_cfg)
    info = dict(filename=video, label=0, start_index=0, modality='RGB')
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        times = [0.0] * (samples + 2)
        for i in range(samples + 2):
            start = time.perf_counter()
            out = pipeline(dict(info))
            times[i] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    return dict(clips_per_s=samples / sum(times[2:]),
                ms_per_clip=1e3 * statistics.median(times[2:]),
                samples=samples, input_shape=list(out['inputs'].shape))


# ---------------------------------------------------------------- report
def summary_rows(results: dict) -> List[dict]:
    """Headline figures (with goals where the project set one)."""
    rows = []

    def add(metric, value, unit='x', goal=None, met=None):
        rows.append(dict(metric=metric, value=value, unit=unit, goal=goal,
                         met=met))

    def add_training(prefix, res):
        for key, r in res['ratios'].items():
            t, goal = r['time']['median'], key.endswith('/full_finetune')
            add(f'{prefix}{key} time', t, goal=goal and '<= 0.8',
                met=t <= 0.8 if goal else None)
            add(f'{prefix}{key} time, fastest runs', r['time']['of_best'])
            if 'memory' in r:
                m = r['memory']
                add(f'{prefix}{key} peak memory', m, goal=goal and '<= 0.5',
                    met=m <= 0.5 if goal else None)
            add(f'{prefix}{key} saved activations', r['saved_activations'])
        for name, v in res['variants'].items():
            if v.get('oom'):
                add(f'{prefix}{name}', 'OOM', '')
                continue
            add(f'{prefix}{name} step', v['step_s'], 's')
            add(f'{prefix}{name} clips/s', v['clips_per_s'], 'clips/s')
            if 'peak_memory_mib' in v:
                add(f'{prefix}{name} peak memory', v['peak_memory_mib'], 'MiB')

    if 'train' in results:
        add_training('train ', results['train'])
    inf = results.get('inference')
    for label, r in ((('inference', inf), ('inference, one block',
                                            (inf or {}).get('one_block')))):
        if r:
            t, f = r['time_ratio']['median'], r['flops_ratio']
            add(f'{label}: time adapted / bare CLIP', t,
                goal=f'<= FLOPs {f:.3f}', met=t <= f)
            add(f'{label}: FLOPs adapted / bare CLIP', f)
            add(f'{label}: time, fastest runs', r['time_ratio']['of_best'])
    fl = results.get('flops')
    if fl:
        add('train step FLOP/s (ST-Adapter)', fl['achieved_gflops_per_s'],
            'GFLOP/s')
        add('dense matmul FLOP/s (same run)', fl['matmul_gflops_per_s'],
            'GFLOP/s')
        add('share of matmul rate', fl['share_of_matmul'])
    data = results.get('data')
    if data:
        add('data pipeline, one worker', data['clips_per_s'], 'clips/s')
        add('training step consumes', data['train_clips_per_s'], 'clips/s')
        add('workers needed', data['workers_needed'], '')
    for run in results.get('sweep', {}).get('runs', []):
        add_training(f'sweep {run["arch"]} {run["frames"]}f ', run)
    return rows


def format_table(rows: List[dict]) -> str:
    """A plain-text table of :func:`summary_rows`."""
    lines = [f'{"metric":62s} {"value":>10s} {"unit":8s} {"goal":16s} met']
    for row in rows:
        value, met = row['value'], row['met']
        value = f'{value:.3f}' if isinstance(value, float) else str(value)
        met = '' if met is None else ('yes' if met else 'NO')
        lines.append(f'{row["metric"]:62s} {value:>10s} {row["unit"]:8s} '
                     f'{row["goal"] or "":16s} {met}')
    return '\n'.join(lines)


# ------------------------------------------------------------------- main
def _json_or_str(value: str) -> Any:
    return json.loads(value) if value.strip().startswith('{') else value


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--sections', help=f'comma list from {SECTIONS} (default '
                   f'CPU: {",".join(CPU_SECTIONS)}; CUDA: '
                   f'{",".join(GPU_SECTIONS)})')
    p.add_argument('--config', default=osp.join(_ROOT, DEFAULT_CONFIG),
                   help='recipe whose model is the reference and whose '
                   'train_pipeline the data section times')
    p.add_argument('--arch', default='ViT-B/16', type=_json_or_str,
                   help='CLIP arch name or JSON dict')
    p.add_argument('--adapter', default='12x384', type=_json_or_str,
                   help='adapter preset or JSON dict')
    p.add_argument('--compare', action='append', default=[],
                   metavar='NAME=SPEC', help='one more training contender, '
                   'reported against st_adapter: a config file (its model) '
                   'or JSON overrides of the reference model, e.g. '
                   '\'cp_all={"backbone": {"with_cp": true}}\'; repeatable')
    p.add_argument('--frames', type=int, default=8)
    p.add_argument('--batch-size', type=int,
                   help='clips per step (default 1 on CPU, 8 on CUDA)')
    p.add_argument('--repeats', type=int, default=5,
                   help='rounds of training steps')
    p.add_argument('--inference-repeats', type=int, default=9)
    p.add_argument('--block-repeats', type=int, default=40,
                   help='rounds of the one-block inference timing')
    p.add_argument('--no-memory', action='store_true',
                   help='skip peak memory (needs Linux on CPU)')
    p.add_argument('--matmul-size', type=int, default=2048)
    p.add_argument('--data-samples', type=int, default=20)
    p.add_argument('--video-seconds', type=float, default=10.0)
    p.add_argument('--sweep-archs', default='ViT-B/16,ViT-L/14',
                   help='comma list of names or a JSON list')
    p.add_argument('--sweep-frames', default='8,32')
    p.add_argument('--amp-dtype', default='float16',
                   choices=['float16', 'bfloat16'], help='CUDA only')
    p.add_argument('--threads', type=int, help='torch CPU threads')
    p.add_argument('--out', help='JSON path (default work_dirs/benchmark/'
                   'benchmark_<device>.json)')
    p.add_argument('--memory-probe', action='store_true',
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda, but torch sees no CUDA device')
    cuda = args.device == 'cuda'
    args.sections = [s.strip() for s in args.sections.split(',')] \
        if args.sections else list(GPU_SECTIONS if cuda else CPU_SECTIONS)
    if set(args.sections) - set(SECTIONS):
        p.error(f'unknown sections in {args.sections}; choose from '
                f'{SECTIONS}')
    args.batch_size = args.batch_size or (8 if cuda else 1)
    for name in ('repeats', 'inference_repeats', 'block_repeats', 'frames',
                 'batch_size', 'data_samples'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    compare = {}
    for item in args.compare:
        name, _, spec = item.partition('=')
        if not name or not spec or name in compare or name in SWEEP_VARIANTS \
                or name == 'st_adapter_cp12':
            p.error(f'--compare {item!r}: expected NAME=SPEC with a new name')
        if not spec.endswith('.py'):
            try:
                assert isinstance(json.loads(spec), dict)
            except (ValueError, AssertionError):
                p.error(f'--compare {item!r}: SPEC must be a config file '
                        '(.py) or a JSON object')
        compare[name] = spec
    args.compare = compare
    args.sweep_archs = json.loads(args.sweep_archs) if args.sweep_archs.\
        startswith('[') else args.sweep_archs.split(',')  # names or dicts
    args.sweep_frames = [int(f) for f in args.sweep_frames.split(',')]
    args.amp_dtype = args.amp_dtype if cuda else None
    args.out = args.out or osp.join('work_dirs', 'benchmark',
                                    f'benchmark_{args.device}.json')
    return args


def main(argv: List[str] = None) -> dict:
    """Run the benchmark; print the table, write and return the report."""
    args = parse_args(argv)
    import stadapter_mm  # noqa: F401  (registers the models)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    # The optimizer constructor warns about every frozen parameter.
    MMLogger.get_instance('benchmark', log_level='ERROR')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        return _memory_probe_main()
    from mmengine.utils.dl_utils import collect_env
    results = Benchmark(args).run()
    env = {k: str(v) for k, v in collect_env().items()
           if k in ('sys.platform', 'Python', 'PyTorch', 'GPU 0', 'MMEngine')}
    if osp.exists('/proc/cpuinfo'):  # Linux: the CPU model
        with open('/proc/cpuinfo') as f:
            env['CPU'] = next((line.split(':', 1)[1].strip() for line in f
                               if line.startswith('model name')), None)
    report = dict(env=dict(env, device=args.device,
                           threads=torch.get_num_threads()),
                  args=vars(args), results=results,
                  summary=summary_rows(results))
    print(format_table(report['summary']))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2, default=str)
    print(f'[benchmark] wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
