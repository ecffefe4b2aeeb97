"""Ground-truth heatmaps of OPRA and EPIC-Hotspots: annotated points -> heatmap, cached on disk once.

The two video benchmarks of Interaction Hotspots (Nagarajan et al., ICCV 2019) annotate each test image with
a few points; the GT heatmap is computed from them. :func:`points_to_heatmap` follows
``Tushar-N/interaction-hotspots`` ``data/hotspot_dataset.py`` (``compute_heatmap``, called by
``generate_heatmaps(annots, kernel_size=3.0, ...)`` from ``data/opra.py`` with ``transpose=False`` and from
``data/epic.py`` with ``transpose=True``) exactly:

1. a float32 map of ``shape[0] x shape[1]`` zeros;
2. for each point ``p``: ``map[int(p[0]), int(p[1])] += 1``. An index past the end is clamped to the last
   row/column; a negative index wraps around (numpy indexing), as in the published code;
3. ``cv2.GaussianBlur(map, (k, k), 0)`` with ``k = int(sqrt(shape[0] * shape[1]) / 3.0)``, plus one when
   even (OpenCV then derives ``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8``; borders are reflect-101);
4. divided by its sum when the sum is positive;
5. transposed for EPIC (its ``shape`` is ``(width, height)`` and its points ``(x, y)``).

The evaluation (:class:`~looptrans.evaluation.AffordanceMetric`, ``protocol='hotspots'``) resizes the GT
to 224x224 and then to the evaluation resolution and normalises it again, so only the map's *shape* matters,
not its scale. :class:`HotspotsGTCache` therefore stores each map as a 16-bit grayscale PNG scaled to a
maximum of 65535 (relative precision 1.5e-5 of the peak), which :class:`LoadAffordanceGT` reads back as
``png / 65535`` like any other GT file; the published ``heatmaps.h5`` is not needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os.path as osp
import re
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from ..utils.atomic_backend import atomic_write_bytes

#: ``generate_heatmaps(..., kernel_size=3.0)`` in ``data/opra.py`` and ``data/epic.py``.
PUBLISHED_K_RATIO = 3.0
#: Bump when the rendering or the file format changes, so stale cache files are not reused.
CACHE_VERSION = 1


def published_kernel_size(shape: Sequence[int], k_ratio: float = PUBLISHED_K_RATIO) -> int:
    """Odd Gaussian kernel size ``int(sqrt(shape[0] * shape[1]) / k_ratio)`` (+1 when even)."""
    k = int(np.sqrt(shape[0] * shape[1]) / k_ratio)
    return k + 1 if k % 2 == 0 else k


def _check_shape(shape: Sequence[int]) -> Tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError) as err:
        raise ValueError(f'heatmap shape must be two ints, got {shape!r}') from err
    if h < 1 or w < 1:
        raise ValueError(f'heatmap shape must be positive, got {shape!r}')
    return h, w


def points_to_heatmap(
    points: Sequence[Sequence[float]], shape: Sequence[int], k_ratio: float = PUBLISHED_K_RATIO, transpose: bool = False
) -> np.ndarray:
    """The published GT heatmap of annotated points (see the module docstring for the exact steps).

    Args:
        points: ``(N, >=2)`` annotated points; ``p[0]`` indexes axis 0 of a ``shape`` map and ``p[1]``
            axis 1 (OPRA: ``(row, col)`` of an ``(H, W)`` image; EPIC: ``(x, y)`` of a ``(W, H)`` map that
            is then transposed).
        shape: ``annotations.json``'s ``shape`` of the image.
        k_ratio: the kernel-size divisor (3.0 as published).
        transpose: transpose the result (EPIC).

    Returns:
        float32 ``shape`` map (transposed when asked) summing to 1, or all zeros when there is no point.
    """
    h, w = _check_shape(shape)
    heatmap = np.zeros((h, w), dtype=np.float32)
    pts = np.asarray(points, dtype=np.float64)
    if pts.size == 0:
        pts = pts.reshape(0, 2)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f'points must be an (N, 2) list of [p0, p1] pairs, got shape {pts.shape}')
    for p in pts:
        row, col = int(p[0]), int(p[1])
        if row >= h or col >= w or row < -h or col < -w:  # IndexError in the published code -> clamp
            row, col = min(max(row, 0), h - 1), min(max(col, 0), w - 1)
        heatmap[row, col] += 1.0
    k = published_kernel_size((h, w), k_ratio)
    heatmap = cv2.GaussianBlur(heatmap, (k, k), 0)
    total = heatmap.sum()
    if total > 0:
        heatmap /= total
    return np.ascontiguousarray(heatmap.T) if transpose else heatmap


def heatmap_to_uint16(heatmap: np.ndarray) -> np.ndarray:
    """Scale a non-negative heatmap to a maximum of 65535 and round to uint16 (all-zero stays zero)."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    peak = heatmap.max() if heatmap.size else 0.0
    if peak <= 0:
        return np.zeros(heatmap.shape, np.uint16)
    return np.round(heatmap / peak * 65535.0).astype(np.uint16)


