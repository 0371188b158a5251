"""Runner loops; importing registers the CUDA-autocast evaluation loops."""
from .autocast_loops import CudaAutocastTestLoop, CudaAutocastValLoop

__all__ = ['CudaAutocastTestLoop', 'CudaAutocastValLoop']
