# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Helpers shared by the LoopTrans heads: class-map selection, masked pooling and map resizing."""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def masked_average_pool(feats: Tensor, weights: Tensor, eps: float = 1e-6) -> Tensor:
    """Average ``feats`` over space, weighted by ``weights``.

    ``sum_hw(w * x) / (sum_hw(w) + eps)``, used to turn a (soft) mask into a
    prototype feature: ``f_pixel`` (ego embedding under the pixel head's
    prediction) and ``f_exo`` / ``f_noise`` (exo embedding under the CAM and
    noise assignments) of the denoising distillation.

    Args:
        feats (Tensor): Features (N, D, h, w).
        weights (Tensor): Non-negative weights (N, h, w), or (N, K, h, w) to
            pool K masks at once.
        eps (float): Keeps an all-zero mask finite (the result is then ~0).

    Returns:
        Tensor: (N, D) for (N, h, w) weights, (N, K, D) for (N, K, h, w).
    """
    if feats.dim() != 4:
        raise ValueError(f'masked_average_pool: feats must be (N, D, h, w), got {tuple(feats.shape)}.')
    single = weights.dim() == 3
    if single:
        weights = weights.unsqueeze(1)
    if weights.dim() != 4 or weights.shape[0] != feats.shape[0] or weights.shape[2:] != feats.shape[2:]:
        raise ValueError(
            'masked_average_pool: weights must be (N, h, w) or (N, K, h, w) '
            f'matching feats (N, D, h, w) = {tuple(feats.shape)}, got '
            f'{tuple(weights.shape)}; resize the mask to the feature grid.'
        )
    weights = weights.to(feats.dtype)
    pooled = torch.einsum('nkhw,ndhw->nkd', weights, feats)
    pooled = pooled / (weights.sum(dim=(2, 3)).unsqueeze(-1) + eps)
    return pooled.squeeze(1) if single else pooled


def resize_to(maps: Tensor, size: Tuple[int, int]) -> Tensor:
    """``maps`` (N, K, h, w) resized bilinearly (half-pixel, ``align_corners=False``) to ``size``; unchanged when
    they are on that grid already."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode='bilinear', align_corners=False)


def select_class_maps(maps: Tensor, labels: Tensor) -> Tensor:
    """Pick, for every sample, the map of its labelled class.

    Args:
        maps (Tensor): Per-class maps (N, C, h, w) (CAMs or logits).
        labels (Tensor): Class indices (N,), long.

    Returns:
        Tensor: (N, h, w), ``maps[i, labels[i]]``.
    """
    if maps.dim() != 4 or labels.shape != maps.shape[:1]:
        raise ValueError(
            'select_class_maps: expected maps (N, C, h, w) and labels (N,), '
            f'got {tuple(maps.shape)} and {tuple(labels.shape)}; repeat the '
            'labels per view (labels.repeat_interleave(V)) for exo maps.'
        )
    index = labels.long().view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[2:])
    return maps.gather(1, index).squeeze(1)


def labels_of(batch_data_samples: Sequence, device: Optional[torch.device] = None) -> Tensor:
    """The affordance label (B,) long of each data sample, its ``metainfo['gt_label']`` (set by the dataset and
    packed by ``PackAffordanceInputs``), on ``device``."""
    try:
        labels = [int(sample.metainfo['gt_label']) for sample in batch_data_samples]
    except KeyError as err:
        raise KeyError(
            "a data sample has no metainfo['gt_label'] (the affordance index); the training and test pipelines "
            'must end with PackAffordanceInputs, which packs it.'
        ) from err
    return torch.as_tensor(labels, dtype=torch.long, device=device)


def as_feature_list(inputs: Union[Tensor, Sequence[Tensor]]) -> List[Tensor]:
    """Backbone outputs as the list of feature levels mmseg heads index with ``in_index``."""
    if isinstance(inputs, Tensor):
        return [inputs]
    return list(inputs)


def losses_by_name(loss_decode: nn.Module, *args, **kwargs) -> Dict[str, Tensor]:
    """Evaluate a head's ``loss_decode`` (one loss or a ``ModuleList``) and key each result by its
    ``loss_name``, summing losses that share a name (mmseg's ``BaseDecodeHead.loss_by_feat`` rule)."""
    modules = loss_decode if isinstance(loss_decode, nn.ModuleList) else [loss_decode]
    losses: Dict[str, Tensor] = {}
    for module in modules:
        value = module(*args, **kwargs)
        losses[module.loss_name] = losses[module.loss_name] + value if module.loss_name in losses else value
    return losses


def build_losses(cfg: Union[dict, Sequence[dict]]) -> nn.Module:
    """Build a head's ``loss_decode`` from config: one loss for a dict, a ``ModuleList`` for a sequence
    (mmseg's ``BaseDecodeHead`` rule)."""
    if isinstance(cfg, dict):
        return MODELS.build(cfg)
    if isinstance(cfg, (list, tuple)):
        return nn.ModuleList(MODELS.build(item) for item in cfg)
    raise TypeError(f'loss_decode must be a dict or a sequence of dicts, got {type(cfg).__name__}.')


def loss_names(loss_decode: nn.Module) -> List[str]:
    """The distinct ``loss_name`` of a head's ``loss_decode``, in order."""
    modules = loss_decode if isinstance(loss_decode, nn.ModuleList) else [loss_decode]
    return list(dict.fromkeys(module.loss_name for module in modules))


def select_head_inputs(head: nn.Module, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """A decode head's input tensor (N, in_channels, h, w) from backbone outputs (its ``in_index`` and
    ``input_transform`` applied by mmseg's ``_transform_inputs``); a single tensor passes through. A wrong
    channel count is an error naming the head and the settings to fix."""
    feats = inputs if isinstance(inputs, Tensor) else head._transform_inputs(as_feature_list(inputs))
    if feats.dim() != 4 or feats.shape[1] != head.in_channels:
        raise ValueError(
            f'{type(head).__name__}: expected features (N, {head.in_channels}, h, w), got '
            f'{tuple(feats.shape)}; set in_channels (and in_index / input_transform) to match the '
            'backbone outputs.'
        )
    return feats


def without_override(init_cfg: Union[dict, List[dict], None], name: str) -> Union[List[dict], None]:
    """``init_cfg`` without its ``override`` of the submodule ``name``; an entry that initialised only that
    submodule (an ``override`` and no ``layer``) goes entirely. None when nothing is left."""
    entries = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg] if init_cfg else []
    kept = []
    for entry in entries:
        entry = dict(entry)
        override = entry.pop('override', None)
        overrides = [] if override is None else list(override) if isinstance(override, (list, tuple)) else [override]
        others = [o for o in overrides if o.get('name') != name]
        if others:
            entry['override'] = others
        elif overrides and 'layer' not in entry:
            continue
        kept.append(entry)
    return kept or None
