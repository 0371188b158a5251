"""The layers of CLIP's image transformer, named as in OpenAI's CLIP.

Parameter names (``attn.in_proj_weight``, ``mlp.c_fc``, ``ln_1``...) match
OpenAI's checkpoints, so CLIP files load by key. The blocks know nothing of
the adapters they may carry: any module called as
``adapter(x, num_frames, grid)`` fits.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the input and weight dtypes."""

    def forward(self, x: Tensor) -> Tensor:
        """Normalise the last dimension in fp32.

        Args:
            x (Tensor): Input of any floating dtype, ``(..., D)``.

        Returns:
            Tensor: The normalised input, in ``x``'s dtype.
        """
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.layer_norm(x.float(), self.normalized_shape, weight, bias,
                           self.eps)
        return out.to(x.dtype)


def _quick_gelu(x: Tensor) -> Tensor:
    """``x * sigmoid(1.702 * x)`` with one allocation (bit-identical)."""
    out = torch.mul(x, 1.702)
    out.sigmoid_()
    return out.mul_(x)


class _QuickGELUFunction(torch.autograd.Function):
    """QuickGELU that saves only its input for backward.

    Autograd on ``x * sigmoid(1.702 * x)`` keeps both ``x`` and the sigmoid
    (two MLP-hidden-sized tensors per block); this keeps ``x`` alone and
    computes the derivative with the fused SiLU backward kernel, since
    ``x * sigmoid(a x) = silu(a x) / a`` has derivative ``silu'(a x)``.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        """QuickGELU of ``x``, keeping only ``x`` for backward.

        Args:
            ctx: Autograd context.
            x (Tensor): Input.

        Returns:
            Tensor: ``x * sigmoid(1.702 * x)``.
        """
        ctx.save_for_backward(x)
        return _quick_gelu(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        """Gradient through QuickGELU from the saved input alone.

        Args:
            ctx: Autograd context holding ``x``.
            grad (Tensor): Gradient of the output.

        Returns:
            Tensor: Gradient of ``x``: ``grad * silu'(1.702 * x)``.
        """
        x, = ctx.saved_tensors
        scaled = x * 1.702
        # The elementwise kernel may write over its own input: one
        # MLP-hidden-sized temporary instead of two.
        return torch.ops.aten.silu_backward.grad_input(
            grad, scaled, grad_input=scaled)


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU: ``x * sigmoid(1.702 * x)``."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply QuickGELU elementwise.

        Args:
            x (Tensor): Input of any shape.

        Returns:
            Tensor: ``x * sigmoid(1.702 * x)``, same shape and dtype.
        """
        if torch.is_grad_enabled() and x.requires_grad:
            return _QuickGELUFunction.apply(x)
        return _quick_gelu(x)


#: MLP activations by the names an arch's ``mlp_act`` takes.
MLP_ACTS = {'quick_gelu': QuickGELU, 'gelu': nn.GELU}


class ResidualAttentionBlock(nn.Module):
    """CLIP transformer block with optional adapters before attention / MLP.

    Parameter names follow OpenAI's CLIP (``attn.in_proj_weight``,
    ``mlp.c_fc``...). Attention runs through
    ``F.scaled_dot_product_attention`` (fused kernels where available).

    Args:
        width (int): Token width D.
        heads (int): Attention heads.
        mlp_act (str): ``'quick_gelu'`` (OpenAI CLIP) or ``'gelu'``.
        adapter_pre_attn (nn.Module, optional): Adapter before attention,
            called as ``adapter(x, num_frames, grid)`` (an
            :class:`~stadapter_mm.models.STConvAdapter`).
        adapter_pre_mlp (nn.Module, optional): Adapter before the MLP.
    """

    def __init__(self,
                 width: int,
                 heads: int,
                 mlp_act: str = 'quick_gelu',
                 adapter_pre_attn: Optional[nn.Module] = None,
                 adapter_pre_mlp: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict([('c_fc', nn.Linear(width, width * 4)),
                         ('gelu', MLP_ACTS[mlp_act]()),
                         ('c_proj', nn.Linear(width * 4, width))]))
        self.adapter_pre_attn = adapter_pre_attn
        self.adapter_pre_mlp = adapter_pre_mlp

    def attention(self, x: Tensor) -> Tensor:
        """Multi-head self-attention on (B, L, D) tokens."""
        qkv = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = rearrange(qkv, 'b l (qkv h e) -> qkv b h l e', qkv=3,
                            h=self.heads).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.attn.out_proj(rearrange(out, 'b h l e -> b l (h e)'))

    def forward(self, x: Tensor, num_frames: int,
                grid: Tuple[int, int]) -> Tensor:
        """Run the block on the tokens of every frame.

        Args:
            x (Tensor): Tokens ``(N*T, 1+H*W, D)``, class token first.
            num_frames (int): Frames per clip ``T`` (for the adapters).
            grid (tuple[int, int]): Patch grid ``(H, W)`` (for the adapters).

        Returns:
            Tensor: Tokens of the same shape.
        """
        if self.adapter_pre_attn is not None:
            x = self.adapter_pre_attn(x, num_frames, grid)
        x = x + self.attention(self.ln_1(x))
        if self.adapter_pre_mlp is not None:
            x = self.adapter_pre_mlp(x, num_frames, grid)
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    """Container named like OpenAI's so checkpoint keys match."""

    def __init__(self, blocks: List[ResidualAttentionBlock]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(blocks)
