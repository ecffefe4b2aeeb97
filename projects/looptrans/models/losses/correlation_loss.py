# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Affordance correlation alignment between exocentric and egocentric views: Cross-View-AG's on image-level
logits, and the published LoopTrans code's on maps."""

import torch
import torch.nn as nn
import torch.nn.functional as F
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

    #: What the segmentor passes: the exo logits (B, V, C) and the ego logits (B, C).
    reads = 'logits'

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


@MODELS.register_module()
class AffordanceMapCorrelationLoss(nn.Module):
    """The published LoopTrans code's ``L_corr``: align the class-by-class Gram matrices of the two views' maps.

    ``models/looptrans.py`` (SooLab/LoopTrans), per sample ``b``:

    1. ``E = ego_maps_b`` flattened to (C, h*w) (the pixel decoder's maps of every class) and ``X`` the exo CAMs
       of its ``V`` views, their locations side by side: (C, V*h*w);
    2. the Gram matrices ``E Eᵀ`` and ``X Xᵀ`` (C, C);
    3. ``loss = 1 - mean_{b,j} cos(column j of E Eᵀ, column j of X Xᵀ)`` (``F.cosine_similarity`` over the
       first class axis), times ``loss_weight`` (1.5 in its ``train.py``).

    Both views receive gradients. Unlike :class:`AffordanceCorrelationLoss` (Cross-View-AG's, on image-level
    logits) it reads maps: the segmentor passes what :attr:`reads` names.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.5 (the published code's).
        loss_name (str): Name of the loss item. Default: 'loss_corr'.
    """

    #: What the segmentor passes: the exo CAMs (B, V, C, h, w) and the ego maps (B, C, h', w').
    reads = 'maps'

    def __init__(self, loss_weight: float = 1.5, loss_name: str = 'loss_corr') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, exo_maps: Tensor, ego_maps: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            exo_maps (Tensor): Exo CAMs (B, V, C, h, w).
            ego_maps (Tensor): Ego maps (B, C, h', w'), any grid.

        Returns:
            Tensor: Scalar loss.
        """
        if (
            exo_maps.dim() != 5
            or ego_maps.dim() != 4
            or exo_maps.shape[0] != ego_maps.shape[0]
            or exo_maps.shape[2] != ego_maps.shape[1]
        ):
            raise ValueError(
                'AffordanceMapCorrelationLoss: expected exo CAMs (B, V, C, h, w) and ego maps (B, C, h, w) with the '
                f'same B and C, got {tuple(exo_maps.shape)} and {tuple(ego_maps.shape)}.'
            )
        ego = ego_maps.flatten(2)  # (B, C, h'w')
        exo = exo_maps.transpose(1, 2).flatten(2)  # (B, C, V*h*w)
        gram_ego = torch.bmm(ego, ego.transpose(1, 2))
        gram_exo = torch.bmm(exo, exo.transpose(1, 2))
        return self.loss_weight * (1 - F.cosine_similarity(gram_ego, gram_exo, dim=1).mean())

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
