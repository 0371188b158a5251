"""Benchmark tool and the speed optimisations it measures.

- every optimised hot path (adapter, QuickGELU, fused attention) gives the
  outputs and gradients of its plain version in ``reference_impl.py``;
- the FLOP counters count the fused attention exactly;
- the timing, memory and data-loading helpers behave as documented;
- a tiny end-to-end run of ``benchmark.py`` writes the JSON it promises.
"""
import copy
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from torch.utils.flop_counter import FlopCounterMode

from stadapter_mm.models import STConvAdapter, ViTCLIPSTAdapter
from stadapter_mm.models.vit_clip_stadapter import QuickGELU

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

import bench_common as bc  # noqa: E402
import bench_data  # noqa: E402
import benchmark  # noqa: E402
from bench_sweep import sweep  # noqa: E402
from reference_impl import (REFERENCE_PARTS, ReferenceQuickGELU,  # noqa
                            reference_adapter_forward, use_reference)

TINY_ADAPTER = dict(preset='12x384', width=16)
K400_CONFIG = osp.join(ROOT, bench_data.DEFAULT_PIPELINE_CONFIG)


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-zero values everywhere (a fresh adapter is the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def _grads(outputs, inputs, seed=1):
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randn(outputs.shape, generator=gen)
    return torch.autograd.grad((outputs * weights).sum(), inputs)


def _assert_grads_close(got, want):
    for g, w in zip(got, want):
        scale = w.abs().max().clamp_min(1e-6)
        assert ((g - w).abs().max() / scale).item() < 1e-5


# ------------------------------------------------------------ equivalence
@pytest.mark.parametrize('kernel', [(3, 1, 1), (5, 1, 1), (1, 1, 1),
                                    (3, 3, 3), (3, 1, 3)])
@pytest.mark.parametrize('act', [None, dict(type='GELU')])
def test_adapter_matches_plain_version(kernel, act):
    adapter = STConvAdapter(64, 16, kernel, act)
    _randomise(adapter)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2 * 5, 1 + 3 * 4, 64, generator=gen, requires_grad=True)
    out = adapter(x, 5, (3, 4))
    ref = reference_adapter_forward(adapter, x, 5, (3, 4))
    assert out.shape == ref.shape == x.shape
    assert (out - ref).abs().max().item() <= 1e-6
    assert torch.equal(out[:, 0], x[:, 0])  # class token untouched
    params = [x] + list(adapter.parameters())
    _assert_grads_close(_grads(out, params), _grads(ref, params))


def test_adapter_rejects_wrong_token_count():
    adapter = STConvAdapter(64, 16)
    with pytest.raises(ValueError, match='expected'):
        adapter(torch.randn(8, 10, 64), 4, (3, 4))


def test_quick_gelu_is_bit_identical_and_differentiates_correctly():
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(40, 300, generator=gen) * 4).requires_grad_()
    fast, plain = QuickGELU(), ReferenceQuickGELU()
    out = fast(x)
    assert torch.equal(out, plain(x))
    with torch.no_grad():
        assert torch.equal(fast(x), out)
    _assert_grads_close(_grads(out, [x]), _grads(plain(x), [x]))
    x64 = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fast, (x64, ))


@pytest.mark.parametrize('adapter', [
    dict(positions=('attn', 'mlp'), width=16),
    dict(positions=('mlp', ), width=16, kernel_size=(3, 3, 3), blocks=1),
])
def test_backbone_matches_plain_versions(tiny_arch, adapter):
    torch.manual_seed(0)
    fast = ViTCLIPSTAdapter(tiny_arch, adapter=adapter, num_frames=4)
    for a in fast.adapters():
        _randomise(a, seed=3)
    plain = use_reference(copy.deepcopy(fast), REFERENCE_PARTS)
    assert type(plain.transformer.resblocks[0].mlp.gelu) is ReferenceQuickGELU
    fast.train()
    plain.train()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 4, 32, 32, generator=gen)
    out, ref = fast(x), plain(x)
    assert (out - ref).abs().max().item() <= 1e-5  # attention: ~1e-7
    trainable = [p for p in fast.parameters() if p.requires_grad]
    trainable_ref = [p for p in plain.parameters() if p.requires_grad]
    _assert_grads_close(_grads(out, trainable), _grads(ref, trainable_ref))


