"""CLIP ViT image tower with ST-Adapters, as an MMAction2 backbone."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmaction.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..checkpoints.adapter_state import is_pretrained_init
from ..checkpoints.clip_formats import (CheckpointError, infer_arch,
                                        load_clip_backbone_weights,
                                        read_hf_vision_config,
                                        resize_pos_embed)
from .st_adapter import STConvAdapter


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the input and weight dtypes."""

    def forward(self, x: Tensor) -> Tensor:
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
        ctx.save_for_backward(x)
        return _quick_gelu(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        x, = ctx.saved_tensors
        scaled = x * 1.702
        # The elementwise kernel may write over its own input: one
        # MLP-hidden-sized temporary instead of two.
        return torch.ops.aten.silu_backward.grad_input(
            grad, scaled, grad_input=scaled)


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU: ``x * sigmoid(1.702 * x)``."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _QuickGELUFunction.apply(x)
        return _quick_gelu(x)


_MLP_ACTS = {'quick_gelu': QuickGELU, 'gelu': nn.GELU}


class ResidualAttentionBlock(nn.Module):
    """CLIP transformer block with optional ST-Adapters.

    Parameter names follow OpenAI's CLIP (``attn.in_proj_weight``,
    ``mlp.c_fc``...). Attention runs through
    ``F.scaled_dot_product_attention`` (fused kernels where available).

    Args:
        width (int): Token width D.
        heads (int): Attention heads.
        mlp_act (str): ``'quick_gelu'`` (OpenAI CLIP) or ``'gelu'``.
        adapter_pre_attn (STConvAdapter, optional): Adapter before attention.
        adapter_pre_mlp (STConvAdapter, optional): Adapter before the MLP.
    """

    def __init__(self,
                 width: int,
                 heads: int,
                 mlp_act: str = 'quick_gelu',
                 adapter_pre_attn: Optional[STConvAdapter] = None,
                 adapter_pre_mlp: Optional[STConvAdapter] = None) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict([('c_fc', nn.Linear(width, width * 4)),
                         ('gelu', _MLP_ACTS[mlp_act]()),
                         ('c_proj', nn.Linear(width * 4, width))]))
        self.adapter_pre_attn = adapter_pre_attn
        self.adapter_pre_mlp = adapter_pre_mlp

    def attention(self, x: Tensor) -> Tensor:
        """Multi-head self-attention on (B, L, D) tokens."""
        b, length, d = x.shape
        qkv = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.view(b, length, 3, self.heads,
                           d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, length, d)
        return self.attn.out_proj(out)

    def forward(self, x: Tensor, num_frames: int,
                grid: Tuple[int, int]) -> Tensor:
        """Args: x (N*T, 1+H*W, D). Returns the same shape."""
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


