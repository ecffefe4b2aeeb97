# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Per-sample losses between a predicted map and a soft target: mean squared error and the published LoopTrans
code's soft dice, on the map after a sigmoid, a per-sample min-max normalisation or as it is."""

from typing import Optional, Union

import torch.nn as nn
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.maps import minmax_normalize
from .locate_losses import NORMALIZE_MINMAX_EPS

#: How a loss turns the prediction into a map in [0, 1] before comparing it with the target.
MAP_ACTIVATIONS = ('sigmoid', 'minmax', 'none')


def activate_maps(pred: Tensor, activation: str) -> Tensor:
    """``pred`` (N, ...) after ``activation``: ``'sigmoid'``, ``'minmax'`` (each sample's map min-max normalised
    over all its axes, eps 1e-15, as the published LoopTrans code's ``normalize_minmax``) or ``'none'``."""
    if activation == 'sigmoid':
        return pred.sigmoid()
    if activation == 'minmax':
        return minmax_normalize(pred, eps=NORMALIZE_MINMAX_EPS)
    return pred


def _check_activation(owner: str, activation: str) -> str:
    if activation not in MAP_ACTIVATIONS:
        raise ValueError(f'{owner}: activation must be one of {MAP_ACTIVATIONS}, got {activation!r}.')
    return activation


class _MapLoss(nn.Module):
    """mmseg's loss contract for a per-sample map loss (``loss_weight``, ``loss_name``, ``forward(pred, target,
    weight, avg_factor, reduction_override)``), so that it is built from a head's ``loss_decode``."""

    def __init__(self, activation: str, reduction: str, loss_weight: float, loss_name: str) -> None:
        super().__init__()
        name = type(self).__name__
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        self.activation = _check_activation(name, activation)
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def per_sample(self, prob: Tensor, target: Tensor) -> Tensor:
        """(N,) loss of each sample's activated map against its target."""
        raise NotImplementedError

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
            pred (Tensor): Logits (or maps), shape (N, ...).
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
                f'{type(self).__name__}: pred {tuple(pred.shape)} and target {tuple(target.shape)} must '
                'have the same shape; resize the target to the prediction first.'
            )
        prob = activate_maps(pred, self.activation)
        loss = self.per_sample(prob, target.to(prob.dtype))
        if weight is not None:
            weight = weight.to(loss.dtype)
        reduction = reduction_override or self.reduction
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name


@MODELS.register_module()
class MapMSELoss(_MapLoss):
    """``mean_pixels((act(pred) - target)^2)`` per sample, then mmseg's weighted reduction.

    The MSE half of LoopTrans' pixel loss. mmseg has no MSE loss.

    Args:
        use_sigmoid (bool): Apply a sigmoid to ``pred`` (logits in); False when ``pred`` already holds
            probabilities. Default: True. Ignored when ``activation`` is given.
        activation (str, optional): ``'sigmoid'``, ``'minmax'`` (the published LoopTrans code's
            ``normalize_minmax`` of the pixel map) or ``'none'``; overrides ``use_sigmoid``.
        reduction (str): 'mean', 'sum' or 'none' over samples. Default: 'mean'.
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_mse'.
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        activation: Optional[str] = None,
        reduction: str = 'mean',
        loss_weight: float = 1.0,
        loss_name: str = 'loss_mse',
    ) -> None:
        if activation is None:
            activation = 'sigmoid' if use_sigmoid else 'none'
        super().__init__(activation, reduction, loss_weight, loss_name)

    @property
    def use_sigmoid(self) -> bool:
        """Whether a sigmoid is applied (``activation == 'sigmoid'``)."""
        return self.activation == 'sigmoid'

    def per_sample(self, prob: Tensor, target: Tensor) -> Tensor:
        return (prob - target).pow(2).flatten(1).mean(1)


@MODELS.register_module()
class MapDiceLoss(_MapLoss):
    """The published LoopTrans code's soft dice, per sample: ``1 - (2 Σ x t + smooth) / (Σ x + Σ t + smooth)``
    with ``x = act(pred)``, then mmseg's weighted reduction.

    The published code (``models/looptrans.py``, ``DiceLoss``) computes it on each sample's min-max normalised
    pixel map and averages over the batch; mmseg's ``DiceLoss`` has no min-max activation.

    Args:
        activation (str): ``'minmax'`` (the published code's), ``'sigmoid'`` or ``'none'``. Default: 'minmax'.
        smooth (float): Added to the numerator and the denominator. Default: 1.0 (the published code's).
        reduction (str): 'mean', 'sum' or 'none' over samples. Default: 'mean'.
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_dice'.
    """

    def __init__(
        self,
        activation: str = 'minmax',
        smooth: float = 1.0,
        reduction: str = 'mean',
        loss_weight: float = 1.0,
        loss_name: str = 'loss_dice',
    ) -> None:
        if smooth < 0:
            raise ValueError(f'MapDiceLoss: smooth must be >= 0, got {smooth}.')
        super().__init__(activation, reduction, loss_weight, loss_name)
        self.smooth = smooth

    def per_sample(self, prob: Tensor, target: Tensor) -> Tensor:
        prob, target = prob.flatten(1), target.flatten(1)
        inter = (prob * target).sum(1)
        return 1 - (2 * inter + self.smooth) / (prob.sum(1) + target.sum(1) + self.smooth)
