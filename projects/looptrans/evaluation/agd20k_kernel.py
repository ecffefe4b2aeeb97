"""The AGD20K / HICO-IIF score of one image as a compiled, fused kernel (numba).

:func:`looptrans.evaluation.agd20k_scores` calls :func:`agd20k_image` once per image. The published
protocol (see :mod:`looptrans.evaluation.functional`) is a chain of whole-map NumPy operations: two
resizes, min-max normalisations, sums, a logarithm, comparisons... about 25 passes over 224x224
float64 maps, each paying NumPy's per-call overhead. Here the same arithmetic runs in four compiled
loops over the pixels, vectorised, with the GIL released (several images score in parallel on
threads), and one NumPy logarithm:

1. the GT is resized (:func:`looptrans.utils.bilinear.resize_into`: bilinear,
   ``align_corners=False``, as ``cv2.INTER_LINEAR``) into a scratch map while its min, max and sum
   are taken (a NaN or inf shows in the sum);
2. the prediction is resized the same way into a second scratch map, with its min and max (columns
   first when it is upsampled: :func:`looptrans.utils.bilinear.upsample_into`);
3. ``q = r - min(r)`` replaces it (the min-max division ``/ (max - min + 1e-10)`` cancels from every
   score; see :func:`agd20k_image`), summed;
4. one loop gives NSS's fixation count (the published ``minmax(gt / 255) > 0.1``, exactly, as one
   comparison with a cut found per image by :func:`fixation_cut`), ``sum(q * f)`` and
   ``sum((q - mean) ** 2)``, SIM's ``sum(min(p, g))`` and KLD's log argument ``g / (p + eps) + eps``,
   written over ``q``; NumPy takes its logarithm (SIMD) and one dot product with the GT gives KLD.

Sums are accumulated per map row and then over rows (LLVM may reorder them within a row to
vectorise), which keeps their rounding error at the level of NumPy's pairwise sums: the scores agree
with the published operations to ~1e-14 (the tests pin 1e-12).
"""

from __future__ import annotations

from typing import Tuple

import numba
import numpy as np

from ..utils.bilinear import FAST, linear_resize_table, resize_into, upsample_into

__all__ = ['agd20k_image', 'fixation_cut']

#: results of :func:`agd20k_image`: (KLD, SIM, NSS, GT status, GT min, GT max)
GT_OK, GT_EMPTY, GT_BAD = 0, 1, 2


#: where every value is known to be finite (the prediction after ``replace_nonfinite``, a checked GT)
_FAST_FINITE = FAST | {'nnan', 'ninf'}


@numba.njit(nogil=True, cache=True, error_model='numpy')
def fixation_cut(g_lo, g_hi, gt_divisor, eps, threshold):  # pragma: no cover - compiled; tested directly
    """The smallest GT value ``v`` that the published NSS counts as a fixation, ``inf`` if none.

    The published test is ``(v / gt_divisor - fix_lo) / fix_den > threshold`` with ``fix_lo = g_lo /
    gt_divisor`` and ``fix_den = g_hi / gt_divisor - fix_lo + eps`` (``minmax(gt / 255) > 0.1``). Each of
    its IEEE operations (a division by a positive constant, the subtraction of a constant) is correctly
    rounded, hence non-decreasing in ``v``; so the fixations are exactly the pixels with ``v >= cut``, and
    the pixel loop compares instead of dividing twice. The cut is found by bisection over the bit
    patterns of the non-negative doubles (whose integer order is their order), evaluating the published
    expression itself, without fast-math: at most 64 evaluations per image.
    """
    fix_lo = g_lo / gt_divisor
    fix_den = g_hi / gt_divisor - fix_lo + eps
    if not (g_hi / gt_divisor - fix_lo) / fix_den > threshold:
        return np.inf
    value = np.empty(1)
    bits = value.view(np.int64)
    value[0] = g_hi
    above = bits[0]  # the test holds here
    below = np.int64(-1)  # and fails below every non-negative double
    while above - below > 1:
        bits[0] = below + (above - below) // 2
        if (value[0] / gt_divisor - fix_lo) / fix_den > threshold:
            above = bits[0]
        else:
            below = bits[0]
    bits[0] = above
    return value[0]


