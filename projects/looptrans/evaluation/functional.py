"""Affordance-grounding scores of a batch of heatmaps, with the published protocols' exact arithmetic.

Two published protocols are implemented; both must match the original evaluation code number for
number, because papers compare against each other's tables.

**AGD20K / HICO-IIF** (the evaluation code of LOCATE, CVPR 2023, and Cross-View-AG, CVPR 2022), per
image:

* prediction: ``cv2.resize(pred, (224, 224))`` (``INTER_LINEAR``), then min-max normalised
  ``(x - min) / (max - min + 1e-10)``;
* GT: ``gray / 255`` resized the same way;
* ``KLD = sum(g * log(g / (p + 1e-12) + 1e-12))`` with ``p = pred / (sum(pred) + 1e-12)`` and
  ``g = gt / (sum(gt) + 1e-12)``; ``SIM = sum(min(p, g))``;
* ``NSS = sum(s * f) / sum(f + 1e-12)`` with ``s = (pred - mean(pred)) / std(pred)`` (``ddof=0``)
  and ``f = minmax(gt / 255) > 0.1``, ``minmax(x) = (x - min) / (max - min + 1e-12)``. The published
  ``cal_nss`` divides the GT (already ``gray / 255``) by 255 once more before the min-max; the
  ``+ 1e-12`` does not scale with it, so that division is reproduced (it decides pixels within
  ~1e-10 of the threshold). The published denominator adds 1e-12 *per pixel*; that is reproduced.

The GT must arrive in float64 (``gray / 255.0``, as :class:`~looptrans.datasets.LoadAffordanceGT`
loads it): resizing puts many GT pixels exactly half-way between grey levels, and in float32 some of
them cross NSS's threshold (``tests/test_gt_fidelity.py``).

**Interaction Hotspots** (OPRA / EPIC-Hotspots; ``Tushar-N/interaction-hotspots``,
``utils/evaluation.py`` ``Evaluator.score`` / ``KLD`` / ``SIM`` / ``AUC_Judd`` and ``eval.py``), per
image:

* prediction resized to the evaluation resolution (``--res``, 28 in ``eval.py``) with bilinear,
  ``align_corners=False`` interpolation (identical to ``cv2.INTER_LINEAR``), divided by
  ``max + 1e-12`` and blurred with ``cv2.GaussianBlur(pred, (5, 5), 0)``;
* GT resized to 224x224 (``eval.py: generate_gt``) and then to the evaluation resolution; a GT that
  sums to 0 becomes uniform for KLD and SIM (same formulas and eps as above);
* AUC-J (Judd): fixations ``gt / max(gt) + 1e-12 > 0.5``; the saliency map gets ``U[0, 1) * 1e-7``
  jitter, is min-max normalised with ``+1e-12``; thresholds are the saliency values at the
  fixations, and the area under the (FP rate, TP rate) curve, closed by (0, 0) and (1, 1), is taken
  with the trapezoid rule. An image with no fixation (or with every pixel a fixation: the FP rate is
  then 0/0) has no AUC-J (NaN here, ``None`` in the published code) and is left out of the mean.

Conventions of this module:

* Maps are 2-D; a batch is an ``(N, H, W)`` array or a sequence of 2-D arrays of any sizes. All
  arithmetic is ``float64``, GT included (the published prediction path, ``normalize_map`` on the
  network's float32 output, runs in ``float32``; the difference is ~1e-7 per score).
* On the CPU the AGD20K scores are computed one image at a time by a compiled kernel
  (:mod:`looptrans.evaluation.agd20k_kernel`, numba): both bilinear resizes (the same numbers as
  ``cv2.INTER_LINEAR`` to ~1e-14) and every score in four fused loops over the maps, on scratch
  maps reused from image to image, with the published steps rearranged into fewer passes (exact in
  real arithmetic; the scores differ from the published operations by rounding, ~1e-14), optionally
  on several threads (the kernel releases the GIL). :func:`agd20k_scores_batched` computes them
  batched over images with torch on any device (an accelerator in the test loop), with the
  published operations as they are and ``F.interpolate`` for the resize. Elsewhere (``resize_maps``,
  the Hotspots scores) resizing calls OpenCV once per map (``cv2.resize`` on a many-channel image
  gives slightly different numbers, ~1e-5, so maps are never stacked as channels), and the Hotspots
  scores are vectorised over chunks of maps. No Python loop runs over pixels.
* Where the time goes (AGD20K, CPU, 14x14 predictions, 480x640 float64 GT; ``docs/benchmarks.md``):
  about half is the GT resize, which reads the whole 2.4 MB GT map from memory (memory-bound); the
  published code's per-pixel Python loop (``image_binary``) is ~90% of its ~7-8 ms per image.
* Non-finite values in a prediction are replaced by the finite minimum of that map (0 if it has
  none) before anything else; the affected images are flagged so callers can count and report them.
* A score that is undefined for an image is NaN in the returned arrays, with a flag saying why;
  callers (:class:`~looptrans.evaluation.AffordanceMetric`) leave those images out of the means.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# The shared normaliser and non-finite replacement (re-exported: part of this module's protocol API).
# Every metric call passes its published eps explicitly (EPS for AUC-J, 1e-10 for predictions).
from ..utils.maps import minmax_normalize, replace_nonfinite
from .agd20k_kernel import GT_BAD, GT_EMPTY, agd20k_image

__all__ = [
    'EPS',
    'PRED_MINMAX_EPS',
    'AUC_JITTER',
    'HOTSPOTS_GT_SIZE',
    'NSS_GT_DIVISOR',
    'as_map_list',
    'replace_nonfinite',
    'resize_maps',
    'minmax_normalize',
    'kld',
    'sim',
    'kld_sim',
    'nss',
    'gaussian_blur_5x5',
    'hotspots_fixations',
    'auc_judd',
    'agd20k_scores',
    'agd20k_scores_batched',
    'hotspots_scores',
]

#: eps of the KLD / SIM normalisation, the NSS fixation min-max and the AUC-J saliency min-max.
EPS = 1e-12
#: eps of the prediction's min-max normalisation in the AGD20K protocol (``normalize_map``).
PRED_MINMAX_EPS = 1e-10
#: amplitude of the uniform jitter that AUC-J adds to break ties between saliency values.
AUC_JITTER = 1e-7
#: the Hotspots protocol stores its GT at 224x224 before the evaluator resizes it to ``--res``.
HOTSPOTS_GT_SIZE = 224
#: the published ``cal_nss`` divides the GT map (already grayscale / 255) by 255 again (see :func:`nss`).
NSS_GT_DIVISOR = 255.0
#: NSS fixations: min-max normalised GT above this value.
NSS_THRESHOLD = 0.1
#: maps scored together by ``hotspots_scores`` (see ``_by_chunks``).
_CHUNK = 4

MapBatch = Union[np.ndarray, Sequence[np.ndarray]]
Size = Union[int, Tuple[int, int]]
JitterSpec = Union[None, np.random.Generator, Sequence[np.random.Generator]]


def _size_hw(size: Size) -> Tuple[int, int]:
    """Turn ``size`` (int or ``(h, w)``) into a validated ``(h, w)`` tuple."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f'evaluation size must be positive, got {size!r}')
    return int(h), int(w)


