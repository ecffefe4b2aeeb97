"""Reading, decoding and probing the files of a dataset: the rules that decide whether a file is usable.

* The loading transforms read with :func:`read_file` and decode with :func:`decode_image` /
  :func:`decode_gt`; these raise :class:`BadFileError`, which names the file, so a training dataset can
  skip the item and draw another one (:class:`~.SkipBadFilesMixin`).
* :func:`probe_file` never raises on bad content: it returns what is wrong. The datasets' ``verify_images``
  (:func:`find_unreadable`) and ``tools/misc/check_dataset.py`` probe with it, so both judge a file as the
  pipeline's decoder does.

See ``docs/bad_inputs.md`` for the catalogue of bad inputs and what each one does.
"""

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image, UnidentifiedImageError

#: Levels of ``verify_images``: ``'header'`` reads each file and parses its
#: header (and checks that a JPEG / PNG is not cut short); ``'full'`` also
#: decodes every pixel with the decoder the training pipeline uses.
VERIFY_LEVELS: Tuple[str, ...] = ('header', 'full')

_JPEG_SOI = b'\xff\xd8\xff'
_JPEG_EOI = b'\xff\xd9'
_JPEG_SOS = b'\xff\xda'
_PNG_SIG = b'\x89PNG\r\n\x1a\n'

FIX_IMAGE = 're-download or re-extract it, or delete it'
FIX_GT = 're-download or re-extract the GT folder'


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
class BadFileError(OSError):
    """A file of the dataset cannot be read or decoded.

    ``str(err)`` names the file and the fix; ``err.path`` is the file, so a
    dataset can skip it (and stop drawing it) instead of crashing mid-epoch.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # keep ``path`` through pickling (worker -> main)
        return type(self), (str(self), self.path)


class MissingFileError(BadFileError, FileNotFoundError):
    """A file the dataset listed has disappeared."""


# --------------------------------------------------------------------------- #
# reading and decoding (used by the loading transforms)
# --------------------------------------------------------------------------- #
def read_file(path: str, backend_args: Optional[dict], owner: str) -> bytes:
    """Read a file through the MMEngine file backend, naming it on failure.

    Raises:
        MissingFileError: the file does not exist (the tree changed after
            the dataset listed it).
        BadFileError: any other read error (permissions, I/O, a remote
            backend's failure).
    """
    try:
        return fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise MissingFileError(
            f'{owner}: file {path!r} does not exist; the dataset listed it, '
            'so the tree changed after the dataset was built. Rebuild the '
            'dataset or restore the file.',
            path,
        ) from err
    except OSError as err:
        raise BadFileError(f'{owner}: cannot read {path!r}: {err}. Check the file and its permissions.', path) from err


def truncation(data: bytes) -> Optional[str]:
    """Why ``data`` looks like a cut-short JPEG or PNG, or None.

    Cheap byte checks, independent of the decoder (OpenCV 4 decodes a
    truncated JPEG with only a printed warning, filling the missing rows
    with grey): a JPEG must have an end-of-image marker after its last
    start-of-scan marker (entropy-coded data never contains ``FF D9``); a PNG
    must have its ``IEND`` chunk.
    """
    if data.startswith(_JPEG_SOI):
        if data.rfind(_JPEG_EOI) < data.rfind(_JPEG_SOS):
            return 'JPEG data ends before its end-of-image marker (truncated)'
    elif data.startswith(_PNG_SIG):
        if data.rfind(b'IEND') < 0:
            return 'PNG data ends before its IEND chunk (truncated)'
    return None


def _bad_content(data: bytes) -> Optional[str]:
    if not data:
        return 'the file is empty (0 bytes)'
    return truncation(data)


def ensure_bgr3(img: np.ndarray) -> np.ndarray:
    """Return a 3-channel BGR image from a gray, BGR or BGRA array."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def _decode_image(
    data: bytes, backend: str, ignore_orientation: bool = False
) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(BGR image, None)`` or ``(None, why it cannot be decoded)``; with
    ``ignore_orientation`` the pixels as stored (EXIF rotation not applied)."""
    problem = _bad_content(data)
    if problem is not None:
        return None, problem
    flag = 'color_ignore_orientation' if ignore_orientation else 'color'
    try:
        img = mmcv.imfrombytes(data, flag=flag, channel_order='bgr', backend=backend)
    except Exception as err:  # decoders raise many types on bad bytes
        return None, f'{type(err).__name__}: {err}'.strip()
    if img is None or img.size == 0:
        return None, 'the decoder returned no pixels'
    return np.ascontiguousarray(ensure_bgr3(img)), None


def decode_image(data: bytes, path: str, owner: str, backend: str = 'cv2') -> np.ndarray:
    """Decode an image to 3-channel BGR uint8 (gray and CMYK are converted).

    Raises:
        BadFileError: the bytes are empty, cut short, or not an image; the
            message names ``path`` and the fix.
    """
    img, problem = _decode_image(data, backend)
    if problem is not None:
        raise BadFileError(
            f'{owner}: cannot decode image {path!r} ({len(data)} bytes): '
            f'{problem}. The file is corrupt or not an image; {FIX_IMAGE}. '
            'tools/misc/check_dataset.py lists every such file.',
            path,
        )
    return img


def _decode_gt(data: bytes) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(GT as stored, None)`` or ``(None, why it cannot be used)``."""
    problem = _bad_content(data)
    if problem is not None:
        return None, problem
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        return None, 'not a decodable image'
    if raw.dtype not in (np.uint8, np.uint16):
        return None, f'pixel type {raw.dtype}; expected an 8-bit or 16-bit PNG'
    return raw, None


