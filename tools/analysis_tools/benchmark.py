"""Benchmark ST-Adapter: training and inference cost, FLOP/s, data loading.

One command prints a table and writes JSON; docs/performance.md describes the
method and reports the figures. Contenders run in interleaved rounds (each
once per round, the order rotating) and a figure is the median of per-round
ratios. Sections (``--sections``): ``train`` (ST-Adapter vs full
fine-tuning, ``with_cp=[1, 2]`` and ``--compare`` models: step time, peak
memory, saved activations), ``inference`` (adapted vs bare CLIP tower, and
one block: time vs FLOPs ratio), ``flops`` (training FLOP/s vs a dense
matmul), ``data`` (``train_pipeline`` clips/s in one worker) and ``sweep``
(GPU: AMP, :data:`SWEEP_VARIANTS`, ViT-B/16 and L/14, 8 and 32 frames).
The measurement primitives (timing rounds, peak memory, saved activations,
FLOPs) are :mod:`stadapter_mm.utils.profiling`.

Example::

    python tools/analysis_tools/benchmark.py --threads 1 --repeats 9
    python tools/analysis_tools/benchmark.py --device cuda
    python tools/analysis_tools/benchmark.py --sections train \\
        --compare 'cp_all={"backbone": {"with_cp": true}}'
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from stadapter_mm.utils.profiling import (forward_macs, interleaved_times,
                                          matmul_flops_per_s, peak_memory,
                                          ratio_summary, report_probe_result,
                                          run_memory_probe,
                                          saved_activation_bytes, synchronize,
                                          training_flops)

SECTIONS = ('train', 'inference', 'flops', 'data', 'sweep')
CPU_SECTIONS = ('train', 'inference', 'flops', 'data')
GPU_SECTIONS = ('sweep', 'train', 'inference', 'data')
#: Reference ``model`` and timed ``train_pipeline`` (from the repo root).
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
_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# ----------------------------------------------------------------- models
def merged(cfg: dict, overrides: dict) -> dict:
    """``cfg`` with ``overrides`` merged by mmengine's rules (``_delete_``)."""
    from mmengine.config import Config
    out = Config(dict(model=copy.deepcopy(cfg)))
    out.merge_from_dict(dict(model=copy.deepcopy(overrides)))
    return out.model.to_dict()


def config_model(path: str, frames: int) -> dict:
    """A config's ``model``: random weights, ``frames`` frames if it asks."""
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
    """A ``--compare`` SPEC's model: a config file's or JSON overrides."""
    if spec.endswith('.py'):
        return config_model(spec, frames)
    return merged(reference, json.loads(spec))


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


def build_model(cfg: dict) -> nn.Module:
    """A model with non-zero temporal convolutions, as trained adapters
    have (a fresh adapter is the identity)."""
    from mmaction.registry import MODELS
    from stadapter_mm.models import STConvAdapter
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, STConvAdapter):
                m.conv.weight.copy_(
                    torch.randn(m.conv.weight.shape, generator=gen) * 0.1)
    return model


def build_trained(cfg: dict, data: dict, device: str,
                  amp_dtype: str = None) -> Tuple[nn.Module, Any]:
    """A recognizer and its AdamW wrapper (``AmpOptimWrapper`` with
    ``amp_dtype``) after two steps (the optimizer state exists)."""
    from mmengine.optim import build_optim_wrapper
    model = build_model(cfg).to(device).train()
    wrapper = build_optim_wrapper(model, dict(
        type='AmpOptimWrapper' if amp_dtype else 'OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
        paramwise_cfg=dict(bias_decay_mult=0.0),
        **(dict(dtype=amp_dtype) if amp_dtype else {})))
    for _ in range(2):
        model.train_step(data, wrapper)
    synchronize(device)
    return model, wrapper


# ---------------------------------------------------------------- measure
def probe_cpu_memory(request: dict) -> List[int]:
    """Peak CPU memory of building and training each of ``request['cfgs']``,
    measured in a child process (this script with ``--memory-probe``)."""
    return run_memory_probe(
        [sys.executable, osp.abspath(__file__), '--memory-probe'], request)


