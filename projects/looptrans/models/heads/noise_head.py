# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Noise-absorbing heads and the ego -> exo denoising distillation."""

from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import MultiConfig, OptMultiConfig, SampleList
from torch import Tensor

from .shared_cam_head import ViewCAMs
from .utils import (
    build_losses,
    labels_of,
    losses_by_name,
    masked_average_pool,
    resize_to,
    select_class_maps,
    without_override,
)

#: The ways :class:`NoiseHead` makes the features of the distillation (its ``pooling``).
POOLINGS = ('assignment', 'published')


@MODELS.register_module()
class NoiseHead(BaseModule):
    """M noise-absorbing heads on the exo embedding of the shared CAM head.

    Not an mmseg decode head (its input is the CAM head's embedding, not backbone features, and its target
    is the pixel head's localisation), so it does not inherit ``BaseDecodeHead``; its own contract:

    - ``forward(embed)``: the noise maps (N, M, h, w) of an exo embedding;
    - ``loss(cams, teacher, batch_data_samples)``: the training step of the closed loop, from the
      :class:`ViewCAMs` of the shared CAM head and the teacher map; ``forward`` then :meth:`loss_by_feat`;
    - ``loss_by_feat(noise_maps, exo_embed, exo_cam, f_pixel)``: the losses built from ``loss_decode``.

    A 1x1 conv maps the embedding to M noise maps; with ``maps_from_cam_head=True`` the noise maps are instead
    the last M outputs of the shared CAM head's classifier (``SharedCAMHead(num_noise=M)``, the published
    LoopTrans code's ``aff_fc`` of C + 15 outputs), read from :class:`ViewCAMs`, and this head has no
    parameters. At every location a
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
        pooling (str): How the three features are made. ``'assignment'`` (the paper-derived form above, per
            view, through :meth:`loss`); ``'published'``: the published LoopTrans code's, through
            :meth:`loss_published`: the raw labelled exo CAM and the raw noise maps pool the CAM head's
            *input* features (the frozen DINO keys), averaged over the views, and the pixel head's raw labelled
            map pools the ego input features, with its gradient. Default: 'assignment'.
        maps_from_cam_head (bool): The noise maps are the CAM head's last M classifier outputs
            (:attr:`ViewCAMs.exo_noise`) rather than this head's own 1x1 conv ``conv_noise`` (not built then).
            LoopTrans sets it with ``noise_on_cam_head=True``. Default: False.
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
        pooling: str = 'assignment',
        maps_from_cam_head: bool = False,
        init_cfg: OptMultiConfig = dict(type='Normal', std=0.01, override=dict(name='conv_noise')),
    ) -> None:
        super().__init__(init_cfg=without_override(init_cfg, 'conv_noise') if maps_from_cam_head else init_cfg)
        if num_noise < 1:
            raise ValueError(f'NoiseHead: num_noise must be >= 1, got {num_noise}.')
        if pooling not in POOLINGS:
            raise ValueError(f'NoiseHead: pooling must be one of {POOLINGS}, got {pooling!r}.')
        self.pooling = pooling
        self.channels = channels
        self.num_noise = num_noise
        self.eps = eps
        self.maps_from_cam_head = bool(maps_from_cam_head)
        if not self.maps_from_cam_head:
            self.conv_noise = nn.Conv2d(channels, num_noise, kernel_size=1)
        self.loss_decode = build_losses(loss_decode)

    def forward(self, embed: Tensor) -> Tensor:
        """(N, D, h, w) exo embedding -> noise maps (N, M, h, w), by the head's own conv."""
        if self.maps_from_cam_head:
            raise RuntimeError(
                'NoiseHead.forward: with maps_from_cam_head=True the noise maps are the CAM head\'s classifier '
                'outputs (ViewCAMs.exo_noise); this head has no conv of its own.'
            )
        if embed.dim() != 4 or embed.shape[1] != self.channels:
            raise ValueError(
                f'NoiseHead: expected embed (N, {self.channels}, h, w), got '
                f'{tuple(embed.shape)}; set channels to the CAM head '
                'embedding channels.'
            )
        return self.conv_noise(embed)

    def noise_maps(self, cams: ViewCAMs) -> Tensor:
        """The exo noise maps (B*V, M, h, w) of a training step: the CAM head's noise outputs
        (``maps_from_cam_head``) or this head's own conv on the exo embedding."""
        if not self.maps_from_cam_head:
            return self(cams.exo_embed)
        if cams.num_noise != self.num_noise:
            raise ValueError(
                f'NoiseHead: num_noise={self.num_noise}, but the CAM head\'s classifier has {cams.num_noise} noise '
                'outputs; give model.cam_head the same num_noise (LoopTrans noise_on_cam_head sets it).'
            )
        return cams.exo_noise

    def loss(self, cams: ViewCAMs, teacher: Optional[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The denoising distillation loss of a training batch.

        Args:
            cams (ViewCAMs): The shared CAM head's output for both views (:meth:`SharedCAMHead.forward_views`).
            teacher (Tensor): The clean ego localisation of each sample's affordance (B, H', W'), e.g. the pixel
                head's probabilities; resized bilinearly to the ego embedding's grid and used, detached, as the
                weights of the ego pixel-level feature ``f_pixel`` (:func:`masked_average_pool`). ``None`` while
                there is no clean localisation yet (the pixel head before its supervision starts): the losses are
                then zeros that keep the graph (every parameter still takes part, as DDP needs), so the
                distillation cannot feed an unlocalised map back into the shared CAM.
            batch_data_samples (list[SegDataSample]): The B samples; ``metainfo['gt_label']`` selects the exo
                CAM of each sample's affordance in its V views.

        Returns:
            dict[str, Tensor]: :meth:`loss_by_feat`'s losses.
        """
        labels = labels_of(batch_data_samples, cams.exo_embed.device)
        num = labels.shape[0]
        waiting = teacher is None
        if waiting:
            teacher = cams.ego_embed.new_ones(num, *cams.ego_embed.shape[-2:])
        if num == 0 or cams.exo_embed.shape[0] % num or cams.ego_embed.shape[0] != num or teacher.shape[0] != num:
            raise ValueError(
                f'NoiseHead.loss: expected exo embedding (B*V, D, h, w), ego embedding (B, D, h, w) and teacher '
                f'(B, H, W) for B={num} data samples, got {tuple(cams.exo_embed.shape)}, '
                f'{tuple(cams.ego_embed.shape)} and {tuple(teacher.shape)}.'
            )
        teacher = F.interpolate(teacher[:, None], size=cams.ego_embed.shape[-2:], mode='bilinear', align_corners=False)
        f_pixel = masked_average_pool(cams.ego_embed, teacher[:, 0]).detach()
        noise_maps = self.noise_maps(cams)
        views = cams.exo_embed.shape[0] // num
        exo_cam = select_class_maps(cams.exo_cams, labels.repeat_interleave(views))
        losses = self.loss_by_feat(noise_maps, cams.exo_embed, exo_cam, f_pixel)
        return {name: loss * 0 for name, loss in losses.items()} if waiting else losses

    def loss_published(
        self, cams: ViewCAMs, exo_feats: Tensor, ego_feats: Tensor, ego_map: Tensor, batch_data_samples: SampleList
    ) -> Dict[str, Tensor]:
        """The published LoopTrans code's denoising distillation (``models/looptrans.py``), per sample ``b``:

        - query: ``mean_{v,h,w}(exo_cam_{b,v} * X_{b,v})`` with the raw CAM of the labelled class and ``X`` the
          exo input features;
        - noise keys: ``mean_{v,h,w}(noise_{b,v,m} * X_{b,v})`` for each of the M raw noise maps (the
          classifier's extra outputs in the published code: ``maps_from_cam_head``);
        - positive key: ``mean_{h,w}(ego_map_b * E_b)`` with ``E`` the ego input features;
        - ``s = cos(key, query)``, then ``loss_decode(s_noise, s_pixel)`` (the published code: InfoNCE, τ = 1).

        Every map keeps its gradient (the features are frozen descriptors in the published code); maps on another
        grid than the features are resized bilinearly to it.

        Args:
            cams (ViewCAMs): The shared CAM head's output for both views.
            exo_feats (Tensor): Exo input features of the CAM head (B*V, D, h, w).
            ego_feats (Tensor): Ego input features (B, D, h, w).
            ego_map (Tensor): The ego map of each sample's affordance (B, h', w'), raw: the pixel head's logits
                (the published code's ``ego_pred``), or the ego CAM without a pixel head.
            batch_data_samples (list[SegDataSample]): The B samples (``metainfo['gt_label']``).

        Returns:
            dict[str, Tensor]: one item per ``loss_name`` of ``loss_decode``.
        """
        labels = labels_of(batch_data_samples, exo_feats.device)
        num = labels.shape[0]
        if (
            num == 0
            or exo_feats.dim() != 4
            or exo_feats.shape[0] % num
            or cams.exo_embed.shape[0] != exo_feats.shape[0]
            or tuple(ego_feats.shape) != (num, *exo_feats.shape[1:])
            or ego_map.shape[0] != num
        ):
            raise ValueError(
                f'NoiseHead.loss_published: expected exo features (B*V, D, h, w), ego features (B, D, h, w) and an '
                f'ego map (B, h, w) for B={num} data samples, got {tuple(exo_feats.shape)}, '
                f'{tuple(ego_feats.shape)} and {tuple(ego_map.shape)}.'
            )
        views = exo_feats.shape[0] // num
        exo_cam = select_class_maps(cams.exo_cams, labels.repeat_interleave(views))
        maps = resize_to(torch.cat([exo_cam[:, None], self.noise_maps(cams)], dim=1), exo_feats.shape[-2:])
        pooled = torch.einsum('nkhw,ndhw->nkd', maps, exo_feats) / maps[0, 0].numel()
        pooled = pooled.unflatten(0, (num, views)).mean(dim=1)  # (B, 1+M, D)
        ego = resize_to(ego_map[:, None], ego_feats.shape[-2:])[:, 0]
        f_pixel = torch.einsum('nhw,ndhw->nd', ego, ego_feats) / ego[0].numel()
        query = pooled[:, 0]
        s_pixel = F.cosine_similarity(f_pixel, query, dim=-1)
        s_noise = F.cosine_similarity(pooled[:, 1:], query[:, None], dim=-1)
        return losses_by_name(self.loss_decode, s_noise, s_pixel)

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
