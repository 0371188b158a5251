"""The official ST-Adapter video model, restated for tests (fp32).

This restates, independently of :mod:`stadapter_mm`, the forward pass of the
model in the official ST-Adapter repository (``models_adapter.py`` of
github.com/linziyi96/st-adapter) and the way its ``utils.save_model`` writes
checkpoints, so that the conversion tool can be checked end to end:

- frames go one by one through a CLIP ViT (patch conv, class token,
  positional embedding, ``ln_pre``);
- each block is ``[adapter_pre_attn] -> x + attn(ln_1 x) -> [adapter_pre_mlp]
  -> x + mlp(ln_2 x)``, adapters in the last ``adapter_layers`` blocks;
- an adapter is ``fc1 -> depthwise Conv3d over (T, H, W) -> fc2`` added to
  the patch tokens (the class token passes through);
- the class tokens are averaged over frames, then ``ln_post``, dropout 0.5
  and the linear classifier ``fc``.

Parameter names equal the official ones, so ``state_dict()`` has the official
layout. Attention is written out with an explicit softmax rather than a fused
kernel. The official code keeps frozen weights in fp16 on GPU; this
restatement stays in fp32 (the comparison the tests make).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import torch
from torch import Tensor, nn


class RefAdapter(nn.Module):
    """Bottleneck adapter with a depthwise spatio-temporal convolution."""

    def __init__(self, width: int, bottleneck: int,
                 kernel: Sequence[int]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, bottleneck)
        self.conv = nn.Conv3d(bottleneck, bottleneck, tuple(kernel),
                              padding=tuple(k // 2 for k in kernel),
                              groups=bottleneck)
        self.fc2 = nn.Linear(bottleneck, width)

    def forward(self, tokens: Tensor, frames: int) -> Tensor:
        """tokens: (B*T, 1 + S*S, D) -> same shape."""
        count, length, _ = tokens.shape
        side = math.isqrt(length - 1)
        assert side * side == length - 1
        cls_tok, patches = tokens[:, :1], tokens[:, 1:]
        hidden = self.fc1(patches)
        channels = hidden.shape[-1]
        volume = hidden.reshape(count // frames, frames, side, side,
                                channels).permute(0, 4, 1, 2, 3)
        volume = self.conv(volume)
        hidden = volume.permute(0, 2, 3, 4, 1).reshape(count, length - 1,
                                                        channels)
        return torch.cat([cls_tok, patches + self.fc2(hidden)], dim=1)


class RefBlock(nn.Module):
    """Pre-LN transformer block with the optional adapters."""

    def __init__(self, width: int, heads: int, bottleneck: int,
                 kernel: Sequence[int], pre_attn: bool,
                 pre_mlp: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, 4 * width),
                        gelu=nn.Identity(),
                        c_proj=nn.Linear(4 * width, width)))
        self.ln_2 = nn.LayerNorm(width)
        self.adapter_pre_attn = RefAdapter(width, bottleneck,
                                           kernel) if pre_attn else None
        self.adapter_pre_mlp = RefAdapter(width, bottleneck,
                                          kernel) if pre_mlp else None

    def _attention(self, x: Tensor) -> Tensor:
        count, length, width = x.shape
        heads = self.attn.num_heads
        qkv = x @ self.attn.in_proj_weight.t() + self.attn.in_proj_bias
        q, k, v = qkv.reshape(count, length, 3, heads,
                              width // heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(
            q @ k.transpose(-1, -2) / math.sqrt(width // heads), dim=-1)
        out = (weights @ v).permute(0, 2, 1, 3).reshape(count, length, width)
        return self.attn.out_proj(out)

    def _mlp(self, x: Tensor) -> Tensor:
        hidden = self.mlp.c_fc(x)
        return self.mlp.c_proj(hidden * torch.sigmoid(1.702 * hidden))

    def forward(self, x: Tensor, frames: int) -> Tensor:
        if self.adapter_pre_attn is not None:
            x = self.adapter_pre_attn(x, frames)
        x = x + self._attention(self.ln_1(x))
        if self.adapter_pre_mlp is not None:
            x = self.adapter_pre_mlp(x, frames)
        return x + self._mlp(self.ln_2(x))


class RefTransformer(nn.Module):
    """Holds ``resblocks`` so that keys match the official names."""

    def __init__(self, blocks: Sequence[RefBlock]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(blocks)


class OfficialSTAdapter(nn.Module):
    """The official ``VisionTransformer`` video classifier.

    Args:
        input_resolution, patch_size, width, layers, heads: CLIP ViT shape.
        num_classes: Classifier outputs.
        adapter_width: Adapter bottleneck (384 in the releases).
        adapter_layers: Adapters go into the last this many blocks.
        adapter_kernel_size: Depthwise kernel (3, 1, 1) in the releases.
        adapter_pre_attn, adapter_pre_mlp: Where the adapters sit (K400
            12x384: MLP only; SSv2 24x384: both).
    """

    def __init__(self, input_resolution: int, patch_size: int, width: int,
                 layers: int, heads: int, num_classes: int,
                 adapter_width: int, adapter_layers: int,
                 adapter_kernel_size: Sequence[int] = (3, 1, 1),
                 adapter_pre_attn: bool = False,
                 adapter_pre_mlp: bool = True) -> None:
        super().__init__()
        grid = input_resolution // patch_size
        self.conv1 = nn.Conv2d(3, width, patch_size, patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.1)
        self.positional_embedding = nn.Parameter(
            torch.randn(grid * grid + 1, width) * 0.1)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = RefTransformer([
            RefBlock(width, heads, adapter_width, adapter_kernel_size,
                     adapter_pre_attn and i >= layers - adapter_layers,
                     adapter_pre_mlp and i >= layers - adapter_layers)
            for i in range(layers)
        ])
        self.ln_post = nn.LayerNorm(width)
        for name, param in self.named_parameters():
            if 'adapter' not in name:
                param.requires_grad_(False)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, video: Tensor) -> Tensor:
        """video: (B, 3, T, H, W), normalised -> logits (B, num_classes)."""
        batch, frames = video.shape[0], video.shape[2]
        images = video.transpose(1, 2).flatten(0, 1)
        tokens = self.conv1(images).flatten(2).transpose(1, 2)
        cls_tok = self.class_embedding.expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([cls_tok, tokens], dim=1)
        tokens = self.ln_pre(tokens + self.positional_embedding)
        for block in self.transformer.resblocks:
            tokens = block(tokens, frames)
        pooled = tokens[:, 0].reshape(batch, frames, -1).mean(dim=1)
        return self.fc(self.dropout(self.ln_post(pooled)))


def randomize_(model: OfficialSTAdapter, seed: int = 0,
               fp16_frozen_values: bool = True) -> OfficialSTAdapter:
    """Give every weight (adapters included) random, non-trivial values.

    Args:
        model: The model to fill in place.
        seed: Random seed.
        fp16_frozen_values: Round frozen weights to fp16 values, like the
            OpenAI CLIP release (so a CLIP file saved in fp16 is exact).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 0.2 if param.dim() > 1 else 0.05
            value = torch.randn(param.shape, generator=gen) * scale
            if name.endswith(('ln_1.weight', 'ln_2.weight', 'ln_pre.weight',
                              'ln_post.weight')):
                value = value + 1.0
            if fp16_frozen_values and not param.requires_grad:
                value = value.half().float()
            param.copy_(value)
    return model