def _memory_probe_main() -> None:
    """Child side of :func:`probe_cpu_memory` (request on stdin)."""
    request = json.loads(sys.stdin.read())
    torch.set_num_threads(request['threads'])
    data = make_batch(*request['batch'])
    # An unmeasured first build: one-time allocations (thread pools, kernel
    # caches) must not count against the first model.
    build_trained(request['cfgs'][0], data, 'cpu')
    report_probe_result([
        peak_memory(lambda c=cfg: build_trained(c, data, 'cpu'), 'cpu')[0]
        for cfg in request['cfgs']])


def measure_training(cfgs: Dict[str, dict], data: dict, args,
                     pairs: Sequence[Tuple[str, str]] = RATIO_PAIRS) -> dict:
    """Build, train and time each model in interleaved rounds.

    Returns:
        dict: ``variants`` (per model: parameters, saved activations, peak
        memory, step time, or ``oom``), ``ratios`` (``'num/den'`` for each
        of ``pairs`` that ran) and ``runs`` (name -> (model, wrapper)).
    """
    cuda, clips = args.device.startswith('cuda'), len(data['inputs'])
    peaks, variants, runs = {}, {}, {}
    if not (args.no_memory or cuda):
        shape = data['inputs'][0].shape
        peaks = dict(zip(cfgs, probe_cpu_memory(dict(
            cfgs=list(cfgs.values()), batch=(clips, shape[2], shape[4]),
            threads=torch.get_num_threads()))))
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

        runs[name] = (model, wrapper)
        params = list(model.parameters())
        variants[name] = dict(
            trainable_params=sum(p.numel() for p in params if p.requires_grad),
            total_params=sum(p.numel() for p in params),
            saved_activations_mib=saved_activation_bytes(forward, model) /
            2**20)
        if name in peaks:
            variants[name]['peak_memory_mib'] = peaks[name] / 2**20
    times = interleaved_times(
        {k: (lambda m=m, w=w: m.train_step(data, w))
         for k, (m, w) in runs.items()}, args.repeats, args.device, warmup=0,
        progress=True)
    ratios = {}
    for name, ts in times.items():
        step = statistics.median(ts)
        variants[name].update(step_s=step, best_step_s=min(ts),
                              clips_per_s=clips / step)
    for num, den in ((n, d) for n, d in pairs if n in times and d in times):
        a, b = variants[num], variants[den]
        r = ratios[f'{num}/{den}'] = dict(
            time=ratio_summary(times[num], times[den]),
            saved_activations=a['saved_activations_mib'] /
            b['saved_activations_mib'])
        if 'peak_memory_mib' in a and 'peak_memory_mib' in b:
            r['memory'] = a['peak_memory_mib'] / b['peak_memory_mib']
    return dict(variants=variants, ratios=ratios, runs=runs)


