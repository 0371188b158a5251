"""Benchmark ST-Adapter: training and inference cost, FLOP/s, data loading.

One command prints a table and writes JSON. Every comparison is a ratio
measured within this run, over interleaved rounds (median), so that a shared
and noisy machine slows all contenders alike. Sections (``--sections``):

- ``train``: a training step (data preprocessing, forward, loss, backward,
  AdamW) of ST-Adapter against full fine-tuning of the same network
  (``unfreeze='all'``): time ratio, peak-memory ratio, saved activations;
  also ST-Adapter with blocks 1 and 2 under activation checkpointing, an
  operating point that trades a little time for memory.
- ``inference``: the adapted backbone against the bare CLIP image tower
  (``adapter=None``, same weights) on the same frames: time ratio against
  the FLOPs ratio counted by ``mmengine.analysis``; the same for one block
  alone (many cheap rounds).
- ``flops``: FLOP/s achieved by the ST-Adapter training step (FLOPs counted
  by ``torch.utils.flop_counter``) as a share of this machine's dense fp32
  matmul throughput, probed between the timed steps.
- ``data``: clips per second of the config's ``train_pipeline`` (decord
  decoding plus augmentation) in one worker, against the clips per second
  the training step consumes.
- ``ablation``: each speed optimisation of the backbone against its plain
  version (``reference_impl.py``), in the whole model (time, peak memory)
  and alone at the model's token shapes (many cheap rounds: precise
  before/after time ratios); and gradient checkpointing of every block.
- ``sweep`` (``--device cuda``): AMP throughput and peak memory for
  ViT-B/16 and ViT-L/14 at 8 and 32 frames, ST-Adapter vs full fine-tuning.

Example (real size, CPU)::

    python tools/analysis_tools/benchmark.py
    python tools/analysis_tools/benchmark.py --device cuda
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
from typing import Any, Callable, Dict, List

_HERE = osp.dirname(osp.abspath(__file__))
_ROOT = osp.dirname(osp.dirname(_HERE))
for _path in (_ROOT, _HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch  # noqa: E402

import bench_common as bc  # noqa: E402

CPU_SECTIONS = ('train', 'inference', 'flops', 'data', 'ablation')
GPU_SECTIONS = ('sweep', 'train', 'inference', 'data')
ALL_SECTIONS = ('train', 'inference', 'flops', 'data', 'ablation', 'sweep')

#: Ablation variants of the ST-Adapter model: name -> variant options
#: (``parts``: plain versions from ``reference_impl``; ``cp_blocks``: blocks
#: to checkpoint; anything else goes to ``recognizer_cfg``).
ABLATION_VARIANTS = {
    'plain_adapter': dict(parts=['adapter']),
    'plain_quick_gelu': dict(parts=['quick_gelu']),
    'plain_attention': dict(parts=['attention']),
    'with_cp': dict(with_cp=True),
}


def _json_or_str(value: str) -> Any:
    value = value.strip()
    return json.loads(value) if value.startswith('{') else value


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--arch', default='ViT-B/16', type=_json_or_str,
                   help='arch name or JSON dict (ViTCLIPSTAdapter arch)')
    p.add_argument('--adapter', default='12x384', type=_json_or_str,
                   help='adapter preset or JSON dict')
    p.add_argument('--frames', type=int, default=8)
    p.add_argument('--batch-size', type=int, default=None,
                   help='clips per step (default 1 on CPU, 8 on CUDA)')
    p.add_argument('--sections', default=None,
                   help=f'comma list from {ALL_SECTIONS} (default CPU: '
                   f'{",".join(CPU_SECTIONS)}; CUDA: '
                   f'{",".join(GPU_SECTIONS)})')
    p.add_argument('--repeats', type=int, default=5,
                   help='interleaved rounds of training steps')
    p.add_argument('--inference-repeats', type=int, default=9)
    p.add_argument('--ablation-repeats', type=int, default=3)
    p.add_argument('--component-repeats', type=int, default=30,
                   help='rounds for timing each optimised part alone')
    p.add_argument('--no-memory', action='store_true',
                   help='skip peak-memory figures')
    p.add_argument('--matmul-size', type=int, default=2048)
    p.add_argument('--pipeline-config', default=None,
                   help='training config whose train_pipeline is timed')
    p.add_argument('--data-samples', type=int, default=20)
    p.add_argument('--video-seconds', type=float, default=10.0)
    p.add_argument('--sweep-archs', default='ViT-B/16,ViT-L/14')
    p.add_argument('--sweep-frames', default='8,32')
    p.add_argument('--amp-dtype', default='float16',
                   choices=['float16', 'bfloat16'])
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch default)')
    p.add_argument('--out', default=None,
                   help='JSON path (default work_dirs/benchmark/'
                   'benchmark_<device>.json)')
    args = p.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda but torch sees no CUDA device.')
    sections = (args.sections.split(',') if args.sections else
                (GPU_SECTIONS if args.device == 'cuda' else CPU_SECTIONS))
    bad = sorted(set(sections) - set(ALL_SECTIONS))
    if bad:
        p.error(f'unknown sections {bad}; choose from {ALL_SECTIONS}')
    args.sections = [s.strip() for s in sections]
    if args.batch_size is None:
        args.batch_size = 8 if args.device == 'cuda' else 1
    for name in ('repeats', 'inference_repeats', 'ablation_repeats',
                 'component_repeats', 'batch_size', 'frames',
                 'data_samples'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    args.amp = args.device == 'cuda'
    args.out = args.out or osp.join('work_dirs', 'benchmark',
                                    f'benchmark_{args.device}.json')
    return args


class Bench:
    """Runs the sections and collects their results.

    Args:
        args (argparse.Namespace): Parsed command line.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = args.device
        backbone_cls = _backbone_cls()
        self.size = backbone_cls._resolve_arch(args.arch,
                                               None)['input_resolution']
        self.data = bc.make_batch(args.batch_size, args.frames, self.size)
        self.results: Dict[str, Any] = {}
        self.st_step_s = None
        self._cpu_peaks: Dict[str, int] = {}

    # ------------------------------------------------------------ helpers
    def _cfg(self, **kwargs) -> dict:
        return bc.recognizer_cfg(self.args.arch, self.args.adapter,
                                 self.args.frames, **kwargs)

    def _train_fn(self, model, wrapper) -> Callable[[], Any]:
        return lambda: model.train_step(self.data, wrapper)

    def _spec(self, parts=(), cp_blocks=(), **cfg_kwargs) -> dict:
        return dict(cfg=self._cfg(**cfg_kwargs), parts=list(parts),
                    cp_blocks=list(cp_blocks))

    def _memory(self, specs: Dict[str, dict]) -> Dict[str, float]:
        """Peak memory (MiB) of each variant; empty with --no-memory."""
        if self.args.no_memory:
            return {}
        if self.device.startswith('cuda'):
            out = {}
            for name, spec in specs.items():
                peak, trained = bc.peak_memory(
                    lambda spec=spec: bc.build_trained(
                        spec, self.data, self.device, self.args.amp,
                        self.args.amp_dtype), self.device)
                del trained
                out[name] = peak / 2**20
            return out
        missing = {n: sp for n, sp in specs.items()
                   if _spec_key(sp) not in self._cpu_peaks}
        if missing:
            self._probe_cpu(list(missing.values()))
        return {n: self._cpu_peaks[_spec_key(sp)] / 2**20
                for n, sp in specs.items()}

    def _probe_cpu(self, specs: List[dict]) -> None:
        """Measure CPU peak memory of variants in one probe process."""
        from bench_memory import probe
        unique = {_spec_key(sp): sp for sp in specs}
        unique = {k: v for k, v in unique.items() if k not in self._cpu_peaks}
        if not unique:
            return
        print(f'[benchmark] peak memory of {len(unique)} variants '
              '(separate process) ...', flush=True)
        peaks = probe(list(unique.values()), self.args.batch_size,
                      self.args.frames, self.size, self.args.threads)
        self._cpu_peaks.update(zip(unique, peaks))

    def _build_runs(self, specs: Dict[str, dict]) -> Dict[str, dict]:
        """Memory of each variant, then build and warm them all for timing.

        Returns:
            dict: name -> ``model``, ``wrapper`` and ``stats`` (peak memory,
            saved activations, parameter counts).
        """
        memory = self._memory(specs)
        runs = {}
        for name, spec in specs.items():
            model, wrapper = bc.build_trained(spec, self.data, self.device,
                                              self.args.amp,
                                              self.args.amp_dtype)

            def forward_loss(model=model, wrapper=wrapper):
                with wrapper.optim_context(model):
                    batch = model.data_preprocessor(self.data, True)
                    model(**batch, mode='loss')

            stats = dict(
                saved_activations_mib=bc.saved_activation_bytes(
                    forward_loss, model) / 2**20,
                trainable_params=sum(p.numel() for p in model.parameters()
                                     if p.requires_grad),
                total_params=sum(p.numel() for p in model.parameters()))
            if name in memory:
                stats['peak_memory_mib'] = memory[name]
            runs[name] = dict(model=model, wrapper=wrapper, stats=stats)
        return runs

    def _train_specs(self) -> Dict[str, dict]:
        return {'st_adapter': self._spec(),
                'full_finetune': self._spec(unfreeze='all'),
                'st_adapter_cp2': self._spec(cp_blocks=self._cp2_blocks())}

    def _cp2_blocks(self) -> List[int]:
        """Blocks 1 and 2: checkpointing early blocks lowers the peak, which
        comes at the start of backward (block 0 saves little)."""
        layers = _backbone_cls()._resolve_arch(self.args.arch,
                                               None)['layers']
        return [i for i in (1, 2) if i < layers]

    def _ablation_specs(self) -> Dict[str, dict]:
        specs = {'optimized': self._spec()}
        for name, kwargs in ABLATION_VARIANTS.items():
            specs[name] = self._spec(**kwargs)
        return specs

    # ----------------------------------------------------------- sections
    def train(self) -> dict:
        runs = self._build_runs(self._train_specs())
        times = bc.interleaved_times(
            {k: self._train_fn(v['model'], v['wrapper'])
             for k, v in runs.items()}, self.args.repeats, self.device,
            warmup=0)
        res = {k: dict(v['stats'], step_s=statistics.median(times[k]),
                       best_step_s=min(times[k]))
               for k, v in runs.items()}
        self.st_step_s = res['st_adapter']['step_s']
        full = res['full_finetune']
        for name, suffix in (('st_adapter', ''), ('st_adapter_cp2', '_cp2')):
            res['time_ratio' + suffix] = bc.ratio_summary(
                times[name], times['full_finetune'])
            if 'peak_memory_mib' in res[name]:
                res['memory_ratio' + suffix] = (res[name]['peak_memory_mib'] /
                                                full['peak_memory_mib'])
            res['saved_activations_ratio' + suffix] = (
                res[name]['saved_activations_mib'] /
                full['saved_activations_mib'])
        res['cp2_blocks'] = self._cp2_blocks()
        self._st_run = runs['st_adapter']
        return res

    def inference(self) -> dict:
        from mmaction.registry import MODELS
        args = self.args
        torch.manual_seed(0)
        adapted = MODELS.build(
            dict(type='ViTCLIPSTAdapter', arch=args.arch,
                 adapter=args.adapter, num_frames=args.frames))
        with torch.no_grad():
            for adapter in adapted.adapters():
                adapter.conv.weight.normal_(0.0, 0.1)
        bare = MODELS.build(
            dict(type='ViTCLIPSTAdapter', arch=args.arch, adapter=None,
                 num_frames=args.frames))
        bare.load_state_dict(adapted.state_dict(), strict=False)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch_size, 3, args.frames, self.size,
                        self.size, generator=gen)
        macs = {'adapted': bc.forward_macs(adapted, x),
                'bare': bc.forward_macs(bare, x)}
        models = {'adapted': adapted, 'bare': bare}
        x = x.to(self.device)
        fns = {}
        for name, model in models.items():
            model.to(self.device).eval()
            fns[name] = _inference_fn(model, x, self.device, args.amp)
        times = bc.interleaved_times(fns, args.inference_repeats,
                                     self.device, warmup=1)
        res = {
            'adapted_s': statistics.median(times['adapted']),
            'bare_s': statistics.median(times['bare']),
            'adapted_best_s': min(times['adapted']),
            'bare_best_s': min(times['bare']),
            'adapted_gmacs': macs['adapted'] / 1e9,
            'bare_gmacs': macs['bare'] / 1e9,
            'flops_ratio': macs['adapted'] / macs['bare'],
            'time_ratio': bc.ratio_summary(times['adapted'], times['bare']),
        }
        res['overhead_vs_flops'] = ((res['time_ratio']['median'] - 1) /
                                    (res['flops_ratio'] - 1))
        if not self.device.startswith('cuda'):
            from bench_components import block_inference_ratio
            arch = _backbone_cls()._resolve_arch(args.arch, None)
            res['one_block'] = block_inference_ratio(
                arch, args.adapter, args.batch_size, args.frames,
                args.component_repeats)
        return res

    def flops(self) -> dict:
        run = getattr(self, '_st_run', None)
        if run is None:
            model, wrapper = bc.build_trained(self._spec(), self.data,
                                              self.device, self.args.amp,
                                              self.args.amp_dtype)
            run = dict(model=model, wrapper=wrapper)
        step = self._train_fn(run['model'], run['wrapper'])
        flops = bc.training_flops(step)
        achieved, peaks, shares = [], [], []
        step()
        dtype = getattr(torch, self.args.amp_dtype) if self.args.amp \
            else torch.float32
        for _ in range(self.args.repeats):
            peak = bc.matmul_flops_per_s(self.args.matmul_size, self.device,
                                         dtype=dtype)
            bc.synchronize(self.device)
            start = _now()
            step()
            bc.synchronize(self.device)
            rate = flops / (_now() - start)
            achieved.append(rate)
            peaks.append(peak)
            shares.append(rate / peak)
        return dict(
            train_step_gflops=flops / 1e9,
            achieved_gflops_per_s=statistics.median(achieved) / 1e9,
            matmul_gflops_per_s=statistics.median(peaks) / 1e9,
            matmul_best_gflops_per_s=max(peaks) / 1e9,
            share_of_matmul=statistics.median(shares),
            matmul=f'{str(dtype).split(".")[-1]} torch.mm '
            f'{self.args.matmul_size}^2, best of 3, probed before each '
            'timed step')

    def data_loading(self) -> dict:
        import bench_data
        config = self.args.pipeline_config or osp.join(
            _ROOT, bench_data.DEFAULT_PIPELINE_CONFIG)
        pipeline = bench_data.load_train_pipeline(config, self.args.frames)
        with tempfile.TemporaryDirectory() as tmp:
            video = bench_data.write_video(
                osp.join(tmp, 'synthetic.mp4'),
                seconds=self.args.video_seconds)
            res = bench_data.pipeline_throughput(
                pipeline, video, samples=self.args.data_samples)
        if self.st_step_s is None:
            model, wrapper = bc.build_trained(self._spec(), self.data,
                                              self.device, self.args.amp,
                                              self.args.amp_dtype)
            step = self._train_fn(model, wrapper)
            self.st_step_s = statistics.median(
                bc.interleaved_times({'st': step}, self.args.repeats,
                                     self.device, warmup=0)['st'])
        consumed = self.args.batch_size / self.st_step_s
        res.update(
            config=osp.relpath(config, _ROOT),
            train_clips_per_s=consumed,
            workers_needed=consumed / res['clips_per_s'])
        return res

    def ablation(self) -> dict:
        specs = self._ablation_specs()
        runs = self._build_runs(specs)
        times = bc.interleaved_times(
            {k: self._train_fn(v['model'], v['wrapper'])
             for k, v in runs.items()}, self.args.ablation_repeats,
            self.device, warmup=0)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(self.args.batch_size, 3, self.args.frames,
                        self.size, self.size, generator=gen).to(self.device)
        infer = {
            k: _inference_fn(v['model'].backbone, x, self.device,
                             self.args.amp)
            for k, v in runs.items() if not k.startswith('with_cp')
        }
        for k in infer:
            runs[k]['model'].eval()
        itimes = bc.interleaved_times(infer, self.args.inference_repeats,
                                      self.device, warmup=1)
        base = runs['optimized']['stats']
        res = {'optimized': dict(base, step_s=statistics.median(
            times['optimized']))}
        for name in ABLATION_VARIANTS:
            stats = runs[name]['stats']
            entry = dict(
                step_s=statistics.median(times[name]),
                train_time_ratio=bc.ratio_summary(times[name],
                                                  times['optimized']),
                saved_activations_ratio=stats['saved_activations_mib'] /
                base['saved_activations_mib'])
            if 'peak_memory_mib' in stats:
                entry['peak_memory_ratio'] = (stats['peak_memory_mib'] /
                                              base['peak_memory_mib'])
            if name in itimes:
                entry['inference_time_ratio'] = bc.ratio_summary(
                    itimes[name], itimes['optimized'])
            res[name] = dict(stats, **entry)
        if not self.device.startswith('cuda'):
            from bench_components import component_ratios
            cls = _backbone_cls()
            arch = cls._resolve_arch(self.args.arch, None)
            adapter = cls._resolve_adapter(self.args.adapter, arch['width'],
                                           arch['layers'])
            res['components'] = component_ratios(
                arch, adapter, self.args.batch_size, self.args.frames,
                self.args.component_repeats)
        return res

    def sweep(self) -> dict:
        from bench_sweep import sweep
        archs = [_json_or_str(a) for a in _split_archs(self.args.sweep_archs)]
        frames = [int(f) for f in self.args.sweep_frames.split(',')]
        return dict(runs=sweep(archs, frames, self.args.adapter,
                               self.args.batch_size, self.args.repeats,
                               self.device, self.args.amp,
                               self.args.amp_dtype))

    def run(self) -> dict:
        methods = dict(train=self.train, inference=self.inference,
                       flops=self.flops, data=self.data_loading,
                       ablation=self.ablation, sweep=self.sweep)
        if not self.args.no_memory and not self.device.startswith('cuda'):
            # One probe process for every variant, before any timing.
            specs = []
            if 'train' in self.args.sections:
                specs += list(self._train_specs().values())
            if 'ablation' in self.args.sections:
                specs += list(self._ablation_specs().values())
            self._probe_cpu(specs)
        for name in self.args.sections:
            print(f'[benchmark] {name} ...', flush=True)
            start = _now()
            self.results[name] = methods[name]()
            self.results[name]['wall_s'] = _now() - start
            gc.collect()
        return self.results


