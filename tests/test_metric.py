"""Tests of the affordance metric against an independent, per-pixel implementation of the protocols.

The reference below is written from the protocol text (DESIGN.md section 3 and the published
evaluation code's formulas), with Python loops over pixels on plain lists: its own bilinear resize
(half-pixel centres, border clamp), its own 5x5 binomial blur with reflect-101 borders, and the
AUC-J threshold loop. It shares no code with ``looptrans.evaluation``.
"""

from __future__ import annotations

import math
import os.path as osp
from typing import List, Optional

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from mmseg.registry import METRICS

from looptrans.evaluation import (
    AffordanceMetric,
    agd20k_scores,
    agd20k_scores_batched,
    auc_judd,
    gaussian_blur_5x5,
    hotspots_scores,
    nss,
    resize_maps,
)
from looptrans.evaluation.metrics import affordance_metric as metric_module
from looptrans.utils.bilinear import linear_resize_table, resize_bilinear

TOL = 1e-6


# --------------------------------------------------------------------------------
# independent per-pixel reference
# --------------------------------------------------------------------------------
def ref_resize(img: List[List[float]], oh: int, ow: int) -> List[List[float]]:
    """Bilinear resize: half-pixel centres, source coordinates clamped to the image."""
    h, w = len(img), len(img[0])
    out = []
    for i in range(oh):
        sy = max((i + 0.5) * h / oh - 0.5, 0.0)
        y0 = min(int(math.floor(sy)), h - 1)
        y1 = min(y0 + 1, h - 1)
        wy = sy - y0
        row = []
        for j in range(ow):
            sx = max((j + 0.5) * w / ow - 0.5, 0.0)
            x0 = min(int(math.floor(sx)), w - 1)
            x1 = min(x0 + 1, w - 1)
            wx = sx - x0
            top = (1 - wx) * img[y0][x0] + wx * img[y0][x1]
            bottom = (1 - wx) * img[y1][x0] + wx * img[y1][x1]
            row.append((1 - wy) * top + wy * bottom)
        out.append(row)
    return out


def ref_pixels(img: List[List[float]]) -> List[float]:
    return [v for row in img for v in row]


def ref_clean(img: np.ndarray) -> List[List[float]]:
    """NaN/inf -> the finite minimum (0 if none), as the protocol text defines for predictions."""
    vals = [v for v in img.ravel().tolist() if math.isfinite(v)]
    fill = min(vals) if vals else 0.0
    return [[v if math.isfinite(v) else fill for v in row] for row in img.tolist()]


def ref_kld_sim(pred: List[float], gt: List[float]):
    sp, sg = sum(pred), sum(gt)
    p = [v / (sp + 1e-12) for v in pred]
    g = [v / (sg + 1e-12) for v in gt]
    args = [gi / (pi + 1e-12) + 1e-12 for pi, gi in zip(p, g)]
    # log of a negative number (a prediction with negative values): NaN, i.e. undefined (None)
    kld = None if min(args) < 0 else sum(gi * math.log(a) for gi, a in zip(g, args))
    sim = sum(min(pi, gi) for pi, gi in zip(p, g))
    return kld, sim


def ref_agd20k(pred: np.ndarray, gt: np.ndarray, size: int = 224):
    """Per-image KLD, SIM, NSS of the AGD20K protocol; None when the resized GT is all zero."""
    p = ref_pixels(ref_resize(ref_clean(pred), size, size))
    lo, hi = min(p), max(p)
    p = [(v - lo) / (hi - lo + 1e-10) for v in p]
    g = ref_pixels(ref_resize(gt.tolist(), size, size))
    if not any(v > 0 for v in g):
        return None
    kld, sim = ref_kld_sim(p, g)
    n = len(p)
    mean = sum(p) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in p) / n)
    glo, ghi = min(g), max(g)
    fix = [1.0 if (v - glo) / (ghi - glo + 1e-12) > 0.1 else 0.0 for v in g]
    if std == 0:
        nss_value = 0.0
    else:
        nss_value = sum((v - mean) / std * f for v, f in zip(p, fix)) / sum(f + 1e-12 for f in fix)
    return dict(KLD=kld, SIM=sim, NSS=nss_value)


def ref_blur(img: List[List[float]]) -> List[List[float]]:
    """cv2.GaussianBlur(x, (5, 5), 0): binomial [1, 4, 6, 4, 1] / 16, reflect-101 border."""
    k = [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16]
    h, w = len(img), len(img[0])

    def reflect(i, n):
        while i < 0 or i >= n:
            i = -i if i < 0 else 2 * (n - 1) - i
        return i

    return [
        [
            sum(k[a] * k[b] * img[reflect(y + a - 2, h)][reflect(x + b - 2, w)] for a in range(5) for b in range(5))
            for x in range(w)
        ]
        for y in range(h)
    ]