def test_adapter_and_quick_gelu_alone_are_exact(tiny_arch):
    torch.manual_seed(0)
    fast = ViTCLIPSTAdapter(tiny_arch, adapter=TINY_ADAPTER).eval()
    for a in fast.adapters():
        _randomise(a, seed=5)
    plain = use_reference(copy.deepcopy(fast), ['adapter', 'quick_gelu'])
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert (fast(x) - plain(x)).abs().max().item() <= 1e-6


def test_optimised_backbone_saves_less_for_backward(tiny_arch):
    torch.manual_seed(0)
    fast = ViTCLIPSTAdapter(tiny_arch, adapter=TINY_ADAPTER).train()
    plain = use_reference(copy.deepcopy(fast), ['quick_gelu'])
    x = torch.randn(1, 3, 8, 32, 32)
    saved_fast = bc.saved_activation_bytes(lambda: fast(x), fast)
    saved_plain = bc.saved_activation_bytes(lambda: plain(x), plain)
    # QuickGELU keeps its input only: one (N*T, L, 4*D) fp32 tensor less
    # per block.
    hidden = 8 * 17 * 4 * 64 * 4
    assert saved_plain - saved_fast == 2 * hidden


def test_blocks_before_the_first_adapter_record_nothing(tiny_arch):
    # Frozen blocks before the first adapter run without autograd: a
    # 2-block model with an adapter in block 1 saves exactly what a 1-block
    # model with an adapter in block 0 saves.
    torch.manual_seed(0)
    two = ViTCLIPSTAdapter(tiny_arch, adapter=dict(TINY_ADAPTER, blocks=1))
    one = ViTCLIPSTAdapter(dict(tiny_arch, layers=1),
                           adapter=dict(TINY_ADAPTER, blocks=1))
    bare = ViTCLIPSTAdapter(tiny_arch, adapter=None)
    x = torch.randn(1, 3, 8, 32, 32)
    saved = {name: bc.saved_activation_bytes(lambda m=m: m.train()(x), m)
             for name, m in dict(two=two, one=one, bare=bare).items()}
    assert saved['two'] == saved['one'] > 0
    assert saved['bare'] == 0


def test_use_reference_rejects_unknown_part(tiny_arch):
    model = ViTCLIPSTAdapter(tiny_arch, adapter=TINY_ADAPTER)
    with pytest.raises(ValueError, match='Unknown reference parts'):
        use_reference(model, ['adapter', 'conv1'])