@MODELS.register_module()
class ViTCLIPSTAdapter(BaseModule):
    """CLIP ViT image tower turned video backbone by ST-Adapters.

    Every frame goes through the frozen CLIP image tower; ST-Adapters
    (:class:`STConvAdapter`) inside the chosen blocks mix patch tokens across
    time with a depthwise 3D convolution. The output is CLIP's pooled image
    feature computed as in the official ST-Adapter: the class token averaged
    over frames, then the frozen final LayerNorm. At initialisation the
    adapters are zero and the network equals the image model.

    Only the adapters train (plus what ``unfreeze`` names); everything else
    is frozen at construction, so DDP wrapping and optimizer building see the
    final trainable set.

    Args:
        arch (str | dict): A name from :attr:`arch_zoo` (``'ViT-B/32'``,
            ``'ViT-B/16'``, ``'ViT-L/14'``, ``'ViT-L/14-336'``) or a dict with
            ``input_resolution, patch_size, width, layers, heads`` (and
            optionally ``mlp_act``: ``'quick_gelu'`` or ``'gelu'``).
        adapter (str | dict | None): A preset from :attr:`adapter_zoo`
            (``'12x384'``: the official Kinetics-400 model, one adapter before
            each MLP; ``'24x384'``: the official SSv2 model, before attention
            and before MLP) or a dict with keys ``positions`` (subset of
            ``('attn', 'mlp')``), ``width`` (bottleneck), ``blocks``
            (``'all'``, an int N for the last N blocks, or a list of block
            indices), ``kernel_size`` (default (3, 1, 1)) and ``act_cfg``
            (default None). A dict may also name a ``preset`` to start from.
            None builds the bare image model.
        input_resolution (int, optional): Override the arch's image size; the
            positional embedding is resized when loading weights.
        num_frames (int, optional): Frames per clip, checked against the
            temporal kernel at construction.
        unfreeze (Sequence[str] | str): Extra parts that train: any of
            ``'conv1', 'class_embedding', 'positional_embedding', 'ln_pre',
            'transformer', 'ln_post'``, or ``'all'`` for full fine-tuning.
            Defaults to ``()``.
        with_cp (bool | Sequence[int]): Gradient checkpointing: True for
            every block, or the indices of the blocks to checkpoint (early
            blocks hold the most activations worth dropping). Defaults to
            False.
        frozen_fp16 (bool): Keep frozen weights in fp16 (as the official code
            does on GPU; LayerNorms still compute in fp32). Defaults to False.
        trust_torchscript (bool): Allow executing a TorchScript checkpoint
            that cannot be read as plain data. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` for CLIP weights (OpenAI TorchScript or state
            dict, open_clip, Hugging Face file or folder). Defaults to None.

    Shapes:
        - input: (N, 3, T, H, W), H and W multiples of the patch size.
        - output: (N, width).
    """

    arch_zoo: Dict[str, dict] = {
        'ViT-B/32': dict(input_resolution=224, patch_size=32, width=768,
                         layers=12, heads=12),
        'ViT-B/16': dict(input_resolution=224, patch_size=16, width=768,
                         layers=12, heads=12),
        'ViT-L/14': dict(input_resolution=224, patch_size=14, width=1024,
                         layers=24, heads=16),
        'ViT-L/14-336': dict(input_resolution=336, patch_size=14, width=1024,
                             layers=24, heads=16),
    }
    adapter_zoo: Dict[str, dict] = {
        '12x384': dict(positions=('mlp', ), width=384, blocks='all'),
        '24x384': dict(positions=('attn', 'mlp'), width=384, blocks='all'),
    }
    unfreezable = ('conv1', 'class_embedding', 'positional_embedding',
                   'ln_pre', 'transformer', 'ln_post')

    def __init__(self,
                 arch: Union[str, dict] = 'ViT-B/16',
                 adapter: Union[str, dict, None] = '12x384',
                 input_resolution: Optional[int] = None,
                 num_frames: Optional[int] = None,
                 unfreeze: Union[str, Sequence[str]] = (),
                 with_cp: Union[bool, Sequence[int]] = False,
                 frozen_fp16: bool = False,
                 trust_torchscript: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._resolve_arch(arch, input_resolution)
        s = self.arch_settings
        width, layers, patch = s['width'], s['layers'], s['patch_size']
        self.width = width
        self.patch_size = patch
        self.num_layers = layers
        self.input_resolution = s['input_resolution']
        self.grid = (self.input_resolution // patch, ) * 2
        if not isinstance(with_cp, bool):
            with_cp = tuple(sorted({int(i) for i in with_cp}))
            if any(not 0 <= i < layers for i in with_cp):
                raise ValueError(
                    f'with_cp block indices {list(with_cp)} are out of range '
                    f'for a {layers}-block model (valid: 0..{layers - 1}).')
        self.with_cp = with_cp
        self.frozen_fp16 = frozen_fp16
        self.trust_torchscript = trust_torchscript
        self.adapter_cfg = self._resolve_adapter(adapter, width, layers)
        self._check_num_frames(num_frames)
        self.num_frames = num_frames

        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn(self.grid[0] * self.grid[1] + 1, width))
        self.ln_pre = LayerNorm(width)
        blocks = []
        for i in range(layers):
            kwargs = {}
            if self.adapter_cfg and i in self.adapter_cfg['blocks']:
                for pos in self.adapter_cfg['positions']:
                    kwargs[f'adapter_pre_{pos}'] = STConvAdapter(
                        width, self.adapter_cfg['width'],
                        self.adapter_cfg['kernel_size'],
                        self.adapter_cfg['act_cfg'])
            blocks.append(
                ResidualAttentionBlock(width, s['heads'],
                                       s.get('mlp_act', 'quick_gelu'),
                                       **kwargs))
        self.transformer = Transformer(blocks)
        self.ln_post = LayerNorm(width)

        self.unfreeze = self._resolve_unfreeze(unfreeze)
        self._clip_loaded = False
        self._register_load_state_dict_pre_hook(self._fill_frozen_from_clip)
        self._freeze()

    # ------------------------------------------------------------------ setup
    @classmethod
    def _resolve_arch(cls, arch: Union[str, dict],
                      input_resolution: Optional[int]) -> dict:
        if isinstance(arch, str):
            key = arch.replace('-', '/', 1) if arch.count('/') == 0 else arch
            if key not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown CLIP arch {arch!r}; choose one of '
                    f'{sorted(cls.arch_zoo)} or pass a dict with '
                    'input_resolution, patch_size, width, layers, heads.')
            settings = dict(cls.arch_zoo[key])
        elif isinstance(arch, dict):
            need = {'input_resolution', 'patch_size', 'width', 'layers',
                    'heads'}
            missing = need - set(arch)
            if missing:
                raise ValueError(
                    f'Custom arch dict lacks {sorted(missing)}; it needs '
                    f'{sorted(need)}.')
            settings = dict(arch)
        else:
            raise TypeError(f'arch must be a str or dict, got {type(arch)}')
        if input_resolution is not None:
            settings['input_resolution'] = int(input_resolution)
        if settings['width'] % settings['heads']:
            raise ValueError(
                f'width {settings["width"]} is not divisible by heads '
                f'{settings["heads"]}.')
        if settings['input_resolution'] % settings['patch_size']:
            raise ValueError(
                f'input_resolution {settings["input_resolution"]} is not a '
                f'multiple of patch_size {settings["patch_size"]}.')
        if settings.get('mlp_act', 'quick_gelu') not in _MLP_ACTS:
            raise ValueError(f'mlp_act must be one of {sorted(_MLP_ACTS)}')
        return settings

    @classmethod
    def _resolve_adapter(cls, adapter: Union[str, dict, None], width: int,
                         layers: int) -> Optional[dict]:
        if adapter is None:
            return None
        if isinstance(adapter, str):
            adapter = dict(preset=adapter)
        adapter = dict(adapter)
        preset = adapter.pop('preset', None)
        if preset is not None:
            if preset not in cls.adapter_zoo:
                raise ValueError(
                    f'Unknown adapter preset {preset!r}; choose one of '
                    f'{sorted(cls.adapter_zoo)} or pass a dict.')
            adapter = {**cls.adapter_zoo[preset], **adapter}
        unknown = set(adapter) - {
            'positions', 'width', 'blocks', 'kernel_size', 'act_cfg'
        }
        if unknown:
            raise ValueError(f'Unknown adapter options {sorted(unknown)}.')
        positions = tuple(adapter.get('positions', ('mlp', )))
        if not positions or not set(positions) <= {'attn', 'mlp'}:
            raise ValueError(
                f'adapter positions must be a non-empty subset of '
                f'("attn", "mlp"), got {positions}.')
        adapter_width = int(adapter.get('width', 384))
        if not 0 < adapter_width <= width:
            raise ValueError(
                f'adapter width (bottleneck) must be in [1, {width}] for a '
                f'model of width {width}, got {adapter_width}.')
        blocks = adapter.get('blocks', 'all')
        if blocks == 'all':
            indices = list(range(layers))
        elif isinstance(blocks, int) and not isinstance(blocks, bool):
            if not 0 < blocks <= layers:
                raise ValueError(
                    f'adapter blocks={blocks} (last N blocks) must be in '
                    f'[1, {layers}].')
            indices = list(range(layers - blocks, layers))
        else:
            indices = sorted({int(i) for i in blocks})
            bad = [i for i in indices if not 0 <= i < layers]
            if bad or not indices:
                raise ValueError(
                    f'adapter block indices {bad or list(blocks)} are out of '
                    f'range for a {layers}-block model (valid: 0..'
                    f'{layers - 1}).')
        kernel = tuple(adapter.get('kernel_size', (3, 1, 1)))
        if len(kernel) != 3 or any(
                int(k) != k or k <= 0 or k % 2 == 0 for k in kernel):
            raise ValueError(
                f'adapter kernel_size must be three positive odd integers '
                f'(kt, kh, kw), got {kernel}.')
        return dict(positions=positions, width=adapter_width,
                    blocks=indices, kernel_size=kernel,
                    act_cfg=adapter.get('act_cfg'))

    def _check_num_frames(self, num_frames: Optional[int]) -> None:
        if num_frames is None:
            return
        if num_frames <= 0:
            raise ValueError(f'num_frames must be positive, got {num_frames}')
        if self.adapter_cfg and num_frames < self.adapter_cfg['kernel_size'][0]:
            raise ValueError(
                f'num_frames={num_frames} is fewer than the temporal kernel '
                f'size {self.adapter_cfg["kernel_size"][0]}: sample more '
                'frames or use a smaller adapter kernel_size.')

    def _resolve_unfreeze(self, unfreeze: Union[str,
                                                Sequence[str]]) -> Tuple:
        if isinstance(unfreeze, str):
            unfreeze = (unfreeze, )
        unfreeze = tuple(unfreeze)
        if 'all' in unfreeze:
            return ('all', )
        bad = [u for u in unfreeze if u not in self.unfreezable]
        if bad:
            raise ValueError(
                f'Cannot unfreeze {bad}; choose from {self.unfreezable} or '
                '"all".')
        return unfreeze

    def adapters(self) -> List[STConvAdapter]:
        """All ST-Adapters of the backbone, in block order."""
        return [m for m in self.modules() if isinstance(m, STConvAdapter)]

    def trainable_names(self) -> List[str]:
        """Names of the parameters that train by design.

        Adapters are found by module type (:class:`STConvAdapter`); extra
        parts come from ``unfreeze``.
        """
        if self.unfreeze == ('all', ):
            return [n for n, _ in self.named_parameters()]
        names = set()
        for module_name, module in self.named_modules():
            if isinstance(module, STConvAdapter):
                names.update(f'{module_name}.{n}'
                             for n, _ in module.named_parameters())
        for part in self.unfreeze:
            obj = getattr(self, part)
            if isinstance(obj, nn.Parameter):
                names.add(part)
            else:
                names.update(f'{part}.{n}' for n, _ in obj.named_parameters())
        return [n for n, _ in self.named_parameters() if n in names]

    def frozen_state_keys(self) -> List[str]:
        """State-dict keys of the parameters that are frozen by design."""
        trainable = set(self.trainable_names())
        return [n for n, _ in self.named_parameters() if n not in trainable]

    def _freeze(self) -> None:
        """Freeze all but adapters and the parts named in ``unfreeze``."""
        trainable = set(self.trainable_names())
        for name, param in self.named_parameters():
            param.requires_grad_(name in trainable)
        if self.frozen_fp16:
            for param in self.parameters():
                if not param.requires_grad:
                    param.data = param.data.half()

    def train(self, mode: bool = True) -> 'ViTCLIPSTAdapter':
        """Set train mode; parameter-free and frozen leaves stay in eval."""
        super().train(mode)
        if mode:
            for module in self.modules():
                if next(module.children(), None) is not None:
                    continue
                if not any(p.requires_grad
                           for p in module.parameters(recurse=False)):
                    module.eval()
        return self

    # ---------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Load CLIP weights from ``init_cfg`` (if it names a file)."""
        if is_pretrained_init(self.init_cfg):
            if not self._clip_loaded:
                self.load_clip(self.init_cfg['checkpoint'])
        else:
            super().init_weights()

    def load_clip(self, path: str) -> Dict[str, List[str]]:
        """Load CLIP image-tower weights from any supported file.

        Args:
            path (str): OpenAI TorchScript archive or state dict, open_clip
                state dict, Hugging Face file or ``save_pretrained`` folder.

        Returns:
            dict: ``missing`` and ``ignored`` key lists.

        Raises:
            CheckpointError: For a file of another architecture or that is
                not a CLIP image tower.
        """
        logger = MMLogger.get_current_instance()
        state_dict, ignored = load_clip_backbone_weights(
            path, trust_torchscript=self.trust_torchscript)
        self._check_arch(state_dict, path)
        pos = state_dict['positional_embedding']
        state_dict['positional_embedding'] = resize_pos_embed(pos, self.grid)
        own = dict(self.named_parameters())
        unexpected = [k for k in state_dict if k not in own]
        if unexpected:
            raise CheckpointError(
                f'{path}: {len(unexpected)} keys match no backbone parameter, '
                f'e.g. {unexpected[:5]}')
        adapters = {f'{name}.{k}' for name, module in self.named_modules()
                    if isinstance(module, STConvAdapter)
                    for k, _ in module.named_parameters()}
        missing = [
            k for k in own if k not in state_dict and k not in adapters
        ]
        if missing:
            raise CheckpointError(
                f'{path}: the CLIP image tower lacks {len(missing)} weights, '
                f'e.g. {missing[:5]}')
        with torch.no_grad():
            for key, value in state_dict.items():
                own[key].copy_(value)
        self._clip_loaded = True
        logger.info(
            f'Loaded CLIP weights from {path} ({len(state_dict)} tensors; '
            f'ignored {len(ignored)} unused keys'
            f'{": " + ", ".join(ignored[:4]) if ignored else ""}'
            f'{"..." if len(ignored) > 4 else ""}; '
            f'{len(self.adapters())} adapters keep their zero init).')
        return dict(missing=missing, ignored=ignored)

    def _check_arch(self, state_dict: Dict[str, Tensor], path: str) -> None:
        found = infer_arch(state_dict)
        want = dict(width=self.width, layers=self.num_layers,
                    patch_size=self.patch_size)
        diff = {k: (found[k], v) for k, v in want.items() if found[k] != v}
        if diff:
            details = ', '.join(f'{k} {a} vs {b}'
                                for k, (a, b) in diff.items())
            raise CheckpointError(
                f'{path} holds a CLIP ViT of another architecture '
                f'(checkpoint vs model: {details}); pick the matching '
                f'backbone arch (file: width {found["width"]}, '
                f'{found["layers"]} layers, patch {found["patch_size"]}).')
        hf_cfg = read_hf_vision_config(path)
        act = self.arch_settings.get('mlp_act', 'quick_gelu')
        if hf_cfg and hf_cfg.get('hidden_act', act) != act:
            raise CheckpointError(
                f'{path} was trained with hidden_act='
                f'{hf_cfg["hidden_act"]!r} but the backbone uses {act!r}; '
                'set arch=dict(..., mlp_act=...) to match.')

    def _fill_frozen_from_clip(self, state_dict: dict, prefix: str, *args):
        """Complete a trainable-only checkpoint with the frozen CLIP weights.

        A checkpoint saved by ``FrozenParamHook(save_trainable_only=True)``
        has no frozen backbone keys. Before such a state dict is loaded, the
        CLIP weights named by ``init_cfg`` are loaded (once) and the missing
        frozen keys are filled in, so every load path (resume, ``load_from``,
        ``init_recognizer``, testing) gets the full model.
        """
        if prefix + 'conv1.weight' in state_dict:
            return  # a full checkpoint
        if not any(k.startswith(prefix) for k in state_dict):
            return  # nothing for this backbone
        if not self._clip_loaded:
            cfg = self.init_cfg
            if not is_pretrained_init(cfg):
                raise CheckpointError(
                    'this checkpoint holds only the trainable parameters '
                    '(adapters and head); the backbone needs init_cfg='
                    'dict(type="Pretrained", checkpoint=<CLIP file>) naming '
                    'the CLIP weights it was trained on.')
            self.load_clip(cfg['checkpoint'])
        own = self.state_dict()
        for key in self.frozen_state_keys():
            state_dict.setdefault(prefix + key, own[key])

    # ---------------------------------------------------------------- forward
    def _pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        if grid == self.grid:
            return self.positional_embedding
        return resize_pos_embed(self.positional_embedding, grid)

    def _checkpointed(self, index: int) -> bool:
        if isinstance(self.with_cp, bool):
            return self.with_cp
        return index in self.with_cp

    def forward_features(self, x: Tensor) -> Tensor:
        """Tokens after the last block.

        Args:
            x (Tensor): (N, 3, T, H, W).

        Returns:
            Tensor: (N, T, 1 + H/p * W/p, width), class token first.
        """
        if x.dim() != 5:
            raise ValueError(
                f'ViTCLIPSTAdapter expects (N, C, T, H, W), got '
                f'{tuple(x.shape)}')
        n, c, t, h, w = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f'frame size {h}x{w} is not a multiple of the patch size '
                f'{self.patch_size}.')
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        tokens = self.conv1(frames.to(self.conv1.weight.dtype))
        grid = (tokens.shape[-2], tokens.shape[-1])
        tokens = tokens.flatten(2).transpose(1, 2)
        cls_token = self.class_embedding.to(tokens.dtype).expand(
            n * t, 1, -1)
        tokens = torch.cat([cls_token, tokens], dim=1)
        tokens = tokens + self._pos_embed(grid).to(tokens.dtype)
        tokens = self.ln_pre(tokens)
        for i, block in enumerate(self.transformer.resblocks):
            if self._checkpointed(i) and self.training and \
                    tokens.requires_grad:
                tokens = cp.checkpoint(
                    block, tokens, t, grid, use_reentrant=False)
            else:
                tokens = block(tokens, t, grid)
        return tokens.view(n, t, tokens.shape[1], tokens.shape[2])

    def forward(self, x: Tensor) -> Tensor:
        """Video feature.

        Args:
            x (Tensor): (N, 3, T, H, W).

        Returns:
            Tensor: (N, width): frame-averaged class token after ``ln_post``.
        """
        tokens = self.forward_features(x)
        pooled = tokens[:, :, 0, :].mean(dim=1)
        return self.ln_post(pooled).float()
