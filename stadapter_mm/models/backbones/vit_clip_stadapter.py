"""CLIP ViT image tower with ST-Adapters, as an MMAction2 backbone."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from einops import rearrange
from mmaction.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...checkpoints.adapter_state import is_pretrained_init
from ...checkpoints.clip_formats import (CheckpointError, check_clip_arch,
                                         check_clip_keys,
                                         load_clip_backbone_weights,
                                         resize_pos_embed)
from ...checkpoints.clip_resolver import resolve_clip_checkpoint
from ..arch import CLIP_ARCHS, resolve_arch
from ..layers.clip_transformer import (LayerNorm, ResidualAttentionBlock,
                                       Transformer)
from ..layers.st_adapter import (ADAPTER_PRESETS, STConvAdapter,
                                 check_num_frames, resolve_adapter_cfg)
from ..layers.token_map import PatchTokenMap
from ..utils import (AdapterBackboneMixin, freeze_all_but,
                     param_names_of_type, resolve_with_cp,
                     trainable_param_names)


@MODELS.register_module()
class ViTCLIPSTAdapter(AdapterBackboneMixin, BaseModule):
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

    arch_zoo: Dict[str, dict] = CLIP_ARCHS
    adapter_zoo: Dict[str, dict] = ADAPTER_PRESETS
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
        self.arch_settings = s = resolve_arch(arch, input_resolution)
        width, layers, patch = s['width'], s['layers'], s['patch_size']
        self.width = width
        self.patch_size = patch
        self.num_layers = layers
        self.input_resolution = s['input_resolution']
        self.grid = (self.input_resolution // patch, ) * 2
        self.with_cp = resolve_with_cp(with_cp, layers)
        self.frozen_fp16 = frozen_fp16
        self.trust_torchscript = trust_torchscript
        self.adapter_cfg = resolve_adapter_cfg(adapter, width, layers,
                                               self.adapter_zoo)
        check_num_frames(num_frames, self.adapter_cfg)
        self.num_frames = num_frames
        self.unfreeze = self._resolve_unfreeze(unfreeze)

        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn(self.grid[0] * self.grid[1] + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer([
            ResidualAttentionBlock(width, s['heads'],
                                   s.get('mlp_act', 'quick_gelu'),
                                   **self._adapters(i))
            for i in range(layers)
        ])
        self.ln_post = LayerNorm(width)
        # The tokens entering the last block as a (N, D, T, H, W) map, for
        # Grad-CAM (vis_cam.py --target-layer-name backbone/token_map).
        self.token_map = PatchTokenMap()

        self._clip_loaded = False
        self.register_load_state_dict_pre_hook(self._fill_frozen)
        freeze_all_but(self, STConvAdapter, self.unfreeze, frozen_fp16)

    # ------------------------------------------------------------------ setup
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

    def _adapters(self, index: int) -> Dict[str, STConvAdapter]:
        """``adapter_pre_{position}`` modules of block ``index``."""
        cfg = self.adapter_cfg
        if not cfg or index not in cfg['blocks']:
            return {}
        return {
            f'adapter_pre_{pos}': STConvAdapter(self.width, cfg['width'],
                                                cfg['kernel_size'],
                                                cfg['act_cfg'])
            for pos in cfg['positions']
        }

    # ------------------------------------------------------------- freezing
    def trainable_names(self) -> List[str]:
        """Names of the parameters that train by design.

        Adapters are found by module type (:class:`STConvAdapter`); extra
        parts come from ``unfreeze``.
        """
        return trainable_param_names(self, STConvAdapter, self.unfreeze)

    # ---------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Load CLIP weights from ``init_cfg`` (if it names a file)."""
        if not is_pretrained_init(self.init_cfg):
            super().init_weights()
        elif not self._clip_loaded:
            self.load_clip(self.init_cfg['checkpoint'])

    def load_clip(self, path: str) -> Dict[str, List[str]]:
        """Load CLIP image-tower weights from any supported file.

        Args:
            path (str): OpenAI TorchScript archive or state dict, open_clip
                state dict, Hugging Face file or ``save_pretrained`` folder.

        Returns:
            dict: ``missing`` (always empty: a missing weight raises) and
            ``ignored`` key lists.

        Raises:
            CheckpointError: For a file of another architecture or that is
                not a CLIP image tower.
        """
        path = resolve_clip_checkpoint(path)
        state_dict, ignored = load_clip_backbone_weights(
            path, trust_torchscript=self.trust_torchscript)
        check_clip_arch(state_dict, path, self.width, self.num_layers,
                        self.patch_size,
                        self.arch_settings.get('mlp_act', 'quick_gelu'))
        state_dict['positional_embedding'] = resize_pos_embed(
            state_dict['positional_embedding'], self.grid)
        adapters = set(param_names_of_type(self, STConvAdapter))
        own = dict(self.named_parameters())
        check_clip_keys(state_dict, [k for k in own if k not in adapters],
                        path)
        with torch.no_grad():
            for key, value in state_dict.items():
                own[key].copy_(value)
        self._clip_loaded = True
        MMLogger.get_current_instance().info(
            f'Loaded CLIP weights from {path} ({len(state_dict)} tensors; '
            f'ignored {len(ignored)} unused keys'
            f'{": " + ", ".join(ignored[:4]) if ignored else ""}'
            f'{"..." if len(ignored) > 4 else ""}; '
            f'{len(self.adapters())} adapters keep their zero init).')
        return dict(missing=[], ignored=ignored)

    def load_frozen_weights(self) -> None:
        """Load the CLIP weights named by ``init_cfg``, once.

        Raises:
            CheckpointError: If ``init_cfg`` names no CLIP file.
        """
        if self._clip_loaded:
            return
        if not is_pretrained_init(self.init_cfg):
            raise CheckpointError(
                'this checkpoint holds only the trainable parameters '
                '(adapters and head); the backbone needs init_cfg='
                'dict(type="Pretrained", checkpoint=<CLIP file>) naming '
                'the CLIP weights it was trained on.')
        self.load_clip(self.init_cfg['checkpoint'])

    # ---------------------------------------------------------------- forward
    def _pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        if grid == self.grid:
            return self.positional_embedding
        return resize_pos_embed(self.positional_embedding, grid)

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
        n, _, t, h, w = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f'frame size {h}x{w} is not a multiple of the patch size '
                f'{self.patch_size}.')
        frames = rearrange(x, 'n c t h w -> (n t) c h w')
        patches = self.conv1(frames.to(self.conv1.weight.dtype))
        grid = tuple(patches.shape[-2:])
        tokens = rearrange(patches, 'b d gh gw -> b (gh gw) d')
        cls_token = self.class_embedding.to(tokens.dtype).expand(
            n * t, 1, -1)
        tokens = torch.cat([cls_token, tokens], dim=1)
        tokens = tokens + self._pos_embed(grid).to(tokens.dtype)
        tokens = self.ln_pre(tokens)
        blocks = self.transformer.resblocks
        device = tokens.device.type  # 'meta' (FLOP counting) has no autocast
        if len(blocks) and not (torch.amp.is_autocast_available(device)
                                and torch.is_autocast_enabled(device)):
            # frozen_fp16 leaves what ``unfreeze`` names (conv1 or the
            # transformer) in fp32: the blocks take the tokens in their
            # weights' dtype, as autocast would cast them.
            tokens = tokens.to(blocks[0].attn.in_proj_weight.dtype)
        for i, block in enumerate(blocks):
            if i == len(blocks) - 1:
                tokens = self.token_map.to_tokens(
                    self.token_map(tokens, t, grid), tokens[:, :1])
            # Not `tokens.requires_grad`: block 0's input never needs a
            # gradient, yet its adapters train and its activations are kept.
            if self._checkpointed(i) and self.training and \
                    torch.is_grad_enabled():
                tokens = cp.checkpoint(
                    block, tokens, t, grid, use_reentrant=False)
            else:
                tokens = block(tokens, t, grid)
        return rearrange(tokens, '(n t) l d -> n t l d', t=t)

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
