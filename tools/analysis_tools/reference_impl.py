"""Straightforward "before" versions of the backbone's optimised hot paths.

The backbone's adapter, QuickGELU and attention are written for speed and
memory (see ``docs/performance.md``). This module keeps plain versions of the
same maths, written the obvious way, so that

- ``tools/analysis_tools/benchmark.py --sections ablation`` can measure each
  optimisation against its plain version within one run, and
- ``tests/test_benchmark.py`` can check that every optimisation leaves the
  outputs unchanged.

Each plain version is swapped into a built backbone in place with
:func:`use_reference`; parameters are shared, so outputs are comparable.
"""
from __future__ import annotations

import types
from typing import Iterable, Tuple

import torch
from torch import Tensor, nn

#: Parts of the backbone that have a plain reference version.
REFERENCE_PARTS = ('adapter', 'quick_gelu', 'attention')


def reference_adapter_forward(adapter: nn.Module, x: Tensor,
                              num_frames: int, grid: Tuple[int,
                                                           int]) -> Tensor:
    """The ST-Adapter written the obvious way.

    Slices the patch tokens out, applies ``fc1``, the depthwise ``Conv3d``
    on (N, C, T, H, W), ``fc2``, and concatenates the class token back.

    Args:
        adapter (STConvAdapter): Supplies the parameters.
        x (Tensor): (N*T, 1 + H*W, D) tokens, class token first.
        num_frames (int): T.
        grid (tuple[int, int]): (H, W).

    Returns:
        Tensor: (N*T, 1 + H*W, D).
    """
    nt, _, _ = x.shape
    h, w = grid
    n = nt // num_frames
    patches = x[:, 1:, :].to(adapter.fc1.weight.dtype)
    y = adapter.fc1(patches)
    if adapter.act is not None:
        y = adapter.act(y)
    y = y.reshape(n, num_frames, h, w, -1).permute(0, 4, 1, 2, 3)
    y = adapter.conv(y)
    y = y.permute(0, 2, 3, 4, 1).reshape(nt, h * w, -1)
    y = adapter.fc2(y).to(x.dtype)
    return torch.cat([x[:, :1, :], x[:, 1:, :] + y], dim=1)


class ReferenceQuickGELU(nn.Module):
    """``x * sigmoid(1.702 * x)`` left to autograd (saves two tensors)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def reference_attention(block: nn.Module, x: Tensor) -> Tensor:
    """Multi-head self-attention with an explicit softmax (no fused kernel).

    Args:
        block (ResidualAttentionBlock): Supplies ``attn`` and ``heads``.
        x (Tensor): (B, L, D) tokens.

    Returns:
        Tensor: (B, L, D).
    """
    b, length, d = x.shape
    heads = block.heads
    qkv = nn.functional.linear(x, block.attn.in_proj_weight,
                               block.attn.in_proj_bias)
    q, k, v = qkv.view(b, length, 3, heads,
                       d // heads).permute(2, 0, 3, 1, 4).unbind(0)
    scores = (q * (d // heads)**-0.5) @ k.transpose(-2, -1)
    out = scores.softmax(dim=-1) @ v
    out = out.transpose(1, 2).reshape(b, length, d)
    return block.attn.out_proj(out)


class _ReferenceAdapter(nn.Module):
    """Wraps an adapter's parameters with :func:`reference_adapter_forward`.

    Args:
        adapter (STConvAdapter): The adapter whose parameters it shares.
    """

    def __init__(self, adapter: nn.Module) -> None:
        super().__init__()
        self.inner = adapter

    def forward(self, x: Tensor, num_frames: int,
                grid: Tuple[int, int]) -> Tensor:
        return reference_adapter_forward(self.inner, x, num_frames, grid)


def use_reference(backbone: nn.Module, parts: Iterable[str]) -> nn.Module:
    """Swap plain reference versions into a built backbone, in place.

    Args:
        backbone (ViTCLIPSTAdapter): The backbone (parameters are kept and
            shared with the reference modules).
        parts (Iterable[str]): Any of :data:`REFERENCE_PARTS`.

    Returns:
        nn.Module: ``backbone`` itself.

    Raises:
        ValueError: For an unknown part name.
    """
    parts = tuple(parts)
    unknown = sorted(set(parts) - set(REFERENCE_PARTS))
    if unknown:
        raise ValueError(f'Unknown reference parts {unknown}; choose from '
                         f'{REFERENCE_PARTS}.')
    for block in backbone.transformer.resblocks:
        if 'adapter' in parts:
            for name in ('adapter_pre_attn', 'adapter_pre_mlp'):
                adapter = getattr(block, name)
                if adapter is not None and not isinstance(
                        adapter, _ReferenceAdapter):
                    setattr(block, name, _ReferenceAdapter(adapter))
        if 'quick_gelu' in parts and type(block.mlp.gelu).__name__ \
                == 'QuickGELU':
            block.mlp.gelu = ReferenceQuickGELU()
        if 'attention' in parts:
            # An instance attribute shadows the class's fused attention.
            block.attention = types.MethodType(reference_attention, block)
    return backbone