def _safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe rendering of ``text`` (for readability only; uniqueness comes from the hash)."""
    name = re.sub(r'[^A-Za-z0-9._-]+', '_', text).strip('._')
    return name[-limit:] or 'gt'


class HotspotsGTCache:
    """Compute GT heatmaps from points once and keep them as 16-bit PNGs in ``cache_dir``.

    A file's name holds a readable stem and a hash of everything its content depends on (the points, the
    shape, the transpose flag, the kernel ratio and :data:`CACHE_VERSION`), so a changed annotation gets a
    new file and a file present on disk is always valid: it is reused without being read. Files are written
    to a temporary name in the same folder and renamed (atomic on POSIX), so concurrent dataset builds (one
    per DDP rank or dataloader worker) never see a partial file.

    Args:
        cache_dir: folder of the PNG files (created on first use); a local, writable path.
        k_ratio: the kernel-size divisor of :func:`points_to_heatmap`.
    """

    def __init__(self, cache_dir: str, k_ratio: float = PUBLISHED_K_RATIO) -> None:
        self.cache_dir = cache_dir
        self.k_ratio = float(k_ratio)
        self.num_written = 0
        self.num_reused = 0

    def path_for(self, name: str, points: Sequence[Sequence[float]], shape: Sequence[int], transpose: bool) -> str:
        """The cache file of one annotation (whether or not it exists yet)."""
        payload = json.dumps(
            dict(
                points=np.asarray(points, np.float64).tolist(),
                shape=[int(s) for s in shape],
                transpose=bool(transpose),
                k_ratio=self.k_ratio,
                version=CACHE_VERSION,
            ),
            sort_keys=True,
        )
        digest = hashlib.sha1(payload.encode()).hexdigest()[:16]
        return osp.join(self.cache_dir, f'{_safe_name(name)}_{digest}.png')

    def get(self, name: str, points: Sequence[Sequence[float]], shape: Sequence[int], transpose: bool = False) -> str:
        """Return the PNG path of the GT heatmap of ``points``, writing it first if it is not cached.

        Args:
            name: a readable identifier (image path and verb); only the file-name stem depends on it.
            points, shape, transpose: as :func:`points_to_heatmap`.
        """
        path = self.path_for(name, points, shape, transpose)
        if osp.isfile(path):
            self.num_reused += 1
            return path
        heatmap = points_to_heatmap(points, shape, self.k_ratio, transpose)
        self._write_atomic(path, heatmap_to_uint16(heatmap))
        self.num_written += 1
        return path

    def _write_atomic(self, path: str, image: np.ndarray) -> None:
        ok, buf = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise OSError(f'HotspotsGTCache: OpenCV could not encode the GT heatmap {path!r}')
        try:
            atomic_write_bytes(buf.tobytes(), path)
        except OSError as err:
            raise PermissionError(
                f'HotspotsGTCache: cannot write GT heatmaps to {self.cache_dir!r} ({err}). Point the '
                'dataset\'s `gt_cache_dir` at a writable local folder (the default is '
                '<data_root>/gt_cache).'
            ) from err

    def log_summary(self, owner: str) -> None:
        """Log how many GT files were computed and how many were reused."""
        print_log(
            f'{owner}: GT heatmaps in {self.cache_dir!r}: {self.num_written} computed, '
            f'{self.num_reused} reused from the cache',
            logger='current',
            level=logging.INFO,
        )


def default_cache_dir(data_root: Optional[str]) -> str:
    """``<data_root>/gt_cache``."""
    return osp.join(data_root or '.', 'gt_cache')
