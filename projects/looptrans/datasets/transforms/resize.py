"""Resizing exactly as the published torchvision pipelines do.

LOCATE, Cross-View-AG, WSMA and Interaction Hotspots load images with PIL
and use ``torchvision.transforms.Resize``. On a PIL image that is
``PIL.Image.resize`` with a *filter whose support grows with the reduction
factor* (PIL's bilinear is antialiased when shrinking), not OpenCV's
``cv2.resize`` (a fixed 2x2 neighbourhood, which aliases when shrinking).
The two differ by many grey levels on textured images, so the training
images the model sees would differ from the published recipe's.

* training: ``Resize(256)``: the *shorter* side becomes 256, the longer one
  ``int(256 * long / short)`` (truncated, aspect ratio kept)
  -> :class:`ResizeShortEdge` below;
* test: ``Resize((224, 224))`` -> mmcv's ``Resize(scale=(224, 224),
  keep_ratio=False, backend='pillow')``, which calls the same
  ``PIL.Image.resize``.

Pillow's filters treat every channel alike, so resizing a BGR array gives
the channel-swapped result of resizing the RGB image: the pixels equal
torchvision's on ``Image.open(path).convert('RGB')``
(``tests/test_resize_fidelity.py``).
"""

from typing import Dict, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image

__all__ = ['ResizeShortEdge', 'short_edge_size', 'PILLOW_INTERPOLATIONS']

#: Interpolation names accepted by :class:`ResizeShortEdge` (mmcv's names).
PILLOW_INTERPOLATIONS: Dict[str, int] = {
    'nearest': Image.Resampling.NEAREST,
    'bilinear': Image.Resampling.BILINEAR,
    'bicubic': Image.Resampling.BICUBIC,
    'box': Image.Resampling.BOX,
    'lanczos': Image.Resampling.LANCZOS,
    'hamming': Image.Resampling.HAMMING,
}


def short_edge_size(height: int, width: int, size: int, max_size: Optional[int] = None) -> Tuple[int, int]:
    """Output ``(h, w)`` of ``torchvision.transforms.Resize(size, max_size)``.

    The shorter side becomes ``size`` and the longer one
    ``int(size * long / short)`` (truncation, not rounding: a 500x333 image
    becomes 384x256, where mmcv's ``keep_ratio`` rounding would give 385).
    With ``max_size``, a longer side above it is brought down to ``max_size``
    and the shorter one to ``int(max_size * short / long)``, as torchvision.
    """
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    if width <= height:
        return new_long, new_short
    return new_short, new_long