def decode_gt(data: bytes, path: str, owner: str) -> np.ndarray:
    """Decode a GT heatmap file as stored (uint8 / uint16, 1, 3 or 4 channels).

    Raises:
        BadFileError: empty, cut short, undecodable, or not 8/16-bit.
    """
    raw, problem = _decode_gt(data)
    if problem is not None:
        raise BadFileError(
            f'{owner}: cannot decode GT heatmap {path!r} ({len(data)} bytes): '
            f'{problem}. The file is corrupt or not a heatmap; {FIX_GT}.',
            path,
        )
    return raw


def gt_is_color(raw: np.ndarray) -> bool:
    """Whether a decoded GT has colour channels that differ (a colour
    rendering, not a gray heatmap stored as RGB)."""
    if raw.ndim != 3 or raw.shape[2] < 3:
        return False
    bgr = raw[..., :3]
    return bool((bgr[..., 0] != bgr[..., 1]).any() or (bgr[..., 0] != bgr[..., 2]).any())


#: Where a GT file's map is, as :func:`gt_map_source` decides: a single channel (``'gray'``), equal colour
#: channels (``'gray_channels'``), differing colour channels (``'colour'``, ITU-R 601 luma), the alpha channel
#: over constant colour channels (``'alpha'``: maps exported from drawing tools), or gray colour channels cut
#: out by a two-level alpha mask (``'cutout'``: the map where alpha > 0, zero where transparent).
GT_SOURCES = ('gray', 'gray_channels', 'colour', 'alpha', 'cutout')


def gt_map_source(raw: np.ndarray) -> Tuple[Optional[str], Optional[str]]:
    """``(source, None)``: which channel(s) of a decoded GT carry its map (one of :data:`GT_SOURCES`), or
    ``(None, why)`` when a 4-channel file is ambiguous (both the colour and the alpha channels vary in ways
    that are neither a map over a constant colour nor a cut-out).

    Converting RGBA from its colour channels alone scored a map drawn in the alpha channel over white as
    KLD 0.919 / SIM 0.556 / NSS 0 instead of 2.459 / 0.212 / 2.003, and over black as an all-zero GT.
    """
    if raw.ndim == 2:
        return 'gray', None
    colour = 'colour' if gt_is_color(raw) else 'gray_channels'
    if raw.shape[2] < 4:
        return colour, None
    alpha = raw[..., 3]
    if alpha.min() == alpha.max():
        # fully transparent: nothing is drawn (an all-zero map); opaque or uniformly translucent: the colour is
        return ('alpha' if alpha.max() == 0 else colour), None
    bgr = raw[..., :3]
    if (bgr == bgr[:1, :1]).all():
        return 'alpha', None
    if colour == 'gray_channels' and np.array_equal(bgr[..., 0], alpha):
        return 'gray_channels', None  # the same map in both
    if colour == 'gray_channels' and len(np.unique(alpha)) == 2 and alpha.min() == 0:
        return 'cutout', None
    return None, (
        'both its colour channels and its alpha channel vary, so it is unclear which one is the heatmap; '
        'save it as a single-channel (grayscale) PNG'
    )


