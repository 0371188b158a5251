"""Runner hooks for reliable training."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .bad_video_report_hook import BadVideoReportHook

__all__ = ['AtomicCheckpointHook', 'BadVideoReportHook']