def ref_auc_judd(sal: List[float], fix: List[bool]) -> Optional[float]:
    """AUC-Judd exactly as the protocol text: thresholds = saliency at fixations, trapezoid area."""
    lo, hi = min(sal), max(sal)
    s = [(v - lo) / (hi - lo + 1e-12) for v in sal]
    s_fix = [v for v, f in zip(s, fix) if f]
    n, n_fix = len(s), len(s_fix)
    if n_fix == 0 or n_fix == n:
        return None
    tp, fp = [0.0], [0.0]
    for k, t in enumerate(sorted(s_fix, reverse=True)):
        above = sum(1 for v in s if v >= t)
        tp.append((k + 1) / n_fix)
        fp.append((above - k - 1) / (n - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return sum((fp[i + 1] - fp[i]) * (tp[i + 1] + tp[i]) / 2 for i in range(len(tp) - 1))


def ref_hotspots(
    pred: np.ndarray, gt: np.ndarray, size: int = 28, gt_size: int = 224, noise: Optional[np.ndarray] = None
):
    """Per-image KLD, SIM, AUC-J of the Interaction Hotspots protocol (None when undefined)."""
    p = ref_resize(ref_clean(pred), size, size)
    pmax = max(ref_pixels(p))
    p = ref_blur([[v / (pmax + 1e-12) for v in row] for row in p])
    p = ref_pixels(p)
    g = ref_pixels(ref_resize(ref_resize(gt.tolist(), gt_size, gt_size), size, size))
    g_real = g if sum(g) != 0 else [1.0 / len(g)] * len(g)
    kld, sim = ref_kld_sim(p, g_real)
    gmax = max(g)
    fix = [(v / gmax + 1e-12 if gmax > 0 else v) > 0.5 for v in g]
    sal = p if noise is None else [v + e for v, e in zip(p, noise.ravel().tolist())]
    return {'KLD': kld, 'SIM': sim, 'AUC-J': ref_auc_judd(sal, fix)}


# --------------------------------------------------------------------------------
# test maps
# --------------------------------------------------------------------------------
def blob(h: int, w: int, cy: float, cx: float, sigma: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))


def one_hot(h: int, w: int, y: int, x: int) -> np.ndarray:
    m = np.zeros((h, w))
    m[y, x] = 1.0
    return m


def sparse(rng: np.random.Generator, h: int, w: int, density: float = 0.02) -> np.ndarray:
    return rng.random((h, w)) * (rng.random((h, w)) < density)


def cases(rng: np.random.Generator):
    """(name, pred, gt) pairs covering random, structured and degenerate inputs."""
    nan_pred = rng.random((14, 14))
    nan_pred[3, 4] = np.nan
    nan_pred[5, 6] = np.inf
    nan_pred[0, 0] = -np.inf
    return [
        ('random', rng.random((14, 14)), rng.random((20, 30))),
        ('blobs', blob(28, 28, 10, 15, 4) + 0.5 * blob(28, 28, 20, 5, 3), blob(48, 64, 20, 40, 8)),
        ('one_hot_gt', rng.random((14, 14)), one_hot(16, 16, 7, 9)),
        ('sparse_gt', rng.random((16, 12)), sparse(rng, 40, 40)),
        ('one_hot_pred', one_hot(14, 14, 3, 3), blob(24, 24, 5, 5, 3)),
        ('constant_pred', np.full((14, 14), 0.3), rng.random((20, 20))),
        ('constant_gt', rng.random((14, 14)), np.full((10, 10), 0.5)),
        ('nan_pred', nan_pred, rng.random((20, 20))),
        ('all_nan_pred', np.full((8, 8), np.nan), rng.random((20, 20))),
        ('negative_pred', rng.standard_normal((14, 14)), rng.random((20, 20))),
    ]


def assert_scores_match(ours: dict, i: int, ref: Optional[dict], keys) -> None:
    for key in keys:
        value = ours[key][i]
        expected = None if ref is None else ref[key]
        if expected is None:
            assert np.isnan(value), (key, value)
        else:
            assert value == pytest.approx(expected, rel=TOL, abs=TOL), key


# --------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    'src, dst',
    [((14, 14), (224, 224)), ((480, 640), (56, 56)), ((224, 224), (28, 28)), ((7, 9), (28, 28)), ((5, 3), (11, 17))],
)
def test_resize_matches_bilinear_reference_and_torch(src, dst):
    x = np.random.default_rng(0).random(src)
    ours = resize_maps(x[None], dst)[0]
    assert ours.shape == dst and ours.dtype == np.float64
    np.testing.assert_allclose(ours, np.array(ref_resize(x.tolist(), *dst)), atol=1e-12)
    # The Hotspots evaluator resizes with torch bilinear, align_corners=False: the same numbers.
    t = F.interpolate(torch.from_numpy(x)[None, None], size=dst, mode='bilinear', align_corners=False)
    np.testing.assert_allclose(ours, t[0, 0].numpy(), atol=1e-12)


@pytest.mark.parametrize(
    'src, dst',
    [((14, 14), (224, 224)), ((480, 640), (224, 224)), ((224, 224), (224, 224)), ((1, 1), (4, 3)), ((5, 9), (2, 3))],
)
def test_kernel_resize_matches_bilinear_reference_opencv_and_torch(src, dst):
    # the compiled kernel's resize (the AGD20K CPU path) against the pure-Python transcription,
    # cv2.INTER_LINEAR (the published code's) and F.interpolate (the batched path's)
    x = np.random.default_rng(1).random(src)
    ours, lo, hi, total = resize_bilinear(x, dst)
    assert ours.shape == dst and ours.dtype == np.float64
    np.testing.assert_allclose(ours, np.array(ref_resize(x.tolist(), *dst)), atol=1e-13)
    np.testing.assert_allclose(ours, cv2.resize(x, dst[::-1], interpolation=cv2.INTER_LINEAR), atol=1e-13)
    t = F.interpolate(torch.from_numpy(x)[None, None], size=dst, mode='bilinear', align_corners=False)
    np.testing.assert_allclose(ours, t[0, 0].numpy(), atol=1e-13)
    assert (lo, hi) == (ours.min(), ours.max())
    assert total == pytest.approx(ours.sum(), rel=1e-13)


def test_kernel_resize_tables_reject_empty_axes():
    with pytest.raises(ValueError, match='0 pixels'):
        linear_resize_table(0, 224)
    with pytest.raises(ValueError, match='expected a 2-D map'):
        resize_bilinear(np.ones((2, 2, 2)), (4, 4))


