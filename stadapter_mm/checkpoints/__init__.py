"""Checkpoint files: CLIP formats, official conversion, safe I/O.

Everything here reads and writes files and state dicts; nothing imports
:mod:`stadapter_mm.models`. Importing the package registers the
``'atomic_local'`` mmengine file backend.
"""
from .adapter_state import (ADAPTER_KEY, adapter_state_dict, clip_fingerprint,
                            drop_frozen, frozen_keys, is_adapter_key,
                            is_pretrained_init, unwrap_model)
from .clip_formats import (CheckpointError, infer_arch,
                           load_clip_backbone_weights, read_hf_vision_config,
                           resize_pos_embed)
from .io import (AtomicLocalBackend, atomic_write_bytes, atomic_write_text,
                 load_local_weights_only, load_weights_only, stale_temp_files)

__all__ = [
    'ADAPTER_KEY', 'AtomicLocalBackend', 'CheckpointError',
    'adapter_state_dict', 'atomic_write_bytes', 'atomic_write_text',
    'clip_fingerprint', 'drop_frozen', 'frozen_keys', 'infer_arch',
    'is_adapter_key', 'is_pretrained_init', 'load_clip_backbone_weights',
    'load_local_weights_only', 'load_weights_only', 'read_hf_vision_config',
    'resize_pos_embed', 'stale_temp_files', 'unwrap_model'
]