def _name(names: Optional[Sequence[str]], i: int) -> str:
    """Describe map ``i`` in error messages: its file name when the caller passed one."""
    return f'map {i}' if names is None else f'map {i} ({names[i]})'


def as_map_list(maps: MapBatch, what: str = 'maps') -> List[np.ndarray]:
    """Return ``maps`` as a list of 2-D ``float64`` arrays.

    Accepts an ``(N, H, W)`` array, a single ``(H, W)`` array (a batch of one) or a sequence of
    arrays whose shape is ``(H, W)`` or ``(1, H, W)``. Torch tensors are accepted through
    ``np.asarray``.

    Raises:
        ValueError: if a map is not 2-D (after dropping one leading singleton axis) or is empty.
    """
    if isinstance(maps, np.ndarray):
        if maps.ndim == 2:
            maps = [maps]
        elif maps.ndim != 3:
            raise ValueError(
                f'{what}: expected an (N, H, W) array or a list of (H, W) maps, got an array of shape {maps.shape}'
            )
    out = []
    for i, m in enumerate(maps):
        m = np.asarray(m, dtype=np.float64)
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        if m.ndim != 2 or m.size == 0:
            raise ValueError(
                f'{what}: map {i} has shape {m.shape}; expected a non-empty (H, W) or '
                f'(1, H, W) heatmap (one affordance per image)'
            )
        out.append(m)
    return out


def resize_maps(maps: MapBatch, size: Size) -> np.ndarray:
    """Resize every map to ``size`` with ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)``.

    ``cv2.INTER_LINEAR`` uses half-pixel centres and clamps at the border, which is exactly
    ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)`` (no anti-aliasing when
    shrinking), so this one function serves both protocols.

    Args:
        maps: ``(N, H, W)`` array or sequence of 2-D maps (sizes may differ).
        size: output ``int`` (square) or ``(h, w)``.

    Returns:
        ``(N, h, w)`` float64 array. Maps already at ``size`` are copied unchanged.
    """
    h, w = _size_hw(size)
    maps = as_map_list(maps)
    out = np.empty((len(maps), h, w), dtype=np.float64)
    # One C call per map: stacking maps as channels of one image changes the numbers.
    for i, m in enumerate(maps):
        out[i] = m if m.shape == (h, w) else cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def _reduce_axes(x: np.ndarray) -> Tuple[int, ...]:
    return tuple(range(1, x.ndim))


def _sum_normalize(maps: np.ndarray, eps: float) -> np.ndarray:
    return maps / (maps.sum(axis=_reduce_axes(maps), keepdims=True) + eps)


def kld_sim(pred: np.ndarray, gt: np.ndarray, eps: float = EPS) -> Tuple[np.ndarray, np.ndarray]:
    """KLD and SIM per map, sharing the normalisation (see :func:`kld` and :func:`sim`)."""
    axes = _reduce_axes(gt)
    p = _sum_normalize(pred, eps)
    g = _sum_normalize(gt, eps)
    with np.errstate(invalid='ignore'):  # log(< 0) for negative predictions: NaN, as published
        kld_value = np.sum(g * np.log(g / (p + eps) + eps), axis=axes)
    return kld_value, np.minimum(p, g).sum(axis=axes)


