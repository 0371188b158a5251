"""FLOP counting (tools/analysis_tools/get_flops.py) and ONNX export."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from official_reference import tiny_config_text

from conftest import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Tiny model: 32x32 frames, patch 8 -> 16 patches + class token.
WIDTH, LAYERS, TOKENS, BOTTLENECK, CLASSES = 64, 2, 17, 16, 5


@pytest.fixture(scope='module')
def flops_tool():
    return load_tool('tools/analysis_tools/get_flops.py')


@pytest.fixture(scope='module')
def tiny_cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp('cfg') / 'tiny.py'
    path.write_text(tiny_config_text(positions=('attn', 'mlp'),
                                     num_classes=CLASSES))
    return str(path)


def image_model_macs(frames):
    """Multiply-adds of the frozen tower's products and convolutions + head."""
    d, n = WIDTH, TOKENS
    stem = frames * (n - 1) * d * 3 * 8 * 8
    attention = frames * (n * d * 3 * d + 2 * n * n * d + n * d * d)
    mlp = frames * 8 * n * d * d
    return stem + LAYERS * (attention + mlp) + d * CLASSES


def adapter_macs(frames, tokens):
    """Four adapters (before attn and MLP, 2 blocks) on ``tokens`` rows."""
    d, c = WIDTH, BOTTLENECK
    return LAYERS * 2 * frames * tokens * (d * c + 3 * c + c * d)


def norm_flops(frames):
    """mmengine's LayerNorm rule: 5 per element (affine)."""
    return 5 * (frames * TOKENS * WIDTH * (1 + 2 * LAYERS) + WIDTH)


def test_counters_agree_with_closed_form(flops_tool, tiny_cfg, tmp_path):
    # The image model alone: both counters exactly as the closed form.
    bare = Config.fromfile(tiny_cfg)
    bare.model.backbone.adapter = None
    for frames in (4, 8):
        fast = flops_tool.count(bare, None, frames, counter='torch')
        slow = flops_tool.count(bare, None, frames, counter='mmengine')
        assert fast['flops'] == image_model_macs(frames)
        # mmengine counts LayerNorms too, and the attention rule registered
        # for it (scaled_dot_product_attention) is exact.
        assert slow['flops'] == image_model_macs(frames) + norm_flops(frames)
        assert 'aten::scaled_dot_product_attention' not in slow['unsupported']

    out = str(tmp_path / 'rows.json')
    rows = flops_tool.main([tiny_cfg, '--num-frames', '4', '8', '--json',
                            out])
    fast = flops_tool.main([tiny_cfg, '--num-frames', '4', '8', '--counter',
                            'torch'])
    for frames, row, torch_row in zip((4, 8), rows, fast):
        assert row['frames'] == frames and row['input'] == f'{frames}x32x32'
        assert row['flops'] == torch_row['flops'] + norm_flops(frames)
        # Adapters act on the patch tokens; an implementation may also run
        # the class-token row through them (cheaper than slicing it out).
        added = torch_row['flops'] - image_model_macs(frames)
        assert adapter_macs(frames, TOKENS - 1) <= added <= adapter_macs(
            frames, TOKENS)
    from mmaction.apis import init_recognizer
    model = init_recognizer(tiny_cfg, None, device='cpu')
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert rows[0]['params'] == fast[0]['params'] == total
    assert rows[0]['trainable'] == fast[0]['trainable'] == trainable
    assert trainable == LAYERS * 2 * (2 * WIDTH * BOTTLENECK + WIDTH +
                                      BOTTLENECK + 3 * BOTTLENECK +
                                      BOTTLENECK) + WIDTH * CLASSES + CLASSES
    assert json.load(open(out))[1]['flops'] == rows[1]['flops']


def test_full_size_archs_match_the_paper(flops_tool):
    """ViT-B/16 and L/14 on 8x224x224 (torch counter on the meta device).

    The paper reports 455 and 2062 GFLOPs for three views of B/16 and L/14
    with 384-wide adapters at 8 frames, i.e. about 151.7 and 687.3 per view.
    """
    cfg = Config.fromfile(osp.join(ROOT, 'configs/stadapter_vitb16_k400.py'))
    base = flops_tool.count(cfg, 'ViT-B/16', 8, counter='torch')
    large = flops_tool.count(cfg, 'ViT-L/14', 8, counter='torch')
    assert base['flops'] / 1e9 == pytest.approx(455 / 3, rel=0.005)
    assert large['flops'] / 1e9 == pytest.approx(2062 / 3, rel=0.005)
    base16 = flops_tool.count(cfg, 'ViT-B/16', 16, counter='torch')
    assert base16['flops'] == pytest.approx(2 * base['flops'], rel=1e-4)
    # ~86 M frozen CLIP + 12 x 0.59 M adapters + 0.31 M head.
    assert base['params'] == pytest.approx(93.2e6, rel=0.01)
    assert base['trainable'] == pytest.approx(7.42e6, rel=0.01)
    with pytest.raises(ValueError, match='counter must be'):
        flops_tool.count(cfg, counter='fvcore')


# ------------------------------------------------------------------- ONNX
@pytest.fixture(scope='module')
def onnx_setup(tiny_cfg, tmp_path_factory):
    from mmaction.apis import init_recognizer
    root = tmp_path_factory.mktemp('onnx')
    model = init_recognizer(tiny_cfg, None, device='cpu')
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    ckpt = str(root / 'tiny.pth')
    torch.save(dict(meta={}, state_dict=model.state_dict()), ckpt)
    return dict(cfg=tiny_cfg, ckpt=ckpt, root=root)


@pytest.mark.parametrize('legacy', [False, True],
                         ids=['torch.export', 'torchscript'])
def test_onnx_export_dynamic_batch(onnx_setup, legacy):
    pytest.importorskip('onnxruntime')
    onnx = pytest.importorskip('onnx')
    if not legacy:
        pytest.importorskip('onnxscript')  # the torch.export-based exporter
    tool = load_tool('tools/deployment/export_onnx.py')
    out = str(onnx_setup['root'] / f'tiny_{int(legacy)}.onnx')
    argv = [onnx_setup['cfg'], onnx_setup['ckpt'], '--out', out, '--verify']
    result = tool.main(argv + (['--legacy'] if legacy else []))
    assert result['view_shape'] == (3, 4, 32, 32)
    assert set(result['diffs']) == {1, 3}  # batch sizes other than export's
    assert max(result['diffs'].values()) < 1e-4
    graph = onnx.load(out).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    assert [i.name for i in graph.input] == ['video']
    assert [o.name for o in graph.output] == ['logits']
    # The check can fail: other weights than the exported ones are caught.
    from mmaction.apis import init_recognizer
    other = init_recognizer(onnx_setup['cfg'], onnx_setup['ckpt'],
                            device='cpu')
    with torch.no_grad():
        other.cls_head.fc_cls.bias.add_(0.5)
    with pytest.raises(AssertionError, match='differ'):
        tool.verify(other, out, (3, 4, 32, 32))
