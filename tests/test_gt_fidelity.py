"""GT files -> LoadAffordanceGT -> PackAffordanceInputs -> AffordanceMetric equals the published code.

The reference is a direct transcription of the LOCATE evaluation (``train.py`` / ``test.py`` and
``utils/evaluation.py``, the same in Cross-View-AG): ``cv2.imread(path, cv2.IMREAD_GRAYSCALE)``,
``/ 255.0`` in float64, ``cv2.resize(gt, (224, 224))``; the prediction goes through
``normalize_map``; then ``cal_kl``, ``cal_sim`` and ``cal_nss`` with its pixel loop. Every image's
KLD / SIM / NSS must agree to 1e-9.

The GTs include maps whose downscaling puts pixels exactly half-way between two grey levels at
NSS's fixation threshold (``minmax(gt) > 0.1``): a float32 GT moves some of them across the
threshold and NSS by ~1e-3, so this test fails when any step holds the GT in float32. The
predictions are float64 maps: the published prediction path partly runs in float32 (a ~1e-7
difference, documented in ``looptrans.evaluation.functional``), which is not what is tested here.
"""

from __future__ import annotations

import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from looptrans.datasets.transforms import LoadAffordanceGT, PackAffordanceInputs
from looptrans.evaluation import AffordanceMetric

CROP = 224
TOL = 1e-9


# --------------------------------------------------------------------------------
# the published evaluation code, transcribed (LOCATE utils/evaluation.py, utils/util.py, test.py)
# --------------------------------------------------------------------------------
def cal_kl(pred: np.ndarray, gt: np.ndarray, eps=1e-12) -> np.ndarray:
    map1, map2 = pred / (pred.sum() + eps), gt / (gt.sum() + eps)
    kld = np.sum(map2 * np.log(map2 / (map1 + eps) + eps))
    return kld


def cal_sim(pred: np.ndarray, gt: np.ndarray, eps=1e-12) -> np.ndarray:
    map1, map2 = pred / (pred.sum() + eps), gt / (gt.sum() + eps)
    intersection = np.minimum(map1, map2)
    return np.sum(intersection)


def image_binary(image, threshold):
    output = np.zeros(image.size).reshape(image.shape)
    for xx in range(image.shape[0]):
        for yy in range(image.shape[1]):
            if image[xx][yy] > threshold:
                output[xx][yy] = 1
    return output


def cal_nss(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    pred = pred / 255.0
    gt = gt / 255.0
    std = np.std(pred)
    u = np.mean(pred)
    smap = (pred - u) / std
    fixation_map = (gt - np.min(gt)) / (np.max(gt) - np.min(gt) + 1e-12)
    fixation_map = image_binary(fixation_map, 0.1)
    nss = smap * fixation_map
    nss = np.sum(nss) / np.sum(fixation_map + 1e-12)
    return nss


def normalize_map(atten_map, crop_size):
    atten_map = cv2.resize(atten_map, dsize=(crop_size, crop_size))
    min_val = np.min(atten_map)
    max_val = np.max(atten_map)
    atten_norm = (atten_map - min_val) / (max_val - min_val + 1e-10)
    return atten_norm


def published_scores(pred: np.ndarray, gt_path: str) -> Dict[str, float]:
    ego_pred = normalize_map(pred, CROP)
    GT_mask = cv2.imread(gt_path, cv2.IMREAD_GRAYSCALE)
    GT_mask = GT_mask / 255.0
    GT_mask = cv2.resize(GT_mask, (CROP, CROP))
    return dict(
        KLD=float(cal_kl(ego_pred, GT_mask)),
        SIM=float(cal_sim(ego_pred, GT_mask)),
        NSS=float(cal_nss(ego_pred, GT_mask)),
    )


# --------------------------------------------------------------------------------
# GT files
# --------------------------------------------------------------------------------
def blobs(h: int, w: int, rng: np.random.Generator, n: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w))
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        sigma = rng.uniform(0.05, 0.2) * min(h, w)
        m += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    return m / m.max()


