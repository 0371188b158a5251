"""Narrow fixes for known upstream defects of the pinned OpenMMLab stack.

Every fix here is applied once, by :func:`apply_all` (called on
``import stadapter_mm``), checks that the defect is actually present before
touching anything, and is therefore inert once upstream ships a fix.

1. ``mmaction2`` 1.2.0 wheel lacks ``mmaction/models/localizers/drn``
   (open-mmlab/mmaction2#2714), so ``import mmaction.models`` raises
   ``ModuleNotFoundError``. We register a placeholder module that provides a
   ``DRN`` class raising a clear error when someone actually builds it.
2. ``transformers`` >= 4.57 removed names that MMAction2 1.2.0's VindLU code
   imports at module level, which breaks ``import mmaction.models``. We turn
   MMAction2's own multimodal switch off (the VindLU models then become
   MMAction2's standard "install multimodal extras" placeholders).
3. mmengine 0.10.7 pickles ``HistoryBuffer._statistics_methods`` (functions,
   i.e. ``getattr`` chains) into every checkpoint, and loads checkpoints with
   a bare ``torch.load``; torch >= 2.6 defaults to ``weights_only=True`` so
   ``resume`` fails. We keep ``weights_only=True`` and instead (a) stop
   pickling the class-level statistics functions (they are rebuilt on load)
   and (b) allow-list the plain data types an mmengine checkpoint carries.
   ``getattr`` is never allow-listed.
4. mmengine 0.10.7's local checkpoint loader calls ``torch.load`` without
   ``weights_only`` and so relies on torch's default, which the environment
   variable ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns off (and then code in
   a downloaded checkpoint runs). :func:`fix_weights_only_loader` registers
   :func:`stadapter_mm.checkpoints.io.load_local_weights_only` (explicit
   ``weights_only=True``) as mmengine's loader for local paths; it affects
   ``load_from``, ``resume``, ``init_recognizer`` and every other user of
   ``mmengine.runner.CheckpointLoader``.
5. mmengine's ``init_dist`` for ``launcher='pytorch'`` always calls
   ``torch.cuda.set_device`` and its runner wraps with
   ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only machine. Not a
   patch, so not here: :func:`stadapter_mm.utils.dist.setup_cpu_distributed`
   initialises a gloo process group and a CPU-compatible DDP wrapper config
   when ``tools/train.py`` or ``tools/test.py`` starts a CPU-only
   distributed run.
6. mmengine 0.10.7's ``LoggerHook`` writes the results JSON of a
   validation/test through ``_process_tags``, which silently drops values
   that are not Python numbers; integer metrics pass through the message
   hub's NumPy history and come out as ``np.int64``, so the JSON said
   ``null`` for counts the log line showed (e.g. ``acc/num_scored``).
   :func:`fix_json_log_numpy_integers` converts NumPy scalars first.
7. MMPretrain 1.2.0's ``import mmpretrain.models`` imports
   ``torchvision.ops.boxes`` (visual-grounding box utilities no backbone
   uses), and PyPI's torchvision does not load beside a CPU-only torch
   (``operator torchvision::nms does not exist``).
   (MMAction2's own ``MobileOneTSM`` then silently goes unregistered).
   :func:`fix_mmpretrain_without_torchvision` imports it with placeholder
   torchvision modules, only when torchvision is missing or broken and only
   during that import; ``MMPretrainSTAdapter`` imports it through
   :func:`import_mmpretrain_models`.
8. MMAction2 1.2.0's ``ActionVisualizer.add_datasample`` draws a prediction
   only if the sample has ``pred_labels``; recognizers set ``pred_label`` and
   ``pred_score``, so ``demo/demo.py --out-filename`` wrote frames without
   the label. :func:`fix_action_visualizer_pred_labels` hands it a copy of
   the sample with ``pred_labels`` (only while the installed code has the
   defect), and :func:`check_video_writer` replaces the misleading "install
   moviepy" of its gif/mp4 writer, which needs ``moviepy.editor`` (moviepy
   < 2), with a message that says so.
9. mmengine 0.10.7's ``FlopAnalyzer`` (MMAction2's ``get_flops.py``) has no
   handle for ``aten::scaled_dot_product_attention`` and skips it (about 4%
   of ViT-B/16 8x224). :func:`fix_flop_analyzer_sdpa` adds
   :func:`sdpa_flop_jit` to its default handles if none is registered.
"""
from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
import types
from typing import Any, List, Optional

_DRN_MODULE = 'mmaction.models.localizers.drn'