def save_official_checkpoint(model: OfficialSTAdapter, path: str,
                             epoch: int = 11, full: bool = False) -> None:
    """Write a checkpoint the way the official ``save_model`` does.

    Args:
        model: The model.
        path: Output file.
        epoch: Stored as ``next_epoch - 1``.
        full: Keep frozen weights too (as a hand-made full export would);
            the official script drops them.
    """
    state = model.state_dict()
    if not full:
        for name, param in model.named_parameters():
            if not param.requires_grad:
                del state[name]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    torch.save(
        dict(model=state,
             optimizer=optimizer.state_dict(),
             lr_sched=sched.state_dict(),
             loss_scaler=dict(scale=65536.0, growth_factor=2.0,
                              backoff_factor=0.5, growth_interval=2000,
                              _growth_tracker=0),
             next_epoch=epoch + 1), path)


def save_openai_clip(model: OfficialSTAdapter, path: str,
                     proj_dim: int = 16) -> None:
    """Write the frozen image tower as an OpenAI-layout CLIP state dict.

    Keys get the ``visual.`` prefix, a ``visual.proj`` and a couple of text
    tower keys are added (a converter must ignore them), values in fp16 like
    the OpenAI release.
    """
    width = model.conv1.weight.shape[0]
    state = {
        'visual.' + name: param.detach().half().clone()
        for name, param in model.named_parameters()
        if 'adapter' not in name and not name.startswith('fc.')
    }
    state['visual.proj'] = torch.zeros(width, proj_dim, dtype=torch.half)
    state['token_embedding.weight'] = torch.zeros(10, proj_dim,
                                                  dtype=torch.half)
    state['logit_scale'] = torch.tensor(4.6)
    torch.save(state, path)