def test_kernel_reports_an_infinite_or_overflowing_gt_by_name():
    pred = np.random.default_rng(2).random((1, 8, 8))
    with pytest.raises(ValueError, match=r'a\.png.*NaN or inf'):
        agd20k_scores(pred, np.full((1, 8, 8), np.inf), names=['a.png'])
    gt = np.zeros((1, 8, 8))
    gt[0, 2, 3] = np.nan  # a single NaN pixel shows in the resized map's sum
    with pytest.raises(ValueError, match=r'b\.png.*NaN or inf'):
        agd20k_scores(pred, gt, names=['b.png'], size=8)
    # finite and non-negative, but the sum overflows: named, not a silent inf/NaN score
    with pytest.raises(ValueError, match=r'c\.png.*too large to sum'):
        agd20k_scores(pred, np.full((1, 8, 8), 1e307), names=['c.png'])


def test_resize_accepts_mixed_sizes_and_checks_shapes():
    maps = [np.ones((3, 4)), np.zeros((1, 5, 6)), np.full((2, 2), 2.0)]
    out = resize_maps(maps, (4, 3))
    assert out.shape == (3, 4, 3)
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r'map 0 has shape \(2, 3, 4\)'):
        resize_maps([np.zeros((2, 3, 4))], 8)
    with pytest.raises(ValueError, match='positive'):
        resize_maps([np.zeros((3, 4))], 0)


def test_gaussian_blur_is_binomial_reflect101():
    x = np.random.default_rng(1).random((3, 9, 7))
    ours = gaussian_blur_5x5(x)
    for i in range(3):
        np.testing.assert_allclose(ours[i], np.array(ref_blur(x[i].tolist())), atol=1e-12)


def test_nss_reproduces_per_pixel_eps_in_denominator():
    # With a visible eps, sum(f + eps) = count(f) + H*W*eps differs from count(f) + eps.
    rng = np.random.default_rng(2)
    pred, gt = rng.random((1, 6, 5)), rng.random((1, 6, 5))
    eps = 1e-2
    p, g = pred[0].ravel().tolist(), gt[0].ravel().tolist()
    mean = sum(p) / len(p)
    std = math.sqrt(sum((v - mean) ** 2 for v in p) / len(p))
    fix = [1.0 if (v - min(g)) / (max(g) - min(g) + eps) > 0.1 else 0.0 for v in g]
    numerator = sum((v - mean) / std * f for v, f in zip(p, fix))
    expected = numerator / sum(f + eps for f in fix)
    assert nss(pred, gt, eps=eps)[0] == pytest.approx(expected, rel=1e-12)
    assert nss(pred, gt, eps=eps)[0] != pytest.approx(numerator / (sum(fix) + eps), rel=1e-6)


def test_auc_judd_hand_computed():
    sal = np.array([[[0.9, 0.1], [0.5, 0.3]]])
    # Fixation on the most salient pixel: ROC (0,0) (0,1) (1,1) -> area 1.
    assert auc_judd(sal, np.array([[[True, False], [False, False]]]))[0] == pytest.approx(1.0)
    # Fixation on the least salient pixel: the 3 others rank above it -> (1, 1) -> area 0.5.
    assert auc_judd(sal, np.array([[[False, True], [False, False]]]))[0] == pytest.approx(0.5)
    # Fixations at 0.9 and 0.3 (min-max: 1 and 0.25): ROC (0,0) (0,.5) (.5,1) (1,1) -> area 0.875.
    fix = np.array([[[True, False], [False, True]]])
    assert auc_judd(sal, fix)[0] == pytest.approx(0.5 * (0.5 + 1) / 2 + 0.5 * 1.0)


def test_auc_judd_ties_and_undefined_match_reference():
    rng = np.random.default_rng(3)
    sal = np.round(rng.random((40, 6, 7)) * rng.integers(1, 4, (40, 1, 1)))  # heavy ties
    fix = rng.random((40, 6, 7)) < rng.random((40, 1, 1))
    fix[0] = False  # no fixation
    fix[1] = True  # every pixel a fixation
    ours = auc_judd(sal, fix)
    assert ours.shape == (40,)
    for i in range(40):
        expected = ref_auc_judd(sal[i].ravel().tolist(), fix[i].ravel().tolist())
        if expected is None:
            assert np.isnan(ours[i])
        else:
            assert ours[i] == pytest.approx(expected, abs=1e-12)
    assert np.isnan(ours[0]) and np.isnan(ours[1])


def test_auc_judd_seeded_jitter_matches_reference():
    rng = np.random.default_rng(4)
    sal = np.round(rng.random((3, 8, 8)) * 3)
    fix = rng.random((3, 8, 8)) < 0.3
    ours = auc_judd(sal, fix, jitter=np.random.default_rng(7))
    noise = np.random.default_rng(7).random((3, 8, 8)) * 1e-7
    for i in range(3):
        expected = ref_auc_judd((sal[i] + noise[i]).ravel().tolist(), fix[i].ravel().tolist())
        assert ours[i] == pytest.approx(expected, abs=1e-12)
    # Jitter breaks the ties, so it changes the score; the same seed gives the same score.
    assert not np.allclose(ours, auc_judd(sal, fix))
    np.testing.assert_array_equal(ours, auc_judd(sal, fix, jitter=np.random.default_rng(7)))
    per_map = [np.random.default_rng(s) for s in (1, 2, 3)]
    assert auc_judd(sal, fix, jitter=per_map).shape == (3,)
    with pytest.raises(ValueError, match='one per map'):
        auc_judd(sal, fix, jitter=per_map[:2])