# --------------------------------------------------------------- sections
class Benchmark:
    """Runs the sections of ``args.sections``.

    Args:
        args (argparse.Namespace): From :func:`parse_args`.

    Attributes:
        results (dict): Section name -> its figures (the JSON's ``results``).
        rows (list[dict]): The headline figures (the JSON's ``summary``),
            with the goal where the project set one.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        from stadapter_mm.models import resolve_arch
        self.args, self.arch = args, resolve_arch(args.arch)
        self.model = reference_model(args.config, args.arch, args.adapter,
                                     args.frames)
        self.data = make_batch(args.batch_size, args.frames,
                               self.arch['input_resolution'])
        self.results: Dict[str, dict] = {}
        self.rows: List[dict] = []
        self.st_run = None  # trained ST-Adapter (model, wrapper)

    def run(self) -> Dict[str, dict]:
        for name in self.args.sections:
            print(f'[benchmark] {name} ...', flush=True)
            start = time.perf_counter()
            self.results[name] = getattr(self, f'{name}_section')()
            self.results[name]['wall_s'] = time.perf_counter() - start
        return self.results

    def add(self, metric: str, value: Any, unit: str = 'x',
            limit: float = None, goal: str = None) -> None:
        """One table row; ``limit``: the goal is a value at or below it."""
        self.rows.append(dict(
            metric=metric, value=value, unit=unit,
            goal=goal or (None if limit is None else f'<= {limit}'),
            met=None if limit is None else value <= limit))

    def add_training(self, prefix: str, res: dict) -> None:
        """Rows of a :func:`measure_training` result."""
        for key, r in res['ratios'].items():
            vs_full = key.endswith('/full_finetune')
            self.add(f'{prefix}{key} time', r['time']['median'],
                     limit=0.8 if vs_full else None)
            self.add(f'{prefix}{key} time, fastest runs', r['time']['of_best'])
            if 'memory' in r:
                self.add(f'{prefix}{key} peak memory', r['memory'],
                         limit=0.5 if vs_full else None)
            self.add(f'{prefix}{key} saved activations',
                     r['saved_activations'])
        for name, v in res['variants'].items():
            if v.get('oom'):
                self.add(f'{prefix}{name}', 'OOM', '')
                continue
            self.add(f'{prefix}{name} step', v['step_s'], 's')
            self.add(f'{prefix}{name} clips/s', v['clips_per_s'], 'clips/s')
            if 'peak_memory_mib' in v:
                self.add(f'{prefix}{name} peak memory', v['peak_memory_mib'],
                         'MiB')

    def train_section(self) -> dict:
        """ST-Adapter vs full fine-tuning, ``with_cp=[1, 2]`` and the
        ``--compare`` models (those against ST-Adapter)."""
        cp12 = [i for i in (1, 2) if i < self.arch['layers']]
        cfgs = dict(st_adapter=self.model,
                    full_finetune=merged(self.model, dict(
                        backbone=dict(unfreeze='all'))),
                    st_adapter_cp12=merged(self.model, dict(
                        backbone=dict(with_cp=cp12))))
        for name, spec in self.args.compare.items():
            cfgs[name] = compare_model(spec, self.model, self.args.frames)
        res = measure_training(cfgs, self.data, self.args, RATIO_PAIRS + tuple(
            (name, 'st_adapter') for name in self.args.compare))
        self.st_run = res.pop('runs')['st_adapter']
        self.add_training('train ', res)
        return dict(res, cp12_blocks=cp12)

    def inference_section(self) -> dict:
        """Adapted backbone, and its last block (on the tokens it sees in
        the model), vs the bare CLIP tower: time and FLOPs ratios."""
        args, cfg = self.args, self.model['backbone']
        models = dict(adapted=build_model(cfg).eval(),
                      bare=build_model(dict(cfg, adapter=None)).eval())
        models['bare'].load_state_dict(models['adapted'].state_dict(),
                                       strict=False)
        x = torch.randn(args.batch_size, 3, args.frames,
                        *[self.arch['input_resolution']] * 2,
                        generator=torch.Generator().manual_seed(0))
        macs = {k: forward_macs(m, x) for k, m in models.items()}
        blocks = {k: m.transformer.resblocks[-1] for k, m in models.items()}
        inputs = []  # the last block's inputs in the adapted model
        hook = blocks['adapted'].register_forward_pre_hook(
            lambda _, block_inputs: inputs.append(block_inputs))
        x = x.to(args.device)
        fns = {k: functools.partial(m.to(args.device), x)
               for k, m in models.items()}
        with torch.no_grad(), torch.autocast(
                args.device, getattr(torch, args.amp_dtype or 'bfloat16'),
                enabled=bool(args.amp_dtype)):
            fns['adapted']()
            hook.remove()
            block_fns = {k: functools.partial(b, *inputs[0])
                         for k, b in blocks.items()}
            times = interleaved_times(fns, args.inference_repeats,
                                      args.device, progress=True)
            block_times = interleaved_times(block_fns, args.block_repeats,
                                            args.device, warmup=2,
                                            progress=True)

        def versus(label, times, module, scale, unit):
            f = macs['adapted'][module] / macs['bare'][module]
            res = dict(time_ratio=ratio_summary(times['adapted'],
                                                times['bare']), flops_ratio=f)
            for k in models:
                res[f'{k}_{unit}'] = scale * statistics.median(times[k])
                res[f'{k}_gmacs'] = macs[k][module] / 1e9
            self.add(f'{label}: time adapted / bare CLIP',
                     res['time_ratio']['median'], limit=f,
                     goal=f'<= FLOPs {f:.3f}')
            self.add(f'{label}: FLOPs adapted / bare CLIP', f)
            self.add(f'{label}: time, fastest runs',
                     res['time_ratio']['of_best'])
            return res

        res = versus('inference', times, '', 1, 's')
        res['one_block'] = versus(
            'inference, one block', block_times,
            f'transformer.resblocks.{self.arch["layers"] - 1}', 1e3, 'ms')
        return res

    def _st_adapter(self) -> Tuple[nn.Module, Any]:
        if self.st_run is None:
            self.st_run = build_trained(self.model, self.data,
                                        self.args.device, self.args.amp_dtype)
        return self.st_run

    def flops_section(self) -> dict:
        """FLOP/s of the ST-Adapter step vs a dense matmul's, per step."""
        args, (model, wrapper) = self.args, self._st_adapter()

        def step():
            model.train_step(self.data, wrapper)

        flops = training_flops(step)
        dtype = getattr(torch, args.amp_dtype or 'float32')
        step()
        rates, peaks = [], []
        for _ in range(args.repeats):
            peaks.append(matmul_flops_per_s(args.matmul_size, args.device,
                                            dtype))
            rates.append(flops / interleaved_times(
                {'step': step}, 1, args.device, warmup=0)['step'][0])
        res = dict(
            train_step_gflops=flops / 1e9,
            achieved_gflops_per_s=statistics.median(rates) / 1e9,
            matmul_gflops_per_s=statistics.median(peaks) / 1e9,
            matmul_best_gflops_per_s=max(peaks) / 1e9,
            share_of_matmul=statistics.median(
                r / p for r, p in zip(rates, peaks)),
            matmul=f'{dtype} torch.mm {args.matmul_size}^2, best of 3, '
            'before each timed step')
        self.add('train step FLOP/s (ST-Adapter)',
                 res['achieved_gflops_per_s'], 'GFLOP/s')
        self.add('dense matmul FLOP/s (same run)', res['matmul_gflops_per_s'],
                 'GFLOP/s')
        self.add('share of matmul rate', res['share_of_matmul'])
        return res

    def data_section(self) -> dict:
        """Clips/s of one data worker vs clips/s training consumes."""
        args = self.args
        with tempfile.TemporaryDirectory() as tmp:
            video = synthetic_video(osp.join(tmp, 'synthetic.mp4'),
                                    args.video_seconds)
            res = pipeline_throughput(args.config, args.frames, video,
                                      args.data_samples)
        step_s = self.results.get('train', {}).get('variants', {}).get(
            'st_adapter', {}).get('step_s')
        if step_s is None:
            model, wrapper = self._st_adapter()
            step_s = statistics.median(interleaved_times(
                {'st': lambda: model.train_step(self.data, wrapper)},
                args.repeats, args.device, warmup=0)['st'])
        res['train_clips_per_s'] = args.batch_size / step_s
        res['workers_needed'] = res['train_clips_per_s'] / res['clips_per_s']
        self.add('data pipeline, one worker', res['clips_per_s'], 'clips/s')
        self.add('training step consumes', res['train_clips_per_s'],
                 'clips/s')
        self.add('workers needed', res['workers_needed'], '')
        return res

    def sweep_section(self) -> dict:
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
                self.add_training(f'sweep {arch} {frames}f ', res)
                if self.args.device.startswith('cuda'):
                    torch.cuda.empty_cache()
        return dict(runs=runs)


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
    pipeline, outs = Compose(pipeline_cfg), []
    info = dict(filename=video, label=0, start_index=0, modality='RGB')
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        times = interleaved_times(
            {'clip': lambda: outs.append(pipeline(dict(info)))}, samples,
            warmup=2)['clip']
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    return dict(clips_per_s=samples / sum(times),
                ms_per_clip=1e3 * statistics.median(times), samples=samples,
                input_shape=list(outs[-1]['inputs'].shape))


