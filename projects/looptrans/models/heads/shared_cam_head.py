# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Class activation map head shared by the exocentric and egocentric views."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig

VIEWS = ('exo', 'ego')


class TokenMLP(nn.Module):
    """Residual per-token MLP: ``x + fc2(GELU(fc1(LayerNorm(x))))`` on (N, C, h, w) maps.

    LOCATE's ``aff_proj`` (an ``Mlp`` that normalises first) added to its input, as LOCATE does
    (``desc + aff_proj(desc)``).

    Args:
        channels (int): Input and output channels.
        mlp_ratio (int): Hidden width as a multiple of ``channels``.
    """

    def __init__(self, channels: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, channels * mlp_ratio)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(channels * mlp_ratio, channels)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, h, w) -> (N, C, h, w)."""
        tokens = x.permute(0, 2, 3, 1)
        tokens = tokens + self.fc2(self.act(self.fc1(self.norm(tokens))))
        return tokens.permute(0, 3, 1, 2)


@MODELS.register_module()
class SharedCAMHead(BaseModule):
    """LOCATE-style affordance CAM branch, shared by both views (LoopTrans).

    ``feats -> TokenMLP -> 2 x (conv3x3-BN-ReLU) = embed -> conv1x1 = CAMs``.

    With ``shared=True`` one projection (the conv stack) serves the exo and
    the ego view: the paper's *shared CAM*, which lets clean object-centric
    ego images steer the exo activations. With ``shared=False`` each view has
    its own projection (LOCATE, the "no shared CAM" ablation); the token MLP
    and the classifier are common to both views in either mode, as in LOCATE.

    Args:
        in_channels (int): Channels of the input features. Default: 384.
        channels (int): Channels of the embedding. Default: 384.
        num_classes (int): Number of affordance classes C.
        shared (bool): One projection for both views. Default: True.
        mlp_ratio (int): Hidden width of the token MLP. Default: 4.
        cls_views (Sequence[str]): Views whose image-level classification
            loss is returned by :meth:`loss`. Default: ('exo', 'ego').
        loss_cls (dict): Classification loss config.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs of the projection.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 384,
                 channels: int = 384,
                 shared: bool = True,
                 mlp_ratio: int = 4,
                 cls_views: Sequence[str] = VIEWS,
                 loss_cls: ConfigType = dict(
                     type='mmseg.CrossEntropyLoss',
                     loss_weight=1.0,
                     avg_non_ignore=True),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', std=0.01, override=dict(name='conv_cls'))
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        unknown = set(cls_views) - set(VIEWS)
        if unknown or not cls_views:
            raise ValueError(f'SharedCAMHead: cls_views must be a non-empty '
                             f'subset of {VIEWS}, got {tuple(cls_views)}.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.channels = channels
        self.shared = shared
        self.cls_views = tuple(cls_views)

        self.token_mlp = TokenMLP(in_channels, mlp_ratio)
        branches = ('shared', ) if shared else VIEWS
        self.projs = nn.ModuleDict({
            name: nn.Sequential(
                ConvModule(in_channels, channels, 3, padding=1,
                           conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
                ConvModule(channels, channels, 3, padding=1,
                           conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                           act_cfg=act_cfg))
            for name in branches
        })
        self.conv_cls = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.loss_cls = MODELS.build(loss_cls)

    def forward(self, feats: Tensor, view: str = 'exo') -> Tuple[Tensor, Tensor]:
        """Compute class activation maps.

        Args:
            feats (Tensor): Backbone features (N, in_channels, h, w).
            view (str): 'exo' or 'ego'; selects the projection when
                ``shared=False`` and is ignored otherwise.

        Returns:
            tuple[Tensor, Tensor]: CAMs (N, C, h, w) and the embedding
            (N, channels, h, w) they are computed from.
        """
        if view not in VIEWS:
            raise ValueError(
                f"SharedCAMHead: view must be 'exo' or 'ego', got {view!r}.")
        if feats.dim() != 4 or feats.shape[1] != self.in_channels:
            raise ValueError(
                f'SharedCAMHead: expected feats (N, {self.in_channels}, h, w), '
                f'got {tuple(feats.shape)}; set in_channels to the backbone '
                'output channels.')
        proj = self.projs['shared' if self.shared else view]
        embed = proj(self.token_mlp(feats))
        return self.conv_cls(embed), embed

    def forward_views(self, exo_feats: Tensor, ego_feats: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """CAMs and embeddings of both views in one training step.

        With ``shared=True`` the projection runs **once** on the exo and ego features together, so its
        BatchNorm layers normalise both views with the statistics of the joint batch, and their running
        statistics estimate exactly those statistics. Running it once per view (as two calls of
        :meth:`forward` would) normalises each view with its own batch statistics in training, while the
        running statistics become a blend of the two that no test-time input matches. One BN for both
        views is the literal reading of "one set of parameters" for the shared CAM, and one pass is
        cheaper. With ``shared=False`` each view goes through its own projection (and its own BN).

        Args:
            exo_feats (Tensor): Exo features (B*V, in_channels, h, w).
            ego_feats (Tensor): Ego features (B, in_channels, h, w).

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: exo CAMs, exo embedding, ego CAMs, ego embedding.
        """
        if not self.shared:
            return (*self(exo_feats, view='exo'), *self(ego_feats, view='ego'))
        cams, embed = self(torch.cat([exo_feats, ego_feats]), view='exo')
        num_exo = exo_feats.shape[0]
        return cams[:num_exo], embed[:num_exo], cams[num_exo:], embed[num_exo:]

    @staticmethod
    def logits(cams: Tensor) -> Tensor:
        """Image-level logits (N, C) by global average pooling of CAMs."""
        return cams.mean(dim=(2, 3))

    def loss(self, exo_logits: Tensor, ego_logits: Optional[Tensor],
             labels: Tensor) -> Dict[str, Tensor]:
        """Image-level classification losses.

        Args:
            exo_logits (Tensor): (B*V, C), exo views laid out as (B, V)
                flattened, i.e. the V views of sample 0 first.
            ego_logits (Tensor, optional): (B, C); may be None when 'ego' is
                not in ``cls_views``.
            labels (Tensor): Affordance labels (B,).

        Returns:
            dict[str, Tensor]: ``loss_cls_exo`` and/or ``loss_cls_ego``
            according to ``cls_views``.
        """
        num = labels.shape[0]
        if labels.dim() != 1 or num == 0 or exo_logits.shape[0] % num:
            raise ValueError(
                f'SharedCAMHead.loss: exo_logits {tuple(exo_logits.shape)} '
                f'must be (B*V, C) for labels (B,) = {tuple(labels.shape)}.')
        num_views = exo_logits.shape[0] // num
        losses = dict()
        if 'exo' in self.cls_views:
            losses['loss_cls_exo'] = self.loss_cls(
                exo_logits, labels.repeat_interleave(num_views))
        if 'ego' in self.cls_views:
            if ego_logits is None or ego_logits.shape[0] != num:
                raise ValueError(
                    'SharedCAMHead.loss: ego_logits (B, C) is required when '
                    f"'ego' is in cls_views; got "
                    f'{None if ego_logits is None else tuple(ego_logits.shape)}'
                    f' for B={num}.')
            losses['loss_cls_ego'] = self.loss_cls(ego_logits, labels)
        return losses
