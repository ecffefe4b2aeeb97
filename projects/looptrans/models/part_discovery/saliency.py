# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Background priors for part selection: LOCATE's CLS-attention saliency and part score, the published LoopTrans
code's least salient part, and the grid border."""

from typing import Sequence

import torch
from torch import Tensor


def _check_heads(owner: str, cls_attn: Tensor, heads: Sequence[int]) -> None:
    """Raise a ValueError naming ``owner`` and the setting to fix unless ``cls_attn`` is (B, heads, h, w) and every
    index of ``heads`` is one of its heads."""
    if cls_attn.dim() != 4:
        raise ValueError(f'{owner}: expected cls_attn (B, heads, h, w), got {tuple(cls_attn.shape)}.')
    num_heads = cls_attn.shape[1]
    if not heads or min(heads) < 0 or max(heads) >= num_heads:
        raise ValueError(
            f'{owner}: heads {tuple(heads)} must be in [0, {num_heads}) for a '
            f'backbone with {num_heads} heads; set part_discovery.saliency_heads.'
        )


def cls_attention_saliency(cls_attn: Tensor, heads: Sequence[int] = (0, 1, 3)) -> Tensor:
    """LOCATE's binary saliency mask from DINO's CLS attention (``models/locate.py``).

    Each selected head's CLS-to-patch attention is thresholded at its own spatial mean, the binary maps
    are averaged over the heads, min-max normalised (LOCATE's ``normalize_minmax``: a constant map gives
    zeros) and thresholded at their mean.

    Args:
        cls_attn (Tensor): CLS attention over the patches (B, num_heads, h, w).
        heads (Sequence[int]): Heads to use; LOCATE uses heads 0, 1 and 3 of ViT-S/16.

    Returns:
        Tensor: (B, h*w) bool; all False for an image whose heads agree everywhere (no salient region).
    """
    _check_heads('cls_attention_saliency', cls_attn, heads)
    flat = cls_attn.flatten(2).float()  # (B, H, N)
    binary = (flat > flat.mean(dim=-1, keepdim=True)).float()
    sal = binary[:, list(heads)].mean(dim=1)  # (B, N)
    low = sal.min(dim=1, keepdim=True).values
    span = sal.max(dim=1, keepdim=True).values - low
    sal = torch.where(span > 0, (sal - low) / span.clamp(min=1e-12), torch.zeros_like(sal))
    return sal > sal.mean(dim=1, keepdim=True)


def part_saliency_score(parts: Tensor, saliency: Tensor) -> Tensor:
    """LOCATE's part score ``(|part ∩ sal| / |part| + |sal| / |part ∪ sal|) / 2`` of every part.

    High for a part inside the salient (object) region, low for a background part. An empty part scores
    0 (it cannot be chosen).

    Args:
        parts (Tensor): One-hot part assignment (B, N, K), float.
        saliency (Tensor): Binary saliency (B, N), float.

    Returns:
        Tensor: (B, K) scores in [0, 1].
    """
    inter = torch.einsum('bnk,bn->bk', parts, saliency)
    size = parts.sum(dim=1)
    sal_size = saliency.sum(dim=1, keepdim=True)
    union = size + sal_size - inter
    score = (inter / size.clamp(min=1) + sal_size / union.clamp(min=1)) / 2
    return torch.where(size > 0, score, torch.zeros_like(score))


def cls_attention_map(cls_attn: Tensor, heads: Sequence[int] = (0, 1, 3)) -> Tensor:
    """The published LoopTrans code's saliency map (``models/looptrans.py``, ``ego_sam``): the raw CLS-to-patch
    attention of the selected heads, averaged over them and min-max normalised per image.

    Unlike :func:`cls_attention_saliency` (LOCATE's) nothing is binarised: each part is scored by the mean of this
    map over its tokens (:func:`least_salient_part`).

    Args:
        cls_attn (Tensor): CLS attention over the patches (B, num_heads, h, w).
        heads (Sequence[int]): Heads to average; the published code uses heads 0, 1 and 3 of ViT-S/16.

    Returns:
        Tensor: (B, h*w) float in [0, 1]; zeros for an image whose map is constant.
    """
    _check_heads('cls_attention_map', cls_attn, heads)
    sal = cls_attn.flatten(2).float()[:, list(heads)].mean(dim=1)  # (B, N)
    low = sal.min(dim=1, keepdim=True).values
    span = sal.max(dim=1, keepdim=True).values - low
    return torch.where(span > 0, (sal - low) / span.clamp(min=1e-12), torch.zeros_like(sal))


def least_salient_part(parts: Tensor, saliency: Tensor) -> Tensor:
    """The published LoopTrans code's background part: the part whose tokens have the lowest mean saliency.

    Empty parts are passed over (the published code takes the mean over an empty part, a NaN that ``argmin``
    then returns: it would exclude the empty part and keep the background a candidate).

    Args:
        parts (Tensor): One-hot part assignment (B, N, K), float.
        saliency (Tensor): Saliency map (B, N), float (:func:`cls_attention_map`).

    Returns:
        Tensor: (B,) long, the index of each image's least salient non-empty part (ties -> lowest index).
    """
    size = parts.sum(dim=1)  # (B, K)
    mean = torch.einsum('bnk,bn->bk', parts, saliency) / size.clamp(min=1)
    return mean.masked_fill(size == 0, float('inf')).argmin(dim=1)


def border_mask(h: int, w: int, device: torch.device) -> Tensor:
    """(h*w,) float mask of the grid's outermost ring of tokens (the object-centric background prior)."""
    mask = torch.ones(h, w, device=device)
    if h > 2 and w > 2:
        mask[1:-1, 1:-1] = 0
    return mask.flatten()


def border_attention_share(cls_attn: Tensor) -> Tensor:
    """Share of each head's CLS attention that falls on the grid's outermost ring of tokens.

    A label-free measure of how object-centred a head is on object-centric (egocentric) images: a head that
    attends uniformly puts the ring's share of the tokens there (``border_mask(h, w).mean()``), an
    object-centred head much less. Heads that attend to the backdrop make :func:`cls_attention_saliency` cover
    it.

    Args:
        cls_attn (Tensor): CLS attention over the patches (B, num_heads, h, w), non-negative.

    Returns:
        Tensor: (B, num_heads) float shares in [0, 1]; each head's attention is renormalised over the patches
        (the CLS token's attention to itself and to extra tokens is left out).
    """
    if cls_attn.dim() != 4:
        raise ValueError(f'border_attention_share: expected cls_attn (B, heads, h, w), got {tuple(cls_attn.shape)}.')
    flat = cls_attn.flatten(2).float()
    ring = border_mask(*cls_attn.shape[-2:], device=cls_attn.device)
    return (flat * ring).sum(-1) / flat.sum(-1).clamp(min=1e-12)
