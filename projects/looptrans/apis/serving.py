"""What a tool that shows inference results to a person shares with ``tools/infer.py``.

* :func:`inspect_image_file`: a look at an image file's header *before* it is decoded, so that a server can refuse
  a 20000 x 20000 upload (1.2 GB once decoded) or an empty one with a clear reason, and can say what the decoder
  will convert (CMYK, 16-bit, alpha, EXIF orientation) instead of doing it silently. The pixels themselves are
  then read by :func:`looptrans.apis.load_image`, as ``tools/infer.py`` reads them.
* :func:`overlay_picture`: the picture ``tools/infer.py`` writes as ``<name>_<affordance>_overlay.jpg`` (image,
  colour-mapped heatmap, colour scale, caption), as an array, so a viewer shows exactly that picture.
* :func:`result_json`: the text ``tools/infer.py`` writes as ``<name>.json`` (``AffordanceResult.to_dict()``).

``tools/web_demo.py`` uses all three; ``tests/test_web_demo.py`` checks them against ``tools/infer.py``'s own
output functions.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..visualization import draw_colour_scale, overlay_heatmap, put_caption
from .results import AffordanceResult

#: Default pixel limit of :func:`inspect_image_file`: 64 MP (a 48 MP phone photo passes; 192 MB once decoded).
MAX_IMAGE_PIXELS = 64_000_000

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@dataclass
class ImageFileInfo:
    """What an image file's header says.

    Attributes:
        width: width in pixels, or None when the header could not be read (unknown format: the decoder decides).
        height: height in pixels, or None likewise.
        format: the format PIL names (``'JPEG'``, ``'PNG'``, ...), or None.
        mode: PIL's pixel mode (``'RGB'``, ``'CMYK'``, ``'I;16'``, ...), or None.
        notes: one sentence per conversion the decoder will make (empty for a plain 8-bit RGB / gray file).
    """

    width: Optional[int] = None
    height: Optional[int] = None
    format: Optional[str] = None
    mode: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def _png_header(path: str) -> Optional[tuple]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, or None when it is not a PNG."""
    with open(path, 'rb') as f:
        head = f.read(29)
    if len(head) < 29 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b'IHDR':
        return None
    width, height, depth, colour = struct.unpack('>IIBB', head[16:26])
    return width, height, depth, colour


def inspect_image_file(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageFileInfo:
    """Read an image file's header (not its pixels) and refuse what should not be decoded.

    Raises ValueError, with a reason a person can act on, for an empty file, an image of 0 pixels, or one of
    more than ``max_pixels``. A file whose header PIL cannot read is not refused here (OpenCV, the decoder of
    :func:`looptrans.apis.load_image`, has the last word; it refuses non-images with its own message); its
    size is then unknown (None).

    The notes say what the decoder (OpenCV, colour, EXIF orientation ignored, as ``tools/infer.py`` and the
    test pipeline read images) does with the file: CMYK converted to RGB, 16 bits per channel scaled to 8,
    the alpha channel dropped, a gray image repeated over three channels, an EXIF rotation not applied.
    """
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise ValueError('the file is empty (0 bytes)')
    info = ImageFileInfo()
    png = _png_header(path)
    if png is not None:  # a PNG's size is in its first bytes, also when PIL would refuse it
        info.width, info.height, depth, colour = png
        info.format = 'PNG'
        if depth == 16:
            info.notes.append('16 bits per channel: scaled to 8 bits (value // 256) by the decoder')
        if colour in (4, 6):
            info.notes.append('the alpha channel (transparency) is dropped')
    if info.width == 0 or info.height == 0:
        raise ValueError(f'the image has no pixels ({info.width} x {info.height})')
    if info.width is not None and info.width * info.height > max_pixels:
        raise ValueError(_too_large(info.width, info.height, max_pixels))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(path) as im:
                info.width, info.height = im.size
                info.format, info.mode = im.format, im.mode
                orientation = im.getexif().get(0x0112, 1)  # EXIF Orientation
    except Image.DecompressionBombError:
        raise ValueError(
            f'the image is larger than {2 * Image.MAX_IMAGE_PIXELS:,} pixels (this server takes at most {max_pixels:,})'
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, struct.error):
        return info  # unknown to PIL: the decoder decides
    if info.width == 0 or info.height == 0:
        raise ValueError(f'the image has no pixels ({info.width} x {info.height})')
    if info.width * info.height > max_pixels:
        raise ValueError(_too_large(info.width, info.height, max_pixels))
    if info.mode == 'CMYK':
        info.notes.append('CMYK: converted to RGB by the decoder')
    elif info.mode in ('I;16', 'I;16B', 'I;16L', 'I') and png is None:
        info.notes.append('16 bits per channel: scaled to 8 bits by the decoder')
    if info.mode in ('RGBA', 'LA', 'PA') and png is None:
        info.notes.append('the alpha channel (transparency) is dropped')
    if info.mode in ('L', 'LA', 'I;16', 'I;16B', 'I;16L', 'I', '1'):
        info.notes.append('gray: repeated over the three colour channels')
    if orientation not in (None, 1):
        info.notes.append(
            f'EXIF orientation {orientation} is not applied: the pixels are used as stored, as tools/infer.py and '
            'the test pipeline use them'
        )
    return info


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f'the image is too large: {width} x {height} = {width * height / 1e6:.1f} MP, this server takes at most '
        f'{max_pixels / 1e6:.1f} MP; make it smaller first'
    )


def overlay_picture(image_rgb: np.ndarray, heatmap: np.ndarray, caption: str, alpha: float = 0.5) -> np.ndarray:
    """The picture ``tools/infer.py`` writes as ``<name>_<affordance>_overlay.jpg``, as an RGB uint8 array:
    ``heatmap`` colour-mapped over ``image_rgb`` with opacity ``alpha``, the colour scale (max at the top), and
    ``caption`` (there: the affordance name) at the top left."""
    return put_caption(draw_colour_scale(overlay_heatmap(image_rgb, heatmap, alpha)), caption)


def result_json(result: AffordanceResult) -> str:
    """The text ``tools/infer.py`` writes as ``<name>.json``: ``result.to_dict()`` with one-space indents."""
    return json.dumps(result.to_dict(), indent=1)
