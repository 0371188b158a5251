"""The benchmark tool (tools/analysis_tools/benchmark.py).

- the config and data-loading helpers behave as documented;
- tiny end-to-end runs of every section write the JSON they promise.

Its measurement primitives (stadapter_mm/utils/profiling.py) are tested in
tests/test_profiling.py, the model-equivalence checks of the speed changes it
measured in tests/test_speed_equivalence.py.
"""
import json
import os.path as osp

import pytest
import torch
from conftest import ROOT, load_tool

TINY_ADAPTER = dict(preset='12x384', width=16)


@pytest.fixture(scope='module')
def bench():
    return load_tool('tools/analysis_tools/benchmark.py')


# ---------------------------------------------------------------- configs
def test_reference_and_compare_models(bench, tiny_arch):
    config = osp.join(ROOT, bench.DEFAULT_CONFIG)
    ref = bench.reference_model(config, tiny_arch, TINY_ADAPTER, 4)
    assert 'init_cfg' not in ref['backbone']  # random weights
    assert ref['backbone']['num_frames'] == 4
    assert ref['cls_head']['in_channels'] == 64
    assert ref['data_preprocessor']['format_shape'] == 'NCTHW'
    other = bench.compare_model(
        '{"backbone": {"with_cp": [1]}, "cls_head": {"dropout_ratio": 0}}',
        ref, 4)
    assert other['backbone'] == dict(ref['backbone'], with_cp=[1])
    assert other['cls_head']['dropout_ratio'] == 0
    swapped = bench.compare_model(
        '{"backbone": {"_delete_": true, "type": "X3D"}}', ref, 4)
    assert swapped['backbone'] == {'type': 'X3D'}
    from_file = bench.compare_model(config, ref, 16)
    assert from_file['backbone']['num_frames'] == 16
    assert 'init_cfg' not in from_file['backbone']


# ------------------------------------------------------------------- data
def test_synthetic_video_through_training_pipeline(bench, tmp_path):
    video = bench.synthetic_video(str(tmp_path / 'v.mp4'), seconds=2)
    import decord
    reader = decord.VideoReader(video)
    assert len(reader) == 60 and reader[0].shape == (240, 320, 3)
    assert reader[0].asnumpy().std() > 10  # textured, not blank
    res = bench.pipeline_throughput(osp.join(ROOT, bench.DEFAULT_CONFIG), 4,
                                    video, samples=2)
    assert res['input_shape'] == [1, 3, 4, 224, 224]
    assert res['clips_per_s'] > 0
    with pytest.raises(FileNotFoundError, match='missing.py'):
        bench.config_model(str(tmp_path / 'missing.py'), 8)


# -------------------------------------------------------------- end to end
def _tiny_args(tiny_arch, tmp_path, *extra):
    # Width 128: weight tensors above the probe's 64 KiB mmap threshold.
    return [
        '--arch', json.dumps(dict(tiny_arch, width=128)), '--adapter',
        json.dumps(TINY_ADAPTER), '--frames', '4', '--repeats', '2',
        '--inference-repeats', '2', '--block-repeats', '2',
        '--data-samples', '2', '--video-seconds', '1', '--matmul-size',
        '128', '--out', str(tmp_path / 'bench.json'), *extra
    ]


def test_benchmark_tiny_run_writes_json(bench, tiny_arch, tmp_path):
    report = bench.main(_tiny_args(
        tiny_arch, tmp_path, '--compare',
        'cp_all={"backbone": {"with_cp": true}}'))
    written = json.loads((tmp_path / 'bench.json').read_text())
    assert written['summary'] == json.loads(json.dumps(report['summary']))
    res = written['results']
    assert set(res) == set(bench.CPU_SECTIONS)
    train, ratios = res['train']['variants'], res['train']['ratios']
    assert set(train) == {'st_adapter', 'full_finetune', 'st_adapter_cp12',
                          'cp_all'}
    assert train['st_adapter']['trainable_params'] < \
        train['full_finetune']['trainable_params'] == \
        train['full_finetune']['total_params']
    st = ratios['st_adapter/full_finetune']
    assert 0 < st['saved_activations'] < 1
    assert st['time']['rounds'] == 2
    # Peak memory (one probe process): full fine-tuning adds a gradient and
    # two AdamW moments per weight.
    weights_mib = 4 * train['full_finetune']['total_params'] / 2**20
    assert train['full_finetune']['peak_memory_mib'] - \
        train['st_adapter']['peak_memory_mib'] >= 2 * weights_mib
    assert st['memory'] == pytest.approx(
        train['st_adapter']['peak_memory_mib'] /
        train['full_finetune']['peak_memory_mib'])
    # The backbone's with_cp: block 1 (of 2) or every block keeps fewer
    # activations for backward; the --compare row is against ST-Adapter.
    assert res['train']['cp12_blocks'] == [1]
    assert ratios['st_adapter_cp12/full_finetune']['saved_activations'] < \
        st['saved_activations']
    assert ratios['cp_all/st_adapter']['saved_activations'] < 1
    inf = res['inference']
    assert inf['flops_ratio'] > 1
    block = inf['one_block']
    assert block['flops_ratio'] > 1 and block['time_ratio']['rounds'] == 2
    # One adapter of width 16 adds 2 * L * 128 * 16 multiply-adds per frame
    # plus its 3-tap convolution (L = 17 tokens, 4 frames).
    assert block['adapted_gmacs'] - block['bare_gmacs'] == pytest.approx(
        4 * 17 * (2 * 128 * 16 + 16 * 3) / 1e9)
    assert res['flops']['train_step_gflops'] > 0
    assert 0 < res['flops']['share_of_matmul']
    assert res['data']['input_shape'] == [1, 3, 4, 224, 224]
    assert res['data']['workers_needed'] > 0
    goals = {r['metric']: r for r in written['summary'] if r['goal']}
    assert goals['train st_adapter/full_finetune time']['goal'] == '<= 0.8'
    assert 'train cp_all/st_adapter peak memory' in {
        r['metric'] for r in written['summary']}
    assert written['env']['device'] == 'cpu'


def test_gpu_sweep_code_path_on_cpu(bench, tiny_arch, tmp_path):
    arch = json.dumps([dict(tiny_arch, width=128)])
    res = bench.main(_tiny_args(tiny_arch, tmp_path, '--sections', 'sweep',
                                '--sweep-archs', arch, '--sweep-frames', '4',
                                '--repeats', '1', '--no-memory'))
    runs = res['results']['sweep']['runs']
    assert [r['frames'] for r in runs] == [4]
    variants = runs[0]['variants']
    assert set(variants) == set(bench.SWEEP_VARIANTS)
    assert all(v['clips_per_s'] > 0 for v in variants.values())
    assert set(runs[0]['ratios']) == {
        'st_adapter/full_finetune', 'st_adapter_cp/st_adapter',
        'st_adapter_fp16_frozen/st_adapter'}


def test_benchmark_rejects_bad_arguments(bench):
    for argv in (['--sections', 'train,bogus'], ['--repeats', '0'],
                 ['--compare', 'no_spec'], ['--compare', 'x={bad json'],
                 ['--compare', 'st_adapter={}'],
                 ['--compare', 'a={}', '--compare', 'a={}']):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bench.parse_args(['--device', 'cuda'])