# --------------------------------------------------------------------------
# Small fixtures shared by the tests of the demos, tools and task files.

#: Mean/std of CLIP in 0-255, as the project's configs use.
CLIP_MEAN = (122.769, 116.74, 104.04)
CLIP_STD = (68.493, 66.63, 70.32)


def tiny_config_text(positions: Sequence[str] = ('mlp', ),
                     adapter_width: int = 16,
                     num_classes: int = 5,
                     clip_len: int = 4,
                     clip_file: str = '',
                     layers: int = 2) -> str:
    """Python source of a complete tiny recognizer config.

    A 2-layer ViT of width 64 on 32x32 frames (``TINY_ARCH``), ST-Adapters
    at ``positions``, a ``TimeSformerHead`` and a decord test pipeline.

    Args:
        positions: Adapter positions.
        adapter_width: Adapter bottleneck.
        num_classes: Classes of the head.
        clip_len: Frames per clip.
        clip_file: CLIP file for the backbone ``init_cfg`` ('' for none).
        layers: Transformer blocks.
    """
    init_cfg = (f"dict(type='Pretrained', checkpoint={clip_file!r})"
                if clip_file else 'None')
    return f"""
default_scope = 'mmaction'
custom_imports = dict(imports=['stadapter_mm'], allow_failed_imports=False)
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ViTCLIPSTAdapter',
        arch=dict(input_resolution=32, patch_size=8, width=64,
                  layers={layers}, heads=4),
        adapter=dict(positions={tuple(positions)!r}, width={adapter_width},
                     blocks='all'),
        num_frames={clip_len},
        init_cfg={init_cfg}),
    cls_head=dict(type='TimeSformerHead', num_classes={num_classes},
                  in_channels=64, dropout_ratio=0.5, average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor',
                           mean={list(CLIP_MEAN)}, std={list(CLIP_STD)},
                           format_shape='NCTHW'))
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len={clip_len}, frame_interval=2,
         num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_dataloader = dict(
    batch_size=1, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VideoDataset', ann_file='', data_prefix=dict(video=''),
                 pipeline=test_pipeline, test_mode=True))
"""


def write_video(path: str, frames: int = 24, size: Sequence[int] = (64, 48),
                seed: int = 0, fps: int = 8, noise: bool = True) -> str:
    """Write a small mp4 (mp4v) of a square moving over a background.

    Args:
        path: Output file.
        frames: Number of frames.
        size: (width, height).
        seed: Random seed of the background.
        fps: Frame rate.
        noise: Random background (else a smooth gradient, which survives
            lossy re-encoding nearly unchanged).
    """
    import numpy as np

    from stadapter_mm.utils.video import write_video as write_rgb_video
    rng = np.random.default_rng(seed)
    width, height = size
    if noise:
        base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    else:
        ramp = np.linspace(40, 200, width, dtype=np.float64)
        base = np.repeat(ramp[None, :, None], height, 0).repeat(3, 2)
        base = base.astype(np.uint8)

    def moving_square():
        for i in range(frames):
            frame = base.copy()
            x = (3 * i) % (width - 10)
            frame[10:20, x:x + 10] = (255, 0, 0)  # red (RGB)
            yield frame

    return write_rgb_video(path, moving_square(), fps=fps)
