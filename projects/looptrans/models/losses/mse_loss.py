# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Per-sample mean squared error between a (sigmoid) probability map and a soft target."""

from typing import Optional, Union

import torch.nn as nn
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MapMSELoss(nn.Module):
    """``mean_pixels((sigmoid(pred) - target)^2)`` per sample, then mmseg's weighted reduction.

    The MSE half of LoopTrans' pixel loss (the other half is ``mmseg.DiceLoss``). mmseg has no MSE loss;
    this one follows mmseg's loss contract (``loss_weight``, ``loss_name``, ``forward(pred, target,
    weight, avg_factor, reduction_override)``) so that it is built from a head's ``loss_decode``.

    Args:
        use_sigmoid (bool): Apply a sigmoid to ``pred`` (logits in); False when ``pred`` already holds
            probabilities. Default: True.
        reduction (str): 'mean', 'sum' or 'none' over samples. Default: 'mean'.
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_mse'.
    """

    def __init__(
        self, use_sigmoid: bool = True, reduction: str = 'mean', loss_weight: float = 1.0, loss_name: str = 'loss_mse'
    ) -> None:
        super().__init__()
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f"MapMSELoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        self.use_sigmoid = use_sigmoid
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        weight: Optional[Tensor] = None,
        avg_factor: Optional[Union[int, Tensor]] = None,
        reduction_override: Optional[str] = None,
        **kwargs,
    ) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Logits (or probabilities), shape (N, ...).
            target (Tensor): Soft target in [0, 1], same shape.
            weight (Tensor, optional): Per-sample weights (N,), e.g. a validity mask.
            avg_factor (int | Tensor, optional): Divisor of the weighted sum ('mean' only), e.g. the
                number of valid samples.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The loss (scalar unless the reduction is 'none').
        """
        if pred.shape != target.shape:
            raise ValueError(
                f'MapMSELoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must '
                'have the same shape; resize the target to the prediction first.'
            )
        prob = pred.sigmoid() if self.use_sigmoid else pred
        loss = (prob - target.to(prob.dtype)).pow(2).flatten(1).mean(1)
        if weight is not None:
            weight = weight.to(loss.dtype)
        reduction = reduction_override or self.reduction
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