def kld(pred: np.ndarray, gt: np.ndarray, eps: float = EPS) -> np.ndarray:
    """KL divergence ``KL(gt || pred)`` per map, as in both published protocols.

    ``p = pred / (sum(pred) + eps)``, ``g = gt / (sum(gt) + eps)``,
    ``KLD = sum(g * log(g / (p + eps) + eps))``. Lower is better; a zero GT gives 0.

    Args:
        pred, gt: ``(N, H, W)`` non-negative maps of the same shape.

    Returns:
        ``(N,)`` float64.
    """
    return kld_sim(pred, gt, eps)[0]


def sim(pred: np.ndarray, gt: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Similarity (histogram intersection) ``sum(min(p, g))`` per map (``p``, ``g``: :func:`kld`).

    Returns:
        ``(N,)`` float64 in [0, 1]; higher is better.
    """
    return kld_sim(pred, gt, eps)[1]


def _fixations(
    gt_values: np.ndarray, lo: float, hi: float, threshold: float, eps: float, gt_divisor: float
) -> np.ndarray:
    """``minmax(gt / gt_divisor, eps) > threshold`` for ``gt_values`` (a map, or any subset of its
    pixels), given the whole map's ``lo = min(gt)`` and ``hi = max(gt)``.

    The operations are the published ones (``gt / 255``, then ``(gt - min) / (max - min + eps)``);
    ``min(gt / d)`` is ``min(gt) / d`` exactly, division being monotonic. This is the min-max of
    :func:`minmax_normalize` written out, because it runs on a subset of the pixels with the whole
    map's ``lo`` / ``hi`` (already computed by the caller) and applies the published extra division.
    """
    scaled = gt_values / gt_divisor if gt_divisor != 1.0 else gt_values.copy()
    scaled -= lo / gt_divisor
    scaled /= hi / gt_divisor - lo / gt_divisor + eps
    return scaled > threshold


def _nss_value(fixated_pred_sum: float, n_fix: int, mean: float, std: float, n_pixels: int, eps: float) -> float:
    """``sum((pred - mean) / std * f) / sum(f + eps)`` from ``sum(pred[f])`` and ``count(f)``."""
    if std == 0:
        return 0.0
    return (fixated_pred_sum - mean * n_fix) / std / (n_fix + n_pixels * eps)


def _mean_std(pred: np.ndarray, total: Optional[float] = None) -> Tuple[float, float]:
    """``(np.mean(pred), np.std(pred))`` of one map, bit for bit, in one reduction less."""
    mean = (pred.sum() if total is None else total) / pred.size
    dev = pred - mean
    dev *= dev
    return mean, np.sqrt(dev.sum() / pred.size)


def nss(
    pred: np.ndarray, gt: np.ndarray, threshold: float = 0.1, eps: float = EPS, gt_divisor: float = 1.0
) -> np.ndarray:
    """Normalised scanpath saliency per map, AGD20K protocol.

    ``s = (pred - mean(pred)) / std(pred)`` (population std), ``f = minmax(gt / gt_divisor, eps) >
    threshold``, ``NSS = sum(s * f) / sum(f + eps)`` where the published ``sum(f + eps)`` adds
    ``eps`` for every pixel, i.e. ``count(f) + H * W * eps``.

    ``gt_divisor``: the published ``cal_nss`` divides its GT (already grayscale / 255) by 255 once
    more before the min-max. The ``+ eps`` of the min-max does not scale with it, so the division
    decides the pixels within ~1e-10 of the threshold; :func:`agd20k_scores` passes
    :data:`NSS_GT_DIVISOR` to reproduce it. The elementwise operations are the published ones, in
    float64, so every pixel lands on the same side of the threshold.

    Edge cases: a constant prediction has ``std == 0`` (the published code returns NaN); here its
    NSS is defined as 0, the score of a map that carries no information. A GT whose min-max map has
    no pixel above the threshold (a constant GT) gives 0 by the formula.

    Computed as ``(sum(pred[f]) - mean * count(f)) / std / (count(f) + H * W * eps)``, which is
    the same sum without materialising ``s``.

    Returns:
        ``(N,)`` float64; higher is better.
    """
    out = np.empty(len(pred))
    for i, (p, g) in enumerate(zip(pred, gt)):
        mean, std = _mean_std(p)
        fix = _fixations(g, g.min(), g.max(), threshold, eps, gt_divisor)
        out[i] = _nss_value(p[fix].sum(), np.count_nonzero(fix), mean, std, g.size, eps)
    return out


def gaussian_blur_5x5(maps: np.ndarray) -> np.ndarray:
    """``cv2.GaussianBlur(m, (5, 5), 0)`` on every map of an ``(N, H, W)`` batch.

    With ``sigma=0`` and a 5-tap kernel OpenCV uses its fixed binomial kernel
    ``[1, 4, 6, 4, 1] / 16`` (see ``cv2.getGaussianKernel``) and reflect-101 borders. The Hotspots
    evaluator (``interaction-hotspots/utils/evaluation.py``, ``Evaluator.score``) calls exactly
    this.
    """
    out = np.empty_like(maps, dtype=np.float64)
    for i, m in enumerate(maps):  # one C call per map, as in resize_maps
        out[i] = cv2.GaussianBlur(np.ascontiguousarray(m, dtype=np.float64), (5, 5), 0)
    return out


def hotspots_fixations(gt: np.ndarray, threshold: float = 0.5, eps: float = EPS) -> np.ndarray:
    """Binary fixation maps for AUC-J: ``gt / max(gt) + eps > threshold`` (False if ``max <= 0``).

    Returns:
        ``(N, H, W)`` bool.
    """
    axes = _reduce_axes(gt)
    hi = gt.max(axis=axes, keepdims=True)
    scaled = np.where(hi > 0, gt / np.where(hi > 0, hi, 1.0) + eps, gt)
    return scaled > threshold


def _jitter_noise(jitter: JitterSpec, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """Draw ``U[0, 1) * AUC_JITTER`` noise of ``shape`` from one generator, or one per map."""
    if jitter is None:
        return None
    if isinstance(jitter, np.random.Generator):
        return jitter.random(shape) * AUC_JITTER
    if len(jitter) != shape[0]:
        raise ValueError(
            f'auc_judd: got {len(jitter)} jitter generators for {shape[0]} maps; '
            f'pass one per map, a single np.random.Generator, or None to disable '
            f'jitter'
        )
    return np.stack([g.random(shape[1:]) for g in jitter]) * AUC_JITTER


def auc_judd(saliency: np.ndarray, fixations: np.ndarray, jitter: JitterSpec = None) -> np.ndarray:
    """AUC-Judd per map, vectorised over the batch (Hotspots ``AUC_Judd``).

    For one map with ``n`` pixels of which ``n_fix`` are fixations, and the saliency values at the
    fixations sorted in decreasing order ``t_1 >= ... >= t_nfix``, the ROC points are
    ``tp_k = k / n_fix`` and ``fp_k = (count(S >= t_k) - k) / (n - n_fix)``, closed by (0, 0) and
    (1, 1); the score is their trapezoid area. Ties are counted with ``>=`` as published.

    Batched computation: sort every map once (descending); the number of pixels ``>= t`` at a sorted
    position is the end of its tie group, and ``k`` is the running count of fixations.
    Forward-filling the ROC point of the last fixation seen over non-fixation positions makes those
    add zero area, so one trapezoid sum per row gives the score.

    Args:
        saliency: ``(N, H, W)`` saliency maps (the blurred prediction).
        fixations: ``(N, H, W)`` bool fixation maps (see :func:`hotspots_fixations`).
        jitter: ``None`` disables the tie-breaking jitter; a ``np.random.Generator`` (or one per
            map) adds ``U[0, 1) * 1e-7`` before the min-max normalisation, as the published code
            does with ``np.random.rand``.

    Returns:
        ``(N,)`` float64; NaN where AUC-J is undefined (no fixation, or every pixel a fixation).
    """
    n_maps = saliency.shape[0]
    sal = np.array(saliency, dtype=np.float64).reshape(n_maps, -1)
    fix = np.asarray(fixations, dtype=bool).reshape(n_maps, -1)
    if sal.shape != fix.shape:
        raise ValueError(f'auc_judd: saliency {saliency.shape} and fixations {fixations.shape} differ in shape')
    noise = _jitter_noise(jitter, saliency.shape)
    if noise is not None:
        sal += noise.reshape(n_maps, -1)
    sal = minmax_normalize(sal, EPS)

    n = sal.shape[1]
    n_fix = fix.sum(axis=1)
    order = np.argsort(-sal, axis=1, kind='stable')
    s_desc = np.take_along_axis(sal, order, axis=1)
    f_desc = np.take_along_axis(fix, order, axis=1)

    pos = np.arange(n)
    group_last = np.ones((n_maps, n), dtype=bool)
    group_last[:, :-1] = s_desc[:, :-1] != s_desc[:, 1:]
    # count(S >= s_i) = 1 + index of the last element of s_i's tie group (array is descending).
    n_above = 1 + np.minimum.accumulate(np.where(group_last, pos, n)[:, ::-1], axis=1)[:, ::-1]
    k = np.cumsum(f_desc, axis=1)  # k at fixation positions (1-based rank of the threshold)

    undefined = (n_fix == 0) | (n_fix == n)
    denom_tp = np.where(undefined, 1, n_fix)[:, None]
    denom_fp = np.where(undefined, 1, n - n_fix)[:, None]
    tp = k / denom_tp
    fp = (n_above - k) / denom_fp

    last_fix = np.maximum.accumulate(np.where(f_desc, pos, -1), axis=1)
    seen = last_fix >= 0
    idx = np.maximum(last_fix, 0)
    tp = np.where(seen, np.take_along_axis(tp, idx, axis=1), 0.0)
    fp = np.where(seen, np.take_along_axis(fp, idx, axis=1), 0.0)

    zeros, ones = np.zeros((n_maps, 1)), np.ones((n_maps, 1))
    tp = np.concatenate([zeros, tp, ones], axis=1)
    fp = np.concatenate([zeros, fp, ones], axis=1)
    area = np.sum((fp[:, 1:] - fp[:, :-1]) * (tp[:, 1:] + tp[:, :-1]) * 0.5, axis=1)
    return np.where(undefined, np.nan, area)


def _prepare_preds(preds: MapBatch) -> Tuple[List[np.ndarray], np.ndarray]:
    """Validate predictions and replace their non-finite values; return maps and per-map flags."""
    maps = as_map_list(preds, 'preds')
    flags = np.zeros(len(maps), dtype=bool)
    for i, m in enumerate(maps):
        maps[i], flags[i] = replace_nonfinite(m)
    return maps, flags


def _check_gt(m: np.ndarray, lowest: float, highest: float, names: Optional[Sequence[str]], i: int) -> None:
    """Raise if GT map ``i`` (with its min and max) has NaN, inf or negative values."""
    if lowest >= 0 and np.isfinite(highest):  # NaN propagates to both; +-inf and negatives show
        return
    if not np.isfinite(m).all():
        raise ValueError(
            f'GT {_name(names, i)} contains NaN or inf; GT heatmaps must be '
            f'finite grayscale/255 maps in [0, 1] - check the GT file and its '
            f'loader'
        )
    raise ValueError(
        f'GT {_name(names, i)} has negative values (min {lowest:.4g}); '
        f'GT heatmaps must be grayscale/255 maps in [0, 1] - check the GT '
        f'file and its loader'
    )


def _prepare_gts(gts: MapBatch, n_preds: int, names: Optional[Sequence[str]], check: bool = True) -> List[np.ndarray]:
    """GT maps as float64: same count as predictions; with ``check``, finite and non-negative."""
    maps = as_map_list(gts, 'gts')
    if len(maps) != n_preds:
        raise ValueError(f'got {n_preds} predictions but {len(maps)} GT maps; pass one GT per prediction')
    if check:
        for i, m in enumerate(maps):
            _check_gt(m, m.min(), m.max(), names, i)
    return maps


def _by_chunks(score_chunk: Callable[[int, int], Dict[str, np.ndarray]], n_maps: int) -> Dict[str, np.ndarray]:
    """Run ``score_chunk(start, stop)`` over consecutive chunks of ``_CHUNK`` maps; concatenate.

    Every array op is vectorised over a chunk; chunks keep the float64 temporaries in the CPU cache
    (a whole batch of 224x224 maps is about 2x slower per image than chunks of 4).
    """
    parts = [score_chunk(start, min(start + _CHUNK, n_maps)) for start in range(0, n_maps, _CHUNK)]
    if not parts:
        raise ValueError('got an empty batch of maps')
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def agd20k_scores(
    preds: MapBatch,
    gts: MapBatch,
    size: Size = 224,
    names: Optional[Sequence[str]] = None,
    num_threads: int = 1,
) -> Dict[str, np.ndarray]:
    """KLD, SIM and NSS per image with the AGD20K / HICO-IIF protocol (see the module docstring).

    This is the CPU implementation: a compiled kernel, one image after the other on scratch buffers
    that are reused from image to image (see :func:`_agd20k_map`), optionally on several threads (the
    kernel releases the GIL). :func:`agd20k_scores_batched` computes the same scores batched over
    images with torch, on any device.

    Args:
        preds: predicted heatmaps, ``(N, H, W)`` or a sequence of 2-D maps of any size.
        gts: GT heatmaps in [0, 1] (grayscale / 255, float64 for exact NSS), one per prediction,
            any size.
        size: evaluation resolution (224 in the published protocol).
        names: optional per-image names (e.g. file paths) used in error messages.
        num_threads: images scored in parallel (each thread has its own buffers); 1 scores them in
            the calling thread. The scores do not depend on it.

    Raises:
        ValueError: a resized GT (the pixels that are scored) has NaN, inf or negative values; the
            number of GT maps differs from the number of predictions; the batch is empty.

    Returns:
        dict of ``(N,)`` arrays: ``'KLD'``, ``'SIM'``, ``'NSS'`` (float64, NaN for empty-GT images),
        ``'empty_gt'`` (bool: the resized GT is all zero; the published code would score such an
        image KLD = 0, a perfect score, so it is left out instead) and ``'nonfinite_pred'`` (bool:
        NaN/inf in the prediction were replaced by its finite minimum).

    Edge cases: a constant prediction min-max normalises to zeros, so ``p = 0`` and KLD / SIM follow
    the formulas (large KLD, SIM = 0) and NSS = 0 (see :func:`nss`).
    """
    pred_maps = as_map_list(preds, 'preds')
    # checked after the resize, on the pixels that are scored (the check then costs nothing)
    gt_maps = _prepare_gts(gts, len(pred_maps), names, check=False)
    if not pred_maps:
        raise ValueError('got an empty batch of maps')
    size_hw = _size_hw(size)
    n_maps = len(pred_maps)
    values = np.empty((n_maps, 3))
    empty = np.zeros(n_maps, dtype=bool)
    nonfinite = np.zeros(n_maps, dtype=bool)

    def score(indices: Sequence[int]) -> None:
        with _borrowed_buffers(size_hw) as buffers:
            for i in indices:
                values[i], empty[i], nonfinite[i] = _agd20k_map(pred_maps[i], gt_maps[i], buffers, names, i)

    workers = max(1, min(int(num_threads), n_maps))
    if workers == 1:
        score(range(n_maps))
    else:
        # contiguous shares, so that the first bad GT of the batch is the one reported
        shares = np.array_split(np.arange(n_maps), workers)
        futures = [_thread_pool(workers).submit(score, share) for share in shares]
        for future in futures:
            future.result()
    return dict(KLD=values[:, 0], SIM=values[:, 1], NSS=values[:, 2], empty_gt=empty, nonfinite_pred=nonfinite)


_POOL: Dict[str, object] = dict(executor=None, workers=0, pid=0)


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of at least ``workers`` threads, kept between calls.

    Threads that live across batches keep their memory (OpenCV's and malloc's per-thread buffers)
    warm; a pool made per call pays page faults for it on every batch. A forked child (a data-loader
    worker) makes its own pool: threads do not survive a fork.
    """
    with _IDLE_LOCK:
        if _POOL['executor'] is None or _POOL['workers'] < workers or _POOL['pid'] != os.getpid():
            if _POOL['executor'] is not None and _POOL['pid'] == os.getpid():
                _POOL['executor'].shutdown(wait=False)
            _POOL.update(
                executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix='agd20k'),
                workers=workers,
                pid=os.getpid(),
            )
        return _POOL['executor']


