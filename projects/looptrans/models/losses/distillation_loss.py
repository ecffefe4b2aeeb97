# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Denoising distillation loss of LoopTrans (ego -> exo feedback)."""

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class DenoisingDistillationLoss(nn.Module):
    """``L_dill = log(1 + sum_m exp((s_noise_m - s_pixel) / tau))``.

    An InfoNCE-style loss with one positive and ``M`` negatives: the exo
    affordance feature must be more similar to the (teacher) ego pixel-level
    feature ``f_pixel`` than to any of the ``M`` noise features absorbed by
    the noise heads. Computed as ``logsumexp([0, z_1, ..., z_M])`` with
    ``z_m = (s_noise_m - s_pixel) / tau``, which is exact and never overflows.

    Args:
        tau (float): Temperature (> 0). Default: 0.5.
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_dill'.
    """

    def __init__(self, tau: float = 0.5, loss_weight: float = 1.0, loss_name: str = 'loss_dill') -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'DenoisingDistillationLoss: tau must be > 0, got {tau}.')
        self.tau = tau
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, s_noise: Tensor, s_pixel: Tensor) -> Tensor:
        """Compute the loss averaged over samples.

        Args:
            s_noise (Tensor): Similarities of the M noise features to the exo
                affordance feature, shape (N, M).
            s_pixel (Tensor): Similarity of the ego pixel feature to the exo
                affordance feature, shape (N,).

        Returns:
            Tensor: Scalar loss.
        """
        if s_noise.dim() != 2 or s_pixel.shape != s_noise.shape[:1]:
            raise ValueError(
                'DenoisingDistillationLoss: expected s_noise (N, M) and '
                f's_pixel (N,), got {tuple(s_noise.shape)} and '
                f'{tuple(s_pixel.shape)}.'
            )
        z = (s_noise - s_pixel[:, None]) / self.tau
        z = torch.cat([z.new_zeros(z.shape[0], 1), z], dim=1)
        return self.loss_weight * torch.logsumexp(z, dim=1).mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