# --------------------------------------------------------------------------------
# whole protocols
# --------------------------------------------------------------------------------
def test_agd20k_protocol_matches_reference():
    rng = np.random.default_rng(10)
    named = cases(rng) + [('empty_gt', rng.random((14, 14)), np.zeros((20, 20)))]
    ours = agd20k_scores([p for _, p, _ in named], [g for _, _, g in named], size=32)
    assert ours['KLD'].shape == (len(named),)
    for i, (name, pred, gt) in enumerate(named):
        ref = ref_agd20k(pred, gt, size=32)
        assert_scores_match(ours, i, ref, ('KLD', 'SIM', 'NSS'))
        assert ours['empty_gt'][i] == (name == 'empty_gt')
        assert ours['nonfinite_pred'][i] == (name in ('nan_pred', 'all_nan_pred'))
        assert np.isfinite(ours['NSS'][i]) or name == 'empty_gt', name
    # constant prediction: min-max gives zeros, SIM = 0, NSS defined as 0 (std = 0), KLD finite.
    k = [n for n, _, _ in named].index('constant_pred')
    assert ours['SIM'][k] == 0 and ours['NSS'][k] == 0 and np.isfinite(ours['KLD'][k])


def test_agd20k_protocol_at_224_with_different_input_sizes():
    rng = np.random.default_rng(11)
    preds = [rng.random((14, 14)), blob(224, 224, 100, 80, 30)]
    gts = [blob(480, 640, 200, 300, 60) * (rng.random((480, 640)) > 0.2), sparse(rng, 480, 640, 0.05)]
    ours = agd20k_scores(np.stack([preds[0], preds[0]]), gts[:1] * 2)  # (N, H, W) input form too
    assert ours['KLD'][0] == ours['KLD'][1]
    ours = agd20k_scores(preds, gts)
    for i in range(2):
        assert_scores_match(ours, i, ref_agd20k(preds[i], gts[i], 224), ('KLD', 'SIM', 'NSS'))


def test_agd20k_perfect_prediction_scores_best():
    gt = blob(56, 56, 20, 30, 6)
    good = agd20k_scores([gt], [gt], size=56)
    bad = agd20k_scores([1 - gt], [gt], size=56)
    assert good['KLD'][0] == pytest.approx(0.0, abs=1e-6) and good['SIM'][0] == pytest.approx(1.0)
    assert bad['KLD'][0] > 1 and bad['SIM'][0] < good['SIM'][0]
    assert bad['NSS'][0] < 0 < good['NSS'][0]


def test_hotspots_protocol_matches_reference():
    rng = np.random.default_rng(12)
    named = cases(rng) + [('empty_gt', rng.random((14, 14)), np.zeros((20, 20)))]
    preds, gts = [p for _, p, _ in named], [g for _, _, g in named]
    ours = hotspots_scores(preds, gts, size=16, gt_size=32)
    for i, (name, pred, gt) in enumerate(named):
        ref = ref_hotspots(pred, gt, size=16, gt_size=32)
        assert_scores_match(ours, i, ref, ('KLD', 'SIM', 'AUC-J'))
        assert ours['empty_gt'][i] == (name == 'empty_gt')
    # empty GT: uniform for KLD / SIM, no fixations -> AUC-J undefined.
    assert np.isfinite(ours['KLD'][-1]) and np.isnan(ours['AUC-J'][-1])
    # constant GT: every pixel is a fixation -> AUC-J undefined (0/0 FP rate in the published code).
    assert np.isnan(ours['AUC-J'][[n for n, _, _ in named].index('constant_gt')])


def test_hotspots_protocol_default_sizes_and_jitter():
    rng = np.random.default_rng(13)
    preds = [rng.random((14, 14)), blob(224, 224, 100, 80, 30)]
    gts = [sparse(rng, 480, 640, 0.05), blob(300, 400, 100, 100, 40)]
    jitter = [np.random.default_rng(s) for s in (5, 6)]
    ours = hotspots_scores(preds, gts, jitter=jitter)  # size 28 via a 224x224 GT stage
    for i, seed in enumerate((5, 6)):
        noise = np.random.default_rng(seed).random((28, 28)) * 1e-7
        ref = ref_hotspots(preds[i], gts[i], noise=noise)
        assert_scores_match(ours, i, ref, ('KLD', 'SIM', 'AUC-J'))


def test_hotspots_single_generator_jitter_spans_the_batch():
    # 6 maps are scored in chunks; one generator must still give each map its own slice of noise,
    # identical to one draw for the whole batch. Plateau predictions make AUC-J depend on it.
    rng = np.random.default_rng(14)
    preds = [np.kron(rng.integers(0, 3, (2, 2)), np.ones((7, 7))) for _ in range(6)]
    gts = [blob(40, 40, rng.uniform(5, 35), rng.uniform(5, 35), 6) for _ in range(6)]
    ours = hotspots_scores(preds, gts, size=16, gt_size=None, jitter=np.random.default_rng(9))
    noise = np.random.default_rng(9).random((6, 16, 16)) * 1e-7
    for i in range(6):
        ref = ref_hotspots(preds[i], gts[i], size=16, gt_size=40, noise=noise[i])
        assert ours['AUC-J'][i] == pytest.approx(ref['AUC-J'], abs=1e-12)
    with pytest.raises(ValueError, match='2 jitter generators for 6 maps'):
        hotspots_scores(preds, gts, jitter=[np.random.default_rng(0)] * 2)


def test_bad_gt_is_rejected_with_the_file_name():
    pred = np.random.default_rng(0).random((1, 8, 8))
    with pytest.raises(ValueError, match=r'a\.png.*NaN'):
        agd20k_scores(pred, np.full((1, 8, 8), np.nan), names=['a.png'])
    with pytest.raises(ValueError, match=r'b\.png.*negative'):
        hotspots_scores(pred, -np.ones((1, 8, 8)), names=['b.png'])
    with pytest.raises(ValueError, match='1 predictions but 2 GT'):
        agd20k_scores(pred, np.ones((2, 8, 8)))


