"""Heatmap pictures: colour-mapped heatmaps blended over images, with a colour scale and a caption."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.visualization.utils import convert_overlay_heatmap

from ..utils.maps import normalize_heatmap


def overlay_heatmap(image_rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the JET-coloured, min-max normalised ``heatmap`` over ``image_rgb`` (H, W, 3 uint8).

    MMEngine's :func:`~mmengine.visualization.utils.convert_overlay_heatmap` (what
    ``Visualizer.draw_featmap`` draws with) colours and blends; before it, non-finite values become the
    map's minimum (:func:`~looptrans.utils.maps.normalize_heatmap`) and the heatmap is resized (bilinear)
    to the image, so a network-resolution map can be drawn on the original picture.
    """
    h, w = image_rgb.shape[:2]
    heat = normalize_heatmap(heatmap)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    return convert_overlay_heatmap(heat, image_rgb.astype(np.uint8), alpha)


def draw_colour_scale(
    image_rgb: np.ndarray, colormap: int = cv2.COLORMAP_JET, labels: Tuple[str, str] = ('max', 'min')
) -> np.ndarray:
    """A copy of the picture with a vertical colour scale along its right edge.

    Every heatmap picture is min-max normalised on its own (:func:`overlay_heatmap`), so the scale runs from
    the map's maximum (top, ``labels[0]``) to its minimum (bottom, ``labels[1]``): it tells which colour is
    hot, not an absolute score. The scale is drawn inside the picture (its size does not change); pictures
    smaller than 24 x 24 pixels are returned unchanged, and the labels are left out below 64 pixels of
    height.
    """
    out = np.ascontiguousarray(image_rgb).copy()
    h, w = out.shape[:2]
    if h < 24 or w < 24:
        return out
    bar_w = int(np.clip(w // 24, 4, 14))
    margin = max(2, bar_w // 2)
    top, bottom = margin + int(0.12 * h), h - margin
    x1 = w - margin
    x0 = x1 - bar_w
    ramp = np.linspace(255, 0, bottom - top).round().astype(np.uint8)[:, None]
    coloured = cv2.cvtColor(cv2.applyColorMap(ramp, colormap), cv2.COLOR_BGR2RGB)  # (n, 1, 3)
    out[top:bottom, x0:x1] = coloured
    cv2.rectangle(out, (x0 - 1, top - 1), (x1, bottom), (255, 255, 255), 1)
    if h >= 64:
        scale = float(np.clip(h / 600, 0.3, 0.6))
        for text, y in ((labels[0], top), (labels[1], bottom)):
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            org = (max(0, x0 - tw - 3), int(np.clip(y + th // 2, th + 1, h - 2)))
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def colour_overlay(image: np.ndarray, mask: np.ndarray, colour: Sequence[int], alpha: float = 0.5) -> np.ndarray:
    """Blend ``colour`` into ``image`` (H, W, 3 uint8, either channel order) with per-pixel weight ``alpha *
    mask`` (``mask`` (H, W) in [0, 1], or bool); pixels where ``mask`` is 0 are left exactly as they were."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.float32)
    weight = (alpha * np.clip(mask, 0, 1))[..., None]
    return (image * (1 - weight) + np.asarray(colour, np.float32) * weight).astype(np.uint8)


def put_caption(image_rgb: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in a dark band at the top of a copy of the picture."""
    out = image_rgb.copy()
    scale = max(0.4, min(out.shape[:2]) / 500)
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = th + base + 6
    out[:band, : min(out.shape[1], tw + 8)] = (out[:band, : min(out.shape[1], tw + 8)] * 0.3).astype(np.uint8)
    cv2.putText(out, text, (4, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def side_by_side(panels: Sequence[np.ndarray], captions: Optional[Sequence[str]] = None) -> np.ndarray:
    """Concatenate same-height RGB panels horizontally, each with its caption."""
    if not panels:
        raise ValueError('side_by_side needs at least one panel')
    height = panels[0].shape[0]
    resized = []
    for i, panel in enumerate(panels):
        if panel.shape[0] != height:
            width = int(round(panel.shape[1] * height / panel.shape[0]))
            panel = cv2.resize(panel, (width, height), interpolation=cv2.INTER_LINEAR)
        if captions is not None and captions[i]:
            panel = put_caption(panel, captions[i])
        resized.append(panel)
    return np.concatenate(resized, axis=1)
