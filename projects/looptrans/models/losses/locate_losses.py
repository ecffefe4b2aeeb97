# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""The two auxiliary losses of LOCATE (Li et al., "LOCATE: Localize and Transfer Object Parts for Weakly
Supervised Affordance Grounding", CVPR 2023), batched, for the :class:`~looptrans.models.segmentors.LOCATE`
baseline.

Published code: https://github.com/Reagan1311/LOCATE, ``models/locate.py`` (``Net.forward``) and
``models/model_util.py`` (``normalize_minmax``, ``concentration_loss`` and its helpers, from SCOPS).
``tests/test_locate_baseline.py`` checks both against a transcription of that code.
"""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.maps import minmax_normalize

#: eps of LOCATE's ``concentration_loss`` min-max normalisation (``tmp_max - tmp_min + 1e-10``).
CONCENTRATION_NORM_EPS = 1e-10
#: eps of LOCATE's ``normalize_minmax`` (``model_util.py``), which normalises the ego CAM of the prototype loss.
NORMALIZE_MINMAX_EPS = 1e-15


def grid_coordinates(height: int, width: int, dtype: torch.dtype, device: torch.device):
    """SCOPS / LOCATE coordinate maps (``get_coordinate_tensors``): ``x = 2 j / w - 1`` along the columns,
    ``y = 2 i / h - 1`` along the rows, each (h, w), computed in float64 and cast (LOCATE builds them with
    numpy in float64 and casts to float32).

    LOCATE calls ``get_coordinate_tensors(h, w)`` and builds (w, h) maps from it, which fit a (h, w) part map
    only when h == w (its 224 / 16 = 14 grid); on a square grid these are its maps exactly."""
    xs = torch.arange(width, dtype=torch.float64, device=device) / width * 2 - 1
    ys = torch.arange(height, dtype=torch.float64, device=device) / height * 2 - 1
    x_map = xs[None, :].expand(height, width)
    y_map = ys[:, None].expand(height, width)
    return x_map.to(dtype), y_map.to(dtype)


@MODELS.register_module()
class LOCATEConcentrationLoss(nn.Module):
    """LOCATE's concentration loss (from SCOPS, Hung et al., CVPR 2019): the spatial variance of every CAM.

    LOCATE (``models/locate.py``: ``loss_con += concentration_loss(ego_pred[b_])``, then ``loss_con /= b``
    and ``loss_cen = loss_con * 0.07`` in ``train.py``) applies ``model_util.concentration_loss`` to the ego
    CAMs of **every** affordance class of each sample (the class axis plays SCOPS's part axis). Per map:

    1. min-max normalise: ``p = (m - min) / (max - min + 1e-10)``;
    2. a spatial pdf ``q = (p + 1e-3) / sum(p + 1e-3)``;
    3. its centre ``c = (sum q x, sum q y)`` on the coordinate maps of :func:`grid_coordinates`;
    4. its variance ``sum q ((x - c_x)^2 + (y - c_y)^2)``.

    The loss is the mean over all maps (LOCATE: the mean over classes, then over the batch: the same, every
    sample has C maps), times ``loss_weight``; the centre is not detached (as published). Everything is
    batched over the maps; LOCATE loops over samples and over classes.

    Args:
        loss_weight (float): Multiplier (LOCATE: 0.07). Default: 0.07.
        epsilon (float): Added to the normalised map before it becomes a pdf ("prevent gradient explosion").
            Default: 1e-3.
        loss_name (str): Name of the loss item. Default: 'loss_concentration'.
    """

    def __init__(self, loss_weight: float = 0.07, epsilon: float = 1e-3, loss_name: str = 'loss_concentration'):
        super().__init__()
        self.loss_weight = loss_weight
        self.epsilon = epsilon
        self._loss_name = loss_name

    def forward(self, maps: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            maps (Tensor): CAMs (B, C, h, w), or any (..., h, w); every (h, w) map counts once.

        Returns:
            Tensor: Scalar loss.
        """
        if maps.dim() < 3 or maps.numel() == 0:
            raise ValueError(f'LOCATEConcentrationLoss: expected maps (..., h, w), got {tuple(maps.shape)}.')
        height, width = maps.shape[-2:]
        flat = maps.reshape(-1, height, width)
        x_map, y_map = grid_coordinates(height, width, flat.dtype, flat.device)
        part = minmax_normalize(flat, eps=CONCENTRATION_NORM_EPS) + self.epsilon
        pdf = part / part.sum(dim=(1, 2), keepdim=True)
        x_c = (pdf * x_map).sum(dim=(1, 2), keepdim=True)
        y_c = (pdf * y_map).sum(dim=(1, 2), keepdim=True)
        variance = (pdf * (x_map - x_c).square()).sum(dim=(1, 2)) + (pdf * (y_map - y_c).square()).sum(dim=(1, 2))
        return self.loss_weight * variance.mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name


@MODELS.register_module()
class LOCATEPrototypeLoss(nn.Module):
    """LOCATE's part-level prototype guidance: pull the ego CAM-pooled descriptor towards the part prototype.

    LOCATE (``models/locate.py``, "prototype guidance loss", logged as ``con_loss``), for every sample ``b``
    with a prototype ``z_b`` (a unit-norm K-means centroid of the exo affordance descriptors, see
    :func:`~looptrans.models.segmentors.locate.select_part_prototypes`):

    1. ``w = normalize_minmax(cam_b)``: the ego CAM of the labelled affordance, min-max normalised (eps
       1e-15), **not** detached: the loss trains the ego CAM branch through this mask;
    2. ``e = sum_hw(desc_b * w) / sum_hw(w)``: the CAM-weighted mean of the frozen ego descriptors;
    3. ``max(1 - cos(e, z_b) - margin, 0)`` (a cosine embedding loss with ``margin`` = LOCATE's
       ``cel_margin``);

    summed over the samples with a prototype and divided by their number (``+ 1e-15``: 0 when none), times
    ``loss_weight``. Batched; LOCATE loops over the samples.

    One guard LOCATE has not: ``sum_hw(w)`` is clamped to the smallest normal float, so a constant CAM (whose
    normalised map is all zeros; LOCATE divides 0 by 0 and the loss is NaN) gives ``e = 0`` and the constant
    ``1 - margin`` for that sample.

    Args:
        margin (float): LOCATE's ``cel_margin``. Default: 0.5.
        loss_weight (float): Multiplier (LOCATE: 1). Default: 1.0.
        loss_name (str): Name of the loss item. Default: 'loss_proto'.
    """

    def __init__(self, margin: float = 0.5, loss_weight: float = 1.0, loss_name: str = 'loss_proto') -> None:
        super().__init__()
        self.margin = margin
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, cam: Tensor, desc: Tensor, prototype: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            cam (Tensor): Ego CAM of each sample's affordance (B, h, w), raw (normalised here).
            desc (Tensor): Frozen ego descriptors (B, D, h, w) (LOCATE: the last block's keys).
            prototype (Tensor): Part prototype of each sample (B, D).
            valid (Tensor, optional): (B,) bool, the samples that have a prototype (LOCATE: a non-zero
                ``part_proto``); None: all.

        Returns:
            Tensor: Scalar loss.
        """
        if (
            cam.dim() != 3
            or desc.dim() != 4
            or desc.shape[0] != cam.shape[0]
            or tuple(desc.shape[-2:]) != tuple(cam.shape[-2:])
            or tuple(prototype.shape) != tuple(desc.shape[:2])
        ):
            raise ValueError(
                'LOCATEPrototypeLoss: expected cam (B, h, w), desc (B, D, h, w) and prototype (B, D), got '
                f'{tuple(cam.shape)}, {tuple(desc.shape)} and {tuple(prototype.shape)}.'
            )
        if valid is None:
            valid = torch.ones(cam.shape[0], dtype=torch.bool, device=cam.device)
        weight = minmax_normalize(cam, eps=NORMALIZE_MINMAX_EPS).flatten(1)  # (B, hw)
        summed = torch.einsum('bn,bdn->bd', weight, desc.flatten(2).to(weight.dtype))
        embedding = summed / weight.sum(dim=1, keepdim=True).clamp(min=torch.finfo(weight.dtype).tiny)
        cos = F.cosine_similarity(embedding, prototype.to(embedding.dtype), dim=1)
        per_sample = (1 - cos - self.margin).clamp(min=0)
        per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
        return self.loss_weight * per_sample.sum() / (valid.sum() + 1e-15)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (mmseg convention)."""
        return self._loss_name
