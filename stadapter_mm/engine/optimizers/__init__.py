"""Optimizer wrappers; importing registers them in MMAction2's registry."""
from .cuda_amp_optim_wrapper import CudaAmpOptimWrapper

__all__ = ['CudaAmpOptimWrapper']