def halfway_gt(h: int, w: int, top: int, rng: np.random.Generator) -> np.ndarray:
    """A 448x448 GT whose 2x2 blocks average exactly to the NSS threshold after the 2x resize.

    With min 0 and max ``top = 10 * k + 5`` the threshold ``0.1 * top`` is ``k + 0.5``: blocks of
    two ``k`` and two ``k + 1`` pixels resize to exactly that value (before rounding).
    """
    assert (h, w) == (2 * CROP, 2 * CROP) and top % 10 == 5
    k = top // 10
    gt = np.zeros((h, w), np.uint8)
    gt[:8, :8] = top  # the maximum
    block = np.array([[k, k + 1], [k + 1, k]], np.uint8)
    rows = rng.choice(np.arange(8, CROP), size=60, replace=False)
    cols = rng.choice(np.arange(8, CROP), size=60)
    for r, c in zip(rows, cols):
        gt[2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = block if r % 2 else block.T
    # a smooth part so that KLD / SIM / NSS are not all about the blocks
    gt[h // 2 :, : w // 2] = np.maximum(
        gt[h // 2 :, : w // 2], np.round(blobs(h // 2, w // 2, rng) * top).astype(np.uint8)
    )
    return gt


def write_gts(root: str) -> List[Tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    gts = []
    for i, top in enumerate([255, 245, 125, 55]):
        gts.append((f'halfway_{top}.png', halfway_gt(2 * CROP, 2 * CROP, top, rng)))
    for name, (h, w) in [
        ('small_64x64', (64, 64)),
        ('landscape_300x200', (200, 300)),
        ('hd_1280x720', (720, 1280)),
        ('portrait_333x500', (500, 333)),
        ('exact_224', (224, 224)),
    ]:
        gt = np.round(blobs(h, w, rng) * 255).astype(np.uint8)
        gt[gt < 12] = 0  # annotated heatmaps have large zero areas
        gts.append((name + '.png', gt))
    # 896x448 -> 224x224 samples half-way between columns 4j + 1 and 4j + 2: stripes of 25 and 26
    # (around a 255 peak) resize to exactly 25.5 / 255, the threshold, in a third of the map
    steps = np.zeros((448, 896), np.uint8)
    steps[:, :300] = np.where(np.arange(300) % 4 < 2, 25, 26)[None]
    steps[150:250, 600:800] = 255
    gts.append(('stripes_896x448.png', steps))
    out = []
    for name, gt in gts:
        path = osp.join(root, name)
        assert cv2.imwrite(path, gt)
        out.append((path, gt))
    return out


# --------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------
def halfway_pixel_count(path: str) -> int:
    """How many resized GT pixels sit within 1e-9 of the fixation threshold (for the test's own check)."""
    gt = cv2.resize(cv2.imread(path, cv2.IMREAD_GRAYSCALE) / 255.0, (CROP, CROP))
    fm = (gt - gt.min()) / (gt.max() - gt.min())
    return int(np.sum(np.abs(fm - 0.1) < 1e-9))


def score_files(files, resize_to=None, seed: int = 1) -> Tuple[Dict[int, dict], List[Dict[str, float]]]:
    """Load every GT file, pack it with a prediction, run AffordanceMetric; also the published scores."""
    rng = np.random.default_rng(seed)
    load, pack = LoadAffordanceGT(resize_to=resize_to), PackAffordanceInputs()
    metric = AffordanceMetric()
    expected, samples = [], []
    for idx, (path, raw) in enumerate(files):
        results = load(
            dict(gt_path=path, img=np.zeros((4, 4, 3), np.uint8), img_path=path, sample_idx=idx, affordance='hold')
        )
        assert results['gt_heatmap'].dtype == np.float64
        if resize_to is None:
            np.testing.assert_array_equal(results['gt_heatmap'], raw / 255.0)
        packed = pack(results)['data_samples']
        pred = rng.random((14, 14)) ** 3  # float64, like a 14x14 ViT heatmap
        if idx % 3 == 0:
            pred = cv2.resize(pred, (CROP, CROP))  # also a prediction already at 224
        packed.pred_heatmap = PixelData(data=torch.from_numpy(pred[None]))
        samples.append(packed.to_dict())
        expected.append(published_scores(pred, path))
    # two batches, as the test loop would call it
    metric.process({}, samples[:5])
    metric.process({}, samples[5:])
    records = {r['sample_idx']: r for r in metric.results}
    assert len(records) == len(files)
    return records, expected


@pytest.mark.parametrize('resize_to', [None, CROP])
def test_gt_to_metric_matches_published_code(tmp_path, resize_to):
    files = write_gts(str(tmp_path))
    # the construction does produce threshold pixels (otherwise the test proves nothing)
    assert sum(halfway_pixel_count(p) for p, _ in files[:4]) > 200
    assert halfway_pixel_count(files[-1][0]) > 1000

    records, expected = score_files(files, resize_to)
    for idx, ref in enumerate(expected):
        for key, value in ref.items():
            got = records[idx][key]
            assert got == pytest.approx(value, rel=0, abs=TOL), (
                osp.basename(files[idx][0]),
                key,
                got,
                value,
                got - value,
            )


def test_gt_resized_in_the_pipeline_scores_bit_for_bit_the_same(tmp_path):
    files = write_gts(str(tmp_path))
    full, _ = score_files(files)
    resized, _ = score_files(files, resize_to=CROP)
    for idx in full:
        for key in ('KLD', 'SIM', 'NSS'):
            assert full[idx][key] == resized[idx][key]


def test_metric_refuses_a_gt_resized_to_another_size(tmp_path):
    path, _ = write_gts(str(tmp_path))[4]
    results = LoadAffordanceGT(resize_to=112)(
        dict(gt_path=path, img=np.zeros((4, 4, 3), np.uint8), img_path=path, sample_idx=0, affordance='hold')
    )
    assert results['gt_heatmap'].shape == (112, 112) and results['gt_resized_to'] == (112, 112)
    sample = PackAffordanceInputs()(results)['data_samples']
    sample.pred_heatmap = PixelData(data=torch.rand(1, 14, 14))
    with pytest.raises(ValueError, match='resize_to'):
        AffordanceMetric().process({}, [sample.to_dict()])
    AffordanceMetric(eval_size=112).process({}, [sample.to_dict()])  # consistent: accepted
    with pytest.raises(ValueError, match='resize_to'):
        LoadAffordanceGT(resize_to=0)