# --------------------------------------------------------------------------------
# AffordanceMetric
# --------------------------------------------------------------------------------
def make_sample(idx: int, pred: np.ndarray, gt: np.ndarray, affordance: str) -> dict:
    return dict(
        pred_heatmap=dict(data=torch.from_numpy(pred).float()[None]),
        gt_heatmap=dict(data=torch.from_numpy(gt).float()[None]),
        sample_idx=idx,
        img_path=f'ego/{affordance}/obj/{idx}.jpg',
        affordance=affordance,
    )


def make_dataset(rng: np.random.Generator, n: int = 7):
    affordances = ['hold', 'cut_with', 'sit_on']
    data = []
    for i in range(n):
        pred = rng.random((14, 14)).astype(np.float32).astype(np.float64)
        gt = (blob(30, 40, rng.uniform(5, 25), rng.uniform(5, 35), 5) * 255).round() / 255
        gt = gt.astype(np.float32).astype(np.float64)
        data.append((i, pred, gt, affordances[i % 3]))
    return data


@pytest.fixture
def logs(monkeypatch):
    messages = []
    monkeypatch.setattr(metric_module, 'print_log', lambda msg, *a, **k: messages.append(str(msg)))
    return messages


def test_metric_agd20k_end_to_end_with_padded_duplicates(logs):
    rng = np.random.default_rng(20)
    data = make_dataset(rng)
    data[3] = (3, data[3][1], np.zeros((30, 40)), data[3][3])  # empty GT: left out and counted
    nan_pred = data[5][1].copy()
    nan_pred[2, 2] = np.nan
    data[5] = (5, nan_pred, data[5][2], data[5][3])
    metric = AffordanceMetric(eval_size=32)
    samples = [make_sample(*d) for d in data]
    metric.process({}, samples[:4])
    metric.process({}, samples[4:])
    metric.process({}, samples[:2])  # the padding a DDP sampler adds
    assert len(metric.results) == 9  # small records, not maps
    assert set(metric.results[0]) == {
        'sample_idx',
        'img_path',
        'affordance',
        'KLD',
        'SIM',
        'NSS',
        'empty_gt',
        'nonfinite_pred',
    }
    result = metric.compute_metrics(list(metric.results))
    assert list(result) == ['KLD', 'SIM', 'NSS']
    refs = [ref_agd20k(p, g, 32) for _, p, g, _ in data]
    for key in result:
        expected = np.mean([r[key] for r in refs if r is not None])
        assert result[key] == pytest.approx(expected, rel=TOL, abs=TOL)
    text = '\n'.join(logs)
    assert 'num_images=7' in text and 'duplicates_dropped=2' in text
    assert 'num_empty_gt=1' in text and 'num_nonfinite_pred=1' in text
    for affordance in ('hold', 'cut_with', 'sit_on'):
        assert affordance in text
    # The non-finite warning is logged once however many batches have NaNs.
    metric.process({}, samples[5:6])
    assert sum('NaN/inf' in m for m in logs) == 1


def test_metric_evaluate_and_per_affordance_means(logs):
    rng = np.random.default_rng(21)
    data = make_dataset(rng, 6)
    metric = AffordanceMetric(metrics=['SIM'], eval_size=24)
    metric.process({}, [make_sample(*d) for d in data])
    result = metric.evaluate(len(data))
    assert list(result) == ['SIM'] and metric.results == []
    refs = [ref_agd20k(p, g, 24) for _, p, g, _ in data]
    assert result['SIM'] == pytest.approx(np.mean([r['SIM'] for r in refs]), rel=TOL)
    hold = np.mean([r['SIM'] for r, d in zip(refs, data) if d[3] == 'hold'])
    table = next(m for m in logs if 'per-affordance' in m)
    hold_row = next(line for line in table.splitlines() if 'hold' in line)
    assert f'{hold:.4f}' in hold_row


def test_metric_hotspots_end_to_end_with_per_sample_jitter(logs):
    rng = np.random.default_rng(22)
    data = make_dataset(rng, 5)
    # Piecewise-constant predictions: plateaus survive resize and blur, so AUC-J has ties and the
    # jitter (seeded per sample_idx) changes the scores.
    data = [(i, np.kron(rng.integers(0, 3, (2, 2)), np.ones((7, 7))), gt, aff) for i, _, gt, aff in data]
    data[1] = (1, data[1][1], np.zeros((30, 40)), data[1][3])  # uniform for KLD/SIM, no AUC-J
    metric = AffordanceMetric(protocol='hotspots', jitter_seed=3)
    metric.process({}, [make_sample(*d) for d in data[::-1]])  # order must not matter
    records = {r['sample_idx']: r for r in metric.results}
    result = metric.compute_metrics(list(metric.results))
    assert list(result) == ['KLD', 'SIM', 'AUC-J']
    refs, refs_no_jitter = [], []
    for idx, pred, gt, _ in data:
        noise = np.random.default_rng([3, idx]).random((28, 28)) * 1e-7
        refs.append(ref_hotspots(pred, gt, noise=noise))
        refs_no_jitter.append(ref_hotspots(pred, gt))
        for key in ('KLD', 'SIM', 'AUC-J'):
            expected = refs[-1][key]
            if expected is None:
                assert np.isnan(records[idx][key])
            else:
                assert records[idx][key] == pytest.approx(expected, rel=TOL, abs=TOL)
    for key in result:
        values = [r[key] for r in refs if r[key] is not None]
        assert result[key] == pytest.approx(np.mean(values), rel=TOL, abs=TOL)
    assert any(abs(a['AUC-J'] - b['AUC-J']) > 1e-3 for a, b in zip(refs, refs_no_jitter) if a['AUC-J'] is not None)
    assert 'AUC-J_left_out=1' in '\n'.join(logs) and 'num_empty_gt=1' in '\n'.join(logs)
    # jitter_seed=None disables the jitter: the tied plateaus then count as published without it.
    # (Exact ties after resize + blur depend on the last bit of float arithmetic, so this is
    # compared with our own un-jittered function, not the loop reference; auc_judd's tie handling
    # is checked against it on exactly tied inputs above.)
    no_jitter = AffordanceMetric(protocol='hotspots', jitter_seed=None)
    no_jitter.process({}, [make_sample(*d) for d in data])
    plain = hotspots_scores([d[1] for d in data], [d[2] for d in data])['AUC-J']
    got = np.array([r['AUC-J'] for r in no_jitter.results])
    np.testing.assert_array_equal(got, plain)
    assert not np.allclose(got[0], records[0]['AUC-J'], atol=1e-4)