def _version_tuple(version: str) -> tuple:
    """``(major, minor, patch)`` of a version string, for comparisons.

    Args:
        version (str): E.g. ``'4.57.0.dev0'`` (non-digits in a part are
            dropped, missing parts count as 0).

    Returns:
        tuple: Three ints, e.g. ``(4, 57, 0)``.
    """
    parts = []
    for piece in version.split('.')[:3]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _installed_version(dist: str) -> Optional[str]:
    """Installed version of distribution ``dist``, or None if missing.

    Args:
        dist (str): The distribution name on PyPI (``'mmaction2'``).

    Returns:
        str | None: The version string.
    """
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def fix_missing_drn() -> bool:
    """Provide ``mmaction.models.localizers.drn`` if the wheel lacks it.

    Upstream: https://github.com/open-mmlab/mmaction2/issues/2714

    Returns:
        bool: True if the placeholder was installed.
    """
    if _DRN_MODULE in sys.modules:
        return False
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    pkg_dir = os.path.join(spec.submodule_search_locations[0], 'models',
                           'localizers', 'drn')
    if os.path.isdir(pkg_dir):
        return False  # upstream fixed: nothing to do

    class DRN:  # noqa: D401 - placeholder
        """Placeholder for MMAction2's DRN localizer missing from the wheel."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(
                'DRN is missing from the mmaction2 1.2.0 wheel '
                '(open-mmlab/mmaction2#2714); install mmaction2 from source '
                'to use it.')

    package = types.ModuleType(_DRN_MODULE)
    package.__path__ = []  # mark as package
    module = types.ModuleType(_DRN_MODULE + '.drn')
    module.DRN = DRN
    package.drn = module
    sys.modules[_DRN_MODULE] = package
    sys.modules[_DRN_MODULE + '.drn'] = module
    return True


def fix_transformers_multimodal() -> bool:
    """Disable MMAction2's VindLU import when transformers is too new for it.

    MMAction2 1.2.0's ``multimodal/vindlu/modeling_bert.py`` imports
    ``apply_chunking_to_forward`` and friends from
    ``transformers.modeling_utils``; transformers 4.57 removed them.

    Returns:
        bool: True if the multimodal switch was turned off.
    """
    tf_version = _installed_version('transformers')
    mma_version = _installed_version('mmaction2')
    if tf_version is None or mma_version is None:
        return False
    if _version_tuple(mma_version) > (1, 2, 0):
        return False
    if _version_tuple(tf_version) < (4, 57, 0):
        return False
    if 'mmaction.models' in sys.modules:
        return False  # too late; it either worked or already failed
    import mmaction.utils.dependency as dependency
    dependency.WITH_MULTIMODAL = False
    return True


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without the class-level functions."""
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def fix_checkpoint_weights_only() -> bool:
    """Make mmengine checkpoints loadable with ``weights_only=True``.

    Returns:
        bool: True if the fix was applied.
    """
    import numpy as np
    import torch
    from mmengine.logging.history_buffer import HistoryBuffer

    if not hasattr(torch.serialization, 'add_safe_globals'):
        return False  # torch < 2.4 has no weights_only allow-list
    if HistoryBuffer.__getstate__ is not _history_buffer_getstate:
        original = HistoryBuffer.__getstate__
        # Only patch mmengine's own implementation, which leaks functions.
        if getattr(original, '__qualname__', '') == \
                'HistoryBuffer.__getstate__':
            HistoryBuffer.__getstate__ = _history_buffer_getstate
    safe: list = [HistoryBuffer, np.ndarray, np.dtype]
    core = getattr(np, '_core', None) or np.core
    safe += [core.multiarray._reconstruct, core.multiarray.scalar]
    safe += [getattr(np.dtypes, name) for name in dir(np.dtypes)
             if name.endswith('DType')]
    torch.serialization.add_safe_globals(safe)
    return True


