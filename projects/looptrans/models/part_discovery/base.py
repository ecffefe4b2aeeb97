# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""The part-discovery interface: what an algorithm receives, what it returns, and the statistics it logs.

Part discovery turns the frozen descriptors of the egocentric images and the CAM of each image's labelled
affordance into one pseudo-mask per image, the target of the pixel head. An algorithm is one class:
subclass :class:`BasePartDiscovery`, implement :meth:`BasePartDiscovery.discover`, register it in
``mmseg.registry.MODELS`` and name it in ``model.part_discovery`` (``docs/contributing.md``, recipe C).
"""

from __future__ import annotations

import dataclasses
from abc import ABCMeta, abstractmethod
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

#: The data-sample field that carries a pseudo-mask to the pixel head, as mmseg carries ``gt_sem_seg``:
#: ``PixelData(data=(1, h, w) float in {0, 1})`` on the descriptor grid, only on samples with a valid one.
PSEUDO_MASK_FIELD = 'gt_pseudo_mask'


def pseudo_mask_iou(pseudo_mask: Tensor, truth: Tensor) -> Tensor:
    """IoU (B,) of pseudo-masks (B, h, w) on the descriptor grid with true part masks (B, H, W) at the
    input size: the pseudo-mask is brought to (H, W) by nearest neighbour (how the pixel head's targets
    look at full resolution). Used by the ``pm_true_iou`` training log and ``eval_pseudo_masks.py``."""
    size = tuple(truth.shape[-2:])
    mask = F.interpolate(pseudo_mask[:, None].float(), size=size, mode='nearest')[:, 0] > 0.5
    truth = truth.bool()
    inter = (mask & truth).flatten(1).sum(1).float()
    union = (mask | truth).flatten(1).sum(1).float().clamp(min=1)
    return inter / union


@dataclasses.dataclass
class PartDiscoveryResult:
    """What a part-discovery algorithm returns for a batch of ``B`` egocentric images on an (h, w) grid.

    Required:
        pseudo_mask: (B, h, w) float in {0, 1}, all zeros where ``valid`` is False: the pixel head's target.
        valid: (B,) bool, the images that have a pseudo-mask (the others get no pixel loss).

    Optional (None when the algorithm has no such notion):
        ious: (B, K) float, IoU of each candidate part with the binarised CAM (logged as ``pm_iou``).
        assign: (B, h*w) long, the part of every descriptor.
        part: (B,) long, the selected part.
        part_score: (B, K) float, a per-part score (LOCATE's saliency score for ``'saliency'``).
        num_parts: (B,) long, the K chosen per image (logged as ``pm_num_parts``).
        cam: (B, h, w) the CAM the parts were matched against (filled by :class:`BasePartDiscovery`; the
            pseudo-mask pictures of :class:`~looptrans.engine.hooks.PseudoMaskHook` draw it).

    The fields that are set can also be read by name (``result['pseudo_mask']``, ``keys()``, iteration), as the
    dict this class replaced.
    """

    pseudo_mask: Tensor
    valid: Tensor
    ious: Optional[Tensor] = None
    assign: Optional[Tensor] = None
    part: Optional[Tensor] = None
    part_score: Optional[Tensor] = None
    num_parts: Optional[Tensor] = None
    cam: Optional[Tensor] = None

    def __post_init__(self) -> None:
        num = self.pseudo_mask.shape[0] if self.pseudo_mask.dim() == 3 else -1
        if num < 0 or tuple(self.valid.shape) != (num,) or self.valid.dtype != torch.bool:
            raise ValueError(
                'PartDiscoveryResult: pseudo_mask must be (B, h, w) and valid (B,) bool, got '
                f'{tuple(self.pseudo_mask.shape)} and {tuple(self.valid.shape)} {self.valid.dtype}; '
                'check the discover() of the part-discovery class.'
            )
        for name in ('ious', 'assign', 'part', 'part_score', 'num_parts', 'cam'):
            value = getattr(self, name)
            if value is not None and value.shape[0] != num:
                raise ValueError(
                    f'PartDiscoveryResult: {name} has {value.shape[0]} rows for {num} images '
                    f'(shape {tuple(value.shape)}); every field is batched over the images.'
                )

    # ------------------------------------------------------------------ access
    def __getitem__(self, key: str) -> Tensor:
        """``result[name]``: the field ``name``; KeyError for an unknown or absent (None) field."""
        value = getattr(self, key, None) if key in self.keys() else None
        if value is None:
            raise KeyError(f'PartDiscoveryResult has no {key!r}; it has {self.keys()}')
        return value

    def keys(self) -> List[str]:
        """The names of the fields that are set (not None)."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    # ------------------------------------------------------------------ statistics
    def statistics(
        self, data_samples: Optional[Sequence] = None, input_size: Optional[Tuple[int, int]] = None
    ) -> Dict[str, Tensor]:
        """Pseudo-mask statistics logged in training (``pm_*``: logged, not optimised).

        ``pm_valid`` (share of images with a pseudo-mask), ``pm_area`` (its mean area share over the valid
        images), ``pm_iou`` (mean best part IoU with the CAM mask, with ``ious``), ``pm_num_parts`` (mean K,
        with ``num_parts``) and, with ``data_samples`` of which some carry a true part mask (``gt_sem_seg``,
        on generated data) at ``input_size``, ``pm_true_iou`` (:meth:`true_part_iou`).
        """
        valid = self.valid.float()
        stats = dict(
            pm_valid=valid.mean(),
            pm_area=self.pseudo_mask.flatten(1).mean(1).mul(valid).sum() / valid.sum().clamp(min=1),
        )
        if self.ious is not None:
            stats['pm_iou'] = self.ious.max(dim=1).values.mean()
        if self.num_parts is not None:
            stats['pm_num_parts'] = self.num_parts.float().mean()
        if data_samples is not None:
            stats.update(self.true_part_iou(data_samples, input_size))
        return stats

    def true_part_iou(self, data_samples: Sequence, input_size: Optional[Tuple[int, int]]) -> Dict[str, Tensor]:
        """``pm_true_iou``: mean IoU of the valid pseudo-masks with the true affordance part, over the samples
        that carry one (``gt_sem_seg``, the ego part mask of :class:`~looptrans.datasets.LoadEgoPartMask`, on
        generated data); nothing when none does. The pseudo-mask is brought to the input size by nearest
        neighbour (:func:`pseudo_mask_iou`), as ``tools/analysis_tools/eval_pseudo_masks.py`` does."""
        has = [i for i, s in enumerate(data_samples) if 'gt_sem_seg' in s and bool(self.valid[i])]
        if not has:
            return {}
        device = self.pseudo_mask.device
        truth = torch.stack([data_samples[i].gt_sem_seg.data[0] for i in has]).to(device) > 0
        if input_size is not None and tuple(truth.shape[-2:]) != tuple(input_size):
            raise ValueError(
                f'gt_sem_seg (true part mask) is {tuple(truth.shape[-2:])}, the inputs {tuple(input_size)}: '
                'load it with LoadEgoPartMask inside MultiViewTransform so it follows the ego image.'
            )
        index = torch.as_tensor(has, device=device)
        return dict(pm_true_iou=pseudo_mask_iou(self.pseudo_mask[index], truth).mean())

    # ------------------------------------------------------------------ hand-over to the pixel head
    def to_data_samples(self, data_samples: Sequence) -> None:
        """Write each valid pseudo-mask into its data sample as ``gt_pseudo_mask`` (``PixelData`` (1, h, w)),
        and remove the field from the samples without one: the contract of
        :meth:`~looptrans.models.heads.PixelAffordanceHead.loss_by_feat`."""
        if len(data_samples) != self.valid.shape[0]:
            raise ValueError(f'{len(data_samples)} data samples for {self.valid.shape[0]} pseudo-masks.')
        for sample, mask, valid in zip(data_samples, self.pseudo_mask, self.valid.tolist()):
            if valid:
                sample.set_data({PSEUDO_MASK_FIELD: PixelData(data=mask[None])})
            elif PSEUDO_MASK_FIELD in sample:
                delattr(sample, PSEUDO_MASK_FIELD)


def check_discovery_inputs(desc: Tensor, cam: Tensor) -> None:
    """Refuse descriptors and CAM that do not describe the same (B, h*w) grid, naming the fix."""
    if (
        desc.dim() != 3
        or cam.dim() != 3
        or desc.shape[0] != cam.shape[0]
        or desc.shape[1] != cam.shape[1] * cam.shape[2]
    ):
        raise ValueError(
            'PartDiscovery: expected desc (B, h*w, D) and cam (B, h, w), '
            f'got {tuple(desc.shape)} and {tuple(cam.shape)}; resize the '
            'CAM to the descriptor grid.'
        )


class BasePartDiscovery(nn.Module, metaclass=ABCMeta):
    """Base class of part-discovery algorithms (``model.part_discovery``).

    The segmentor calls ``part_discovery(desc, cam, cls_attn=cls_attn)`` once per training step with pixel
    supervision on; :meth:`forward` checks the shapes, runs :meth:`discover` without gradient (pseudo-masks
    are targets) and records the CAM in the result. A new algorithm implements :meth:`discover` only.

    Inputs (from :meth:`LoopTrans.part_descriptors <looptrans.models.segmentors.LoopTrans.part_descriptors>`):

    - ``desc`` (B, h*w, D): frozen descriptors of the ego images (the DINO ViT's last-block keys), row-major;
    - ``cam`` (B, h, w): the ego CAM of each image's labelled affordance, resized to the descriptor grid;
    - ``cls_attn`` (B, heads, h, w) or None: the descriptor ViT's CLS attention (a saliency prior; an
      algorithm may ignore it);
    - ``generator``: for algorithms that draw random numbers (reproducible runs).
    """

    @torch.no_grad()
    def forward(
        self, desc: Tensor, cam: Tensor, generator: Optional[torch.Generator] = None, cls_attn: Optional[Tensor] = None
    ) -> PartDiscoveryResult:
        """:meth:`discover` on checked inputs, without gradient; the result's ``cam`` is ``cam``."""
        check_discovery_inputs(desc, cam)
        result = self.discover(desc, cam, generator=generator, cls_attn=cls_attn)
        if not isinstance(result, PartDiscoveryResult):
            raise TypeError(
                f'{type(self).__name__}.discover must return a PartDiscoveryResult, got {type(result).__name__}.'
            )
        if tuple(result.pseudo_mask.shape) != tuple(cam.shape):
            raise ValueError(
                f'{type(self).__name__}.discover returned pseudo_mask {tuple(result.pseudo_mask.shape)} for the '
                f'(B, h, w) = {tuple(cam.shape)} grid of the CAM.'
            )
        if result.cam is None:
            result.cam = cam
        return result

    @abstractmethod
    def discover(
        self, desc: Tensor, cam: Tensor, generator: Optional[torch.Generator] = None, cls_attn: Optional[Tensor] = None
    ) -> PartDiscoveryResult:
        """The pseudo-masks of a batch; see the class docstring for the inputs."""