def test_hotspots_raw_score_maps_need_minmax_normalisation():
    """The Hotspots evaluator divides by the maximum: a raw score map (negative values) is an error naming the
    image and the option; with pred_normalization='minmax' it scores as its min-max normalised map, against the
    loop reference, and a non-negative map only moves by its offset."""
    rng = np.random.default_rng(23)
    data = make_dataset(rng, 4)
    raw = [(i, rng.standard_normal((14, 14)) * 3 - 1, gt, aff) for i, _, gt, aff in data]
    plain = AffordanceMetric(protocol='hotspots', jitter_seed=None)
    with pytest.raises(ValueError, match=r"ego/hold/obj/0\.jpg has negative values.*pred_normalization='minmax'"):
        plain.process({}, [make_sample(*d) for d in raw])
    metric = AffordanceMetric(protocol='hotspots', jitter_seed=None, pred_normalization='minmax')
    metric.process({}, [make_sample(*d) for d in raw])
    for record, (_, pred, gt, _) in zip(metric.results, raw):
        pred32 = pred.astype(np.float32).astype(np.float64)  # make_sample sends float32 maps
        ref = ref_hotspots((pred32 - pred32.min()) / (pred32.max() - pred32.min()), gt)
        for key in ('KLD', 'SIM', 'AUC-J'):
            assert record[key] == pytest.approx(ref[key], rel=TOL, abs=TOL), key
    unnormalised = ref_hotspots(raw[0][1].astype(np.float32).astype(np.float64), raw[0][2])
    assert unnormalised['KLD'] is None or abs(unnormalised['SIM'] - metric.results[0]['SIM']) > 1e-3
    with pytest.raises(ValueError, match="pred_normalization must be None or 'minmax'"):
        AffordanceMetric(protocol='hotspots', pred_normalization='max')
    with pytest.raises(ValueError, match="normalises every prediction itself"):
        AffordanceMetric(protocol='agd20k', pred_normalization='minmax')


def test_the_video_configs_normalise_their_raw_test_maps():
    from mmengine.config import Config

    for name in (
        'looptrans_opra.py',
        'looptrans_epic.py',
        'looptrans_agd20k_to_opra.py',
        'looptrans_synthetic_to_opra.py',
    ):
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        assert cfg.model.test_cfg.heatmap == 'pixel_logits', name
        evaluator = cfg.test_evaluator
        assert (evaluator.protocol, evaluator.get('pred_normalization')) == ('hotspots', 'minmax'), name


def test_metric_accepts_seg_data_samples():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    rng = np.random.default_rng(23)
    idx, pred, gt, aff = make_dataset(rng, 1)[0]
    sample = SegDataSample(metainfo=dict(sample_idx=idx, img_path='x.jpg', affordance=aff))
    sample.pred_heatmap = PixelData(data=torch.from_numpy(pred)[None])
    sample.gt_heatmap = PixelData(data=torch.from_numpy(gt)[None])
    a, b = AffordanceMetric(eval_size=16), AffordanceMetric(eval_size=16)
    a.process({}, [sample])
    b.process({}, [sample.to_dict()])
    assert a.results == b.results
    # AMP inference gives half / bfloat16 heatmaps: scored as their float32 values.
    c = AffordanceMetric(eval_size=16)
    half = torch.from_numpy(pred).to(torch.bfloat16)
    c.process({}, [dict(sample.to_dict(), pred_heatmap=dict(data=half[None]))])
    expected = agd20k_scores([half.float().numpy()], [gt], size=16)
    assert c.results[0]['KLD'] == pytest.approx(expected['KLD'][0], rel=1e-12)


def test_metric_is_registered():
    metric = METRICS.build(dict(type='AffordanceMetric', protocol='hotspots', metrics='AUC-J'))
    assert isinstance(metric, AffordanceMetric)
    assert metric.metrics == ('AUC-J',) and metric.eval_size == 28
    default = AffordanceMetric()
    assert default.eval_size == 224 and default.metrics == ('KLD', 'SIM', 'NSS')


def test_metric_rejects_bad_configuration():
    with pytest.raises(ValueError, match="protocol='opra'"):
        AffordanceMetric(protocol='opra')
    with pytest.raises(ValueError, match=r"subset of \['KLD', 'SIM', 'NSS'\]"):
        AffordanceMetric(metrics=['AUC-J'])
    with pytest.raises(ValueError, match='jitter_seed'):
        AffordanceMetric(protocol='hotspots', jitter_seed=-1)


