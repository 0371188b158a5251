"""The spatio-temporal adapter module of ST-Adapter (Pan et al., NeurIPS 2022).

Not to be confused with ``mmaction.models.multimodal.vindlu.STAdapter``
(VindLU's video-language variant, which is not registered and adapts BEiT
features with a different layout): :class:`STConvAdapter` is the adapter of the
ST-Adapter paper, built around a depthwise 3D convolution over (T, H, W) that
acts on patch tokens only.

This module owns every check of adapter arguments: :class:`STConvAdapter`
checks its own, :func:`resolve_adapter_cfg` turns a backbone's ``adapter``
option into a placement (which blocks, where in a block) and
:func:`check_num_frames` checks a clip length against the kernel.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from einops import rearrange
from torch import Tensor, nn

#: Adapter presets of the official releases: ``'12x384'`` (Kinetics-400, one
#: adapter before each MLP) and ``'24x384'`` (SSv2, before attention and
#: before the MLP), in every block.
ADAPTER_PRESETS: Dict[str, dict] = {
    '12x384': dict(positions=('mlp', ), width=384, blocks='all'),
    '24x384': dict(positions=('attn', 'mlp'), width=384, blocks='all'),
}
_OPTIONS = ('positions', 'width', 'blocks', 'kernel_size', 'act_cfg')


def check_adapter_args(in_channels: int, adapter_channels: int,
                       kernel_size: Sequence[int]) -> Tuple[int, int, int]:
    """Check an adapter's width and kernel.

    Args:
        in_channels (int): Token width D of the transformer.
        adapter_channels (int): Bottleneck width, in [1, D].
        kernel_size (Sequence[int]): Three positive odd integers.

    Returns:
        tuple[int, int, int]: The kernel size as integers.

    Raises:
        ValueError: Naming the bad argument and the valid range.
    """
    kernel = tuple(kernel_size)
    if len(kernel) != 3 or any(
            int(k) != k or k <= 0 or k % 2 == 0 for k in kernel):
        raise ValueError(
            f'adapter kernel_size must be three positive odd integers '
            f'(kt, kh, kw) so that the output keeps its shape, got '
            f'{kernel}.')
    if not 0 < adapter_channels <= in_channels:
        raise ValueError(
            f'adapter width (bottleneck) must be in [1, {in_channels}] for a '
            f'model of width {in_channels}, got {adapter_channels}.')
    return tuple(int(k) for k in kernel)


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
        kernel_size = check_adapter_args(in_channels, adapter_channels,
                                         kernel_size)
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
        dtype = x.dtype
        # Every token goes through the projections, the class token too: one
        # extra row of 1 + H*W costs less than copying the patch rows out and
        # back (slice, then concatenate) in forward and backward.
        y = self.fc1(x.to(self.fc1.weight.dtype))
        if self.act is not None:
            y = self.act(y)
        y = self._conv_tokens(y, num_frames, grid)
        y = self.fc2(y).to(dtype)
        # x + y on patch tokens, class token untouched, in one fused pass.
        keep = torch.ones(length, 1, dtype=y.dtype, device=y.device)
        keep[0] = 0
        return torch.addcmul(x, y, keep)

    def _conv_tokens(self, y: Tensor, num_frames: int,
                     grid: Tuple[int, int]) -> Tensor:
        """Depthwise convolution of bottleneck tokens over (T, H, W).

        Args:
            y (Tensor): (N*T, 1 + H*W, C) bottleneck tokens.
            num_frames (int): T.
            grid (tuple[int, int]): (H, W).

        Returns:
            Tensor: (N*T, 1 + H*W, C); the class-token row holds no
            meaningful value (the caller discards it).
        """
        length, c = y.shape[1:]
        kt, kh, kw = self.kernel_size
        if kh == 1 and kw == 1:
            # A temporal kernel mixes no token positions, so the tokens,
            # class token included, form a (T, 1 + H*W) image whose
            # channels-last view needs no copy; a depthwise 2D convolution
            # on it is much faster on CPU than Conv3d with a unit width.
            z = rearrange(y, '(n t) l c -> n c t l', t=num_frames)
            z = F.conv2d(z, self.conv.weight.view(c, 1, kt, 1),
                         self.conv.bias, padding=(kt // 2, 0), groups=c)
            return rearrange(z, 'n c t l -> (n t) l c')
        h, w = grid
        z = rearrange(y[:, 1:], '(n t) (h w) c -> n c t h w',
                      t=num_frames, h=h, w=w)
        z = rearrange(self.conv(z), 'n c t h w -> (n t) (h w) c')
        return F.pad(z, (0, 0, 1, 0))

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'adapter_channels={self.adapter_channels}, '
                f'kernel_size={self.kernel_size}')


def _block_indices(blocks: Union[str, int, Sequence[int]],
                   layers: int) -> list:
    """Indices of the adapted blocks: ``'all'``, last N, or a list."""
    if blocks == 'all':
        return list(range(layers))
    if isinstance(blocks, int) and not isinstance(blocks, bool):
        if not 0 < blocks <= layers:
            raise ValueError(
                f'adapter blocks={blocks} (last N blocks) must be in '
                f'[1, {layers}].')
        return list(range(layers - blocks, layers))
    indices = sorted({int(i) for i in blocks})
    bad = [i for i in indices if not 0 <= i < layers]
    if bad or not indices:
        raise ValueError(
            f'adapter block indices {bad or list(blocks)} are out of range '
            f'for a {layers}-block model (valid: 0..{layers - 1}).')
    return indices


def resolve_adapter_cfg(
        adapter: Union[str, Mapping, None],
        width: int,
        layers: int,
        presets: Mapping[str, dict] = ADAPTER_PRESETS,
        positions: Sequence[str] = ('attn', 'mlp')) -> Optional[dict]:
    """Resolve a backbone's ``adapter`` option into an adapter placement.

    Independent of the block structure: any backbone of ``layers`` blocks of
    token width ``width`` with named insertion points (``positions``) can
    use it.

    Args:
        adapter (str | dict | None): A preset name, or a dict with keys
            ``positions`` (non-empty subset of ``positions``), ``width``
            (bottleneck, default 384), ``blocks`` (``'all'``, an int N for the
            last N blocks, or a list of block indices), ``kernel_size``
            (default (3, 1, 1)) and ``act_cfg`` (default None); a dict may
            name a ``preset`` to start from. None: no adapters.
        width (int): Token width of the model.
        layers (int): Number of blocks.
        presets (Mapping[str, dict]): Named settings. Defaults to
            :data:`ADAPTER_PRESETS`.
        positions (Sequence[str]): Insertion points the backbone offers.
            Defaults to ``('attn', 'mlp')`` (before attention, before MLP).

    Returns:
        dict | None: ``positions`` (tuple), ``width``, ``blocks`` (sorted
        indices), ``kernel_size`` (tuple) and ``act_cfg``.

    Raises:
        ValueError: For an unknown preset or option, or a value out of range.
    """
    if adapter is None:
        return None
    if isinstance(adapter, str):
        adapter = dict(preset=adapter)
    adapter = dict(adapter)
    preset = adapter.pop('preset', None)
    if preset is not None:
        if preset not in presets:
            raise ValueError(
                f'Unknown adapter preset {preset!r}; choose one of '
                f'{sorted(presets)} or pass a dict.')
        adapter = {**presets[preset], **adapter}
    unknown = set(adapter) - set(_OPTIONS)
    if unknown:
        raise ValueError(f'Unknown adapter options {sorted(unknown)}.')
    chosen = tuple(adapter.get('positions', ('mlp', )))
    if not chosen or not set(chosen) <= set(positions):
        raise ValueError(
            f'adapter positions must be a non-empty subset of '
            f'{tuple(positions)}, got {chosen}.')
    adapter_width = int(adapter.get('width', 384))
    kernel = check_adapter_args(width, adapter_width,
                                adapter.get('kernel_size', (3, 1, 1)))
    return dict(positions=chosen, width=adapter_width,
                blocks=_block_indices(adapter.get('blocks', 'all'), layers),
                kernel_size=kernel, act_cfg=adapter.get('act_cfg'))


def check_num_frames(num_frames: Optional[int],
                     adapter_cfg: Optional[Mapping]) -> None:
    """Check a clip length against the adapters' temporal kernel.

    Args:
        num_frames (int, optional): Frames per clip; None skips the check.
        adapter_cfg (dict, optional): Output of :func:`resolve_adapter_cfg`.

    Raises:
        ValueError: If ``num_frames`` is not positive or shorter than the
            temporal kernel.
    """
    if num_frames is None:
        return
    if num_frames <= 0:
        raise ValueError(f'num_frames must be positive, got {num_frames}')
    if adapter_cfg and num_frames < adapter_cfg['kernel_size'][0]:
        raise ValueError(
            f'num_frames={num_frames} is fewer than the temporal kernel '
            f'size {adapter_cfg["kernel_size"][0]}: sample more frames or '
            'use a smaller adapter kernel_size.')
