"""stadapter-mm: ST-Adapter (Pan et al., NeurIPS 2022) for MMAction2.

Importing the package applies the narrow compatibility fixes of
:mod:`stadapter_mm.compat` and registers the backbone, hooks and transforms in
MMAction2's registries.
"""
from . import compat

compat.apply_all()

import mmaction.models  # noqa: E402,F401  (registers MMAction2's models)

from .hooks import FrozenParamHook  # noqa: E402
from .models import STConvAdapter, ViTCLIPSTAdapter  # noqa: E402

__version__ = '0.1.0'
__all__ = ['FrozenParamHook', 'STConvAdapter', 'ViTCLIPSTAdapter']