def test_metric_rejects_bad_samples():
    rng = np.random.default_rng(24)
    idx, pred, gt, aff = make_dataset(rng, 1)[0]
    metric = AffordanceMetric(eval_size=16)
    sample = make_sample(idx, pred, gt, aff)
    with pytest.raises(KeyError, match=r"ego/hold/obj/0\.jpg.*gt_heatmap.*LoadAffordanceGT"):
        metric.process({}, [{k: v for k, v in sample.items() if k != 'gt_heatmap'}])
    with pytest.raises(KeyError, match='sample_idx'):
        metric.process({}, [{k: v for k, v in sample.items() if k != 'sample_idx'}])
    bad = dict(sample, pred_heatmap=dict(data=torch.zeros(3, 14, 14)))
    with pytest.raises(ValueError, match=r'pred_heatmap of .*0\.jpg.* \(3, 14, 14\)'):
        metric.process({}, [bad])
    bad = dict(sample, gt_heatmap=dict(data=torch.full((1, 5, 5), float('nan'))))
    with pytest.raises(ValueError, match=r'0\.jpg.*NaN'):
        metric.process({}, [bad])
    metric.process({}, [sample, dict(sample, img_path='other.jpg')])
    with pytest.raises(ValueError, match='sample_idx 0 is used by two images'):
        metric.compute_metrics(list(metric.results))


def test_metric_refuses_to_average_nothing(logs):
    rng = np.random.default_rng(25)
    idx, pred, _, aff = make_dataset(rng, 1)[0]
    metric = AffordanceMetric(eval_size=16)
    metric.process({}, [make_sample(idx, pred, np.zeros((8, 8)), aff)])
    with pytest.raises(ValueError, match='no image has a defined KLD.*1 with an all-zero GT'):
        metric.compute_metrics(list(metric.results))


# --------------------------------------------------------------------------------
# the batched (torch) and the threaded (NumPy) AGD20K paths against the per-image reference
# --------------------------------------------------------------------------------
def mixed_batch(rng: np.random.Generator):
    """(names, preds, gts): GTs of several sizes in one batch (one of them already at the evaluation
    size), an all-zero GT, a constant prediction, non-finite predictions, float32 predictions."""
    named = cases(rng) + [
        ('empty_gt', rng.random((14, 14)), np.zeros((20, 20))),
        ('gt_at_eval_size', rng.random((14, 14)), blob(32, 32, 10, 20, 5)),
        ('gt_at_eval_size_2', rng.random((14, 14)).astype(np.float32), sparse(rng, 32, 32, 0.3)),
        ('same_gt_size_as_random', rng.random((7, 9)), rng.random((20, 30))),
        ('wide_pred', rng.random((10, 30)), blob(48, 64, 30, 10, 9)),
    ]
    return [n for n, _, _ in named], [p for _, p, _ in named], [g for _, _, g in named]


def assert_agd20k_matches_reference(ours: dict, names, preds, gts, size: int) -> None:
    for i, (name, pred, gt) in enumerate(zip(names, preds, gts)):
        assert_scores_match(ours, i, ref_agd20k(np.asarray(pred, dtype=np.float64), gt, size), ('KLD', 'SIM', 'NSS'))
        assert ours['empty_gt'][i] == (name == 'empty_gt'), name
        assert ours['nonfinite_pred'][i] == (name in ('nan_pred', 'all_nan_pred')), name
    k = names.index('constant_pred')
    assert ours['NSS'][k] == 0 and ours['SIM'][k] == 0 and np.isfinite(ours['KLD'][k])


@pytest.mark.parametrize('chunk_size', [64, 3])
def test_agd20k_batched_matches_reference_with_mixed_sizes(chunk_size):
    names, preds, gts = mixed_batch(np.random.default_rng(30))
    tensors = [torch.from_numpy(np.asarray(p)) for p in preds], [torch.from_numpy(g)[None] for g in gts]
    ours = agd20k_scores_batched(*tensors, size=32, chunk_size=chunk_size)
    assert ours['KLD'].shape == (len(names),) and ours['KLD'].dtype == np.float64
    assert_agd20k_matches_reference(ours, names, preds, gts, 32)
    # the CPU path gives the same numbers to rounding
    cpu = agd20k_scores(preds, gts, size=32)
    for key in ('KLD', 'SIM', 'NSS'):
        np.testing.assert_allclose(ours[key], cpu[key], rtol=1e-12, atol=1e-12, equal_nan=True)
    for key in ('empty_gt', 'nonfinite_pred'):
        np.testing.assert_array_equal(ours[key], cpu[key])


def test_agd20k_threads_give_the_same_scores_as_one_thread():
    names, preds, gts = mixed_batch(np.random.default_rng(31))
    one = agd20k_scores(preds, gts, size=32)
    assert_agd20k_matches_reference(one, names, preds, gts, 32)
    for threads in (2, 5, 100):
        many = agd20k_scores(preds, gts, size=32, num_threads=threads)
        for key in one:
            np.testing.assert_array_equal(many[key], one[key])


def test_agd20k_at_224_from_480x640_gt_batched_and_cpu():
    rng = np.random.default_rng(32)
    preds = [rng.random((14, 14)).astype(np.float32) for _ in range(3)]
    gts = [
        (np.round(blob(480, 640, 200, 300, 60) * 255) / 255),
        sparse(rng, 480, 640, 0.05),
        (np.round(blob(240, 320, 100, 100, 30) * 255) / 255),
    ]
    batched = agd20k_scores_batched([torch.from_numpy(p) for p in preds], [torch.from_numpy(g) for g in gts])
    cpu = agd20k_scores(preds, gts, num_threads=2)
    for i in range(3):
        ref = ref_agd20k(preds[i].astype(np.float64), gts[i], 224)
        assert_scores_match(batched, i, ref, ('KLD', 'SIM', 'NSS'))
        assert_scores_match(cpu, i, ref, ('KLD', 'SIM', 'NSS'))


