# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Soft (probabilistic) Dice loss for binary pseudo-mask supervision."""
from typing import Optional

import torch.nn as nn
from torch import Tensor

from mmseg.registry import MODELS

from .utils import weighted_sample_mean


@MODELS.register_module()
class SoftDiceLoss(nn.Module):
    """Per-sample soft Dice loss between a probability map and a soft target.

    For every sample ``i`` (all non-batch dimensions are flattened)::

        loss_i = 1 - (2 * sum(p_i * m_i) + eps) / (sum(p_i) + sum(m_i) + eps)

    and the result is the (optionally ``weight``-ed) mean over samples. Unlike
    ``mmseg.DiceLoss`` (multi-class, one-hot targets) this takes one
    probability map per sample and a target in ``[0, 1]``, which is what the
    LoopTrans pixel decoder needs: the prediction of the labelled affordance
    against a part-level pseudo-mask.

    Args:
        eps (float): Smoothing term of numerator and denominator; ``1.0``
            makes an empty prediction on an empty target a zero loss.
        loss_weight (float): Multiplier of the loss.
        loss_name (str): Name of the loss item in the loss dict.
    """

    def __init__(self,
                 eps: float = 1.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f'SoftDiceLoss: eps must be > 0, got {eps}.')
        self.eps = eps
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Probabilities, shape (N, ...).
            target (Tensor): Soft target in [0, 1], same shape as ``pred``.
            weight (Tensor, optional): Per-sample weights (N,), e.g. a
                validity mask. Samples with weight 0 do not count; when all
                weights are 0 the loss is an exact zero that keeps the graph.

        Returns:
            Tensor: Scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(
                f'SoftDiceLoss: pred {tuple(pred.shape)} and target '
                f'{tuple(target.shape)} must have the same shape; resize the '
                'target to the prediction first.')
        p = pred.flatten(1)
        m = target.to(p.dtype).flatten(1)
        inter = (p * m).sum(1)
        dice = (2 * inter + self.eps) / (p.sum(1) + m.sum(1) + self.eps)
        return self.loss_weight * weighted_sample_mean(1 - dice, weight)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
