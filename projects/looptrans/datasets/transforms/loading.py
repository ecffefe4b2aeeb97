"""Loading of the egocentric / exocentric views and of the GT heatmaps."""
from typing import Optional

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.registry import TRANSFORMS


def read_bytes(path: str, backend_args: Optional[dict], owner: str) -> bytes:
    """Read a file through the MMEngine file backend, naming it on failure."""
    try:
        return fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f'{owner}: file {path!r} does not exist; the dataset listed it, so '
            'the tree changed after the dataset was built. Rebuild the '
            'dataset or restore the file.') from err


def ensure_bgr3(img: np.ndarray) -> np.ndarray:
    """Return a 3-channel BGR image from a gray, BGR or BGRA array."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


@TRANSFORMS.register_module()
class LoadAffordanceViews(BaseTransform):
    """Load the egocentric image and, when present, the exocentric images.

    Images are decoded as 3-channel BGR uint8, like every OpenMMLab loader
    (grayscale and CMYK files are converted).

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
        data = read_bytes(path, self.backend_args, owner)
        try:
            img = mmcv.imfrombytes(data, flag='color', channel_order='bgr',
                                   backend=self.imdecode_backend)
        except Exception as err:  # decoders raise many types on bad bytes
            raise OSError(f'{owner}: cannot decode image {path!r} '
                          f'({len(data)} bytes): {err}. The file is corrupt '
                          'or not an image; re-download or delete it.') from err
        if img is None or img.size == 0:
            raise OSError(f'{owner}: cannot decode image {path!r} '
                          f'({len(data)} bytes); the file is corrupt or not '
                          'an image. Re-download or delete it.')
        return np.ascontiguousarray(ensure_bgr3(img))

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
    so no precision is lost to rounding.

    Required keys: ``gt_path``. Added keys: ``gt_heatmap`` ((h0, w0) float32).

    Args:
        backend_args (dict, optional): MMEngine file backend arguments.
    """

    def __init__(self, backend_args: Optional[dict] = None) -> None:
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        path = results['gt_path']
        owner = type(self).__name__
        data = read_bytes(path, self.backend_args, owner)
        raw = None
        if len(data):
            raw = cv2.imdecode(np.frombuffer(data, np.uint8),
                               cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise OSError(f'{owner}: cannot decode GT heatmap {path!r} '
                          f'({len(data)} bytes); the file is corrupt or not '
                          'an image. Re-download the GT folder.')
        if raw.dtype == np.uint8:
            heat = raw.astype(np.float32) / 255.0
        elif raw.dtype == np.uint16:
            heat = raw.astype(np.float32) / 65535.0
        else:
            raise TypeError(f'{owner}: GT heatmap {path!r} has pixel type '
                            f'{raw.dtype}; expected an 8-bit or 16-bit PNG.')
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