# ------------------------------------------------------------------- main
def format_table(rows: List[dict]) -> str:
    """The summary rows as a plain-text table."""
    lines = [('metric', 'value', 'unit', 'goal', 'met')] + [(
        r['metric'], f'{r["value"]:.3f}' if isinstance(r['value'], float)
        else str(r['value']), r['unit'], r['goal'] or '',
        {None: '', True: 'yes', False: 'NO'}[r['met']]) for r in rows]
    return '\n'.join(f'{m:62s} {v:>10s} {u:8s} {g:16s} {ok}'
                     for m, v, u, g, ok in lines)


def _json_or_str(value: str) -> Any:
    return json.loads(value) if value.strip()[:1] in ('{', '[') else value


def _positive(value: str) -> int:
    if int(value) < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return int(value)


def _compare(item: str) -> Tuple[str, str]:
    name, _, spec = item.partition('=')
    try:
        ok = spec.endswith('.py') or isinstance(json.loads(spec), dict)
    except ValueError:
        ok = False
    if not ok or not name or name in SWEEP_VARIANTS or \
            name == 'st_adapter_cp12':
        raise argparse.ArgumentTypeError(
            f'{item!r}: expected NAME=SPEC, a new NAME and as SPEC a config '
            'file (.py) or a JSON object')
    return name, spec


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
    p.add_argument('--compare', action='append', default=[], type=_compare,
                   metavar='NAME=SPEC', help='one more training contender, '
                   'against st_adapter: a config file (its model) or JSON '
                   'overrides of the reference model, e.g. '
                   '\'cp_all={"backbone": {"with_cp": true}}\'; repeatable')
    for name, default, help_ in (
            ('frames', 8, None), ('batch-size', None, 'clips per step '
                                  '(default 1 on CPU, 8 on CUDA)'),
            ('repeats', 5, 'rounds of training steps'),
            ('inference-repeats', 9, None),
            ('block-repeats', 40, 'rounds of the one-block inference timing'),
            ('matmul-size', 2048, None), ('data-samples', 20, None),
            ('threads', None, 'torch CPU threads')):
        p.add_argument(f'--{name}', type=_positive, default=default,
                       help=help_)
    p.add_argument('--no-memory', action='store_true',
                   help='skip peak memory (needs Linux on CPU)')
    p.add_argument('--video-seconds', type=float, default=10.0)
    p.add_argument('--sweep-archs', default='ViT-B/16,ViT-L/14',
                   type=_json_or_str, help='comma list or JSON list')
    p.add_argument('--sweep-frames', default='8,32')
    p.add_argument('--amp-dtype', default='float16',
                   choices=['float16', 'bfloat16'], help='CUDA only')
    p.add_argument('--out', help='JSON path (default work_dirs/benchmark/'
                   'benchmark_<device>.json)')
    p.add_argument('--memory-probe', action='store_true',
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cuda, names = args.device == 'cuda', [n for n, _ in args.compare]
    if cuda and not torch.cuda.is_available():
        p.error('--device cuda, but torch sees no CUDA device')
    args.sections = [s.strip() for s in args.sections.split(',')] \
        if args.sections else list(GPU_SECTIONS if cuda else CPU_SECTIONS)
    if set(args.sections) - set(SECTIONS):
        p.error(f'unknown sections in {args.sections}; from {SECTIONS}')
    if len(set(names)) < len(names):
        p.error(f'--compare: a NAME twice in {names}')
    args.compare = dict(args.compare)
    args.batch_size = args.batch_size or (8 if cuda else 1)
    if isinstance(args.sweep_archs, str):
        args.sweep_archs = args.sweep_archs.split(',')
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
    from mmengine.utils.dl_utils import collect_env
    init_default_scope('mmaction')
    # The optimizer constructor warns about every frozen parameter.
    MMLogger.get_instance('benchmark', log_level='ERROR')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        return _memory_probe_main()
    bench = Benchmark(args)
    env = {k: str(v) for k, v in collect_env().items()
           if k in ('sys.platform', 'Python', 'PyTorch', 'GPU 0', 'MMEngine')}
    if osp.exists('/proc/cpuinfo'):  # Linux: the CPU model
        with open('/proc/cpuinfo') as f:
            env['CPU'] = next((line.split(':', 1)[1].strip() for line in f
                               if line.startswith('model name')), None)
    report = dict(env=dict(env, device=args.device,
                           threads=torch.get_num_threads()),
                  args=vars(args), results=bench.run(), summary=bench.rows)
    print(format_table(report['summary']))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2, default=str)
    print(f'[benchmark] wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
