"""Bilinear resizing of 2-D float64 maps (``align_corners=False``), compiled, with the map's min, max and sum.

One implementation for every place where a GT heatmap is resized before it is scored: the AGD20K
metric kernel (:mod:`looptrans.evaluation.agd20k_kernel`) and ``LoadAffordanceGT(resize_to=...)``,
which resizes in the data-loader workers. Scores of a GT resized in the pipeline are therefore bit
for bit those of a GT resized in the metric. The numbers equal ``cv2.resize(..., INTER_LINEAR)`` and
``F.interpolate(mode='bilinear', align_corners=False)`` to rounding (~1e-14).
"""

from __future__ import annotations

import functools
from typing import Tuple

import numba
import numpy as np

__all__ = ['linear_resize_table', 'resize_into', 'resize_bilinear']

#: LLVM may reassociate sums (so that they vectorise), fuse multiply-adds and ignore the sign of zero;
#: it may not assume finite values (a non-finite GT must show in its sum).
FAST = {'reassoc', 'contract', 'nsz'}


@functools.lru_cache(maxsize=64)
def linear_resize_table(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``(i0, i1)`` and weight ``w1`` of each output index of a bilinear resize along one axis.

    ``align_corners=False`` (half-pixel centres): output ``o`` samples source coordinate
    ``(o + 0.5) * n_in / n_out - 0.5``, clamped to ``[0, n_in - 1]``, and mixes ``i0 = floor`` and
    ``i1 = min(i0 + 1, n_in - 1)`` with weights ``1 - w1`` and ``w1``: the rule of ``cv2.INTER_LINEAR``
    and ``F.interpolate(mode='bilinear', align_corners=False)`` (whose CPU kernel computes the same
    float64 coordinates). Cached: one evaluation size and a few image sizes per run.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f'cannot resize an axis of {n_in} pixels to {n_out}')
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    w1[i0 == n_in - 1] = 0.0  # past the last source pixel: that pixel only
    for array in (i0, i1, w1):
        array.setflags(write=False)
    return i0, i1, w1


@numba.njit(nogil=True, cache=True, fastmath=FAST, error_model='numpy')
def resize_into(src, r0, r1, rw, c0, c1, cw, row, out):  # pragma: no cover - compiled; tested through resize_bilinear
    """Bilinear resize of ``src`` into ``out`` (tables from :func:`linear_resize_table`); returns ``(min, max, sum)``.

    Rows first: each output row blends two whole source rows into ``row`` (a contiguous, vectorised
    pass that streams the source from memory, the bound of a large GT), then samples that row at
    the output columns. The sum is taken per output row, then over rows; it is NaN or infinite
    when any resized value is.
    """
    h, w = out.shape
    lo = np.inf
    hi = -np.inf
    total = 0.0
    for i in range(h):
        top = src[r0[i]]
        bottom = src[r1[i]]
        b = rw[i]
        for k in range(top.shape[0]):  # also at weight 0: a NaN that cv2 would read (0 * NaN) shows here too
            row[k] = top[k] + b * (bottom[k] - top[k])
        out_row = out[i]
        row_sum = 0.0
        for j in range(w):
            x0 = c0[j]
            v = row[x0] + cw[j] * (row[c1[j]] - row[x0])
            out_row[j] = v
            lo = min(lo, v)
            hi = max(hi, v)
            row_sum += v
        total += row_sum
    return lo, hi, total


@numba.njit(nogil=True, cache=True, fastmath=FAST, error_model='numpy')
def upsample_into(src, r0, r1, rw, c0, c1, cw, out):  # pragma: no cover - compiled; tested through its callers
    """:func:`resize_into` for a source with fewer rows than ``out`` (a 14 x 14 prediction to 224 x 224).

    Columns first: every source row is sampled at the output columns once (a few thousand values), then
    each output row blends two of those rows, a contiguous vectorised pass; rows first would sample the
    columns of every output row. The same bilinear weights as :func:`resize_into`, the operations in the
    other order (the values agree to rounding, ~1e-16). Returns ``(min, max, sum)`` as it does.
    """
    h, w = out.shape
    cols = np.empty((src.shape[0], w))
    for k in range(src.shape[0]):
        src_row = src[k]
        cols_row = cols[k]
        for j in range(w):
            x0 = c0[j]
            cols_row[j] = src_row[x0] + cw[j] * (src_row[c1[j]] - src_row[x0])
    lo = np.inf
    hi = -np.inf
    total = 0.0
    for i in range(h):
        top = cols[r0[i]]
        bottom = cols[r1[i]]
        b = rw[i]
        out_row = out[i]
        row_sum = 0.0
        for j in range(w):
            v = top[j] + b * (bottom[j] - top[j])
            out_row[j] = v
            lo = min(lo, v)
            hi = max(hi, v)
            row_sum += v
        total += row_sum
    return lo, hi, total


def resize_bilinear(src: np.ndarray, size_hw: Tuple[int, int]) -> Tuple[np.ndarray, float, float, float]:
    """The kernel's bilinear resize of a 2-D map to ``size_hw``, with the map's min, max and sum.

    The same numbers as ``cv2.resize(src, size_hw[::-1], interpolation=cv2.INTER_LINEAR)`` to rounding
    (~1e-14; the operations are ordered differently), in float64.
    """
    src = np.ascontiguousarray(src, dtype=np.float64)
    if src.ndim != 2:
        raise ValueError(f'resize_bilinear: expected a 2-D map, got shape {src.shape}')
    out = np.empty(size_hw)
    tables = linear_resize_table(src.shape[0], size_hw[0]) + linear_resize_table(src.shape[1], size_hw[1])
    lo, hi, total = resize_into(src, *tables, np.empty(src.shape[1]), out)
    return out, float(lo), float(hi), float(total)
