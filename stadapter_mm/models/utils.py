"""Trainability by module type, for any parameter-efficient backbone.

In the manner of peft: what trains is decided by the *type* of the modules
(adapters) plus parts named explicitly, never by parameter-name patterns.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Type, Union

from torch import nn

from .layers.st_adapter import STConvAdapter

ModuleTypes = Union[Type[nn.Module], Tuple[Type[nn.Module], ...]]


def param_names_of_type(module: nn.Module, types: ModuleTypes) -> List[str]:
    """Names of the parameters inside submodules of the given types.

    Args:
        module (nn.Module): The model.
        types (type | tuple[type]): Module types, e.g. ``STConvAdapter``.

    Returns:
        list[str]: Parameter names, in ``named_parameters`` order.
    """
    names = {
        f'{name}.{k}' if name else k
        for name, sub in module.named_modules() if isinstance(sub, types)
        for k, _ in sub.named_parameters()
    }
    return [n for n, _ in module.named_parameters() if n in names]


def trainable_param_names(module: nn.Module,
                          trainable_types: ModuleTypes,
                          unfreeze: Sequence[str] = ()) -> List[str]:
    """Parameters that train: inside ``trainable_types``, or unfrozen parts.

    Args:
        module (nn.Module): The model.
        trainable_types (type | tuple[type]): Module types that train.
        unfreeze (Sequence[str]): Attribute names of ``module`` (submodules
            or parameters) that train as well; ``('all', )`` trains all.

    Returns:
        list[str]: Parameter names, in ``named_parameters`` order.
    """
    if tuple(unfreeze) == ('all', ):
        return [n for n, _ in module.named_parameters()]
    names = set(param_names_of_type(module, trainable_types))
    for part in unfreeze:
        obj = getattr(module, part)
        if isinstance(obj, nn.Parameter):
            names.add(part)
        else:
            names.update(f'{part}.{n}' for n, _ in obj.named_parameters())
    return [n for n, _ in module.named_parameters() if n in names]


def freeze_all_but(module: nn.Module,
                   trainable_types: ModuleTypes,
                   unfreeze: Sequence[str] = (),
                   frozen_fp16: bool = False) -> List[str]:
    """Freeze every parameter but those of :func:`trainable_param_names`.

    Args:
        module (nn.Module): The model (changed in place).
        trainable_types (type | tuple[type]): Module types that train.
        unfreeze (Sequence[str]): Extra parts that train (see
            :func:`trainable_param_names`).
        frozen_fp16 (bool): Also store the frozen weights in fp16.
            Defaults to False.

    Returns:
        list[str]: The names of the parameters that train.
    """
    trainable = trainable_param_names(module, trainable_types, unfreeze)
    keep = set(trainable)
    for name, param in module.named_parameters():
        param.requires_grad_(name in keep)
        if frozen_fp16 and name not in keep:
            param.data = param.data.half()
    return trainable


def eval_frozen_leaves(module: nn.Module) -> None:
    """Put leaf modules without trainable parameters in eval mode.

    Call after ``module.train(True)``: frozen parts (and parameter-free
    leaves such as dropout-free activations) then behave as at inference.
    """
    for sub in module.modules():
        if next(sub.children(), None) is not None:
            continue
        if not any(p.requires_grad for p in sub.parameters(recurse=False)):
            sub.eval()


def resolve_with_cp(with_cp: Union[bool, Sequence[int]],
                    layers: int) -> Union[bool, Tuple[int, ...]]:
    """Check a backbone's ``with_cp`` option (gradient checkpointing).

    Args:
        with_cp (bool | Sequence[int]): True for every block, or the
            indices of the blocks to checkpoint.
        layers (int): Number of blocks.

    Returns:
        bool | tuple[int, ...]: The flag, or the sorted unique indices.

    Raises:
        ValueError: For an index outside ``0..layers - 1``.
    """
    if isinstance(with_cp, bool):
        return with_cp
    indices = tuple(sorted({int(i) for i in with_cp}))
    if any(not 0 <= i < layers for i in indices):
        raise ValueError(
            f'with_cp block indices {list(indices)} are out of range for a '
            f'{layers}-block model (valid: 0..{layers - 1}).')
    return indices


class AdapterBackboneMixin:
    """What every ST-Adapter backbone answers the same way.

    A backbone (an ``nn.Module``) mixing this in defines
    ``trainable_names()``; it gets :meth:`adapters`,
    :meth:`frozen_state_keys` (used by ``FrozenParamHook``, task files and
    the checkpoint helpers of :mod:`stadapter_mm.checkpoints.adapter_state`),
    a ``train(mode)`` that keeps frozen leaves in eval mode and, if it
    defines :meth:`load_frozen_weights` and registers :meth:`_fill_frozen`
    as a load-state-dict pre-hook, the refill of trainable-only checkpoints.
    """

    def trainable_names(self) -> List[str]:
        """Names of the parameters that train by design."""
        raise NotImplementedError

    def adapters(self) -> List[STConvAdapter]:
        """All ST-Adapters of the backbone, in block order."""
        return [m for m in self.modules() if isinstance(m, STConvAdapter)]

    def frozen_state_keys(self) -> List[str]:
        """State-dict keys of the parameters that are frozen by design."""
        trainable = set(self.trainable_names())
        return [n for n, _ in self.named_parameters() if n not in trainable]

    def _checkpointed(self, index: int) -> bool:
        """Whether block ``index`` runs with gradient checkpointing.

        Reads the backbone's ``with_cp`` (see :func:`resolve_with_cp`).
        """
        if isinstance(self.with_cp, bool):
            return self.with_cp
        return index in self.with_cp

    def load_frozen_weights(self) -> None:
        """Load (once) the pretrained file the frozen parameters come from.

        Raises:
            CheckpointError: If the backbone names no pretrained file.
        """
        raise NotImplementedError

    def _fill_frozen(self, module: nn.Module, state_dict: dict, prefix: str,
                     *args) -> None:
        """Complete a trainable-only checkpoint with the frozen weights.

        A load-state-dict pre-hook. A checkpoint saved by
        ``FrozenParamHook(save_trainable_only=True)`` has none of the frozen
        keys: before such a state dict is loaded, the pretrained weights are
        loaded (:meth:`load_frozen_weights`) and the missing frozen keys
        filled in, so every load path (resume, ``load_from``,
        ``init_recognizer``, testing) gets the full model. A checkpoint is
        full when it has the first frozen key (what ``unfreeze`` makes
        trainable is in a trainable-only checkpoint too).
        """
        frozen = self.frozen_state_keys()
        if not frozen or prefix + frozen[0] in state_dict:
            return  # a full checkpoint, or nothing is frozen
        if not any(k.startswith(prefix) for k in state_dict):
            return  # nothing for this backbone
        self.load_frozen_weights()
        own = self.state_dict()
        for key in frozen:
            state_dict.setdefault(prefix + key, own[key])

    def train(self, mode: bool = True):
        """Set train mode; parameter-free and frozen leaves stay in eval."""
        super().train(mode)
        if mode:
            eval_frozen_leaves(self)
        return self
