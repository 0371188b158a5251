"""Parameter schedulers; importing registers :class:`WarmupCosineLR`."""
from .warmup_cosine_lr import WarmupCosineLR

__all__ = ['WarmupCosineLR']
