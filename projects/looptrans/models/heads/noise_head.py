# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Noise-absorbing heads and the ego -> exo denoising distillation."""

from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import MultiConfig, OptMultiConfig
from torch import Tensor

from .utils import build_losses, losses_by_name, masked_average_pool


@MODELS.register_module()
class NoiseHead(BaseModule):
    """M noise-absorbing heads on the exo embedding of the shared CAM head.

    Not an mmseg decode head (its input is the CAM head's embedding, not backbone features), but the same
    contract: ``forward`` gives the maps, ``loss_by_feat`` the losses built from ``loss_decode``.

    A 1x1 conv maps the embedding to M noise maps. At every location a
    softmax over ``[labelled-class CAM, noise_1, ..., noise_M]`` assigns the
    pixel softly to the affordance or to one of the noise concepts (human
    body, background, ...). The assignment-weighted prototypes ``f_exo`` and
    ``f_noise_m`` enter :class:`DenoisingDistillationLoss`: ``f_exo`` is
    pulled to the clean ego pixel-level feature ``f_pixel`` and pushed from
    the noise prototypes.

    ``f_pixel`` is the teacher signal; the caller computes it (see
    :func:`masked_average_pool`) and must detach it, otherwise the pixel head
    is trained by this loss too.

    Args:
        channels (int): Channels D of the embedding. Default: 384.
        num_noise (int): Number of noise heads M. Default: 3.
        loss_decode (dict | Sequence[dict]): Distillation loss(es), each called as
            ``loss(s_noise, s_pixel)``; default :class:`DenoisingDistillationLoss` with ``tau=0.5``
            named ``loss_dill``.
        eps (float): Denominator term of the weighted pooling. Default: 1e-6.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(
        self,
        channels: int = 384,
        num_noise: int = 3,
        loss_decode: MultiConfig = dict(
            type='DenoisingDistillationLoss', tau=0.5, loss_weight=1.0, loss_name='loss_dill'
        ),
        eps: float = 1e-6,
        init_cfg: OptMultiConfig = dict(type='Normal', std=0.01, override=dict(name='conv_noise')),
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_noise < 1:
            raise ValueError(f'NoiseHead: num_noise must be >= 1, got {num_noise}.')
        self.channels = channels
        self.num_noise = num_noise
        self.eps = eps
        self.conv_noise = nn.Conv2d(channels, num_noise, kernel_size=1)
        self.loss_decode = build_losses(loss_decode)

    def forward(self, embed: Tensor) -> Tensor:
        """(N, D, h, w) exo embedding -> noise maps (N, M, h, w)."""
        if embed.dim() != 4 or embed.shape[1] != self.channels:
            raise ValueError(
                f'NoiseHead: expected embed (N, {self.channels}, h, w), got '
                f'{tuple(embed.shape)}; set channels to the CAM head '
                'embedding channels.'
            )
        return self.conv_noise(embed)

    def prototypes(self, exo_embed: Tensor, exo_cam: Tensor, noise_maps: Tensor) -> Tensor:
        """Assignment-weighted prototypes (N, 1 + M, D): f_exo, f_noise_1..M."""
        assign = torch.cat([exo_cam[:, None], noise_maps], dim=1).softmax(1)
        return masked_average_pool(exo_embed, assign, eps=self.eps)

    def loss_by_feat(
        self, noise_maps: Tensor, exo_embed: Tensor, exo_cam: Tensor, f_pixel: Tensor
    ) -> Dict[str, Tensor]:
        """Denoising distillation loss.

        Args:
            noise_maps (Tensor): Output of :meth:`forward`, (B*V, M, h, w).
            exo_embed (Tensor): Exo embedding (B*V, D, h, w), (B, V) flattened.
            exo_cam (Tensor): CAM of the labelled class (B*V, h, w).
            f_pixel (Tensor): Detached ego pixel-level feature (B, D); it is
                repeated for the V views of its sample.

        Returns:
            dict[str, Tensor]: one item per ``loss_name`` of ``loss_decode`` (default ``loss_dill``).
        """
        num, dim = exo_embed.shape[:2]
        spatial = exo_embed.shape[2:]
        if (
            exo_cam.shape != (num, *spatial)
            or noise_maps.shape != (num, self.num_noise, *spatial)
            or f_pixel.dim() != 2
            or f_pixel.shape[1] != dim
            or f_pixel.shape[0] == 0
            or num % f_pixel.shape[0]
        ):
            raise ValueError(
                'NoiseHead.loss: expected exo_embed (B*V, D, h, w), exo_cam '
                f'(B*V, h, w), noise_maps (B*V, {self.num_noise}, h, w) and '
                f'f_pixel (B, D); got {tuple(exo_embed.shape)}, '
                f'{tuple(exo_cam.shape)}, {tuple(noise_maps.shape)} and '
                f'{tuple(f_pixel.shape)}.'
            )
        protos = self.prototypes(exo_embed, exo_cam, noise_maps)
        f_exo, f_noise = protos[:, 0], protos[:, 1:]
        f_pixel = f_pixel.repeat_interleave(num // f_pixel.shape[0], dim=0)
        s_pixel = F.cosine_similarity(f_pixel, f_exo, dim=-1)
        s_noise = F.cosine_similarity(f_noise, f_exo[:, None], dim=-1)
        return losses_by_name(self.loss_decode, s_noise, s_pixel)
