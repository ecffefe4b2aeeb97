# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Small reduction helpers shared by the LoopTrans losses."""
from typing import Optional

from torch import Tensor


def weighted_sample_mean(loss: Tensor, weight: Optional[Tensor] = None) -> Tensor:
    """Average per-sample losses, optionally weighted.

    ``sum(w * loss) / sum(w)``. When every weight is zero the result is an
    exact ``0`` that still depends on ``loss`` (so all parameters that
    produced ``loss`` stay in the autograd graph and DDP sees them used).
    No host-device synchronisation happens.

    Args:
        loss (Tensor): Per-sample losses, shape (N,).
        weight (Tensor, optional): Non-negative weights (N,), bool or float.

    Returns:
        Tensor: Scalar.
    """
    if weight is None:
        return loss.mean()
    if weight.shape != loss.shape:
        raise ValueError(f'weight shape {tuple(weight.shape)} must equal the '
                         f'per-sample loss shape {tuple(loss.shape)}.')
    weight = weight.to(loss.dtype)
    # Zero out (instead of multiplying) so a non-finite loss of an ignored
    # sample cannot leak into the result as 0 * inf = nan.
    loss = loss.masked_fill(weight == 0, 0.)
    return (loss * weight).sum() / weight.sum().clamp(min=1e-12)