def _backbone_cls():
    import stadapter_mm  # noqa: F401  (registers the backbone)
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    return MODELS.get('ViTCLIPSTAdapter')


def _spec_key(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def _split_archs(text: str) -> List[str]:
    """Split a comma list of archs, keeping JSON dicts whole."""
    if text.strip().startswith('['):
        return [json.dumps(a) if isinstance(a, dict) else a
                for a in json.loads(text)]
    return [a.strip() for a in text.split(',') if a.strip()]


def _now() -> float:
    import time
    return time.perf_counter()


def _inference_fn(model, x, device: str, amp: bool) -> Callable[[], Any]:
    def fn():
        with torch.no_grad(), torch.autocast(
                device_type=device, enabled=amp and device == 'cuda'):
            return model(x)

    return fn


def summary_rows(results: dict) -> List[dict]:
    """Headline figures with their goals, for the table and the JSON."""
    rows = []

    def add(metric, value, goal=None, met=None, unit=''):
        rows.append(dict(metric=metric, value=value, unit=unit, goal=goal,
                         met=met))

    train = results.get('train')
    if train:
        for suffix, label in (('', 'ST-Adapter'),
                              ('_cp2', 'ST-Adapter, blocks 1-2 checkpointed')):
            r = train['time_ratio' + suffix]['median']
            add(f'train time {label} / full FT', r, '<= 0.8', r <= 0.8, 'x')
            if 'memory_ratio' + suffix in train:
                m = train['memory_ratio' + suffix]
                add(f'train peak memory {label} / full FT', m, '<= 0.5',
                    m <= 0.5, 'x')
        add('train time ST-Adapter / full FT, fastest runs',
            train['time_ratio']['of_best'], unit='x')
        add('saved activations ST-Adapter / full FT',
            train['saved_activations_ratio'], unit='x')
        for name in ('st_adapter', 'full_finetune', 'st_adapter_cp2'):
            add(f'train step {name}', train[name]['step_s'], unit='s')
            if 'peak_memory_mib' in train[name]:
                add(f'train peak memory {name}',
                    train[name]['peak_memory_mib'], unit='MiB')
    inf = results.get('inference')
    if inf:
        t, f = inf['time_ratio']['median'], inf['flops_ratio']
        add('inference time adapted / bare CLIP', t, f'<= FLOPs {f:.3f}',
            t <= f, 'x')
        add('inference FLOPs adapted / bare CLIP', f, unit='x')
        add('inference time adapted / bare CLIP, fastest runs',
            inf['time_ratio']['of_best'], unit='x')
        if 'one_block' in inf:
            b = inf['one_block']
            t, f = b['time_ratio']['median'], b['flops_ratio']
            add('inference time one block adapted / bare', t,
                f'<= FLOPs {f:.3f}', t <= f, 'x')
    fl = results.get('flops')
    if fl:
        add('train step FLOP/s (ST-Adapter)', fl['achieved_gflops_per_s'],
            unit='GFLOP/s')
        add('dense fp32 matmul FLOP/s (same run)',
            fl['matmul_gflops_per_s'], unit='GFLOP/s')
        add('share of matmul throughput', fl['share_of_matmul'], unit='x')
    data = results.get('data')
    if data:
        add('data pipeline, one worker', data['clips_per_s'], unit='clips/s')
        add('training step consumes', data['train_clips_per_s'],
            unit='clips/s')
        add('workers needed', data['workers_needed'], unit='')
    abl = results.get('ablation', {})
    for name in ABLATION_VARIANTS:
        if name in abl:
            e = abl[name]
            add(f'ablation {name}: train time / optimized',
                e['train_time_ratio']['median'], unit='x')
            if 'peak_memory_ratio' in e:
                add(f'ablation {name}: peak memory / optimized',
                    e['peak_memory_ratio'], unit='x')
            if 'inference_time_ratio' in e:
                add(f'ablation {name}: inference time / optimized',
                    e['inference_time_ratio']['median'], unit='x')
    for name, comp in abl.get('components', {}).items():
        for mode in ('inference', 'train'):
            add(f'{name} alone, {mode}: plain / optimized time',
                comp[mode]['median'], unit='x')
    for run in results.get('sweep', {}).get('runs', []):
        tag = f'{run["arch"]} {run["frames"]}f'
        for name, v in run['variants'].items():
            if v.get('oom'):
                add(f'sweep {tag} {name}', 'OOM')
                continue
            add(f'sweep {tag} {name}', v.get('clips_per_s'), unit='clips/s')
            add(f'sweep {tag} {name} peak memory', v['peak_memory_mib'],
                unit='MiB')
        for key, value in run['ratios'].items():
            add(f'sweep {tag} {key}', value, unit='x')
    return rows


def format_table(rows: List[dict]) -> str:
    """A plain-text table of :func:`summary_rows`."""
    lines = [f'{"metric":58s} {"value":>12s}  {"goal":16s} met']
    for row in rows:
        value = row['value']
        text = (f'{value:.3f}' if isinstance(value, float) else str(value))
        met = '' if row['met'] is None else ('yes' if row['met'] else 'NO')
        lines.append(f'{row["metric"]:58s} {text:>12s} {row["unit"]:8s}'
                     f'{row["goal"] or "":16s} {met}')
    return '\n'.join(lines)


def main(argv: List[str] = None) -> dict:
    args = parse_args(argv)
    from mmengine.logging import MMLogger
    # The optimizer constructor logs every parameter group at INFO.
    MMLogger.get_instance('benchmark', log_level='WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = Bench(args)
    results = bench.run()
    report = dict(
        env=bc.env_summary(args.device),
        args={k: v for k, v in vars(args).items()},
        results=results)
    report['summary'] = summary_rows(results)
    print(format_table(report['summary']))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2, default=str)
    print(f'[benchmark] wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