def gt_heatmap(raw: np.ndarray, path: str, owner: str) -> Tuple[np.ndarray, str]:
    """The map of a decoded GT (:func:`decode_gt`) as float64 in [0, 1] at the file's size, and its source
    (:func:`gt_map_source`). 8-bit files are divided by 255, 16-bit ones by 65535.

    Raises:
        BadFileError: an ambiguous 4-channel file (the message names it and the fix).
    """
    source, problem = gt_map_source(raw)
    if source is None:
        raise BadFileError(f'{owner}: GT heatmap {path!r}: {problem}; {FIX_GT}.', path)
    scale = 255.0 if raw.dtype == np.uint8 else 65535.0
    if source == 'gray':
        return raw.astype(np.float64) / scale, source
    if source == 'alpha':
        return raw[..., 3].astype(np.float64) / scale, source
    if source in ('gray_channels', 'cutout'):
        heat = raw[..., 0].astype(np.float64) / scale
        if source == 'cutout':
            heat[raw[..., 3] == 0] = 0.0
        return heat, source
    heat = raw[..., :3].astype(np.float64) / scale
    heat = 0.114 * heat[..., 0] + 0.587 * heat[..., 1] + 0.299 * heat[..., 2]
    np.clip(heat, 0.0, 1.0, out=heat)
    return heat, source


# --------------------------------------------------------------------------- #
# probing (never raises on bad content)
# --------------------------------------------------------------------------- #
@dataclass
class FileProbe:
    """What :func:`probe_file` found out about one file.

    Attributes:
        path: The file.
        kind: ``'image'`` or ``'gt'``.
        error: Why the file cannot be used (None when it can).
        shape: ``(h, w)`` from the header.
        mode: PIL mode from the header (``'RGB'``, ``'L'``, ``'CMYK'``,
            ``'I;16'``, ...).
        channels: GT channels after decoding (``'full'`` level only).
        bit_depth: GT bits per channel, 8 or 16 (``'full'`` level only).
        gt_max: GT maximum as stored (``'full'`` level only).
        gt_color: GT colour channels differ (``'full'`` level only).
        gt_source: where the GT's map is (:data:`GT_SOURCES`; ``'full'`` level only); ``gt_max`` is the
            maximum of that map as the loader reads it (0: an all-zero GT).
        exif_orientation: EXIF orientation tag of an image (1: none).
    """

    path: str
    kind: str
    error: Optional[str] = None
    shape: Optional[Tuple[int, int]] = None
    mode: Optional[str] = None
    channels: Optional[int] = None
    bit_depth: Optional[int] = None
    gt_max: Optional[float] = None
    gt_color: Optional[bool] = None
    gt_source: Optional[str] = None
    exif_orientation: int = 1


#: EXIF orientations (tag 0x0112) that rotate by 90 or 270 degrees, i.e. swap height and width.
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


@contextlib.contextmanager
def _no_pixel_limit():
    """Parse headers without PIL's decompression-bomb limit.

    PIL refuses images above ``2 * Image.MAX_IMAGE_PIXELS`` (~179 M pixels, e.g. a 15000 x 12500 photo) with
    ``DecompressionBombError``, although only the header is read here and the training decoder (OpenCV,
    limit 2^30 pixels) reads such an image fine; a valid file must not be reported unreadable for it.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation of an opened image (1 = none), 1 when it has no readable EXIF."""
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not our concern here
        return 1


