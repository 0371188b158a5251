"""stadapter-mm: ST-Adapter (Pan et al., NeurIPS 2022) for MMAction2.

Importing the package applies the narrow compatibility fixes of
:mod:`stadapter_mm.compat` and registers the backbone, hooks and transforms in
MMAction2's registries.
"""
from . import compat

compat.apply_all()

import mmaction.models  # noqa: E402,F401  (registers MMAction2's models)

from . import datasets, engine  # noqa: E402,F401  (registers them)
from .hooks import FrozenParamHook  # noqa: E402
from .models import STConvAdapter, ViTCLIPSTAdapter  # noqa: E402

# mmengine loads local checkpoints with an explicit weights_only=True, so an
# environment variable cannot silently turn the safe loader off (see
# stadapter_mm/engine/checkpoint.py and compat fix 3).
engine.use_weights_only_loader()

__version__ = '0.1.0'
__all__ = ['FrozenParamHook', 'STConvAdapter', 'ViTCLIPSTAdapter']
