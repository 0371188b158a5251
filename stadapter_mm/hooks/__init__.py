"""Hooks of stadapter-mm."""
from .frozen_param_hook import FrozenParamHook, clip_fingerprint

__all__ = ['FrozenParamHook', 'clip_fingerprint']
