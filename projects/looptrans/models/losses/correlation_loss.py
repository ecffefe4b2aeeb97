# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Affordance correlation alignment between exocentric and egocentric views."""
import torch.nn as nn
from torch import Tensor

from mmseg.registry import MODELS


@MODELS.register_module()
class AffordanceCorrelationLoss(nn.Module):
    """Align how affordances co-activate in the exo and the ego view.

    The paper lists an ``L_corr`` term that "aligns affordance correlations
    between exocentric and egocentric images" but gives no formula. This is
    our reading of it:

    1. exo logits ``(B, V, C)`` are averaged over the ``V`` views;
    2. class probabilities ``P = softmax(logits / T)`` per view, ``(B, C)``;
    3. a correlation matrix per view, ``R = P^T P / B`` ``(C, C)``: entry
       ``(i, j)`` measures how much affordances ``i`` and ``j`` are predicted
       together over the batch;
    4. ``loss = ||R_exo - R_ego||_F^2 / C``.

    Both views receive gradients (mutual alignment, no stop-gradient), as the
    closed loop transfers knowledge in both directions. It works for ``B=1``
    (then ``R`` is the outer product of one probability vector).

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        temperature (float): Softmax temperature ``T`` (> 0). Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_corr'.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 temperature: float = 1.0,
                 loss_name: str = 'loss_corr') -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError('AffordanceCorrelationLoss: temperature must be '
                             f'> 0, got {temperature}.')
        self.loss_weight = loss_weight
        self.temperature = temperature
        self._loss_name = loss_name

    def correlation(self, logits: Tensor) -> Tensor:
        """Class co-activation matrix ``P^T P / B`` of logits (B, C)."""
        prob = (logits / self.temperature).softmax(dim=-1)
        return prob.t() @ prob / prob.shape[0]

    def forward(self, exo_logits: Tensor, ego_logits: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            exo_logits (Tensor): (B, V, C) per-view exo logits, or (B, C)
                already aggregated over views.
            ego_logits (Tensor): (B, C) ego logits.

        Returns:
            Tensor: Scalar loss.
        """
        if exo_logits.dim() == 3:
            exo_logits = exo_logits.mean(dim=1)
        if exo_logits.dim() != 2 or exo_logits.shape != ego_logits.shape:
            raise ValueError(
                'AffordanceCorrelationLoss: expected exo_logits (B, V, C) or '
                '(B, C) and ego_logits (B, C) with the same B and C, got '
                f'{tuple(exo_logits.shape)} and {tuple(ego_logits.shape)}; '
                'reshape flattened exo logits (B*V, C) to (B, V, C).')
        diff = self.correlation(exo_logits) - self.correlation(ego_logits)
        return self.loss_weight * diff.pow(2).sum() / diff.shape[0]

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
