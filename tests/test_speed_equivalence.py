"""The backbone's speed changes give what a plain version gives.

Every optimised hot path (adapter without copies, QuickGELU saving one
tensor, fused attention) is checked against a plain version written here the
obvious way (the "before" of docs/performance.md's speed changes): outputs,
gradients and, with the benchmark's counter
(``stadapter_mm.utils.profiling.saved_activation_bytes``), activations saved
for backward.
"""
import copy
import types

import pytest
import torch

from stadapter_mm.models import STConvAdapter, ViTCLIPSTAdapter
from stadapter_mm.utils.profiling import saved_activation_bytes

TINY_ADAPTER = dict(preset='12x384', width=16)


# ------------------------------------------------- plain "before" versions
def plain_adapter_forward(adapter, x, num_frames, grid):
    """Slice the patch tokens out, fc1, Conv3d on (N, C, T, H, W), fc2,
    concatenate the class token back."""
    h, w = grid
    y = adapter.fc1(x[:, 1:, :])
    if adapter.act is not None:
        y = adapter.act(y)
    y = y.reshape(-1, num_frames, h, w, y.shape[-1]).permute(0, 4, 1, 2, 3)
    y = adapter.conv(y).permute(0, 2, 3, 4, 1).reshape(x.shape[0], h * w, -1)
    return torch.cat([x[:, :1, :], x[:, 1:, :] + adapter.fc2(y)], dim=1)


class PlainAdapter(torch.nn.Module):

    def __init__(self, adapter):
        super().__init__()
        self.inner = adapter

    def forward(self, x, num_frames, grid):
        return plain_adapter_forward(self.inner, x, num_frames, grid)


class PlainQuickGELU(torch.nn.Module):
    """``x * sigmoid(1.702 x)`` left to autograd (saves two tensors)."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def plain_attention(block, x):
    """Multi-head self-attention with an explicit softmax."""
    b, length, d = x.shape
    qkv = torch.nn.functional.linear(x, block.attn.in_proj_weight,
                                     block.attn.in_proj_bias)
    q, k, v = qkv.view(b, length, 3, block.heads, -1).permute(
        2, 0, 3, 1, 4).unbind(0)
    out = ((q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
    return block.attn.out_proj(out.transpose(1, 2).reshape(b, length, d))


def use_plain(backbone, parts):
    """Swap plain versions of ``parts`` into a backbone, sharing weights."""
    for block in backbone.transformer.resblocks:
        for name in ('adapter_pre_attn', 'adapter_pre_mlp'):
            adapter = getattr(block, name)
            if 'adapter' in parts and isinstance(adapter, STConvAdapter):
                setattr(block, name, PlainAdapter(adapter))
        if 'quick_gelu' in parts:
            block.mlp.gelu = PlainQuickGELU()
        if 'attention' in parts:  # an instance attribute shadows the method
            block.attention = types.MethodType(plain_attention, block)
    return backbone


def _randomise(module, seed=0):
    """Non-zero values everywhere (a fresh adapter is the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def _grads(outputs, inputs, seed=1):
    weights = torch.randn(outputs.shape,
                          generator=torch.Generator().manual_seed(seed))
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
    x = torch.randn(2 * 5, 1 + 3 * 4, 64, requires_grad=True,
                    generator=torch.Generator().manual_seed(2))
    out = adapter(x, 5, (3, 4))
    ref = plain_adapter_forward(adapter, x, 5, (3, 4))
    assert out.shape == ref.shape == x.shape
    assert (out - ref).abs().max().item() <= 1e-6
    assert torch.equal(out[:, 0], x[:, 0])  # class token untouched
    params = [x] + list(adapter.parameters())
    _assert_grads_close(_grads(out, params), _grads(ref, params))


def test_adapter_rejects_wrong_token_count():
    with pytest.raises(ValueError, match='expected'):
        STConvAdapter(64, 16)(torch.randn(8, 10, 64), 4, (3, 4))


def test_quick_gelu_is_bit_identical_and_differentiates_correctly(tiny_arch):
    model = ViTCLIPSTAdapter(tiny_arch, adapter=None)
    fast, plain = model.transformer.resblocks[0].mlp.gelu, PlainQuickGELU()
    x = (torch.randn(40, 300, generator=torch.Generator().manual_seed(0)) *
         4).requires_grad_()
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
    fast = ViTCLIPSTAdapter(tiny_arch, adapter=adapter, num_frames=4).train()
    for a in fast.adapters():
        _randomise(a, seed=3)
    plain = use_plain(copy.deepcopy(fast),
                      ('adapter', 'quick_gelu', 'attention'))
    assert isinstance(plain.transformer.resblocks[0].mlp.gelu, PlainQuickGELU)
    x = torch.randn(2, 3, 4, 32, 32,
                    generator=torch.Generator().manual_seed(4))
    out, ref = fast(x), plain(x)
    assert (out - ref).abs().max().item() <= 1e-5  # attention: ~1e-7
    _assert_grads_close(
        _grads(out, [p for p in fast.parameters() if p.requires_grad]),
        _grads(ref, [p for p in plain.parameters() if p.requires_grad]))
    with torch.no_grad():  # adapter and QuickGELU alone: exact
        exact = use_plain(copy.deepcopy(fast), ('adapter', 'quick_gelu'))
        assert (fast.eval()(x) - exact.eval()(x)).abs().max().item() <= 1e-6


def test_optimised_backbone_saves_less_for_backward(tiny_arch):
    torch.manual_seed(0)
    fast = ViTCLIPSTAdapter(tiny_arch, adapter=TINY_ADAPTER).train()
    plain = use_plain(copy.deepcopy(fast), ('quick_gelu', ))
    x = torch.randn(1, 3, 8, 32, 32)
    saved_fast = saved_activation_bytes(lambda: fast(x), fast)
    saved_plain = saved_activation_bytes(lambda: plain(x), plain)
    # QuickGELU keeps its input only: one (N*T, L, 4*D) fp32 tensor less
    # per block.
    assert saved_plain - saved_fast == 2 * (8 * 17 * 4 * 64 * 4)


def test_blocks_before_the_first_adapter_record_nothing(tiny_arch):
    # A 2-block model with an adapter in block 1 saves exactly what a
    # 1-block model with an adapter in block 0 saves; a bare one nothing.
    torch.manual_seed(0)
    models = dict(
        two=ViTCLIPSTAdapter(tiny_arch, adapter=dict(TINY_ADAPTER, blocks=1)),
        one=ViTCLIPSTAdapter(dict(tiny_arch, layers=1),
                             adapter=dict(TINY_ADAPTER, blocks=1)),
        bare=ViTCLIPSTAdapter(tiny_arch, adapter=None))
    x = torch.randn(1, 3, 8, 32, 32)
    saved = {k: saved_activation_bytes(lambda m=m: m.train()(x), m)
             for k, m in models.items()}
    assert saved['two'] == saved['one'] > 0
    assert saved['bare'] == 0
