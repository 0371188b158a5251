"""Building blocks: CLIP transformer layers and the ST-Adapter."""
from .clip_transformer import (MLP_ACTS, LayerNorm, QuickGELU,
                               ResidualAttentionBlock, Transformer)
from .st_adapter import (ADAPTER_PRESETS, STConvAdapter, check_adapter_args,
                         check_num_frames, resolve_adapter_cfg)

__all__ = [
    'ADAPTER_PRESETS', 'LayerNorm', 'MLP_ACTS', 'QuickGELU',
    'ResidualAttentionBlock', 'STConvAdapter', 'Transformer',
    'check_adapter_args', 'check_num_frames', 'resolve_adapter_cfg'
]