@TRANSFORMS.register_module()
class ResizeShortEdge(BaseTransform):
    """Resize so that the shorter side equals ``size``, like torchvision.

    Reproduces ``torchvision.transforms.Resize(size)`` applied to a PIL image
    (the training transform of LOCATE / Cross-View-AG / WSMA / Interaction
    Hotspots): output size from :func:`short_edge_size`, pixels from
    ``PIL.Image.resize`` with the given filter (bilinear by default, which
    Pillow antialiases when shrinking). An image that already has the output
    size is returned unchanged, as torchvision does.

    ``backend='torch'`` computes the same filter (triangle kernel widened by
    the reduction factor, i.e. antialiased bilinear) with PyTorch's uint8
    kernel (``interpolate(..., mode='bilinear', antialias=True)``), 3-6x
    faster; its fixed-point rounding differs from Pillow's by one grey level
    on ~0.1-1 % of the pixels, so it is not bit-exact and not the default.

    Required keys: ``img`` (HxWxC or HxW uint8, any channel order).

    Modified keys: ``img``, ``img_shape``, and every map in ``seg_fields``
    (nearest neighbour, e.g. the ego part mask of :class:`LoadEgoPartMask`).

    Added keys: ``scale_factor`` ((w_scale, h_scale), mmcv's convention),
    ``keep_ratio`` (True).

    Args:
        size (int): Length of the shorter side after resizing (256 in the
            published training pipelines).
        interpolation (str): Pillow filter, one of ``'nearest'``,
            ``'bilinear'``, ``'bicubic'``, ``'box'``, ``'lanczos'``,
            ``'hamming'``. Defaults to ``'bilinear'`` (torchvision's default).
        max_size (int, optional): Upper bound of the longer side
            (torchvision's ``max_size``); must be larger than ``size``.
            Defaults to None (no bound).
        backend (str): ``'pillow'`` (the published pixels) or ``'torch'``
            (bilinear only; within one grey level, faster). Defaults to
            ``'pillow'``.
    """

    def __init__(
        self, size: int, interpolation: str = 'bilinear', max_size: Optional[int] = None, backend: str = 'pillow'
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(
                f'ResizeShortEdge: size must be a positive int (the shorter '
                f'side after resizing), got {size!r}. For a fixed output '
                "size use dict(type='Resize', scale=(w, h), keep_ratio=False, "
                "backend='pillow')."
            )
        if interpolation not in PILLOW_INTERPOLATIONS:
            raise ValueError(
                f'ResizeShortEdge: interpolation={interpolation!r} is not one of {sorted(PILLOW_INTERPOLATIONS)}'
            )
        bad_max = max_size is not None and (not isinstance(max_size, (int, np.integer)) or max_size <= size)
        if bad_max:
            raise ValueError(f'ResizeShortEdge: max_size must be an int larger than size ({size}), got {max_size!r}')
        if backend not in ('pillow', 'torch'):
            raise ValueError(f"ResizeShortEdge: backend must be 'pillow' or 'torch', got {backend!r}")
        if backend == 'torch' and interpolation != 'bilinear':
            raise ValueError(
                f"ResizeShortEdge: backend='torch' implements only interpolation='bilinear', got {interpolation!r}"
            )
        self.backend = backend
        self.size = int(size)
        self.interpolation = interpolation
        self.max_size = None if max_size is None else int(max_size)
        self._filter = PILLOW_INTERPOLATIONS[interpolation]

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError(
                f'ResizeShortEdge: expected a uint8 image (as loaded by '
                f'LoadAffordanceViews), got {img.dtype} for '
                f'{results.get("img_path")!r}'
            )
        h, w = img.shape[:2]
        new_h, new_w = short_edge_size(h, w, self.size, self.max_size)
        if (new_h, new_w) != (h, w):
            img = self._resize(img, new_h, new_w)
            for key in results.get('seg_fields', []):
                results[key] = self._resize_map(results[key], new_h, new_w, key, results)
        results['img'] = img
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = True
        return results

    @staticmethod
    def _resize_map(seg: np.ndarray, new_h: int, new_w: int, key: str, results: dict) -> np.ndarray:
        """A per-pixel label map (``seg_fields``) to the new size, nearest neighbour (labels stay labels)."""
        if seg.shape[:2] != results['img'].shape[:2]:
            raise ValueError(
                f'ResizeShortEdge: {key} is {seg.shape[:2]} but the image is {results["img"].shape[:2]} '
                f'({results.get("img_path")!r}); a per-pixel map must have its image\'s size.'
            )
        return np.array(Image.fromarray(np.ascontiguousarray(seg)).resize((new_w, new_h), Image.NEAREST))

    def _resize(self, img: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
        if self.backend == 'torch':
            return _torch_antialiased_bilinear(img, new_h, new_w)
        # Image.fromarray wants C-contiguous memory (it copies otherwise);
        # np.array: writable output for any later in-place transform.
        pil = Image.fromarray(np.ascontiguousarray(img))
        return np.array(pil.resize((new_w, new_h), self._filter))

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(size={self.size}, interpolation='
            f'{self.interpolation!r}, max_size={self.max_size}, '
            f'backend={self.backend!r})'
        )


def _torch_antialiased_bilinear(img: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """Antialiased bilinear resize of a uint8 HxW(xC) array with PyTorch."""
    import torch
    import torch.nn.functional as F

    arr = img if img.ndim == 3 else img[..., None]
    # (1, C, H, W) view of the HWC memory (channels-last): no copy in or out
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]
    out = F.interpolate(x, size=(new_h, new_w), mode='bilinear', align_corners=False, antialias=True)
    out = out[0].permute(1, 2, 0).numpy()
    return out if img.ndim == 3 else out[..., 0]