def probe_file(
    path: str,
    kind: str = 'image',
    level: str = 'full',
    backend_args: Optional[dict] = None,
    ignore_orientation: bool = True,
) -> FileProbe:
    """Read ``path`` and check it at ``level`` (see :data:`VERIFY_LEVELS`).

    ``'header'`` reads the bytes, checks they are not empty or cut short and
    parses the header with PIL (size, mode, EXIF orientation; without PIL's
    decompression-bomb limit). ``'full'`` also decodes the file with the
    decoder the pipeline uses (cv2 for images, :func:`decode_gt` for GT), so
    a file that passes will load in training.

    ``ignore_orientation`` must be that of the pipeline's
    ``LoadAffordanceViews`` (default True: the pixels as stored, as the
    published PIL loading); with False the decoder turns EXIF-rotated images
    upright. Both levels then report the size the pipeline will see.
    """
    if level not in VERIFY_LEVELS:
        raise ValueError(f'probe_file: level must be one of {VERIFY_LEVELS}, got {level!r}.')
    if kind not in ('image', 'gt'):
        raise ValueError(f"probe_file: kind must be 'image' or 'gt', got {kind!r}.")
    probe = FileProbe(path=path, kind=kind)
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        probe.error = 'the file does not exist'
        return probe
    except OSError as err:
        probe.error = f'cannot read the file ({err})'
        return probe
    problem = _bad_content(data)
    if problem is not None:
        probe.error = problem
        return probe
    try:
        with _no_pixel_limit(), Image.open(io.BytesIO(data)) as im:
            probe.shape = (int(im.height), int(im.width))
            probe.mode = im.mode
            if kind == 'image':
                probe.exif_orientation = _exif_orientation(im)
                if not ignore_orientation and probe.exif_orientation in _TRANSPOSING_ORIENTATIONS:
                    # the decoder turns it upright: report the size it gives
                    probe.shape = probe.shape[::-1]
    except UnidentifiedImageError:
        probe.error = 'not an image (unknown format)'
        return probe
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        probe.error = f'not a readable image ({err})'
        return probe
    if level == 'header':
        return probe
    if kind == 'image':
        img, probe.error = _decode_image(data, 'cv2', ignore_orientation)
        if img is not None:
            probe.shape = tuple(img.shape[:2])
        return probe
    raw, probe.error = _decode_gt(data)
    if raw is not None:
        probe.shape = tuple(raw.shape[:2])
        probe.channels = 1 if raw.ndim == 2 else int(raw.shape[2])
        probe.bit_depth = 8 * raw.dtype.itemsize
        probe.gt_source, problem = gt_map_source(raw)
        if problem is not None:
            probe.error = problem
            return probe
        probe.gt_color = probe.gt_source == 'colour'
        probe.gt_max = float(gt_heatmap(raw, path, 'probe_file')[0].max())
    return probe


def _probe_task(args: tuple) -> FileProbe:
    return probe_file(*args)


def probe_files(
    items: Sequence[Tuple[str, str]],
    level: str = 'full',
    backend_args: Optional[dict] = None,
    nproc: int = 1,
    progress: bool = False,
    progress_file=None,
    ignore_orientation: bool = True,
) -> List[FileProbe]:
    """Probe many ``(path, kind)`` items, in order, optionally in parallel.

    Args:
        items: ``(path, 'image' | 'gt')`` pairs.
        level: ``'header'`` or ``'full'``.
        backend_args: MMEngine file backend arguments.
        nproc: Worker processes (1 = in this process).
        progress: Show an MMEngine progress bar.
        progress_file: Stream of the progress bar (stdout by default).
        ignore_orientation: As for :func:`probe_file`.
    """
    tasks = [(p, k, level, backend_args, ignore_orientation) for p, k in items]
    bar = None
    if progress and tasks:
        kwargs = {} if progress_file is None else dict(file=progress_file)
        bar = ProgressBar(len(tasks), **kwargs)
    results: List[FileProbe] = []
    if nproc > 1 and len(tasks) > 1:
        with Pool(nproc) as pool:
            for res in pool.imap(_probe_task, tasks, chunksize=16):
                results.append(res)
                if bar is not None:
                    bar.update()
    else:
        for task in tasks:
            results.append(_probe_task(task))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.file.write('\n')
    return results


def find_unreadable(
    items: Sequence[Tuple[str, str]], level: str, backend_args: Optional[dict] = None, owner: str = 'dataset'
) -> Dict[str, str]:
    """``{path: problem}`` of the items that fail :func:`probe_file`.

    Logs how many files were checked and how long it took (INFO).
    """
    start = time.perf_counter()
    bad = {p.path: p.error for p in probe_files(items, level, backend_args) if p.error is not None}
    print_log(
        f'{owner}: verify_images={level!r} checked {len(items)} '
        f'file(s) in {time.perf_counter() - start:.1f} s; '
        f'{len(bad)} unreadable.',
        logger='current',
        level=logging.INFO,
    )
    return bad