def test_agd20k_batched_rejects_bad_gt_and_counts():
    pred = [torch.rand(8, 8)]
    with pytest.raises(ValueError, match=r'a\.png.*NaN'):
        agd20k_scores_batched(pred, [torch.full((8, 8), float('nan'))], names=['a.png'])
    with pytest.raises(ValueError, match=r'b\.png.*negative'):
        agd20k_scores_batched(pred * 2, [torch.ones(8, 8), -torch.ones(8, 8)], names=['a.png', 'b.png'])
    with pytest.raises(ValueError, match='1 predictions but 2 GT'):
        agd20k_scores_batched(pred, [torch.ones(8, 8)] * 2)
    with pytest.raises(ValueError, match=r'map 0 has shape \(2, 8, 8\)'):
        agd20k_scores_batched([torch.rand(2, 8, 8)], [torch.ones(8, 8)])


def test_nss_fixations_near_the_bound_follow_the_published_operations():
    # GT values within rounding distance of the fixation bound take the slow path: the published
    # operations decide, pixel by pixel, exactly as nss(..., gt_divisor=255).
    lo, hi = 0.0, 1.0
    bound = lo + 0.1 * (hi - lo + 255 * 1e-12)
    near = bound + np.array([-4, -2, -1, 0, 1, 2, 4]) * np.spacing(bound)
    gt = np.concatenate([[lo, hi], near, np.linspace(0, 1, 40)])
    gt = np.tile(gt, 2)[:48].reshape(6, 8)
    pred = np.random.default_rng(33).random((6, 8))
    expected = nss(pred[None], gt[None], gt_divisor=255.0)[0]
    assert agd20k_scores([pred], [gt], size=(6, 8))['NSS'][0] == pytest.approx(expected, rel=1e-12)
    batched = agd20k_scores_batched([torch.from_numpy(pred)], [torch.from_numpy(gt)], size=(6, 8))
    assert batched['NSS'][0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize('lo, hi', [(0.0, 1.0), (0.2, 0.7), (0.0, 1e-9), (3.0, 3.0 + 1e-13), (0.5, 0.5), (1e3, 2e5)])
def test_fixation_cut_is_exactly_the_published_fixation_test(lo, hi):
    """The kernel counts a fixation where ``v >= fixation_cut(...)``; for values around the cut and across
    the range that is the published ``(v / 255 - lo / 255) / (hi / 255 - lo / 255 + 1e-12) > 0.1``, in
    Python's float arithmetic (IEEE double, as NumPy's)."""
    from looptrans.evaluation.agd20k_kernel import fixation_cut
    from looptrans.evaluation.functional import EPS, NSS_GT_DIVISOR, NSS_THRESHOLD

    def published(v: float) -> bool:
        fix_lo = lo / NSS_GT_DIVISOR
        return (v / NSS_GT_DIVISOR - fix_lo) / (hi / NSS_GT_DIVISOR - fix_lo + EPS) > NSS_THRESHOLD

    cut = fixation_cut(lo, hi, NSS_GT_DIVISOR, EPS, NSS_THRESHOLD)
    values = list(np.linspace(lo, hi, 101)) + [hi]
    if np.isfinite(cut):
        assert published(cut) and (cut == 0 or not published(np.nextafter(cut, -np.inf)))
        values += list(cut + np.arange(-8, 9) * np.spacing(cut))
    else:  # a constant GT, or one whose range is tiny against the 1e-12 of the denominator: no fixation
        assert not published(hi)
    for v in values:
        if lo <= v <= hi:
            assert (v >= cut) == published(float(v)), v


@pytest.mark.parametrize('backend', ['torch', 'numpy', 'auto'])
def test_metric_backends_agree_on_a_batch_of_mixed_gt_sizes(backend):
    names, preds, gts = mixed_batch(np.random.default_rng(34))
    samples = [make_sample(i, np.asarray(p, dtype=np.float64), g, 'hold') for i, (p, g) in enumerate(zip(preds, gts))]
    for sample, g in zip(samples, gts):  # float64 GT, as LoadAffordanceGT loads it
        sample['gt_heatmap'] = dict(data=torch.from_numpy(g)[None])
    metric = AffordanceMetric(eval_size=32, compute_backend=backend, num_threads=2)
    metric.process({}, samples[:5])
    metric.process({}, samples[5:])
    records = {r['sample_idx']: r for r in metric.results}
    float32_preds = [torch.from_numpy(np.asarray(p, dtype=np.float64)).float().double().numpy() for p in preds]
    expected = agd20k_scores(float32_preds, gts, size=32)
    for i, name in enumerate(names):
        assert records[i]['empty_gt'] == (name == 'empty_gt')
        for key in ('KLD', 'SIM', 'NSS'):
            if np.isnan(expected[key][i]):
                assert np.isnan(records[i][key])
            else:
                assert records[i][key] == pytest.approx(expected[key][i], rel=1e-12, abs=1e-12), (name, key)
    result = metric.compute_metrics(list(metric.results))
    refs = [ref_agd20k(p, g, 32) for p, g in zip(float32_preds, gts)]
    for key in result:
        assert result[key] == pytest.approx(np.mean([r[key] for r in refs if r is not None]), rel=TOL, abs=TOL)


def test_metric_rejects_bad_backend_and_threads():
    with pytest.raises(ValueError, match='compute_backend'):
        AffordanceMetric(compute_backend='gpu')
    with pytest.raises(ValueError, match='num_threads'):
        AffordanceMetric(num_threads=0)
