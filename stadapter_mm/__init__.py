"""stadapter-mm: ST-Adapter (Pan et al., NeurIPS 2022) for MMAction2.

Importing the package applies every fix of :mod:`stadapter_mm.compat` once
(the only place that patches upstream code), then registers the backbone,
datasets, transforms, hooks and metrics in MMAction2's registries.
"""
from . import compat

compat.apply_all()

import mmaction.models  # noqa: E402,F401  (registers MMAction2's models)

from . import checkpoints, datasets, engine, evaluation  # noqa: E402,F401
from .engine import FrozenParamHook  # noqa: E402
from .models import STConvAdapter, ViTCLIPSTAdapter  # noqa: E402

__version__ = '0.1.0'
__all__ = ['FrozenParamHook', 'STConvAdapter', 'ViTCLIPSTAdapter']
