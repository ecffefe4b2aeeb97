# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Pixel-level affordance decoder trained on part-level pseudo-masks."""

from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import MultiConfig, OptConfigType, SampleList
from torch import Tensor, nn

from ..part_discovery.base import PSEUDO_MASK_FIELD
from .utils import labels_of, losses_by_name, select_class_maps, select_head_inputs, without_override


@MODELS.register_module()
class PixelAffordanceHead(BaseDecodeHead):
    """Decode ego features into per-class affordance logits (LoopTrans).

    ``conv3x3-BN-ReLU -> bilinear x upsample -> conv3x3-BN-ReLU -> conv_seg (1x1)``.
    It turns coarse CAM activations into part-complete localisations: the labelled class's map is
    supervised by the DINO part selected by the CAM (:class:`PartDiscovery`) with the losses of
    ``loss_decode``: the paper's dice + MSE, as ``mmseg.DiceLoss`` (``naive_dice=True, eps=1``: the soft
    dice ``1 - (2 Σ p m + 1) / (Σ p + Σ m + 1)`` on the sigmoid of the logits) and :class:`MapMSELoss`.
    Only samples with a valid pseudo-mask count (per-sample weight, averaged over the valid ones).

    mmseg's decode-head contract: ``forward(inputs)`` gives the logits, ``loss(inputs, batch_data_samples,
    train_cfg)`` is ``forward`` then :meth:`loss_by_feat`, whose targets are carried in the data samples as
    mmseg carries ``gt_sem_seg`` (``gt_label`` in the metainfo, the pseudo-mask in ``gt_pseudo_mask``), and
    ``predict(inputs, batch_img_metas, test_cfg)`` gives the logits resized to ``img_shape``.

    Args:
        num_classes (int): Number of affordance classes C.
        in_channels (int | Sequence[int]): Channels of the input features. Default: 384.
        channels (int): Channels of the hidden layers. Default: 256.
        upsample (int): Integer upsampling factor of the grid. Default: 2.
        loss_decode (dict | Sequence[dict]): Pixel losses, each called as
            ``loss(logits, target, weight=valid, avg_factor=num_valid)`` on the labelled class's logits
            (B, 1, H', W') and the pseudo-mask resized to them.
        dropout_ratio (float): Dropout before ``conv_seg``. Default: 0.
        norm_cfg (dict): Norm layers. Default: BN.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``in_index``, ``input_transform``,
            ``align_corners``, ``conv_cfg``, ``act_cfg``, ``init_cfg``).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: Union[int, Sequence[int]] = 384,
        channels: int = 256,
        upsample: int = 2,
        loss_decode: MultiConfig = (
            dict(
                type='mmseg.DiceLoss',
                use_sigmoid=True,
                activate=True,
                naive_dice=True,
                eps=1.0,
                ignore_index=None,
                loss_weight=1.0,
                loss_name='loss_pixel_dice',
            ),
            dict(type='MapMSELoss', use_sigmoid=True, loss_weight=1.0, loss_name='loss_pixel_mse'),
        ),
        dropout_ratio: float = 0.0,
        norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
        **kwargs,
    ) -> None:
        super().__init__(
            in_channels,
            channels,
            num_classes=num_classes,
            dropout_ratio=dropout_ratio,
            norm_cfg=norm_cfg,
            loss_decode=list(loss_decode) if isinstance(loss_decode, tuple) else loss_decode,
            **kwargs,
        )
        if int(upsample) != upsample or upsample < 1:
            raise ValueError(f'PixelAffordanceHead: upsample must be an integer >= 1, got {upsample}.')
        self.upsample = int(upsample)
        layer = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.conv_in = ConvModule(self.in_channels, channels, 3, padding=1, **layer)
        self.conv_up = ConvModule(channels, channels, 3, padding=1, **layer)
        #: another head's classifier used in place of ``conv_seg`` (:meth:`use_classifier`); held in a tuple so
        #: that it is not registered here: its parameters stay one entry of its owner's (and of the optimiser's).
        self._borrowed_classifier: Tuple[nn.Conv2d, ...] = ()

    def use_classifier(self, classifier: nn.Conv2d, num_extra: int = 0) -> None:
        """End in ``classifier`` (another head's 1x1 conv, e.g. the CAM head's ``conv_seg``) instead of an own one.

        The published LoopTrans code's pixel decoder ends in the classifier ``aff_fc`` that also makes the CAMs,
        so one set of class weights scores both. The own ``conv_seg`` is removed (its checkpoint keys go with
        it); the borrowed one is not registered as a submodule, so it is built, initialised, saved and optimised
        once, by its owner. ``num_extra`` outputs follow the C class maps in the borrowed classifier (the CAM
        head's noise outputs, ``SharedCAMHead(num_noise=...)``): :meth:`forward_all` gives them,
        :meth:`forward` does not.
        """
        if not isinstance(classifier, nn.Conv2d) or classifier.kernel_size != (1, 1):
            raise ValueError(f'PixelAffordanceHead.use_classifier: expected a 1x1 nn.Conv2d, got {classifier!r}.')
        needed = (self.channels, self.out_channels + num_extra)
        if (classifier.in_channels, classifier.out_channels) != needed:
            raise ValueError(
                f'PixelAffordanceHead.use_classifier: the classifier maps {classifier.in_channels} -> '
                f'{classifier.out_channels} channels, this head needs {needed[0]} -> {needed[1]} '
                f'({self.out_channels} classes + {num_extra} extra outputs); give the pixel head the CAM head\'s '
                'channels and num_classes.'
            )
        if hasattr(self, 'conv_seg'):
            del self.conv_seg
        self.init_cfg = without_override(self.init_cfg, 'conv_seg')  # the owner initialises it
        self._borrowed_classifier = (classifier,)

    @property
    def classifier(self) -> nn.Conv2d:
        """The 1x1 conv that scores this head's classes: its own ``conv_seg``, or the one of :meth:`use_classifier`."""
        return self._borrowed_classifier[0] if self._borrowed_classifier else self.conv_seg

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Classify each location (mmseg's ``cls_seg``: dropout, then :attr:`classifier`; all its outputs)."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.classifier(feat)

    def forward_all(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Every output of the classifier (B, C + extra, h*up, w*up): the class logits, then the extra outputs of a
        borrowed classifier (:meth:`use_classifier`), which the published LoopTrans code's correlation and
        concentration losses read; the same as :meth:`forward` with an own classifier."""
        feats = select_head_inputs(self, inputs)
        x = self.conv_in(feats)
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode='bilinear', align_corners=self.align_corners)
        return self.cls_seg(self.conv_up(x))

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Backbone outputs (or one (B, in_channels, h, w) tensor) -> logits (B, C, h*up, w*up) of the C classes."""
        return self.forward_all(inputs)[:, : self.out_channels]

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of each sample's labelled-class logits against its pseudo-mask (mmseg's contract).

        Args:
            seg_logits (Tensor): Output of :meth:`forward`, (B, C, H', W'), or of :meth:`forward_all`.
            batch_data_samples (list[SegDataSample]): The label of each sample is its ``metainfo['gt_label']``;
                its pseudo-mask the field ``gt_pseudo_mask`` (``PixelData`` (1, h, w) in [0, 1], written by
                :meth:`PartDiscoveryResult.to_data_samples
                <looptrans.models.part_discovery.PartDiscoveryResult.to_data_samples>`), resized bilinearly to
                (H', W'). Samples without one get no loss (weight 0); with none at all every loss is an exact
                zero that keeps the graph (pixel supervision off, or no valid pseudo-mask in the batch).

        Returns:
            dict[str, Tensor]: one item per ``loss_name`` of ``loss_decode``.
        """
        num = seg_logits.shape[0]
        if len(batch_data_samples) != num:
            raise ValueError(
                f'PixelAffordanceHead.loss_by_feat: {len(batch_data_samples)} data samples for logits '
                f'{tuple(seg_logits.shape)}.'
            )
        labels = labels_of(batch_data_samples, seg_logits.device)
        logits = select_class_maps(seg_logits, labels)[:, None]  # (B, 1, H', W')
        pseudo_mask, valid = self._stack_pseudo_masks(batch_data_samples, logits)
        target = F.interpolate(
            pseudo_mask[:, None], size=logits.shape[2:], mode='bilinear', align_corners=self.align_corners
        )
        weight = valid.to(logits.dtype)
        return losses_by_name(self.loss_decode, logits, target, weight=weight, avg_factor=weight.sum())

    @staticmethod
    def _stack_pseudo_masks(batch_data_samples: SampleList, logits: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, h, w) pseudo-masks (zeros for the samples without one, so that nothing of theirs can reach the
        zero-weighted loss) and (B,) bool: which samples carry one."""
        valid = torch.tensor([PSEUDO_MASK_FIELD in s for s in batch_data_samples], device=logits.device)
        masks = [s.get(PSEUDO_MASK_FIELD).data for s in batch_data_samples if PSEUDO_MASK_FIELD in s]
        if not masks:
            return logits.new_zeros(logits.shape[0], *logits.shape[2:]), valid
        if any(m.dim() != 3 or m.shape[0] != 1 or m.shape != masks[0].shape for m in masks):
            raise ValueError(
                f'PixelAffordanceHead: every {PSEUDO_MASK_FIELD} of a batch must be PixelData (1, h, w) on one grid, '
                f'got {[tuple(m.shape) for m in masks]}.'
            )
        stacked = logits.new_zeros(logits.shape[0], *masks[0].shape[1:])
        stacked[valid] = torch.cat(masks).to(device=logits.device, dtype=logits.dtype)
        return stacked, valid
