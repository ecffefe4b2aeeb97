"""What inference returns: per image an :class:`AffordanceResult`, per heatmap an :class:`AffordanceRegion` (what
a robot consumes: peak, mask, box, polygon, saturation), and :func:`describe_heatmap`, which makes one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

#: A pixel counts towards a map's saturation when its min-max normalised score is at least this.
SATURATION_LEVEL = 0.9
#: A map is reported as saturated when more than this share of its pixels reach :data:`SATURATION_LEVEL`.
SATURATED_SHARE = 0.5
#: A map whose range is below this fraction of its magnitude is constant: resizing a constant float32 map leaves
#: rounding differences (~1e-8 relative) that min-max normalisation would blow up into a made-up localisation.
CONSTANT_RANGE = 1e-5


@dataclass
class AffordanceRegion:
    """What a robot consumes from one heatmap, in the image's pixel coordinates.

    Attributes:
        peak: (x, y) of the heatmap's maximum (first one in row-major order on ties).
        peak_score: the heatmap's value there.
        threshold: the relative threshold of ``mask``: a pixel is in when its min-max normalised score is
            >= ``threshold`` (so 0.5 keeps what scores at least half-way between the map's min and max;
            relative, because the sources' scales differ: pixel-head probabilities, raw CAM scores).
        mask: bool (H, W) binary mask.
        bbox: (x_min, y_min, x_max, y_max) inclusive pixel bounds of the mask, or None for an empty mask.
        polygon: the largest external contour of the mask as [[x, y], ...] (OpenCV, simple chain).
        area: number of mask pixels.
        saturation: the share of pixels whose min-max normalised score is >= :data:`SATURATION_LEVEL` (1.0 for
            a constant map). A map that is high nearly everywhere localises nothing, whatever its box says.
    """

    peak: Tuple[int, int]
    peak_score: float
    threshold: float
    mask: np.ndarray
    bbox: Optional[Tuple[int, int, int, int]]
    polygon: List[List[int]]
    area: int
    saturation: float = 0.0

    @property
    def saturated(self) -> bool:
        """True when more than :data:`SATURATED_SHARE` of the map is near its maximum (no localisation)."""
        return self.saturation > SATURATED_SHARE

    def to_dict(self) -> dict:
        """JSON-ready fields (the mask is left out: it is the PNG the tools write)."""
        return dict(
            peak=list(self.peak),
            peak_score=self.peak_score,
            threshold=self.threshold,
            bbox=None if self.bbox is None else list(self.bbox),
            polygon=self.polygon,
            area=self.area,
            saturation=round(self.saturation, 4),
            saturated=self.saturated,
        )


def describe_heatmap(heat: np.ndarray, threshold: float = 0.5) -> AffordanceRegion:
    """Peak, binary mask (min-max normalised score >= ``threshold``), bounding box, largest contour and
    saturation of a float (H, W) heatmap.

    A constant map (a 1x1 image's, or one that is equal everywhere up to float rounding: a range below
    :data:`CONSTANT_RANGE` of its magnitude) scores every pixel at its maximum: its mask is the whole image, its
    peak lies inside it, and its saturation is 1 (it localises nothing).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f'threshold must be in (0, 1], got {threshold}')
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f'a heatmap must be a non-empty (H, W) array, got shape {heat.shape}')
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    low, high = float(heat.min()), float(heat.max())
    if high - low > CONSTANT_RANGE * max(1.0, abs(high), abs(low)):
        scaled = (heat - low) / (high - low)
        mask = scaled >= threshold
        saturation = float((scaled >= SATURATION_LEVEL).mean())
    else:
        mask, saturation = np.ones(heat.shape, bool), 1.0
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else None
    polygon: List[List[int]] = []
    if len(xs):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        largest = max(contours, key=cv2.contourArea)
        polygon = largest.reshape(-1, 2).astype(int).tolist()
    return AffordanceRegion(
        peak=(int(x), int(y)),
        peak_score=float(heat[y, x]),
        threshold=float(threshold),
        mask=mask,
        bbox=bbox,
        polygon=polygon,
        area=int(mask.sum()),
        saturation=saturation,
    )


@dataclass
class AffordanceResult:
    """Heatmaps for one image.

    Attributes:
        heatmaps: affordance name -> float32 (H, W) map at the original image size (bilinear resize of the
            network-resolution map; the pixel head's probabilities or raw CAM scores).
        net_heatmaps: affordance name -> float32 (h, w) map at the network input size, exactly the model's
            output (what ``LoopTrans.predict`` writes as ``pred_heatmap``).
        regions: affordance name -> :class:`AffordanceRegion` of its heatmap (peak, mask, box, polygon).
        logits: every class -> the CAM head's image-level logit.
        probs: every class -> its probability (softmax of the logits): "what can I do with this object?".
        affordances: the names of ``heatmaps`` in order (by probability when chosen with ``top_k``).
        image_path: the input path, or None for arrays.
        ori_shape: (H, W) of the input image.
        warnings: what makes these numbers less than they look: a model trained on generated data (its
            heatmaps and probabilities mean nothing on photos), a saturated heatmap (no localisation).
    """

    heatmaps: Dict[str, np.ndarray] = field(default_factory=dict)
    net_heatmaps: Dict[str, np.ndarray] = field(default_factory=dict)
    regions: Dict[str, AffordanceRegion] = field(default_factory=dict)
    logits: Dict[str, float] = field(default_factory=dict)
    probs: Dict[str, float] = field(default_factory=dict)
    affordances: List[str] = field(default_factory=list)
    image_path: Optional[str] = None
    ori_shape: Tuple[int, int] = (0, 0)
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready summary: the image, its warnings, and per affordance its probability, logit and region."""
        return dict(
            image=self.image_path,
            height=self.ori_shape[0],
            width=self.ori_shape[1],
            warnings=list(self.warnings),
            affordances=[
                dict(name=name, prob=self.probs.get(name), logit=self.logits.get(name), **self.regions[name].to_dict())
                for name in self.affordances
            ],
        )
