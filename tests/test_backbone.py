"""ViTCLIPSTAdapter: identity at init, time sensitivity, presets, freezing."""
import copy

import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.optim import build_optim_wrapper

from stadapter_mm import STConvAdapter, ViTCLIPSTAdapter
from conftest import TINY_ARCH
from runner_utils import recognizer_from_backbone


def _tiny(**kwargs):
    kwargs.setdefault('adapter', dict(width=16))
    return ViTCLIPSTAdapter(arch=dict(TINY_ARCH), **kwargs)


def _randomise_adapters(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for adapter in model.adapters():
            for p in adapter.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def test_output_shape_and_any_size():
    model = _tiny().eval()
    out = model(torch.randn(2, 3, 4, 32, 32))
    assert out.shape == (2, 64)
    # A different frame size interpolates the positional embedding.
    tokens = model.forward_features(torch.randn(1, 3, 3, 48, 40))
    assert tokens.shape == (1, 3, 1 + 6 * 5, 64)


def test_identity_at_init_frames_are_independent():
    torch.manual_seed(0)
    model = _tiny(adapter=dict(positions=('attn', 'mlp'), width=16)).eval()
    bare = _tiny(adapter=None).eval()
    bare.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(2, 3, 5, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), bare(x), atol=1e-6)
        per_frame = torch.stack(
            [model.forward_features(x[:, :, t:t + 1])[:, 0] for t in range(5)],
            dim=1)
        joint = model.forward_features(x)
    assert torch.allclose(joint, per_frame, atol=1e-5)


def test_reversing_time_matters_only_with_trained_adapters():
    torch.manual_seed(0)
    model = _tiny().eval()
    x = torch.randn(2, 3, 6, 32, 32)
    rev = x.flip(2)
    with torch.no_grad():
        assert torch.allclose(model(x), model(rev), atol=1e-5)
        _randomise_adapters(model)
        diff = (model(x) - model(rev)).abs().max().item()
    assert diff > 1e-3


def test_class_token_bypasses_adapter():
    adapter = STConvAdapter(8, 4)
    with torch.no_grad():
        for p in adapter.parameters():
            p.normal_()
    x = torch.randn(2 * 3, 1 + 4, 8)
    y = adapter(x, num_frames=3, grid=(2, 2))
    assert torch.equal(y[:, 0], x[:, 0])
    assert not torch.allclose(y[:, 1:], x[:, 1:])


def test_adapter_matches_explicit_temporal_convolution():
    """The adapter is fc1 -> depthwise conv over (T,H,W) -> fc2, added."""
    torch.manual_seed(0)
    adapter = STConvAdapter(8, 4, kernel_size=(3, 1, 1))
    with torch.no_grad():
        for p in adapter.parameters():
            p.normal_()
    n, t, h, w = 2, 4, 2, 3
    x = torch.randn(n * t, 1 + h * w, 8)
    y = adapter(x, t, (h, w))
    z = adapter.fc1(x[:, 1:]).view(n, t, h * w, 4)
    k = adapter.conv.weight[:, 0, :, 0, 0]  # (C, 3)
    padded = torch.nn.functional.pad(z, (0, 0, 0, 0, 1, 1))
    mixed = sum(padded[:, i:i + t] * k[:, i] for i in range(3))
    mixed = mixed + adapter.conv.bias
    expect = x[:, 1:] + adapter.fc2(mixed.reshape(n * t, h * w, 4))
    assert torch.allclose(y[:, 1:], expect, atol=1e-5)


@pytest.mark.parametrize('blocks,expected', [('all', [0, 1, 2, 3]),
                                             (2, [2, 3]), ([0, 2], [0, 2])])
def test_adapter_placement(blocks, expected):
    arch = dict(TINY_ARCH, layers=4)
    model = ViTCLIPSTAdapter(
        arch=arch, adapter=dict(positions=('attn', ), width=8, blocks=blocks))
    have = [
        i for i, b in enumerate(model.transformer.resblocks)
        if b.adapter_pre_attn is not None
    ]
    assert have == expected
    assert all(b.adapter_pre_mlp is None for b in model.transformer.resblocks)


def test_presets_match_official_models():
    k400 = ViTCLIPSTAdapter(arch='ViT-B/16', adapter='12x384')
    ssv2 = ViTCLIPSTAdapter(arch='ViT-B/16', adapter='24x384')
    assert len(k400.adapters()) == 12 and len(ssv2.adapters()) == 24
    assert all(b.adapter_pre_attn is None and b.adapter_pre_mlp is not None
               for b in k400.transformer.resblocks)
    assert all(a.adapter_channels == 384 and a.kernel_size == (3, 1, 1)
               for a in ssv2.adapters())


