"""The box crop of EPIC-Hotspots' inactive object images (the egocentric view of a training sample)."""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CropEgoBox(BaseTransform):
    """Crop the egocentric image to its object box with a random expansion and shift (EPIC-Hotspots).

    Matches ``CropPerturb`` and ``expand_box`` of ``Tushar-N/interaction-hotspots`` ``data/epic.py``: the box
    ``[xmin, ymin, xmax, ymax]`` grows by ``U(expand)`` of its width/height (half on each side, limited by
    the image border), then moves by ``U(-shift, shift)`` of its size in x and y; the crop keeps the image
    inside the box and fills the part of the box outside the image with black, as ``PIL.Image.crop``.
    Random numbers come from ``np.random``.

    With ``random=False`` (deterministic) the box is cropped as given. Items without ``ego_box`` pass
    through unchanged, so the transform can sit in any pipeline.

    Required keys: ``img``; optional ``ego_box``. Modified keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        expand: range of the relative expansion (published ``(0.5, 1.5)``).
        shift: maximum relative shift (published 0.2).
        random: draw the expansion and shift; False crops the plain box.
    """

    def __init__(self, expand: Sequence[float] = (0.5, 1.5), shift: float = 0.2, random: bool = True) -> None:
        if len(expand) != 2 or not 0 <= expand[0] <= expand[1]:
            raise ValueError(f'CropEgoBox: expand must be (lo, hi) with 0 <= lo <= hi, got {expand!r}')
        if shift < 0:
            raise ValueError(f'CropEgoBox: shift must be >= 0, got {shift!r}')
        self.expand = (float(expand[0]), float(expand[1]))
        self.shift = float(shift)
        self.random = bool(random)

    def crop_box(self, box: Sequence[float], width: int, height: int) -> List[int]:
        """The integer crop box ``[x0, y0, x1, y1)`` (may extend past the image)."""
        xmin, ymin, xmax, ymax = box
        if not self.random:
            return [int(xmin), int(ymin), int(xmax), int(ymax)]
        ratio = np.random.uniform(*self.expand)
        dx, dy = int((xmax - xmin) * ratio), int((ymax - ymin) * ratio)
        left, right = min(dx // 2, xmin), min(dx // 2, width - xmax)
        top, bottom = min(dy // 2, ymin), min(dy // 2, height - ymax)
        x0, y0 = max(xmin - left, 0), max(ymin - top, 0)
        x1, y1 = min(xmax + right, width - 1), min(ymax + bottom, height - 1)
        tx, ty = np.random.uniform(-self.shift, self.shift, size=2)
        ox, oy = tx * (x1 - x0), ty * (y1 - y0)
        return [int(x0 + ox), int(y0 + oy), int(x1 + ox), int(y1 + oy)]

    @staticmethod
    def crop(img: np.ndarray, box: Sequence[int]) -> np.ndarray:
        """``img[y0:y1, x0:x1]`` with zeros where the box leaves the image."""
        x0, y0, x1, y1 = box
        h, w = img.shape[:2]
        out = np.zeros((y1 - y0, x1 - x0) + img.shape[2:], dtype=img.dtype)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
        return out

    def transform(self, results: dict) -> dict:
        box = results.get('ego_box')
        if box is None:
            return results
        img = results['img']
        h, w = img.shape[:2]
        if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(
                f'CropEgoBox: ego_box {list(box)} of {results.get("img_path")!r} must be '
                '[xmin, ymin, xmax, ymax] with xmax > xmin and ymax > ymin; fix the '
                'inactive_images entry in annotations.json.'
            )
        x0, y0, x1, y1 = self.crop_box(box, w, h)
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)  # never an empty crop
        img = np.ascontiguousarray(self.crop(img, (x0, y0, x1, y1)))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(expand={self.expand}, shift={self.shift}, random={self.random})'
