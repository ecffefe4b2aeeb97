# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Pixel-level affordance decoder trained on part-level pseudo-masks."""
from typing import Dict

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from ..losses import SoftDiceLoss
from ..losses.utils import weighted_sample_mean
from .utils import select_class_maps


@MODELS.register_module()
class PixelAffordanceHead(BaseModule):
    """Decode ego features into per-class affordance logits (LoopTrans).

    ``conv3x3-BN-ReLU -> bilinear x upsample -> conv3x3-BN-ReLU -> conv1x1``.
    It turns coarse CAM activations into part-complete localisations: the
    labelled class's map is supervised by the DINO part selected by the CAM
    (:class:`PartDiscovery`) with a soft Dice and an MSE loss.

    Args:
        num_classes (int): Number of affordance classes C.
        in_channels (int): Channels of the input features. Default: 384.
        channels (int): Channels of the hidden layers. Default: 256.
        upsample (int): Integer upsampling factor of the grid. Default: 2.
        loss_dice_weight (float): Weight of the Dice loss. Default: 1.0.
        loss_mse_weight (float): Weight of the MSE loss. Default: 1.0.
        align_corners (bool): ``align_corners`` of every resize. Default: False.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 384,
                 channels: int = 256,
                 upsample: int = 2,
                 loss_dice_weight: float = 1.0,
                 loss_mse_weight: float = 1.0,
                 align_corners: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', std=0.01, override=dict(name='conv_seg'))
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if int(upsample) != upsample or upsample < 1:
            raise ValueError('PixelAffordanceHead: upsample must be an integer '
                             f'>= 1, got {upsample}.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.channels = channels
        self.upsample = int(upsample)
        self.align_corners = align_corners
        layer_cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv_in = ConvModule(in_channels, channels, 3, padding=1, **layer_cfg)
        self.conv_up = ConvModule(channels, channels, 3, padding=1, **layer_cfg)
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.loss_dice = SoftDiceLoss(eps=1.0, loss_weight=loss_dice_weight,
                                      loss_name='loss_pixel_dice')
        self.loss_mse_weight = loss_mse_weight

    def forward(self, feats: Tensor) -> Tensor:
        """(B, in_channels, h, w) -> logits (B, C, h*upsample, w*upsample)."""
        if feats.dim() != 4 or feats.shape[1] != self.in_channels:
            raise ValueError(
                'PixelAffordanceHead: expected feats '
                f'(B, {self.in_channels}, h, w), got {tuple(feats.shape)}; set '
                'in_channels to the backbone output channels.')
        x = self.conv_in(feats)
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode='bilinear',
                              align_corners=self.align_corners)
        return self.conv_seg(self.conv_up(x))

    def loss(self, logits: Tensor, labels: Tensor, pseudo_mask: Tensor,
             valid: Tensor) -> Dict[str, Tensor]:
        """Dice + MSE of the labelled class against the pseudo-mask.

        Args:
            logits (Tensor): Output of :meth:`forward`, (B, C, H', W').
            labels (Tensor): Affordance labels (B,).
            pseudo_mask (Tensor): Pseudo-masks (B, h, w) in [0, 1], resized
                bilinearly to (H', W').
            valid (Tensor): (B,) bool; only valid samples count. With no valid
                sample both losses are exact zeros that keep the graph.

        Returns:
            dict[str, Tensor]: ``loss_pixel_dice`` and ``loss_pixel_mse``.
        """
        num = logits.shape[0]
        if (pseudo_mask.dim() != 3 or pseudo_mask.shape[0] != num
                or valid.shape != (num, )):
            raise ValueError(
                'PixelAffordanceHead.loss: expected pseudo_mask (B, h, w) and '
                f'valid (B,) for logits {tuple(logits.shape)}, got '
                f'{tuple(pseudo_mask.shape)} and {tuple(valid.shape)}.')
        prob = select_class_maps(logits, labels).sigmoid()
        # Invalid samples get an all-zero target so that garbage in their
        # pseudo-mask can never reach the (zero-weighted) loss.
        target = pseudo_mask.to(prob.dtype).masked_fill(
            ~valid.bool()[:, None, None], 0.)
        target = F.interpolate(target[:, None], size=prob.shape[1:],
                               mode='bilinear',
                               align_corners=self.align_corners)[:, 0]
        mse = (prob - target).pow(2).flatten(1).mean(1)
        return dict(
            loss_pixel_dice=self.loss_dice(prob, target, weight=valid),
            loss_pixel_mse=self.loss_mse_weight *
            weighted_sample_mean(mse, valid))
