"""Runner hooks (MMAction2 ``HOOKS``): one hook per file."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .bad_video_report_hook import BadVideoReportHook
from .random_state_hook import RandomStateHook
from .frozen_param_hook import FrozenParamHook

__all__ = [
    'AtomicCheckpointHook', 'BadVideoReportHook', 'FrozenParamHook',
    'RandomStateHook'
]
