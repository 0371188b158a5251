"""Which weights of a parameter-efficient model a checkpoint must keep.

One home for the questions every checkpoint writer and reader asks:

- which state-dict keys are ST-Adapter weights (:func:`is_adapter_key`, for
  bare state dicts read from files; with a module at hand, adapters are found
  by module type, see :func:`stadapter_mm.models.utils.param_names_of_type`);
- which keys are frozen by design and come back from the CLIP file
  (:func:`frozen_keys`), and the state dict without them
  (:func:`drop_frozen`, :func:`adapter_state_dict`), used alike by
  ``FrozenParamHook`` (slim checkpoints) and task files;
- which CLIP weights a model was trained on (:func:`clip_fingerprint`);
- the model inside a DDP wrapper (:func:`unwrap_model`) and whether a
  backbone's ``init_cfg`` names pretrained weights
  (:func:`is_pretrained_init`).

Nothing here imports :mod:`stadapter_mm.models`: a backbone is anything with
a ``frozen_state_keys()`` method returning its frozen state-dict keys.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, Mapping, Optional, Sequence, Set, TypeVar

from mmengine.model import is_model_wrapper
from torch import Tensor, nn

#: ST-Adapter weights in CLIP key layout (ours and the official code's):
#: ``transformer.resblocks.{block}.adapter_pre_{position}.{layer}.{kind}``.
ADAPTER_KEY = re.compile(r'^transformer\.resblocks\.(\d+)\.adapter_pre_'
                         r'(attn|mlp)\.(fc1|conv|fc2)\.(weight|bias)$')
#: Prefix of the backbone's keys in a recognizer state dict.
BACKBONE_PREFIX = 'backbone.'
#: Frozen tensors hashed by :func:`clip_fingerprint`.
FINGERPRINT_KEYS = ('conv1.weight', 'positional_embedding', 'ln_post.weight')

StateDictT = TypeVar('StateDictT', bound=Mapping)


def is_adapter_key(key: str, prefix: str = '') -> bool:
    """Whether a state-dict key is an ST-Adapter weight.

    For state dicts read from files, where no module tells the types; the
    key layout is the checkpoint format (:data:`ADAPTER_KEY`).

    Args:
        key (str): A state-dict key.
        prefix (str): Prefix the backbone's keys carry, e.g.
            ``'backbone.'`` in a recognizer state dict. Defaults to ``''``.
    """
    return key.startswith(prefix) and bool(
        ADAPTER_KEY.match(key[len(prefix):]))


def frozen_keys(backbone: nn.Module,
                prefix: str = BACKBONE_PREFIX) -> Set[str]:
    """State-dict keys of the weights a backbone freezes by design.

    Args:
        backbone: A backbone with ``frozen_state_keys()``.
        prefix (str): Prefix of the backbone in the state dict at hand.
            Defaults to ``'backbone.'`` (a recognizer).

    Returns:
        set[str]: Prefixed keys.
    """
    return {prefix + k for k in backbone.frozen_state_keys()}


def drop_frozen(state_dict: StateDictT,
                backbone: nn.Module,
                prefix: str = BACKBONE_PREFIX) -> StateDictT:
    """A state dict without the backbone's frozen weights.

    Args:
        state_dict: A recognizer state dict (or a backbone's, with
            ``prefix=''``).
        backbone: The model's backbone (with ``frozen_state_keys()``).
        prefix (str): Prefix of the backbone keys. Defaults to
            ``'backbone.'``.

    Returns:
        The same mapping type, minus frozen backbone entries.
    """
    frozen = frozen_keys(backbone, prefix)
    return type(state_dict)(
        (k, v) for k, v in state_dict.items() if k not in frozen)


def adapter_state_dict(model: nn.Module) -> Dict[str, Tensor]:
    """Detached CPU copies of a recognizer's weights but its frozen ones.

    Args:
        model: A recognizer whose ``backbone`` has ``frozen_state_keys()``.

    Returns:
        dict[str, Tensor]: Adapters, unfrozen backbone parts, neck and head.
    """
    model = unwrap_model(model)
    return {
        k: v.detach().cpu().clone()
        for k, v in drop_frozen(model.state_dict(), model.backbone).items()
    }


def clip_fingerprint(backbone: nn.Module,
                     keys: Optional[Sequence[str]] = None) -> str:
    """Short hash of frozen backbone weights (identifies the CLIP file).

    Args:
        backbone: The backbone.
        keys (Sequence[str], optional): State-dict keys to hash. Defaults to
            the backbone's ``fingerprint_keys`` attribute if it has one, else
            :data:`FINGERPRINT_KEYS`.

    Returns:
        str: 16 hex digits from a SHA-256 over the tensors.
    """
    if keys is None:
        keys = getattr(backbone, 'fingerprint_keys', FINGERPRINT_KEYS)
    state = backbone.state_dict()
    digest = hashlib.sha256()
    for key in keys:
        tensor = state[key].detach().float().cpu()
        digest.update(key.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or other mmengine) wrapper."""
    return model.module if is_model_wrapper(model) else model


def is_pretrained_init(init_cfg: Any) -> bool:
    """Whether ``init_cfg`` loads pretrained weights from a file.

    Args:
        init_cfg: A module's ``init_cfg`` (dict, list or None).

    Returns:
        bool: True for ``dict(type='Pretrained', checkpoint=...)``.
    """
    return isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'
