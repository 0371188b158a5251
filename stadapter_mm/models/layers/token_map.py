"""Patch tokens seen as a spatio-temporal feature map (for Grad-CAM).

MMAction2's ``GradCAM`` (``tools/visualizations/vis_cam.py``) hooks one module
by name and, for a ``Recognizer3D``, expects that module's output to be a
``(N, C, T, H, W)`` feature map, as a 3D CNN layer gives. A ViT has no such
module: its blocks pass ``(N*T, 1 + H*W, D)`` token sequences.
:class:`PatchTokenMap` is that module for a token backbone: a parameter-free
layer the backbone routes its tokens through, whose output is the patch
tokens as a ``(N, D, T, H, W)`` map (a view, no copy) and whose
:meth:`PatchTokenMap.to_tokens` puts the class token back. Forward hooks on it
see the map, backward hooks the gradient of the map, so::

    python tools/mmaction_tool.py vis_cam CONFIG CKPT video.mp4 \\
        --target-layer-name backbone/token_map --device cpu --out-filename cam.gif

works unchanged. Values pass through exactly (the only cost is one copy of
the tokens when the class token is put back); it has no state-dict entries.
"""
from __future__ import annotations

from typing import Tuple

import torch
from einops import rearrange
from torch import Tensor, nn


class PatchTokenMap(nn.Module):
    """Expose the patch tokens of ``(N*T, 1 + H*W, D)`` tokens as a map."""

    def forward(self, tokens: Tensor, num_frames: int,
                grid: Tuple[int, int]) -> Tensor:
        """Patch tokens as a feature map.

        Args:
            tokens (Tensor): (N*T, 1 + H*W, D), class token first.
            num_frames (int): T.
            grid (tuple[int, int]): Patch grid (H, W).

        Returns:
            Tensor: (N, D, T, H, W) view of the patch tokens.
        """
        return rearrange(tokens[:, 1:], '(n t) (h w) d -> n d t h w',
                         t=num_frames, h=grid[0], w=grid[1])

    @staticmethod
    def to_tokens(feature_map: Tensor, cls_token: Tensor) -> Tensor:
        """Tokens again, from the map and the class token.

        Args:
            feature_map (Tensor): (N, D, T, H, W) from :meth:`forward`.
            cls_token (Tensor): (N*T, 1, D).

        Returns:
            Tensor: (N*T, 1 + H*W, D).
        """
        patches = rearrange(feature_map, 'n d t h w -> (n t) (h w) d')
        return torch.cat([cls_token, patches], dim=1)