@pytest.mark.parametrize('adapter,num_classes,expected', [
    ('12x384', 400, 7_417_744),
    ('24x384', 174, 24 * 592_512 + 768 * 174 + 174),
])
def test_trainable_parameter_counts(adapter, num_classes, expected):
    cfg = recognizer_from_backbone(
        dict(type='ViTCLIPSTAdapter', arch='ViT-B/16', adapter=adapter),
        num_classes, 768)
    model = MODELS.build(cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected
    total = sum(p.numel() for p in model.parameters())
    assert 0.07 < trainable / total < 0.15


def test_unfreeze_options_and_train_mode():
    model = _tiny(unfreeze=('ln_post', ))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {'ln_post.weight', 'ln_post.bias'} <= names
    assert all('adapter' in n or n.startswith('ln_post') for n in names)
    full = _tiny(unfreeze='all')
    assert all(p.requires_grad for p in full.parameters())
    assert model.train() is model
    assert not model.conv1.training and not model.ln_pre.training
    assert model.adapters()[0].fc1.training
    model.eval()
    assert not model.adapters()[0].fc1.training


def test_gradient_checkpointing_same_gradients():
    torch.manual_seed(0)
    plain = _tiny()
    _randomise_adapters(plain)
    ckpt = copy.deepcopy(plain)
    ckpt.with_cp = True
    some = copy.deepcopy(plain)
    some.with_cp = (1, )
    x = torch.randn(1, 3, 4, 32, 32)
    for m in (plain, ckpt, some):
        m.train()
        m(x).square().sum().backward()
    for other in (ckpt, some):
        for (n, a), (_, b) in zip(plain.named_parameters(),
                                  other.named_parameters()):
            if a.requires_grad:
                assert torch.allclose(a.grad, b.grad, atol=1e-5), n
    assert [some._checkpointed(i) for i in range(2)] == [False, True]
    with pytest.raises(ValueError, match='with_cp block indices'):
        _tiny(with_cp=[2])


def test_gradient_checkpointing_covers_the_first_block():
    """Block 0 (input needs no gradient, adapters train) is recomputed."""
    torch.manual_seed(0)
    model = _tiny(with_cp=[0])
    _randomise_adapters(model)
    model.train()
    calls = []
    block = model.transformer.resblocks[0]
    # A pre-hook: recomputation stops early, before forward hooks run.
    block.register_forward_pre_hook(lambda *args: calls.append(1))
    model(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert len(calls) == 2  # forward, then the recomputation in backward
    assert block.adapter_pre_mlp.fc1.weight.grad.abs().sum() > 0


def test_frozen_fp16_keeps_adapters_fp32():
    model = _tiny(frozen_fp16=True).eval()
    assert model.conv1.weight.dtype == torch.float16
    assert model.adapters()[0].fc1.weight.dtype == torch.float32
    ref = _tiny().eval()
    ref.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    x = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref(x), atol=5e-2)


@pytest.mark.parametrize('part', ['conv1', 'transformer'])
def test_frozen_fp16_with_an_unfrozen_fp32_part_trains(part):
    # The unfrozen part stays fp32 beside fp16 frozen weights.
    model = _tiny(frozen_fp16=True, unfreeze=part).train()
    assert model.ln_pre.weight.dtype == torch.float16
    trained = list(getattr(model, part).parameters())
    assert all(p.dtype == torch.float32 for p in trained)
    ref = _tiny(unfreeze=part).train()
    ref.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    x = torch.randn(1, 3, 3, 32, 32)
    out = model(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref(x), atol=5e-2)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32
               for p in trained)


def test_train_step_updates_only_adapters_and_head():
    torch.manual_seed(0)
    model = MODELS.build(
        recognizer_from_backbone(
            dict(type='ViTCLIPSTAdapter', arch=dict(TINY_ARCH),
                 adapter=dict(width=16)), 3, 64))
    model.init_weights()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = build_optim_wrapper(
        model, dict(optimizer=dict(type='AdamW', lr=1e-2,
                                   weight_decay=0.01)))
    data = dict(
        inputs=[torch.randint(0, 256, (1, 3, 4, 32, 32)).float()
                for _ in range(2)],
        data_samples=[ActionDataSample().set_gt_label(i) for i in (0, 2)])
    model.train()
    for _ in range(3):
        losses = model.train_step(data, optim)
    assert torch.isfinite(losses['loss'])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # The last block's pre-MLP adapter only touches patch tokens after the
    # last attention, which never reach the pooled class token: it gets no
    # gradient (true of the official 12x384 model as well).
    dead = 'backbone.transformer.resblocks.1.adapter_pre_mlp.'
    params = dict(model.named_parameters())
    for key, old in before.items():
        if key in trainable and key.startswith(dead):
            grad = params[key].grad
            assert grad is None or not grad.any(), key
        elif key in trainable:
            assert not torch.equal(old, model.state_dict()[key]), key
        else:
            assert torch.equal(old, model.state_dict()[key]), key
    assert any(k.startswith('cls_head.') for k in trainable)


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='ViT-H/99'), 'ViT-B/16'),
    (dict(adapter='7x7'), '12x384'),
    (dict(adapter=dict(kernel_size=(2, 1, 1))), 'odd'),
    (dict(adapter=dict(kernel_size=(0, 1, 1))), 'odd'),
    (dict(adapter=dict(blocks=[0, 12])), 'out of range'),
    (dict(adapter=dict(blocks=13)), 'last N'),
    (dict(adapter=dict(width=1000)), 'bottleneck'),
    (dict(adapter=dict(positions=('ffn', ))), 'positions'),
    (dict(num_frames=2), 'temporal kernel'),
    (dict(unfreeze=('head', )), 'unfreeze'),
])
def test_impossible_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViTCLIPSTAdapter(**kwargs)