@numba.njit(nogil=True, cache=True, fastmath=_FAST_FINITE, error_model='numpy')
def _scores(q, g, lo, hi, cut, g_sum, eps, pred_eps):  # pragma: no cover - compiled
    """SIM, NSS and KLD's log arguments of a resized prediction ``q`` and a resized GT ``g`` (both finite).

    ``q`` is overwritten: first by ``q - lo``, then by KLD's ``g_n / (p_n + eps) + eps`` (``p_n``,
    ``g_n``: the sum-normalised maps), whose logarithm the caller takes with NumPy (vectorised).
    Returns ``(SIM, NSS, 1 / (sum(g) + eps))``.
    """
    h, w = q.shape
    n = h * w
    q_sum = 0.0
    for i in range(h):
        q_row = q[i]
        row_sum = 0.0
        for j in range(w):
            v = q_row[j] - lo
            q_row[j] = v
            row_sum += v
        q_sum += row_sum
    q_mean = q_sum / n
    d = hi - lo + pred_eps
    inv_p = 1.0 / (q_sum + d * eps)  # p / (sum(p) + eps) with p = q / d, as q / (sum(q) + d * eps)
    inv_g = 1.0 / (g_sum + eps)
    n_fix = 0.0
    qf_sum = 0.0
    sq_sum = 0.0
    sim = 0.0
    for i in range(h):
        q_row = q[i]
        g_row = g[i]
        row_fix = 0.0
        row_qf = 0.0
        row_sq = 0.0
        row_sim = 0.0
        for j in range(w):
            qv = q_row[j]
            gv = g_row[j]
            fixated = 1.0 if gv >= cut else 0.0  # the published minmax(gt / 255) > 0.1 (fixation_cut)
            row_fix += fixated
            row_qf += qv * fixated
            c = qv - q_mean
            row_sq += c * c
            p_norm = qv * inv_p
            g_norm = gv * inv_g
            row_sim += min(p_norm, g_norm)
            q_row[j] = g_norm / (p_norm + eps) + eps
        n_fix += row_fix
        qf_sum += row_qf
        sq_sum += row_sq
        sim += row_sim
    var = sq_sum / n
    nss = 0.0 if var == 0.0 else (qf_sum - q_mean * n_fix) / np.sqrt(var) / (n_fix + n * eps)
    return sim, nss, inv_g


def agd20k_image(
    pred: np.ndarray,
    gt: np.ndarray,
    q: np.ndarray,
    g: np.ndarray,
    eps: float,
    pred_eps: float,
    gt_divisor: float,
    threshold: float,
) -> Tuple[float, float, float, int, float, float]:
    """KLD, SIM and NSS of one image with the AGD20K protocol, in one compiled pass per step.

    Args:
        pred: the finite float64 prediction, any size.
        gt: the float64 GT (grayscale / 255), any size.
        q, g: C-contiguous float64 scratch maps of the evaluation size; on return ``g`` holds the
            resized GT and ``q`` the resized, min-shifted prediction.
        eps, pred_eps, gt_divisor, threshold: the protocol's constants (``EPS``, ``PRED_MINMAX_EPS``,
            ``NSS_GT_DIVISOR``, ``NSS_THRESHOLD`` of :mod:`looptrans.evaluation.functional`).

    The prediction's min-max ``p = (r - min) / dd`` (``dd = max - min + pred_eps``) is never divided
    out: with ``q = r - min``, ``p / (sum(p) + eps) = q / (sum(q) + dd * eps)``, and the z-score of NSS
    is the same for ``q`` and ``p``. NSS's denominator, the published per-pixel ``sum(f + eps)``, is
    ``count(f) + H * W * eps``; its numerator ``sum((q - mean) / std * f)`` is
    ``(sum(q * f) - mean * count(f)) / std``. A constant prediction has ``std = 0`` and scores NSS 0.

    Returns:
        ``(KLD, SIM, NSS, status, gt_min, gt_max)``: ``status`` is ``GT_OK``, ``GT_EMPTY`` (the resized
        GT is all zero; scores NaN) or ``GT_BAD`` (NaN, inf or negative values; scores NaN); ``gt_min``
        and ``gt_max`` are those of the resized GT.
    """
    pred = np.ascontiguousarray(pred, dtype=np.float64)
    gt = np.ascontiguousarray(gt, dtype=np.float64)
    out_h, out_w = q.shape
    row = np.empty(max(pred.shape[1], gt.shape[1]))
    gt_tables = linear_resize_table(gt.shape[0], out_h) + linear_resize_table(gt.shape[1], out_w)
    g_lo, g_hi, g_sum = resize_into(gt, *gt_tables, row, g)
    if not np.isfinite(g_sum) or g_lo < 0:  # a NaN or inf shows in the sum
        return np.nan, np.nan, np.nan, GT_BAD, g_lo, g_hi
    if g_hi <= 0:
        return np.nan, np.nan, np.nan, GT_EMPTY, g_lo, g_hi
    pred_tables = linear_resize_table(pred.shape[0], out_h) + linear_resize_table(pred.shape[1], out_w)
    if pred.shape[0] < out_h:
        lo, hi, _ = upsample_into(pred, *pred_tables, q)
    else:
        lo, hi, _ = resize_into(pred, *pred_tables, row, q)
    cut = fixation_cut(g_lo, g_hi, gt_divisor, eps, threshold)  # min(gt / 255) == min(gt) / 255: monotone
    sim, nss, inv_g = _scores(q, g, lo, hi, cut, g_sum, eps, pred_eps)
    # KLD = sum(g_n * log(g_n / (p_n + eps) + eps)), g_n = g * inv_g; q now holds the log's argument
    np.log(q, out=q)
    kld = inv_g * float(np.einsum('ij,ij->', g, q))
    return kld, float(sim), float(nss), GT_OK, float(g_lo), float(g_hi)