class _Buffers:
    """Scratch maps of one evaluation size, reused image after image (and call after call) by
    :func:`_agd20k_map`, so that no map-sized array is allocated per image: a fresh array costs page
    faults on first touch, a reused one is already in the CPU cache."""

    def __init__(self, size_hw: Tuple[int, int]) -> None:
        self.size_hw = size_hw
        self.pred = np.empty(size_hw)
        self.gt = np.empty(size_hw)


#: idle :class:`_Buffers`, kept across calls (one set per thread that scored at the same time; ~0.8 MB
#: each at 224x224); pooled rather than thread-local, so that any thread, the caller's included, finds warm ones.
_IDLE_BUFFERS: List[_Buffers] = []
_IDLE_LOCK = threading.Lock()


@contextlib.contextmanager
def _borrowed_buffers(size_hw: Tuple[int, int]) -> Iterator[_Buffers]:
    """Lend idle :class:`_Buffers` of ``size_hw`` (new ones if none is idle) and take them back afterwards."""
    with _IDLE_LOCK:
        fitting = [b for b in _IDLE_BUFFERS if b.size_hw == size_hw]
        buffers = fitting[-1] if fitting else _Buffers(size_hw)
        if fitting:
            _IDLE_BUFFERS.remove(buffers)
    try:
        yield buffers
    finally:
        with _IDLE_LOCK:  # buffers of another size are dropped: one evaluation size per run is the rule
            _IDLE_BUFFERS[:] = [b for b in _IDLE_BUFFERS if b.size_hw == size_hw] + [buffers]