def fix_weights_only_loader() -> bool:
    """Make mmengine load local checkpoints with ``weights_only=True``.

    Re-registers mmengine's loader for local paths (prefix ``''``) with
    ``force=True``; mmengine's own loader is replaced, nothing else changes.
    Calling it again is harmless.

    Returns:
        bool: True (the loader is registered).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoints.io import load_local_weights_only
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_weights_only, force=True)
    return True


def _plain_scalars(value: Any) -> Any:
    """``value`` with NumPy scalars (in dicts/lists) made Python numbers."""
    import numpy as np
    if isinstance(value, dict):
        return type(value)((k, _plain_scalars(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_scalars(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def fix_json_log_numpy_integers() -> bool:
    """Keep NumPy integers in mmengine's JSON log (fix 6).

    Patches ``LoggerHook._process_tags`` only if it drops an ``np.int64``;
    the patched version turns NumPy scalars into Python numbers, then runs
    mmengine's own. Calling it again is harmless.

    Returns:
        bool: True if the patch is in place.
    """
    import numpy as np
    from mmengine.hooks import LoggerHook

    original = LoggerHook._process_tags
    if getattr(original, '_keeps_numpy_scalars', False):
        return True
    if original({'n': np.int64(1)}).get('n') == 1:
        return False  # upstream keeps them

    def _process_tags(tags: dict):
        return original(_plain_scalars(tags))

    _process_tags._keeps_numpy_scalars = True  # type: ignore[attr-defined]
    LoggerHook._process_tags = staticmethod(_process_tags)
    return True


_TORCHVISION_STUBS = ('torchvision', 'torchvision.ops',
                      'torchvision.ops.boxes')


def _torchvision_loads() -> bool:
    """Whether ``torchvision.ops.boxes`` imports (False: missing or broken)."""
    if importlib.util.find_spec('torchvision') is None:
        return False
    before = set(sys.modules)
    try:
        importlib.import_module('torchvision.ops.boxes')
    except Exception:  # noqa: BLE001 - a broken build raises RuntimeError
        for name in set(sys.modules) - before:
            if name == 'torchvision' or name.startswith('torchvision.'):
                del sys.modules[name]
        return False
    return True


def _torchvision_stub(name: str) -> types.ModuleType:
    """A placeholder module whose attributes say torchvision is unusable."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)

    def __getattr__(attr: str) -> Any:
        if attr.startswith('__'):
            raise AttributeError(attr)
        raise ImportError(
            f'{name}.{attr}: torchvision is not installed or does not load '
            'beside this torch build; MMPretrain was imported without it by '
            'stadapter_mm.compat (its box utilities need a torchvision '
            'matching torch).')

    module.__getattr__ = __getattr__
    return module


def _import_mmpretrain_without_torchvision() -> types.ModuleType:
    """Import ``mmpretrain.models`` with placeholder torchvision modules."""
    if importlib.util.find_spec('transformers') is not None:
        # transformers caches "is torchvision installed" when first asked:
        # it must answer before the placeholders exist.
        from transformers.utils import is_torchvision_available
        is_torchvision_available()
    stubs = {name: _torchvision_stub(name) for name in _TORCHVISION_STUBS}
    stubs['torchvision'].ops = stubs['torchvision.ops']
    stubs['torchvision.ops'].boxes = stubs['torchvision.ops.boxes']
    sys.modules.update(stubs)
    try:
        return importlib.import_module('mmpretrain.models')
    finally:
        for name in _TORCHVISION_STUBS:
            if sys.modules.get(name) is stubs[name]:
                del sys.modules[name]


def import_mmpretrain_models() -> types.ModuleType:
    """``mmpretrain.models``, imported even where torchvision cannot load.

    Only when torchvision is missing or broken, placeholder ``torchvision``,
    ``torchvision.ops`` and ``torchvision.ops.boxes`` modules stand in
    *during this one import* and are removed right after, so nothing else
    sees a torchvision; MMPretrain's box helpers keep the placeholder and
    raise a clear ImportError if ever called. A working torchvision is never
    shadowed.

    Returns:
        module: ``mmpretrain.models``.
    """
    if 'mmpretrain.models' in sys.modules or _torchvision_loads():
        return importlib.import_module('mmpretrain.models')
    return _import_mmpretrain_without_torchvision()


def fix_mmpretrain_without_torchvision() -> bool:
    """Import ``mmpretrain.models`` before MMAction2 tries (fix 7).

    Returns:
        bool: True if placeholders stood in for a missing or broken
        torchvision. An MMPretrain import error is left for the code that
        builds an MMPretrain model to raise.
    """
    if importlib.util.find_spec('mmpretrain') is None or \
            'mmpretrain.models' in sys.modules or _torchvision_loads():
        return False
    try:
        _import_mmpretrain_without_torchvision()
    except ImportError:
        return False
    return True


def _pred_labels_defect() -> bool:
    """Whether ``ActionVisualizer`` reads ``pred_labels`` no sample has."""
    import inspect

    from mmaction.structures import ActionDataSample
    from mmaction.visualization import ActionVisualizer
    source = inspect.getsource(ActionVisualizer.add_datasample)
    return ("'pred_labels' in data_sample" in source
            and not hasattr(ActionDataSample, 'pred_labels'))


def _with_pred_labels(data_sample: Any) -> Any:
    """A copy of a recognizer result in the form the visualizer draws.

    Recognizers set ``pred_label`` (class index) and ``pred_score`` (one
    score per class); mmaction2 1.2.0's visualizer draws ``pred_labels`` with
    ``item`` and ``score`` fields. The caller's sample is left untouched.
    """
    if (data_sample is None or 'pred_labels' in data_sample
            or 'pred_label' not in data_sample):
        return data_sample
    from mmengine.structures import LabelData
    sample = data_sample.clone()
    labels = LabelData(item=sample.pred_label.reshape(-1))
    if 'pred_score' in sample:
        labels.score = sample.pred_score
    sample.pred_labels = labels
    return sample