# ------------------------------------------------------------------ FLOPs
def _attention_macs(arch, clips, frames):
    tokens = (arch['input_resolution'] // arch['patch_size'])**2 + 1
    return (arch['layers'] * clips * frames * tokens * tokens *
            2 * arch['width'])


def test_forward_macs_count_fused_attention(tiny_arch):
    model = ViTCLIPSTAdapter(tiny_arch, adapter=TINY_ADAPTER).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        without = FlopAnalyzer(model, (x, ))
        without.unsupported_ops_warnings(False)
        without = without.total()
    assert bc.forward_macs(model, x) - without == _attention_macs(
        tiny_arch, 2, 4)


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
    assert bc.training_flops(step) - counter.get_total_flops() == \
        2 * attention + 4 * attention


# ------------------------------------------------------- timing / memory
def test_interleaved_times_rotate_the_order():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    times = bc.interleaved_times(fns, rounds=3, warmup=1)
    assert calls[:3] == ['a', 'b', 'c']  # warm-up
    assert calls[3:] == ['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']
    assert all(len(v) == 3 and min(v) >= 0 for v in times.values())
    with pytest.raises(ValueError):
        bc.interleaved_times(fns, rounds=0)


def test_ratio_summary_is_per_round():
    summary = bc.ratio_summary([2.0, 3.0, 10.0], [1.0, 2.0, 4.0])
    assert summary == dict(median=2.0, min=1.5, max=2.5, of_best=2.0,
                           rounds=3)


# ------------------------------------------------------------------- data
def test_video_and_training_pipeline(tmp_path):
    video = bench_data.write_video(str(tmp_path / 'v.mp4'), seconds=2)
    import decord
    reader = decord.VideoReader(video)
    assert len(reader) == 60 and reader[0].shape == (240, 320, 3)
    pipeline = bench_data.load_train_pipeline(K400_CONFIG, num_frames=4)
    res = bench_data.pipeline_throughput(pipeline, video, samples=2,
                                         warmup=1)
    assert res['input_shape'] == [1, 3, 4, 224, 224]
    assert res['clips_per_s'] > 0
    with pytest.raises(FileNotFoundError, match='pipeline-config'):
        bench_data.load_train_pipeline(str(tmp_path / 'missing.py'))


# -------------------------------------------------------------- end to end
def test_benchmark_tiny_run_writes_json(tiny_arch, tmp_path):
    out = tmp_path / 'bench.json'
    # Width 128: weight tensors above the probe's 64 KiB mmap threshold.
    arch = dict(tiny_arch, width=128)
    report = benchmark.main([
        '--arch', json.dumps(arch), '--adapter',
        json.dumps(TINY_ADAPTER), '--frames', '4', '--repeats', '2',
        '--inference-repeats', '2', '--ablation-repeats', '1',
        '--component-repeats', '2',
        '--data-samples', '2', '--video-seconds', '1', '--matmul-size',
        '128', '--pipeline-config', K400_CONFIG, '--out',
        str(out)
    ])
    written = json.loads(out.read_text())
    assert written['summary'] == json.loads(json.dumps(report['summary']))
    res = written['results']
    assert set(res) == set(benchmark.CPU_SECTIONS)
    train = res['train']
    assert train['st_adapter']['trainable_params'] < \
        train['full_finetune']['trainable_params'] == \
        train['full_finetune']['total_params']
    assert 0 < train['saved_activations_ratio'] < 1
    assert train['time_ratio']['rounds'] == 2
    # Peak memory (one probe process): full fine-tuning adds a gradient and
    # two AdamW moments per weight.
    weights_mib = 4 * train['full_finetune']['total_params'] / 2**20
    assert train['full_finetune']['peak_memory_mib'] - \
        train['st_adapter']['peak_memory_mib'] >= 2 * weights_mib
    assert train['memory_ratio'] == pytest.approx(
        train['st_adapter']['peak_memory_mib'] /
        train['full_finetune']['peak_memory_mib'])
    # Checkpointing block 1 (of 2) keeps fewer activations for backward.
    assert train['cp2_blocks'] == [1]
    assert train['saved_activations_ratio_cp2'] < \
        train['saved_activations_ratio']
    assert res['inference']['flops_ratio'] > 1
    block = res['inference']['one_block']
    assert block['flops_ratio'] > 1 and block['time_ratio']['rounds'] == 2
    # One adapter of width 16 adds 2 * L * 128 * 16 multiply-adds per frame
    # plus its 3-tap convolution (L = 17 tokens, 4 frames).
    assert block['adapted_gmacs'] - block['bare_gmacs'] == pytest.approx(
        4 * 17 * (2 * 128 * 16 + 16 * 3) / 1e9)
    assert res['flops']['train_step_gflops'] > 0
    assert 0 < res['flops']['share_of_matmul']
    assert res['data']['input_shape'] == [1, 3, 4, 224, 224]
    assert res['data']['workers_needed'] > 0
    ablation = res['ablation']
    assert set(ablation) == {'optimized', 'wall_s', 'components',
                             *benchmark.ABLATION_VARIANTS}
    for part in ('adapter', 'quick_gelu', 'attention'):
        for mode in ('inference', 'train'):
            comp = ablation['components'][part][mode]
            assert comp['rounds'] == 2 and comp['optimized_ms'] > 0
    assert ablation['optimized']['peak_memory_mib'] == \
        train['st_adapter']['peak_memory_mib']  # measured once
    assert ablation['plain_quick_gelu']['saved_activations_ratio'] > 1
    assert ablation['with_cp']['saved_activations_ratio'] < 1
    assert 'inference_time_ratio' in ablation['plain_adapter']
    goals = {r['metric']: r for r in written['summary'] if r['goal']}
    assert goals['train time ST-Adapter / full FT']['goal'] == '<= 0.8'
    assert written['env']['device'] == 'cpu'


def test_gpu_sweep_code_path_on_cpu(tiny_arch):
    runs = sweep([tiny_arch], [4], TINY_ADAPTER, batch_size=1, rounds=1,
                 device='cpu', amp=False,
                 variants=('st_adapter', 'full_finetune', 'st_adapter_cp'))
    assert len(runs) == 1
    variants = runs[0]['variants']
    assert set(variants) == {'st_adapter', 'full_finetune', 'st_adapter_cp'}
    assert all(v['clips_per_s'] > 0 for v in variants.values())
    assert 'st_adapter/full_finetune_time' in runs[0]['ratios']
    with pytest.raises(ValueError, match='Unknown sweep variants'):
        sweep([tiny_arch], [4], TINY_ADAPTER, 1, 1, 'cpu', False,
              variants=('turbo', ))


def test_benchmark_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--sections', 'train,bogus'])
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--repeats', '0'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            benchmark.parse_args(['--device', 'cuda'])
