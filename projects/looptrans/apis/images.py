"""A user's image, whatever form it comes in (a path, a PIL image, a numpy array of another dtype or channel
count), as the BGR uint8 (H, W, 3) array the test pipeline works on."""

from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine import fileio
from PIL import Image

#: What the inference functions take as one image.
ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image]


def _array_to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """A numpy image as BGR uint8 (H, W, 3): uint8 as is, float in [0, 1] scaled by 255, gray / BGRA converted.

    Anything else is refused with the reason: a float image outside [0, 1] (is it 0-255?), non-finite
    values, or integer values outside 0-255; a silent cast would feed the model a black or wrapped image.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(
            f'an image array must be (H, W, 3) BGR, (H, W, 4) BGRA or (H, W) gray, got shape {image.shape}'
        )
    if image.size == 0:
        raise ValueError(f'the image array is empty (shape {image.shape})')
    if image.dtype == np.uint8:
        out = image
    elif image.dtype == np.bool_:
        raise ValueError('a boolean array is a mask, not an image; give uint8 BGR or float in [0, 1]')
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError('the float image has NaN or infinite values')
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f'a float image must have values in [0, 1] (it is scaled by 255); this one has [{lo:g}, {hi:g}]. '
                'For 0-255 values pass image.astype(np.uint8), or divide by 255.'
            )
        out = np.round(image * 255).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.integer):
        lo, hi = int(image.min()), int(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f'an integer image must have values in 0-255, this {image.dtype} one has '
                f'[{lo}, {hi}]; convert it to uint8 first (16-bit: image // 257).'
            )
        out = image.astype(np.uint8)
    else:
        raise ValueError(f'unsupported image dtype {image.dtype}; give uint8 BGR or float in [0, 1]')
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    elif out.shape[2] == 4:
        out = cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(out)


#: File suffixes the inference tools (``tools/infer.py``, ``tools/deployment``) read as images.
IMAGE_EXTENSIONS: Tuple[str, ...] = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def load_image(image: ImageInput, ignore_orientation: bool = True) -> Tuple[np.ndarray, Optional[str]]:
    """An input image as BGR uint8 (H, W, 3) and its path (None for arrays and PIL images).

    Paths (``str`` / ``pathlib.Path``) are decoded like the data pipeline (``mmcv.imfrombytes``, cv2; the
    EXIF orientation is ignored by default, as ``LoadAffordanceViews`` and the published PIL loading do, so
    that ``tools/infer.py`` and ``tools/test.py`` see the same pixels); PIL images are converted to RGB then
    BGR; arrays follow :func:`_array_to_bgr_uint8`.

    Raises:
        ValueError: the file cannot be read or decoded, or the array / object is not an image; the message
            names the path.
        TypeError: ``image`` is of another type.
    """
    if isinstance(image, np.ndarray):
        return _array_to_bgr_uint8(image), None
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert('RGB'))[..., ::-1]), None
    if isinstance(image, torch.Tensor):
        raise TypeError('give images as numpy arrays (BGR, H x W x 3), paths or PIL images, not tensors')
    if not isinstance(image, (str, os.PathLike)):
        raise TypeError(
            f'an image must be a path (str / pathlib.Path), a PIL image or a numpy array, got {type(image).__name__}'
        )
    path = os.fspath(image)
    try:
        flag = 'color_ignore_orientation' if ignore_orientation else 'color'
        img = mmcv.imfrombytes(fileio.get(path), flag=flag, channel_order='bgr')
    except Exception as err:  # noqa: BLE001 - any read or decoder failure is reported with the path
        raise ValueError(f'cannot read image {path!r}: {err}') from err
    if img is None or img.size == 0:
        raise ValueError(f'cannot decode image {path!r} (corrupt or not an image)')
    return img, path
