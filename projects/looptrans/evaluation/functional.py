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
* Resizing calls OpenCV once per map: ``cv2.resize`` on a many-channel image gives slightly
  different numbers (~1e-5), so maps are never stacked as channels. The AGD20K scores are computed
  one image at a time by ``_agd20k_map`` with the published elementwise operations and few passes
  over the maps (KLD, SIM and the NSS fixations only over the GT's non-zero pixels, where the
  published sums get their non-zero terms; ``np.log`` is the costliest step); sums may differ from
  the published code's by rounding (~1e-16). The Hotspots scores are vectorised over chunks of
  maps. No Python loop runs over pixels.
* Non-finite values in a prediction are replaced by the finite minimum of that map (0 if it has
  none) before anything else; the affected images are flagged so callers can count and report them.
* A score that is undefined for an image is NaN in the returned arrays, with a flag saying why;
  callers (:class:`~looptrans.evaluation.AffordanceMetric`) leave those images out of the means.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

# The shared normaliser and non-finite replacement (re-exported: part of this module's protocol API).
# Every metric call passes its published eps explicitly (EPS for AUC-J, 1e-10 for predictions).
from ..utils.maps import minmax_normalize, replace_nonfinite

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
    preds: MapBatch, gts: MapBatch, size: Size = 224, names: Optional[Sequence[str]] = None
) -> Dict[str, np.ndarray]:
    """KLD, SIM and NSS per image with the AGD20K / HICO-IIF protocol (see the module docstring).

    Args:
        preds: predicted heatmaps, ``(N, H, W)`` or a sequence of 2-D maps of any size.
        gts: GT heatmaps in [0, 1] (grayscale / 255, float64 for exact NSS), one per prediction,
            any size.
        size: evaluation resolution (224 in the published protocol).
        names: optional per-image names (e.g. file paths) used in error messages.

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
    scores = {key: np.empty(n_maps) for key in ('KLD', 'SIM', 'NSS')}
    empty = np.zeros(n_maps, dtype=bool)
    nonfinite = np.zeros(n_maps, dtype=bool)
    for i, (pred, gt) in enumerate(zip(pred_maps, gt_maps)):
        values, empty[i], nonfinite[i] = _agd20k_map(pred, gt, size_hw, names, i)
        for key, value in zip(('KLD', 'SIM', 'NSS'), values):
            scores[key][i] = value
    return dict(scores, empty_gt=empty, nonfinite_pred=nonfinite)


def _resize_map(m: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    """``cv2.resize(m, (w, h))`` (``INTER_LINEAR``, float64); ``m`` itself when already that size."""
    if m.shape == size_hw:
        return m
    return cv2.resize(np.ascontiguousarray(m), size_hw[::-1], interpolation=cv2.INTER_LINEAR)


def _agd20k_map(
    pred: np.ndarray, gt: np.ndarray, size_hw: Tuple[int, int], names: Optional[Sequence[str]] = None, index: int = 0
) -> Tuple[Tuple[float, float, float], bool, bool]:
    """KLD, SIM, NSS of one image (AGD20K protocol), whether its GT is empty, whether its prediction
    had non-finite values.

    The elementwise operations are those of the published code (``normalize_map``, ``cal_kl``,
    ``cal_sim``, ``cal_nss``) in float64, with fewer passes over the maps than the batched building
    blocks: the prediction's min / max double as the non-finite check, its sum serves the KLD / SIM
    normalisation and NSS's mean, and KLD / SIM are summed over the GT's non-zero pixels only (a
    zero GT pixel adds exactly 0 to both: ``0 * log(eps)`` and ``min(p, 0)``), so ``np.log``, the
    costliest step, runs on those pixels alone. Sums over that subset are equal to the full sums up
    to rounding (~1e-16 relative). The prediction's min-max (``normalize_map``, eps 1e-10) is
    :func:`minmax_normalize` written out in place, to reuse the min / max of the non-finite check.
    """
    lo, hi = pred.min(), pred.max()  # NaN propagates; +-inf shows
    changed = not (np.isfinite(lo) and np.isfinite(hi))
    if changed:
        pred, _ = replace_nonfinite(pred)
    resized = _resize_map(pred, size_hw)
    if changed or resized is not pred:
        lo, hi = resized.min(), resized.max()
    p = resized - lo
    p /= hi - lo + PRED_MINMAX_EPS  # normalize_map: (x - min) / (max - min + 1e-10)
    g = _resize_map(gt, size_hw)
    g_lo, g_hi = g.min(), g.max()
    _check_gt(g, g_lo, g_hi, names, index)

    nonzero = g > 0
    g_nz = g[nonzero]
    if g_nz.size == 0:  # the published code would score an empty GT KLD = 0: left out instead
        return (np.nan, np.nan, np.nan), True, changed
    p_nz = p[nonzero]

    # NSS. Fixations lie where the GT is non-zero: with min(gt) = 0 a zero pixel scales to 0, not
    # above the threshold, and with min(gt) > 0 every pixel is non-zero.
    p_sum = p.sum()
    mean, std = _mean_std(p, p_sum)
    fix = _fixations(g_nz, g_lo, g_hi, NSS_THRESHOLD, EPS, NSS_GT_DIVISOR)
    nss_value = _nss_value(p_nz[fix].sum(), np.count_nonzero(fix), mean, std, g.size, EPS)

    # KLD and SIM over the non-zero GT pixels (map1 = pred / (sum + eps), map2 = gt / (sum + eps))
    p_nz /= p_sum + EPS
    g_nz /= g.sum() + EPS
    sim_value = np.minimum(p_nz, g_nz).sum()
    with np.errstate(invalid='ignore'):
        ratio = p_nz  # reused: map2 / (map1 + eps) + eps, then its log
        ratio += EPS
        np.divide(g_nz, ratio, out=ratio)
        ratio += EPS
        np.log(ratio, out=ratio)
    ratio *= g_nz
    kld_value = ratio.sum()
    return (kld_value, sim_value, nss_value), False, changed


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