def _agd20k_map(
    pred: np.ndarray,
    gt: np.ndarray,
    buffers: _Buffers,
    names: Optional[Sequence[str]] = None,
    index: int = 0,
) -> Tuple[Tuple[float, float, float], bool, bool]:
    """KLD, SIM, NSS of one image (AGD20K protocol), whether its GT is empty, whether its prediction
    had non-finite values.

    The work is the compiled kernel :func:`~looptrans.evaluation.agd20k_kernel.agd20k_image` (both
    resizes and every score in four fused loops over the maps, with the GIL released), on the
    scratch maps of ``buffers``; here only the prediction's non-finite values are replaced and a bad
    GT is reported.
    """
    lo, hi = pred.min(), pred.max()  # NaN propagates; +-inf shows
    changed = not (np.isfinite(lo) and np.isfinite(hi))
    if changed:
        pred, _ = replace_nonfinite(pred)
    kld_value, sim_value, nss_value, status, g_lo, g_hi = agd20k_image(
        pred, gt, buffers.pred, buffers.gt, EPS, PRED_MINMAX_EPS, NSS_GT_DIVISOR, NSS_THRESHOLD
    )
    if status == GT_BAD:
        _check_gt(buffers.gt, buffers.gt.min(), buffers.gt.max(), names, index)
        # only a GT sum that overflows (values ~1e300) gets here: finite, non-negative, yet unusable
        raise ValueError(
            f'GT {_name(names, index)} has values too large to sum (max {g_hi:.4g}); GT heatmaps must '
            f'be grayscale/255 maps in [0, 1] - check the GT file and its loader'
        )
    if status == GT_EMPTY:  # all zero: the published code would score it KLD = 0, so it is left out instead
        return (np.nan, np.nan, np.nan), True, changed
    return (kld_value, sim_value, nss_value), False, changed


