"""Any MMPretrain vision transformer turned video backbone by ST-Adapters."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmaction.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from einops import rearrange
from torch import Tensor, nn

from ...checkpoints.adapter_state import is_pretrained_init
from ...checkpoints.clip_formats import CheckpointError
from ..layers.st_adapter import (STConvAdapter, check_num_frames,
                                 resolve_adapter_cfg)
from ..utils import (AdapterBackboneMixin, freeze_all_but, resolve_with_cp,
                     trainable_param_names)
from .mmpretrain_utils import (build_image_model, check_supported,
                               swap_quick_gelu)

#: Output types of MMPretrain's ViTs that give one vector per frame.
POOLINGS = ('cls_token', 'avg_featmap')


class _ClipShape:
    """Frames per clip and patch grid of the forward pass in progress."""

    def __init__(self) -> None:
        self.num_frames = 1
        self.grid: Tuple[int, int] = (1, 1)


class _AdaptedBlock:
    """Runs one MMPretrain block with ST-Adapters on its residual stream.

    Installed as the block's ``forward`` (the block's own ``forward`` still
    does all the work, parameter names are untouched):

    - ``attn`` adapter: applied to the block input, as in
      ``x = adapter(x); x = x + attn(norm1(x))``;
    - ``mlp`` adapter: a forward pre-hook on the block's ``norm2`` adapts the
      residual stream where the MLP branch reads it, and the same change is
      added to the block output, so the stream carries it exactly as in
      ``x = adapter(x); x = x + mlp(norm2(x))``.

    Gradient checkpointing wraps the whole adapted block.
    """

    def __init__(self, block: nn.Module, shape: _ClipShape,
                 pre_attn: Optional[STConvAdapter],
                 pre_mlp: Optional[STConvAdapter], checkpoint: bool) -> None:
        self.block_forward = type(block).forward.__get__(block)
        self.block = block
        self.shape = shape
        self.pre_attn = pre_attn
        self.pre_mlp = pre_mlp
        self.checkpoint = checkpoint
        self._running: Tuple[int, Tuple[int, int]] = (1, (1, 1))
        self._delta: Optional[Tensor] = None
        if pre_mlp is not None:
            block.norm2.register_forward_pre_hook(self._adapt_mlp_input)
        block.forward = self

    def __call__(self, x: Tensor, *args, **kwargs) -> Tensor:
        shape = (self.shape.num_frames, self.shape.grid)
        # Not `x.requires_grad`: the first block's input never needs a
        # gradient, yet its adapters train and its activations are kept.
        if self.checkpoint and self.block.training and \
                torch.is_grad_enabled():
            return cp.checkpoint(self._run, shape, x, *args,
                                 use_reentrant=False, **kwargs)
        return self._run(shape, x, *args, **kwargs)

    def _run(self, shape: Tuple[int, Tuple[int, int]], x: Tensor, *args,
             **kwargs) -> Tensor:
        self._running = shape
        if self.pre_attn is not None:
            x = self.pre_attn(x, *shape)
        out = self.block_forward(x, *args, **kwargs)
        if self.pre_mlp is not None:
            out = out + self._delta
            self._delta = None
        return out

    def _adapt_mlp_input(self, module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        adapted = self.pre_mlp(x, *self._running)
        self._delta = adapted - x
        return (adapted, ) + tuple(args[1:])


@MODELS.register_module()
class MMPretrainSTAdapter(AdapterBackboneMixin, BaseModule):
    """An MMPretrain vision transformer turned video backbone by ST-Adapters.

    The image model is MMPretrain's own module, built from its config through
    MMPretrain's registry; its ``init_cfg`` loads its weights through
    MMPretrain's checkpoint path (model-zoo files, MMPretrain key layout).
    ST-Adapters (:class:`STConvAdapter`: the same module, presets and
    per-block options as :class:`ViTCLIPSTAdapter`) go before attention
    and/or before the MLP of the chosen blocks without copying MMPretrain's
    layer code (see :class:`_AdaptedBlock`). Fresh adapters are the identity,
    so at initialisation each frame's feature is the image model's.

    Frames are batched through the image model as in ``ViTCLIPSTAdapter``.
    The video feature is pooled over frames: ``'cls_token'`` averages the
    class token over frames, then applies the model's final norm (as the
    paper); ``'avg_featmap'`` averages the patch tokens over frames and
    positions, then applies the model's ``ln2`` if it has one (for models
    trained with mean patch pooling, e.g. MAE or EVA-02 fine-tuning).

    Everything but the adapters (and what ``unfreeze`` names) is frozen at
    construction. Supported image models: ``VisionTransformer`` (any arch;
    CLIP pre-norm, plain MAE/DeiT style, DINOv2 layer scale) and
    ``ViTEVA02``; others raise a ``ValueError`` naming them.

    With ``memory_efficient_act`` (default), MMPretrain's QuickGELU modules
    (CLIP-style models) are replaced by ours: same outputs, one tensor
    instead of two kept for backward per block (see ``swap_quick_gelu`` in
    :mod:`~stadapter_mm.models.backbones.mmpretrain_utils`). MMPretrain's
    other MLP activations (``GELU``, EVA-02's ``SiLU``) are PyTorch's fused
    kernels that keep only their input already, and are left alone.

    Example:
        >>> backbone = dict(
        >>>     type='MMPretrainSTAdapter',
        >>>     image_model=dict(
        >>>         type='VisionTransformer', arch='dinov2-base',
        >>>         img_size=224, patch_size=14, layer_scale_init_value=1e-5,
        >>>         init_cfg=dict(type='Pretrained', prefix='backbone.',
        >>>                       checkpoint='vit-base-p14_dinov2-pre_'
        >>>                       '3rdparty_20230426-ba246503.pth')),
        >>>     adapter='12x384', num_frames=8)

    Args:
        image_model (dict): MMPretrain backbone config: ``type``
            (``'VisionTransformer'`` or ``'ViTEVA02'``, optionally prefixed
            ``'mmpretrain.'``) and its arguments, including its ``init_cfg``
            (``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
            for a classifier checkpoint).
        adapter (str | dict | None): ST-Adapter preset or options, exactly
            as for :class:`ViTCLIPSTAdapter`. Defaults to ``'12x384'``.
        pooling (str, optional): ``'cls_token'`` or ``'avg_featmap'``.
            Defaults to the image model's ``out_type``.
        num_frames (int, optional): Frames per clip, checked against the
            temporal kernel at construction.
        unfreeze (str | Sequence[str]): Parts of the image model that train
            too (its attribute names, e.g. ``'ln1'``, ``'pos_embed'``), or
            ``'all'``. Defaults to ``()``.
        with_cp (bool | Sequence[int]): Gradient checkpointing: True for
            every block, or block indices. Defaults to False.
        memory_efficient_act (bool): Replace MMPretrain's QuickGELU by the
            one that keeps only its input for backward (same values).
            Defaults to True.
        init_cfg (None): Not used: the weights come from
            ``image_model['init_cfg']``.

    Shapes:
        - input: (N, 3, T, H, W).
        - output: (N, embed_dims).
    """

    def __init__(self,
                 image_model: dict,
                 adapter: Union[str, dict, None] = '12x384',
                 pooling: Optional[str] = None,
                 num_frames: Optional[int] = None,
                 unfreeze: Union[str, Sequence[str]] = (),
                 with_cp: Union[bool, Sequence[int]] = False,
                 memory_efficient_act: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError(
                'MMPretrainSTAdapter loads its weights through the image '
                'model: put init_cfg=dict(type="Pretrained", checkpoint=...) '
                'inside image_model, as in an MMPretrain config.')
        if not isinstance(image_model, dict):
            raise TypeError('image_model must be an MMPretrain backbone '
                            f'config dict, got {type(image_model).__name__}')
        # The image model's own init_cfg, mirrored for hooks and tools that
        # ask whether this backbone loads pretrained weights.
        super().__init__(init_cfg=image_model.get('init_cfg'))
        self.image_model = build_image_model(image_model)
        check_supported(self.image_model, image_model['type'])
        model = self.image_model
        self.memory_efficient_act = bool(memory_efficient_act)
        if self.memory_efficient_act:
            swap_quick_gelu(model)
        self.embed_dims = int(model.embed_dims)
        self.input_resolution = int(model.img_size[0])
        self.num_layers = len(model.layers)
        self.pooling = self._resolve_pooling(pooling)
        self.frame_out_type = model.out_type
        # MMPretrain's forward then returns the last block's tokens; the
        # final norm (kept as model.ln1) is applied after pooling.
        self.has_final_norm = bool(model.final_norm)
        model.final_norm = False
        model.out_type = 'raw'
        model.out_indices = [self.num_layers - 1]

        self.adapter_cfg = resolve_adapter_cfg(adapter, self.embed_dims,
                                               self.num_layers)
        check_num_frames(num_frames, self.adapter_cfg)
        self.num_frames = num_frames
        self.with_cp = resolve_with_cp(with_cp, self.num_layers)
        self._shape = _ClipShape()
        self.st_adapters = nn.ModuleDict()
        self._insert_adapters()
        model.patch_embed.register_forward_hook(self._record_grid)

        self.unfreeze = self._resolve_unfreeze(unfreeze)
        self._image_model_loaded = False
        self.register_load_state_dict_pre_hook(self._fill_frozen)
        # Adapters train (found by type), the image model is frozen but for
        # the parts named in ``unfreeze``.
        freeze_all_but(self, STConvAdapter)
        freeze_all_but(self.image_model, (), self.unfreeze)

    # ------------------------------------------------------------------ setup
    def _resolve_pooling(self, pooling: Optional[str]) -> str:
        pooling = pooling or self.image_model.out_type
        if pooling not in POOLINGS:
            raise ValueError(
                f'pooling must be one of {POOLINGS} (got {pooling!r}); set '
                'it explicitly when the image model\'s out_type is not one '
                'of them.')
        return pooling

    def _insert_adapters(self) -> None:
        cfg = self.adapter_cfg
        for index, block in enumerate(self.image_model.layers):
            adapters = nn.ModuleDict()
            if cfg and index in cfg['blocks']:
                for pos in cfg['positions']:
                    adapters[pos] = STConvAdapter(
                        self.embed_dims, cfg['width'], cfg['kernel_size'],
                        cfg['act_cfg'])
            checkpoint = self._checkpointed(index)
            if not adapters and not checkpoint:
                continue
            if adapters:
                self.st_adapters[str(index)] = adapters
            _AdaptedBlock(block, self._shape, dict(adapters).get('attn'),
                          dict(adapters).get('mlp'), checkpoint)

    def _resolve_unfreeze(self, unfreeze: Union[str, Sequence[str]]) -> Tuple:
        unfreeze = (unfreeze, ) if isinstance(unfreeze, str) else \
            tuple(unfreeze)
        if 'all' in unfreeze:
            return ('all', )
        parts = dict(self.image_model.named_children())
        parts.update(self.image_model.named_parameters(recurse=False))
        bad = [u for u in unfreeze if u not in parts]
        if bad:
            raise ValueError(
                f'Cannot unfreeze {bad}; choose parts of the image model '
                f'({sorted(parts)}) or "all".')
        return unfreeze

    def trainable_names(self) -> List[str]:
        """Names of the parameters that train by design.

        Adapters are found by module type (:class:`STConvAdapter`); extra
        parts of the image model come from ``unfreeze``.
        """
        names = set(trainable_param_names(self, STConvAdapter))
        names.update(f'image_model.{n}' for n in trainable_param_names(
            self.image_model, (), self.unfreeze))
        return [n for n, _ in self.named_parameters() if n in names]

    @property
    def fingerprint_keys(self) -> Tuple[str, ...]:
        """Frozen tensors that identify the image model's weights."""
        frozen = self.frozen_state_keys()
        return tuple(frozen[i] for i in sorted({0, len(frozen) // 2, -1}))

    def signature(self) -> Dict[str, object]:
        """The image-model settings a task file depends on."""
        patch = self.image_model.patch_embed.projection.kernel_size
        return dict(image_model=type(self.image_model).__name__,
                    width=self.embed_dims, layers=self.num_layers,
                    patch_size=int(patch[0]),
                    input_resolution=self.input_resolution,
                    pooling=self.pooling)

    # ---------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Load the image model's weights (its ``init_cfg``), once."""
        if not self._image_model_loaded:
            self.load_image_model()
        self.is_init = True

    def load_image_model(self) -> None:
        """Initialise the image model through MMPretrain's ``init_weights``.

        With a ``Pretrained`` ``init_cfg`` this is MMPretrain's checkpoint
        path (mmengine's loader, key ``prefix``, position-embedding resize);
        unlike its ``strict=False`` load, a checkpoint that leaves image
        model weights missing or of another shape is an error.

        Raises:
            CheckpointError: If the checkpoint does not cover the image model.
        """
        model = self.image_model
        problems: Dict[str, List[str]] = {}

        def check(module, state_dict, prefix, *args) -> None:
            own = model.state_dict()
            problems['missing'] = [
                k for k in own if prefix + k not in state_dict]
            problems['shape'] = [
                f'{k} {tuple(state_dict[prefix + k].shape)} vs '
                f'{tuple(v.shape)}' for k, v in own.items()
                if prefix + k in state_dict
                and state_dict[prefix + k].shape != v.shape]

        pretrained = is_pretrained_init(model.init_cfg)
        source = f'{model.init_cfg.get("checkpoint")} (prefix=' \
            f'{model.init_cfg.get("prefix")!r})' if pretrained else ''
        hint = ('Check the arch, patch size and the prefix (MMPretrain '
                'classifier checkpoints use prefix="backbone.").')
        handle = model.register_load_state_dict_pre_hook(check)
        try:
            model.is_init = False  # init_weights runs once otherwise
            model.init_weights()
        except AssertionError as err:  # mmengine asserts on a bad prefix
            raise CheckpointError(f'{source}: {err}. {hint}') from err
        finally:
            handle.remove()
        if pretrained and (not problems or problems['missing']
                           or problems['shape']):
            detail = problems.get('shape') or problems.get('missing') or [
                'no weights were read']
            raise CheckpointError(
                f'{source} does not fit the {type(model).__name__} image '
                f'model: {len(problems.get("missing", []))} weights missing, '
                f'{len(problems.get("shape", []))} of another shape, e.g. '
                f'{detail[:4]}. {hint}')
        self._image_model_loaded = pretrained
        if pretrained:
            MMLogger.get_current_instance().info(
                f'Loaded {type(model).__name__} weights from '
                f'{model.init_cfg.get("checkpoint")}; '
                f'{len(self.adapters())} ST-Adapters keep their zero init.')

    def load_frozen_weights(self) -> None:
        """Load the image model weights named by its ``init_cfg``, once.

        Raises:
            CheckpointError: If ``image_model.init_cfg`` names no file.
        """
        if self._image_model_loaded:
            return
        if not is_pretrained_init(self.image_model.init_cfg):
            raise CheckpointError(
                'this checkpoint holds only the trainable parameters; '
                'the backbone needs image_model.init_cfg=dict(type='
                '"Pretrained", checkpoint=...) naming the MMPretrain '
                'weights it was trained on.')
        self.load_image_model()

    # ---------------------------------------------------------------- forward
    def _record_grid(self, module: nn.Module, args: tuple,
                     output: tuple) -> None:
        self._shape.grid = tuple(output[1])

    def forward_features(self, x: Tensor) -> Tensor:
        """Each frame's last-block tokens from the image model, pre-norm.

        Args:
            x (Tensor): A batch of clips (N, 3, T, H, W).

        Returns:
            Tensor: (N, T, 1 + patches, embed_dims), class token first.
        """
        if x.dim() != 5:
            raise ValueError(f'{type(self).__name__} takes a batch of clips '
                             f'(N, C, T, H, W), got {tuple(x.shape)}')
        self._shape.num_frames = x.shape[2]
        tokens = self.image_model(rearrange(x, 'n c t h w -> (n t) c h w'))
        return rearrange(tokens[-1], '(n t) l d -> n t l d', t=x.shape[2])

    def frame_features(self, x: Tensor) -> Tensor:
        """Each frame's feature as the image model outputs it (its out_type).

        Args:
            x (Tensor): (N, 3, T, H, W).

        Returns:
            Tensor: (N, T, embed_dims).
        """
        if self.frame_out_type not in POOLINGS:
            raise ValueError(
                f'frame_features gives one vector per frame; the image '
                f'model\'s out_type is {self.frame_out_type!r}')
        tokens = self.forward_features(x)
        if self.has_final_norm:
            tokens = self.image_model.ln1(tokens)
        if self.frame_out_type == 'cls_token':
            return tokens[:, :, 0]
        return self.image_model.ln2(tokens[:, :, 1:].mean(2))

    def forward(self, x: Tensor) -> Tensor:
        """Video feature.

        Args:
            x (Tensor): (N, 3, T, H, W).

        Returns:
            Tensor: (N, embed_dims).
        """
        tokens = self.forward_features(x)
        model = self.image_model
        if self.pooling == 'cls_token':
            pooled = tokens[:, :, 0].mean(1)
            return model.ln1(pooled) if self.has_final_norm else pooled
        patches = tokens[:, :, 1:]
        if self.has_final_norm:
            patches = model.ln1(patches)
        pooled = patches.mean((1, 2))
        return model.ln2(pooled) if hasattr(model, 'ln2') else pooled
