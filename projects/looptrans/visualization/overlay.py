"""Heatmap pictures: colour-mapped heatmaps blended over images, with a caption."""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np


def normalize_heatmap(heatmap: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """Min-max normalise a heatmap to [0, 1] (non-finite values count as the minimum)."""
    heat = np.asarray(heatmap, dtype=np.float32)
    finite = np.isfinite(heat)
    if not finite.any():
        return np.zeros_like(heat)
    lo, hi = heat[finite].min(), heat[finite].max()
    heat = np.where(finite, heat, lo)
    return (heat - lo) / (hi - lo + eps)


def colorize_heatmap(heatmap: np.ndarray, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A heatmap (H, W), any range, as an RGB uint8 picture (H, W, 3) after min-max normalisation."""
    heat = (normalize_heatmap(heatmap) * 255).round().astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(heat, colormap), cv2.COLOR_BGR2RGB)


def overlay_heatmap(image_rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5,
                    colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Blend the colour-mapped ``heatmap`` over ``image_rgb`` (H, W, 3 uint8).

    The heatmap is resized (bilinear) to the image size first, so a network-resolution map can be drawn on
    the original picture.
    """
    h, w = image_rgb.shape[:2]
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    coloured = colorize_heatmap(heat, colormap)
    return cv2.addWeighted(image_rgb.astype(np.uint8), 1 - alpha, coloured, alpha, 0)


def put_caption(image_rgb: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in a dark band at the top of a copy of the picture."""
    out = image_rgb.copy()
    scale = max(0.4, min(out.shape[:2]) / 500)
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = th + base + 6
    out[:band, :min(out.shape[1], tw + 8)] = (out[:band, :min(out.shape[1], tw + 8)] * 0.3).astype(np.uint8)
    cv2.putText(out, text, (4, th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
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