def check_video_writer(out_type: str) -> None:
    """Fail clearly when MMAction2's gif/video writer cannot work.

    MMAction2 1.2.0 writes gif and mp4 files through ``moviepy.editor``,
    which moviepy 2 removed; its own message then says "install moviepy"
    although moviepy is installed.

    Args:
        out_type (str): ``'img'``, ``'gif'`` or ``'video'``.

    Raises:
        ImportError: ``out_type`` needs ``moviepy.editor`` and it is missing.
    """
    if out_type == 'img':
        return
    try:
        found = importlib.util.find_spec('moviepy.editor') is not None
    except ModuleNotFoundError:  # moviepy itself is missing
        found = False
    if not found:
        version = _installed_version('moviepy')
        raise ImportError(
            f'MMAction2 writes {out_type} files with moviepy.editor, which '
            + (f'moviepy {version} does not have (removed in moviepy 2)'
               if version else 'is not installed')
            + ': pip install "moviepy<2" (listed in requirements.txt).')


def fix_action_visualizer_pred_labels() -> bool:
    """Make ``ActionVisualizer.add_datasample`` draw recognizer predictions.

    Only when the installed ``add_datasample`` tests for ``'pred_labels'``
    and ``ActionDataSample`` has no such field (mmaction2 1.2.0): samples
    with ``pred_label``/``pred_score`` get a ``pred_labels`` copy, and a gif
    or video output without ``moviepy.editor`` fails with a clear message.

    Returns:
        bool: True if the wrapper was installed.
    """
    from mmaction.visualization import ActionVisualizer

    original = ActionVisualizer.add_datasample
    if getattr(original, '_stadapter_compat', False) or \
            not _pred_labels_defect():
        return False

    @functools.wraps(original)
    def add_datasample(self, name, video, data_sample=None, *args, **kwargs):
        check_video_writer(kwargs.get('out_type', 'img'))
        return original(self, name, video, _with_pred_labels(data_sample),
                        *args, **kwargs)

    add_datasample._stadapter_compat = True
    ActionVisualizer.add_datasample = add_datasample
    return True


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention`` (multiply-adds).

    ``q @ k^T`` and ``attn @ v``: ``B * L * S * (E + Ev)`` for ``(B..., L,
    E)`` queries, ``(B..., S, E)`` keys and ``(B..., S, Ev)`` values, the
    fvcore/mmengine convention of one FLOP per multiply-add (see
    :func:`stadapter_mm.utils.flops.sdpa_flops`).

    Args:
        inputs (list): The op's jit inputs (query, key, value first).
        outputs (list): The op's jit outputs (not used).

    Returns:
        int: The multiply-adds.
    """
    from mmengine.analysis.jit_handles import get_shape

    from .utils.flops import sdpa_flops
    return sdpa_flops(*(get_shape(x) for x in inputs[:3]))


def fix_flop_analyzer_sdpa() -> bool:
    """Let mmengine's ``FlopAnalyzer`` count fused attention.

    mmengine 0.10.7 has no handle for ``aten::scaled_dot_product_attention``
    (it skips the op with a warning), so MMAction2's ``get_flops.py``
    under-counts ViTs that use it (about 4% of ViT-B/16 at 8x224). Adds
    :func:`sdpa_flop_jit` to mmengine's default handles only if none exists.

    Returns:
        bool: True if the handle was added.
    """
    from mmengine.analysis import complexity_analysis

    ops = complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS
    if 'aten::scaled_dot_product_attention' in ops:
        return False
    ops['aten::scaled_dot_product_attention'] = sdpa_flop_jit
    return True


def apply_all() -> dict:
    """Apply every import-time fix (items 1-4 and 6-9).

    Returns:
        dict: Fix name -> what its ``fix_*`` function returned (True: the
        fix is in effect; False: the defect is absent or it cannot apply).
    """
    return dict(
        drn=fix_missing_drn(),
        transformers_multimodal=fix_transformers_multimodal(),
        weights_only=fix_checkpoint_weights_only(),
        weights_only_loader=fix_weights_only_loader(),
        json_log_numpy_integers=fix_json_log_numpy_integers(),
        mmpretrain_without_torchvision=fix_mmpretrain_without_torchvision(),
        action_visualizer_pred_labels=fix_action_visualizer_pred_labels(),
        flop_analyzer_sdpa=fix_flop_analyzer_sdpa(),
    )
