# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Affordance correlation alignment between exocentric and egocentric views."""

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class AffordanceCorrelationLoss(nn.Module):
    """Align how affordances co-activate in the exo and the ego view (``L_corr``).

    The LoopTrans paper names an ``L_corr`` term that "aligns affordance correlations between exocentric
    and egocentric images" without a formula; it inherits it from Cross-View-AG (CVPR 2022,
    ``code/cvpr/models/model.py``, ``get_loss``), which this loss reproduces **per sample**:

    1. exo logits ``(B, V, C)`` are averaged over the ``V`` views (Cross-View-AG's exo score is the
       classifier of the view-averaged pooled feature; the classifier and the pooling are linear, so this
       is the same);
    2. ``p = softmax(ego / T)``, ``q = softmax(exo / T)``, each ``(B, C)``;
    3. per sample, the correlation matrices ``P = p pᵀ`` and ``Q = q qᵀ`` ``(C, C)``;
    4. ``loss = -T² · mean_b Σ_ij Q_ij · log P_ij`` (times ``loss_weight``; Cross-View-AG's
       ``align_w = 0.5``).

    Because ``log P_ij = log p_i + log p_j`` and ``Σ_i q_i = 1``, the sum equals ``2 Σ_i q_i log p_i``;
    it is computed from ``log_softmax`` in that form, which is finite for any logits (the published
    ``log(bmm(p, pᵀ))`` overflows to ``-inf`` when a probability underflows, hence its ``|loss| < 100``
    guard, which is therefore not needed here). Both views receive gradients (no stop-gradient), as in
    Cross-View-AG.

    Args:
        loss_weight (float): Multiplier of the loss (Cross-View-AG's ``align_w``). Default: 0.5.
        temperature (float): Softmax temperature ``T`` (> 0). Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_corr'.
    """

    def __init__(self, loss_weight: float = 0.5, temperature: float = 1.0, loss_name: str = 'loss_corr') -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'AffordanceCorrelationLoss: temperature must be > 0, got {temperature}.')
        self.loss_weight = loss_weight
        self.temperature = temperature
        self._loss_name = loss_name

    def forward(self, exo_logits: Tensor, ego_logits: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            exo_logits (Tensor): (B, V, C) per-view exo logits, or (B, C) already averaged over views.
            ego_logits (Tensor): (B, C) ego logits.

        Returns:
            Tensor: Scalar loss.
        """
        if exo_logits.dim() == 3:
            exo_logits = exo_logits.mean(dim=1)
        if exo_logits.dim() != 2 or exo_logits.shape != ego_logits.shape:
            raise ValueError(
                'AffordanceCorrelationLoss: expected exo_logits (B, V, C) or (B, C) and ego_logits '
                f'(B, C) with the same B and C, got {tuple(exo_logits.shape)} and '
                f'{tuple(ego_logits.shape)}; reshape flattened exo logits (B*V, C) to (B, V, C).'
            )
        temp = self.temperature
        q = torch.softmax(exo_logits / temp, dim=-1)
        log_p = torch.log_softmax(ego_logits / temp, dim=-1)
        cross = 2 * (q * log_p).sum(dim=-1)  # = sum_ij (q q^T)_ij log (p p^T)_ij, per sample
        return -self.loss_weight * temp * temp * cross.mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
