"""Loading of the egocentric / exocentric views and of the GT heatmaps."""
import logging
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS

from ..checks import (decode_gt, decode_image, ensure_bgr3, gt_is_color,
                      read_file)

__all__ = ['LoadAffordanceViews', 'LoadAffordanceGT', 'ensure_bgr3']


@TRANSFORMS.register_module()
class LoadAffordanceViews(BaseTransform):
    """Load the egocentric image and, when present, the exocentric images.

    Images are decoded as 3-channel BGR uint8, like every OpenMMLab loader
    (grayscale and CMYK files are converted). A file that is missing, empty,
    cut short or not an image raises
    :class:`~looptrans.datasets.checks.BadFileError` naming the file; the
    affordance datasets catch it in training and draw another item.

    Required keys: ``img_path``; optional ``exo_paths`` (list, train).

    Added keys: ``img`` (ego, HxWx3 uint8), ``exo_imgs`` (list of HxWx3 uint8,
    only when ``exo_paths`` is given), ``ori_shape`` and ``img_shape`` (the
    ego image's (h, w)).

    Args:
        imdecode_backend (str): ``mmcv.imfrombytes`` backend. Defaults to
            'cv2'.
        backend_args (dict, optional): MMEngine file backend arguments.
    """

    def __init__(self, imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def _load(self, path: str) -> np.ndarray:
        owner = type(self).__name__
        data = read_file(path, self.backend_args, owner)
        return decode_image(data, path, owner, self.imdecode_backend)

    def transform(self, results: dict) -> dict:
        img = self._load(results['img_path'])
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        exo_paths = results.get('exo_paths')
        if exo_paths:
            results['exo_imgs'] = [self._load(p) for p in exo_paths]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(imdecode_backend='
                f'{self.imdecode_backend!r}, backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadAffordanceGT(BaseTransform):
    """Load a GT heatmap as float32 in [0, 1] at the file's own size.

    8-bit files are divided by 255 and 16-bit files by 65535; RGB(A) files
    are converted to gray (ITU-R 601 weights, alpha ignored) after scaling,
    so no precision is lost to rounding. A colour GT whose channels differ
    (likely a colour-mapped rendering, for which luma is not the heat) is
    converted too but logged as a warning, once per transform. Unreadable
    files raise :class:`~looptrans.datasets.checks.BadFileError`.

    Required keys: ``gt_path``. Added keys: ``gt_heatmap`` ((h0, w0) float32).

    Args:
        backend_args (dict, optional): MMEngine file backend arguments.
    """

    def __init__(self, backend_args: Optional[dict] = None) -> None:
        self.backend_args = backend_args
        self._warned_color = False

    def transform(self, results: dict) -> dict:
        path = results['gt_path']
        owner = type(self).__name__
        raw = decode_gt(read_file(path, self.backend_args, owner), path, owner)
        if not self._warned_color and gt_is_color(raw):
            print_log(
                f'{owner}: GT heatmap {path!r} is a colour image whose '
                'channels differ; it is converted to gray with ITU-R 601 '
                'weights. If it is a colour-mapped rendering the scores are '
                'wrong: store GT as single-channel PNGs (warned once; '
                'tools/misc/check_dataset.py lists every such file).',
                logger='current', level=logging.WARNING)
            self._warned_color = True
        scale = 255.0 if raw.dtype == np.uint8 else 65535.0
        heat = raw.astype(np.float32) / scale
        if heat.ndim == 3:
            if heat.shape[2] == 4:
                heat = cv2.cvtColor(heat, cv2.COLOR_BGRA2GRAY)
            elif heat.shape[2] == 3:
                heat = cv2.cvtColor(heat, cv2.COLOR_BGR2GRAY)
            else:
                heat = heat[..., 0]
        results['gt_heatmap'] = np.clip(heat, 0.0, 1.0).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(backend_args={self.backend_args})'
