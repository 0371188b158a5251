"""Operation counts the FLOP counters of mmengine and torch do not know."""
from __future__ import annotations

import math
from typing import Sequence


def sdpa_flops(q_shape: Sequence[int], k_shape: Sequence[int],
               v_shape: Sequence[int]) -> int:
    """Multiply-adds of one fused attention (``scaled_dot_product_attention``).

    ``q @ k^T`` and ``attn @ v``: ``B * L * S * (E + Ev)`` for ``(B..., L,
    E)`` queries, ``(B..., S, E)`` keys and ``(B..., S, Ev)`` values; the
    softmax and scaling are not counted (the fvcore/mmengine convention).

    Args:
        q_shape (Sequence[int]): Query shape ``(B..., L, E)``.
        k_shape (Sequence[int]): Key shape ``(B..., S, E)``.
        v_shape (Sequence[int]): Value shape ``(B..., S, Ev)``.

    Returns:
        int: The multiply-adds (FLOPs in mmengine's convention, half of
        ``torch.utils.flop_counter``'s).
    """
    batch = math.prod(q_shape[:-2])
    return int(batch * q_shape[-2] * k_shape[-2] * (q_shape[-1] + v_shape[-1]))
