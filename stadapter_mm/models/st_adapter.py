"""The spatio-temporal adapter module of ST-Adapter (Pan et al., NeurIPS 2022).

Not to be confused with ``mmaction.models.multimodal.vindlu.STAdapter``
(VindLU's video-language variant, which is not registered and adapts BEiT
features with a different layout): :class:`STConvAdapter` is the adapter of the
ST-Adapter paper, built around a depthwise 3D convolution over (T, H, W) that
acts on patch tokens only.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from torch import Tensor, nn


class STConvAdapter(nn.Module):
    """Bottleneck adapter with a depthwise 3D convolution over time and space.

    ``x -> x + up(conv3d_dw(act?(down(x))))`` on the patch tokens; the class
    token bypasses the adapter. The convolution and both biases start at zero,
    so a fresh adapter is the identity map.

    Args:
        in_channels (int): Token width D of the transformer.
        adapter_channels (int): Bottleneck width C (e.g. 384 for ViT-B).
        kernel_size (Sequence[int]): Depthwise kernel (kt, kh, kw); odd sizes.
            Defaults to (3, 1, 1).
        act_cfg (dict, optional): Activation after the down-projection, e.g.
            ``dict(type='GELU')``. Defaults to None (none, as in the official
            code).
    """

    def __init__(self,
                 in_channels: int,
                 adapter_channels: int,
                 kernel_size: Sequence[int] = (3, 1, 1),
                 act_cfg: Optional[dict] = None) -> None:
        super().__init__()
        kernel_size = tuple(int(k) for k in kernel_size)
        if len(kernel_size) != 3 or any(k <= 0 or k % 2 == 0
                                        for k in kernel_size):
            raise ValueError(
                f'adapter kernel_size must be three positive odd integers '
                f'(kt, kh, kw) so that the output keeps its shape, got '
                f'{kernel_size}.')
        if adapter_channels <= 0:
            raise ValueError(
                f'adapter width must be positive, got {adapter_channels}.')
        self.in_channels = in_channels
        self.adapter_channels = adapter_channels
        self.kernel_size: Tuple[int, int, int] = kernel_size
        self.fc1 = nn.Linear(in_channels, adapter_channels)
        self.act = build_activation_layer(act_cfg) if act_cfg else None
        self.conv = nn.Conv3d(
            adapter_channels,
            adapter_channels,
            kernel_size=kernel_size,
            padding=tuple(k // 2 for k in kernel_size),
            groups=adapter_channels)
        self.fc2 = nn.Linear(adapter_channels, in_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the convolution and biases (identity at initialisation)."""
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor, num_frames: int,
                grid: Tuple[int, int]) -> Tensor:
        """Apply the adapter.

        Args:
            x (Tensor): Tokens of shape (N*T, 1 + H*W, D), class token first.
            num_frames (int): T.
            grid (tuple[int, int]): Patch grid (H, W).

        Returns:
            Tensor: Same shape as ``x``: ``x`` with the adapter output added
            to its patch tokens.
        """
        nt, length, _ = x.shape
        h, w = grid
        if length != h * w + 1 or nt % num_frames != 0:
            raise ValueError(
                f'adapter got tokens of shape {tuple(x.shape)}, expected '
                f'(N*{num_frames}, 1 + {h}*{w}, D).')
        n = nt // num_frames
        dtype = x.dtype
        # Every token goes through the projections, the class token too: one
        # extra row of 1 + H*W costs less than copying the patch rows out and
        # back (slice, then concatenate) in forward and backward.
        y = self.fc1(x.to(self.fc1.weight.dtype))
        if self.act is not None:
            y = self.act(y)
        y = self._conv_tokens(y, n, num_frames, grid)
        y = self.fc2(y).to(dtype)
        # x + y on patch tokens, class token untouched, in one fused pass.
        keep = torch.ones(length, 1, dtype=y.dtype, device=y.device)
        keep[0] = 0
        return torch.addcmul(x, y, keep)

    def _conv_tokens(self, y: Tensor, n: int, num_frames: int,
                     grid: Tuple[int, int]) -> Tensor:
        """Depthwise convolution of bottleneck tokens over (T, H, W).

        Args:
            y (Tensor): (N*T, 1 + H*W, C) bottleneck tokens.
            n (int): N.
            num_frames (int): T.
            grid (tuple[int, int]): (H, W).

        Returns:
            Tensor: (N*T, 1 + H*W, C); the class-token row holds no
            meaningful value (the caller discards it).
        """
        nt, length, c = y.shape
        kt, kh, kw = self.kernel_size
        if kh == 1 and kw == 1:
            # A temporal kernel mixes no token positions, so the tokens,
            # class token included, form a (T, 1 + H*W) image whose
            # channels-last view needs no copy; a depthwise 2D convolution
            # on it is much faster on CPU than Conv3d with a unit width.
            z = y.view(n, num_frames, length, c).permute(0, 3, 1, 2)
            z = F.conv2d(z, self.conv.weight.view(c, 1, kt, 1),
                         self.conv.bias, padding=(kt // 2, 0), groups=c)
            return z.permute(0, 2, 3, 1).reshape(nt, length, c)
        h, w = grid
        z = y[:, 1:].reshape(n, num_frames, h, w, c).permute(0, 4, 1, 2, 3)
        z = self.conv(z).permute(0, 2, 3, 4, 1).reshape(nt, h * w, c)
        return F.pad(z, (0, 0, 1, 0))

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'adapter_channels={self.adapter_channels}, '
                f'kernel_size={self.kernel_size}')