def agd20k_scores_batched(
    preds: Sequence[Union[torch.Tensor, np.ndarray]],
    gts: Sequence[Union[torch.Tensor, np.ndarray]],
    size: Size = 224,
    names: Optional[Sequence[str]] = None,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: int = 64,
) -> Dict[str, np.ndarray]:
    """:func:`agd20k_scores` batched over images with torch, in float64, on one device.

    Meant for predictions that are on an accelerator (where the model ran): the maps are stacked
    (those of one size together, so a batch may mix sizes), resized by
    ``F.interpolate(mode='bilinear', align_corners=False)`` (the same numbers as ``cv2.INTER_LINEAR``),
    and every step is one batched operation with the published arithmetic, ``chunk_size`` images at
    a time; only the three scores per image come back to the host. On a CPU :func:`agd20k_scores`
    is faster (its maps stay in the cache).

    Args:
        preds, gts: 2-D (or ``(1, H, W)``) tensors or arrays, one GT per prediction, any sizes.
        size, names: as :func:`agd20k_scores`.
        device: where to compute; default: the first prediction's device.
        chunk_size: images per batched step (bounds the memory: ~1 MB per image at 224x224).

    Returns and raises as :func:`agd20k_scores`; the scores agree with it to ~1e-15.
    """
    n_maps = len(preds)
    if len(gts) != n_maps:
        raise ValueError(f'got {n_maps} predictions but {len(gts)} GT maps; pass one GT per prediction')
    if not n_maps:
        raise ValueError('got an empty batch of maps')
    pred_maps = _as_tensor_list(preds, 'preds')
    gt_maps = _as_tensor_list(gts, 'gts')
    device = torch.device(device) if device is not None else pred_maps[0].device
    size_hw = _size_hw(size)
    parts = []
    for start in range(0, n_maps, max(1, int(chunk_size))):
        stop = min(start + max(1, int(chunk_size)), n_maps)
        parts.append(_agd20k_chunk(pred_maps[start:stop], gt_maps[start:stop], size_hw, device, names, start))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _as_tensor_list(maps: Sequence[Union[torch.Tensor, np.ndarray]], what: str) -> List[torch.Tensor]:
    """2-D tensors (a ``(1, H, W)`` map loses its first axis); errors as :func:`as_map_list`."""
    out = []
    for i, m in enumerate(maps):
        t = m if isinstance(m, torch.Tensor) else torch.as_tensor(np.asarray(m))
        if t.ndim == 3 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 2 or t.numel() == 0:
            raise ValueError(
                f'{what}: map {i} has shape {tuple(t.shape)}; expected a non-empty (H, W) or '
                f'(1, H, W) heatmap (one affordance per image)'
            )
        out.append(t)
    return out


