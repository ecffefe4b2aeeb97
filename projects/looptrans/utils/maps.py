"""The one min-max normaliser of heatmaps, for the model (torch), the metric and the pictures (numpy)."""

from typing import Tuple, TypeVar, Union

import numpy as np
import torch

Maps = TypeVar('Maps', np.ndarray, torch.Tensor)


def minmax_normalize(maps: Maps, eps: float = 1e-10) -> Maps:
    """Per-map ``(x - min) / (max - min + eps)`` over every axis but the first of an ``(N, ...)`` batch.

    Works on numpy arrays and torch tensors alike, in their own dtype (and device): the metric passes
    float64 maps and its published ``eps`` (1e-12), the segmentor float32 / bf16 CAMs with LOCATE's
    ``normalize_minmax`` eps (1e-10, the default). A constant map becomes all zeros (``0 / eps``).
    """
    if maps.ndim < 2:
        raise ValueError(f'minmax_normalize: expected a batch of maps (N, ...), got shape {tuple(maps.shape)}')
    axes = tuple(range(1, maps.ndim))
    if isinstance(maps, torch.Tensor):
        lo, hi = maps.amin(dim=axes, keepdim=True), maps.amax(dim=axes, keepdim=True)
    else:
        lo, hi = maps.min(axis=axes, keepdims=True), maps.max(axis=axes, keepdims=True)
    return (maps - lo) / (hi - lo + eps)


def replace_nonfinite(heatmap: np.ndarray) -> Tuple[np.ndarray, bool]:
    """Replace NaN / inf in one map by the map's finite minimum (0 if no value is finite).

    Returns:
        ``(map, changed)``: the (copied when changed) map and whether any value was replaced.
    """
    finite = np.isfinite(heatmap)
    if finite.all():
        return heatmap, False
    fill = heatmap[finite].min() if finite.any() else 0.0
    return np.where(finite, heatmap, fill), True


def normalize_heatmap(heatmap: Union[np.ndarray, torch.Tensor], eps: float = 1e-10) -> np.ndarray:
    """One heatmap (H, W) in float32, min-max normalised to [0, 1] for a picture; non-finite values count
    as the minimum (:func:`replace_nonfinite`)."""
    if isinstance(heatmap, torch.Tensor):
        heatmap = heatmap.detach().float().cpu().numpy()
    heat, _ = replace_nonfinite(np.asarray(heatmap, dtype=np.float32))
    return minmax_normalize(heat[None], eps)[0]
