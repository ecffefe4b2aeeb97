# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Class activation map head shared by the exocentric and egocentric views."""

import dataclasses
import functools
import itertools
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import MultiConfig, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .utils import labels_of, losses_by_name, select_head_inputs

VIEWS = ('exo', 'ego')
#: Layers that :meth:`SharedCAMHead.init_weights` resets to PyTorch's default initialisation: LOCATE builds
#: this branch (``aff_proj``, ``aff_exo_proj`` / ``aff_ego_proj``, ``aff_fc``) from plain ``torch.nn`` layers,
#: whereas mmcv's ``ConvModule`` draws its convs Kaiming-normal fan-out (2.5x the default scale) and mmseg's
#: ``BaseDecodeHead`` draws ``conv_seg`` from N(0, 0.01) (a third of the default).
LOCATE_INIT_LAYERS = ['Conv2d', 'Linear', 'LayerNorm', '_BatchNorm']


@dataclasses.dataclass
class ViewCAMs:
    """The shared CAM head's output for both views of a training batch (:meth:`SharedCAMHead.forward_views`).

    ``exo_cams`` (B*V, C + M, h, w) and ``exo_embed`` (B*V, channels, h, w), the V views of sample 0 first;
    ``ego_cams`` (B, C + M, h, w) and ``ego_embed`` (B, channels, h, w). It unpacks as these four. The maps are
    the classifier's whole output: the C class maps, then the ``num_noise`` = M noise maps of a classifier with
    noise outputs (:class:`SharedCAMHead` ``num_noise``; M = 0 otherwise). The image-level logits
    :attr:`exo_logits` / :attr:`ego_logits` (of all C + M outputs) are computed once and shared by every loss that
    reads them.
    """

    exo_cams: Optional[Tensor]
    exo_embed: Optional[Tensor]
    ego_cams: Optional[Tensor]
    ego_embed: Optional[Tensor]
    num_noise: int = 0

    def __iter__(self) -> Iterator[Optional[Tensor]]:
        return iter((self.exo_cams, self.exo_embed, self.ego_cams, self.ego_embed))

    @functools.cached_property
    def exo_logits(self) -> Tensor:
        """(B*V, C): the global average of the exo CAMs."""
        return SharedCAMHead.logits(self.exo_cams)

    @functools.cached_property
    def ego_logits(self) -> Tensor:
        """(B, C): the global average of the ego CAMs."""
        return SharedCAMHead.logits(self.ego_cams)

    def logits(self, view: str) -> Tensor:
        """The image-level logits of ``view`` (``'exo'`` or ``'ego'``)."""
        return self.exo_logits if view == 'exo' else self.ego_logits

    @property
    def exo_noise(self) -> Tensor:
        """(B*V, M, h, w): the noise maps of the exo views, the classifier's last ``num_noise`` outputs."""
        if not self.num_noise:
            raise ValueError(
                'ViewCAMs.exo_noise: the CAM head\'s classifier has no noise outputs (num_noise=0); give it '
                'num_noise > 0 (LoopTrans noise_on_cam_head=True), or let the noise head make its own maps.'
            )
        return self.exo_cams[:, -self.num_noise :]


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
class SharedCAMHead(BaseDecodeHead):
    """LOCATE-style affordance CAM branch, shared by both views (LoopTrans).

    ``feats -> TokenMLP -> 2 x (conv3x3-BN-ReLU) = embed -> conv_seg (1x1) = CAMs``.

    With ``num_noise`` = M > 0 the classifier ``conv_seg`` has C + M outputs, as the published LoopTrans code's
    ``aff_fc`` (C + 15): the last M are noise maps, which the noise head reads (:class:`NoiseHead` with
    ``maps_from_cam_head=True``) and which take part, as M more outputs, in the image-level cross-entropy of
    both views and in every loss on the training maps (:class:`ViewCAMs`). Only the C class maps leave the head
    at inference (:meth:`forward`), so inference, export and every class-count check see C classes.

    An mmseg decode head: ``in_channels`` / ``in_index`` / ``input_transform`` select and merge the
    backbone's feature levels (e.g. ``input_transform='resize_concat'`` for a ResNet or Swin), the CAM
    classifier is ``conv_seg`` and the image-level classification loss is built from ``loss_decode``.
    The image-level logits are the global average of the CAMs (LOCATE, Cross-View-AG).

    mmseg's decode-head contract holds for one view, the egocentric one: ``forward(inputs)`` gives its CAMs
    (N, C, h, w), ``loss(inputs, batch_data_samples, train_cfg)`` is ``forward`` then :meth:`loss_by_feat`
    (the image-level loss of each sample's ``gt_label``), ``predict(inputs, batch_img_metas, test_cfg)`` the
    CAMs resized to ``img_shape``. The closed loop trains both views at once: :meth:`forward_views` gives
    :class:`ViewCAMs`, which :meth:`loss_by_feat` also takes.

    With ``shared=True`` one projection (the conv stack) serves the exo and the ego view: the paper's
    *shared CAM*, which lets clean object-centric ego images steer the exo activations. With
    ``shared=False`` each view has its own projection (LOCATE; an ablation row); the token MLP and the
    classifier are common to both views in either mode, as in LOCATE.

    Args:
        in_channels (int | Sequence[int]): Channels of the input features (a sequence with
            ``input_transform``). Default: 384.
        channels (int): Channels of the embedding. Default: 384.
        num_classes (int): Number of affordance classes C.
        shared (bool): One projection for both views. Default: True.
        joint_norm (bool): With ``shared=True``, run the projection once on both views together, so that its
            BatchNorm layers normalise them with the joint batch's statistics (True), or once per view, as the
            published LoopTrans code calls its ``scam`` (False); see :meth:`forward_views`. Default: True.
        mlp_ratio (int): Hidden width of the token MLP. Default: 4.
        cls_views (Sequence[str]): Views whose image-level classification loss is returned by
            :meth:`loss_by_feat`. Default: ('exo', 'ego').
        loss_decode (dict | Sequence[dict]): Image-level classification loss(es); each item of the loss
            dict is ``<loss_name>_<view>``. Default: cross-entropy named ``loss_cls``.
        dropout_ratio (float): Dropout before ``conv_seg``. Default: 0 (LOCATE has none).
        norm_cfg (dict): Norm layers of the projection. Default: BN.
        init_cfg (dict | list[dict]): Initialisation. Default: PyTorch's default initialisation of every
            conv, linear and norm layer (``TorchDefault`` on :data:`LOCATE_INIT_LAYERS`), as LOCATE's
            ``nn.Conv2d`` / ``nn.Linear`` layers get; mmseg's ``BaseDecodeHead`` default (``conv_seg`` from
            N(0, 0.01), the convs as ``ConvModule`` draws them) is
            ``dict(type='Normal', std=0.01, override=dict(name='conv_seg'))``.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``in_index``, ``input_transform``,
            ``align_corners``, ``conv_cfg``, ``act_cfg``).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: Union[int, Sequence[int]] = 384,
        channels: int = 384,
        num_noise: int = 0,
        shared: bool = True,
        joint_norm: bool = True,
        mlp_ratio: int = 4,
        cls_views: Sequence[str] = VIEWS,
        loss_decode: MultiConfig = dict(
            type='mmseg.CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0, loss_name='loss_cls'
        ),
        dropout_ratio: float = 0.0,
        norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
        init_cfg: OptMultiConfig = dict(type='mmseg.TorchDefault', layer=LOCATE_INIT_LAYERS),
        **kwargs,
    ) -> None:
        super().__init__(
            in_channels,
            channels,
            num_classes=num_classes,
            dropout_ratio=dropout_ratio,
            norm_cfg=norm_cfg,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs,
        )
        unknown = set(cls_views) - set(VIEWS)
        if unknown or not cls_views:
            raise ValueError(f'SharedCAMHead: cls_views must be a non-empty subset of {VIEWS}, got {tuple(cls_views)}.')
        if int(num_noise) != num_noise or num_noise < 0:
            raise ValueError(f'SharedCAMHead: num_noise must be an integer >= 0, got {num_noise!r}.')
        self.num_noise = int(num_noise)
        if self.num_noise:  # the classifier of C + M outputs (BaseDecodeHead built it with C)
            self.conv_seg = nn.Conv2d(self.channels, self.out_channels + self.num_noise, kernel_size=1)
        self.shared = shared
        self.joint_norm = joint_norm
        self.cls_views = tuple(cls_views)
        self.token_mlp = TokenMLP(self.in_channels, mlp_ratio)
        branches = ('shared',) if shared else VIEWS
        self.projs = nn.ModuleDict({name: self._projection() for name in branches})

    def _projection(self) -> nn.Sequential:
        layer = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        return nn.Sequential(
            ConvModule(self.in_channels, self.channels, 3, padding=1, **layer),
            ConvModule(self.channels, self.channels, 3, padding=1, **layer),
        )

    def select_inputs(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """The head's input tensor (N, in_channels, h, w) from backbone outputs (``in_index`` and
        ``input_transform`` applied); a single tensor passes through."""
        return select_head_inputs(self, inputs)

    @torch.no_grad()
    def reestimate_norm_stats(self, features: Iterable[Union[Tensor, Sequence[Tensor]]], view: str = 'ego') -> int:
        """Re-estimate the running statistics of the BatchNorm layers of the projection ``view`` goes through (the
        one projection with ``shared=True``) from ``features``, one backbone output per batch of that view's
        images: reset, then the cumulative average over the batches (``momentum=None``, "precise BN"); no weight
        changes. The layers are left in eval mode with their momentum. Returns how many layers were re-estimated.

        Why: a shared projection run once per view in training (``joint_norm=False``, the published code's call)
        keeps running statistics that blend the exocentric and the egocentric batches, and at test time the
        egocentric CAM is normalised with that blend, which it never had in a training step. A ValueError names
        what is missing when the projection has no BatchNorm or ``features`` is empty (the statistics are then
        left as they were).
        """
        if view not in VIEWS:
            raise ValueError(f"SharedCAMHead: view must be 'exo' or 'ego', got {view!r}.")
        norms = [m for m in self.projs['shared' if self.shared else view].modules() if isinstance(m, _BatchNorm)]
        if not norms:
            raise ValueError('SharedCAMHead.reestimate_norm_stats: the projection has no BatchNorm (norm_cfg).')
        batches = iter(features)
        first = next(batches, None)
        if first is None:
            raise ValueError('SharedCAMHead.reestimate_norm_stats: no feature batches given; pass at least one.')
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        try:
            for feats in itertools.chain([first], batches):
                self.forward_embed(feats, view)
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
                m.eval()
        return len(norms)

    def forward_embed(self, inputs: Union[Tensor, Sequence[Tensor]], view: str = 'ego') -> Tuple[Tensor, Tensor]:
        """The classifier's maps (N, C + M, h, w: the CAMs, then the ``num_noise`` noise maps) and the embedding
        (N, channels, h, w) they come from, for one view.

        ``view`` selects the projection when ``shared=False`` and is ignored otherwise.
        """
        if view not in VIEWS:
            raise ValueError(f"SharedCAMHead: view must be 'exo' or 'ego', got {view!r}.")
        proj = self.projs['shared' if self.shared else view]
        embed = proj(self.token_mlp(self.select_inputs(inputs)))
        return self.cls_seg(embed), embed

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]], view: str = 'ego') -> Tensor:
        """CAMs (N, C, h, w) of one view (the egocentric one at test time); no noise maps."""
        return self.forward_embed(inputs, view)[0][:, : self.out_channels]

    def forward_views(
        self, exo_inputs: Union[Tensor, Sequence[Tensor]], ego_inputs: Union[Tensor, Sequence[Tensor]]
    ) -> ViewCAMs:
        """CAMs and embeddings of both views in one training step.

        With ``shared=True`` and ``joint_norm=True`` the projection runs **once** on the exo and ego features
        together, so its BatchNorm layers normalise both views with the statistics of the joint batch, and
        their running statistics estimate exactly those statistics; one pass is also cheaper. With
        ``joint_norm=False`` it runs once per view (exo, then ego), as the published LoopTrans code calls its
        shared ``scam``: each view is normalised with its own batch statistics in training, and the running
        statistics become a blend of the two. With ``shared=False`` each view goes through its own projection
        (and its own BN).

        Args:
            exo_inputs: Exo features (B*V, ...), the V views of sample 0 first.
            ego_inputs: Ego features (B, ...).

        Returns:
            ViewCAMs: exo CAMs, exo embedding, ego CAMs, ego embedding (it unpacks as these four); the CAMs with
            the noise maps of a classifier with ``num_noise`` outputs.
        """
        exo, ego = self.select_inputs(exo_inputs), self.select_inputs(ego_inputs)
        if not self.shared or not self.joint_norm:
            return ViewCAMs(*self.forward_embed(exo, 'exo'), *self.forward_embed(ego, 'ego'), self.num_noise)
        cams, embed = self.forward_embed(torch.cat([exo, ego]), 'exo')
        num_exo = exo.shape[0]
        return ViewCAMs(cams[:num_exo], embed[:num_exo], cams[num_exo:], embed[num_exo:], self.num_noise)

    @staticmethod
    def logits(cams: Tensor) -> Tensor:
        """Image-level logits (N, C) by global average pooling of CAMs."""
        return cams.mean(dim=(2, 3))

    def loss_by_feat(self, seg_logits: Union[ViewCAMs, Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Image-level classification losses of the views in ``cls_views`` (mmseg's ``loss_by_feat`` contract).

        Args:
            seg_logits: What the forward gave: :class:`ViewCAMs` of :meth:`forward_views` (training on both
                views; the exo CAMs (B*V, C, h, w) laid out as (B, V) flattened, the V views of sample 0
                first), or the ego CAMs (B, C, h, w) of :meth:`forward` (what the inherited :meth:`loss`
                passes; the ego view alone).
            batch_data_samples: The B data samples; the label of each is its ``metainfo['gt_label']``.

        Returns:
            dict[str, Tensor]: ``<loss_name>_exo`` and/or ``<loss_name>_ego`` per loss of ``loss_decode``
            (default ``loss_cls_exo``, ``loss_cls_ego``), computed on the global average of the maps: of the C + M
            outputs of a classifier with noise outputs in :class:`ViewCAMs` (the published LoopTrans code's
            cross-entropy), of the C CAMs that :meth:`forward` gives.
        """
        if isinstance(seg_logits, ViewCAMs):
            given, views = dict(exo=seg_logits.exo_cams, ego=seg_logits.ego_cams), self.cls_views
        else:
            seg_logits = ViewCAMs(None, None, seg_logits, None)
            given, views = dict(ego=seg_logits.ego_cams), tuple(v for v in self.cls_views if v == 'ego')
            if not views:
                raise ValueError(
                    f'SharedCAMHead.loss_by_feat: cls_views={self.cls_views} has no loss on the ego CAMs that '
                    'forward() gives; pass the ViewCAMs of forward_views.'
                )
        device = next(c for c in given.values() if c is not None).device
        labels = labels_of(batch_data_samples, device)
        num = labels.shape[0]
        inputs = dict()
        for view in (v for v in VIEWS if v in views):  # exo first, whatever the order of cls_views
            cams = given[view]
            if (
                cams is None
                or cams.dim() != 4
                or num == 0
                or cams.shape[0] % num
                or (view == 'ego' and cams.shape[0] != num)
            ):
                expected = '(B, C, h, w)' if view == 'ego' else '(B*V, C, h, w)'
                raise ValueError(
                    f'SharedCAMHead.loss_by_feat: {view} CAMs {expected} are required when {view!r} is in '
                    f'cls_views; got {None if cams is None else tuple(cams.shape)} for B={num} data samples.'
                )
            inputs[view] = (seg_logits.logits(view), labels.repeat_interleave(cams.shape[0] // num))
        losses = dict()
        for view, (logits, target) in inputs.items():
            for name, value in losses_by_name(self.loss_decode, logits, target).items():
                losses[f'{name}_{view}'] = value
        return losses