def _stack_resized(maps: Sequence[torch.Tensor], size_hw: Tuple[int, int], device: torch.device, clean: bool):
    """``(N, h, w)`` float64 on ``device``: the maps resized bilinearly, those of one input size in one call.

    With ``clean``, NaN / inf are first replaced by the map's finite minimum (0 if none), as
    :func:`replace_nonfinite`; returns ``(maps, replaced)`` with ``replaced`` an ``(N,)`` bool tensor.
    """
    out = torch.empty((len(maps), *size_hw), dtype=torch.float64, device=device)
    replaced = torch.zeros(len(maps), dtype=torch.bool, device=device)
    groups: Dict[Tuple[int, int], List[int]] = {}
    for i, m in enumerate(maps):
        groups.setdefault(tuple(m.shape), []).append(i)
    for shape, indices in groups.items():
        x = torch.stack([maps[i].to(device=device, dtype=torch.float64, non_blocking=True) for i in indices])
        if clean:
            finite = torch.isfinite(x)
            bad = ~finite.flatten(1).all(dim=1)
            if bool(bad.any()):
                fill = torch.where(finite, x, torch.inf).flatten(1).amin(dim=1)
                fill = torch.where(torch.isfinite(fill), fill, 0.0)
                x = torch.where(finite, x, fill[:, None, None])
            replaced[indices] = bad
        if shape != size_hw:
            lo, hi = torch.aminmax(x.flatten(1), dim=1)
            x = F.interpolate(x[:, None], size=size_hw, mode='bilinear', align_corners=False)[:, 0]
            # A constant map must stay exactly constant (as with OpenCV): torch's weights do not add up
            # to exactly 1, and the min-max normalisation would blow that rounding up to [0, 1].
            x = torch.where((lo == hi)[:, None, None], lo[:, None, None], x)
        out[indices] = x
    return out, replaced


def _agd20k_chunk(
    preds: Sequence[torch.Tensor],
    gts: Sequence[torch.Tensor],
    size_hw: Tuple[int, int],
    device: torch.device,
    names: Optional[Sequence[str]],
    offset: int,
) -> Dict[str, np.ndarray]:
    """The published AGD20K arithmetic on a batch of maps (``normalize_map``, ``cal_kl``, ``cal_sim``, ``cal_nss``)."""
    pred, nonfinite = _stack_resized(preds, size_hw, device, clean=True)
    gt, _ = _stack_resized(gts, size_hw, device, clean=False)
    p = pred.flatten(1)
    g = gt.flatten(1)
    lo, hi = torch.aminmax(p, dim=1)
    p = (p - lo[:, None]) / (hi - lo + PRED_MINMAX_EPS)[:, None]
    g_lo, g_hi = torch.aminmax(g, dim=1)
    bad = ~(torch.isfinite(g_lo) & torch.isfinite(g_hi)) | (g_lo < 0)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0])
        m = g[i].cpu().numpy()
        _check_gt(m, m.min(), m.max(), names, offset + i)
    empty = g_hi <= 0

    map1 = p / (p.sum(dim=1, keepdim=True) + EPS)
    map2 = g / (g.sum(dim=1, keepdim=True) + EPS)
    kld_value = (map2 * torch.log(map2 / (map1 + EPS) + EPS)).sum(dim=1)
    sim_value = torch.minimum(map1, map2).sum(dim=1)

    std, mean = torch.std_mean(p, dim=1, correction=0, keepdim=True)
    scaled = g / NSS_GT_DIVISOR
    lo_s, hi_s = (g_lo / NSS_GT_DIVISOR)[:, None], (g_hi / NSS_GT_DIVISOR)[:, None]
    fix = ((scaled - lo_s) / (hi_s - lo_s + EPS) > NSS_THRESHOLD).to(torch.float64)
    nss_value = ((p - mean) / std * fix).sum(dim=1) / (fix + EPS).sum(dim=1)
    nss_value = torch.where(std[:, 0] == 0, 0.0, nss_value)  # constant prediction: 0, see nss()

    scores = torch.stack([kld_value, sim_value, nss_value], dim=1)
    scores = torch.where(empty[:, None], torch.nan, scores).cpu().numpy()
    return dict(
        KLD=scores[:, 0],
        SIM=scores[:, 1],
        NSS=scores[:, 2],
        empty_gt=empty.cpu().numpy(),
        nonfinite_pred=nonfinite.cpu().numpy(),
    )


def hotspots_scores(
    preds: MapBatch,
    gts: MapBatch,
    size: Size = 28,
    gt_size: Optional[Size] = HOTSPOTS_GT_SIZE,
    jitter: JitterSpec = None,
    names: Optional[Sequence[str]] = None,
) -> Dict[str, np.ndarray]:
    """KLD, SIM and AUC-J per image with the Interaction Hotspots protocol (see module docstring).

    Args:
        preds: predicted heatmaps, ``(N, H, W)`` or a sequence of 2-D maps of any size.
        gts: GT heatmaps (any non-negative scale), one per prediction, any size.
        size: evaluation resolution (``eval.py --res``, 28 for the published OPRA / EPIC numbers).
        gt_size: the GT is first resized to this size (224 in ``eval.py: generate_gt``), then
            to ``size``; ``None`` resizes it straight to ``size``.
        jitter: AUC-J tie-breaking jitter, see :func:`auc_judd` (``None`` disables it).
        names: optional per-image names used in error messages.

    Returns:
        dict of ``(N,)`` arrays: ``'KLD'``, ``'SIM'``, ``'AUC-J'`` (float64; AUC-J is NaN where it
        is undefined, KLD can be NaN for a prediction with negative values, as in the published
        code, whose evaluator then drops the image), ``'empty_gt'`` (bool: the GT summed to 0 and
        was made uniform for KLD / SIM) and ``'nonfinite_pred'`` (bool).
    """
    pred_maps, nonfinite = _prepare_preds(preds)
    gt_maps = _prepare_gts(gts, len(pred_maps), names)
    if jitter is not None and not isinstance(jitter, np.random.Generator):
        if len(jitter) != len(pred_maps):
            raise ValueError(
                f'hotspots_scores: got {len(jitter)} jitter generators for '
                f'{len(pred_maps)} maps; pass one per map, a single '
                f'np.random.Generator, or None to disable jitter'
            )

    def score_chunk(start: int, stop: int) -> Dict[str, np.ndarray]:
        pred = resize_maps(pred_maps[start:stop], size)
        pred = pred / (pred.max(axis=(1, 2), keepdims=True) + EPS)
        pred = gaussian_blur_5x5(pred)
        gt = gt_maps[start:stop]
        gt = resize_maps(resize_maps(gt, gt_size) if gt_size is not None else gt, size)
        empty = gt.sum(axis=(1, 2)) == 0
        gt_real = np.where(empty[:, None, None], 1.0 / (gt.shape[1] * gt.shape[2]), gt)
        kld_value, sim_value = kld_sim(pred, gt_real)
        # A single generator draws the maps' noise in order, chunk after chunk.
        chunk_jitter = jitter if isinstance(jitter, np.random.Generator) or jitter is None else jitter[start:stop]
        auc = auc_judd(pred, hotspots_fixations(gt), jitter=chunk_jitter)
        return {'KLD': kld_value, 'SIM': sim_value, 'AUC-J': auc, 'empty_gt': empty}

    return dict(_by_chunks(score_chunk, len(pred_maps)), nonfinite_pred=nonfinite)
