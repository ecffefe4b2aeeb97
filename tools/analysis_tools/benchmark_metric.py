"""Time the affordance metrics against a straightforward per-pixel-loop implementation.

The loop version computes the same formulas the way the published evaluation code does (NumPy per
image, a Python loop over pixels for the NSS fixation map and, for AUC-J, one pass over all pixels
per threshold). Both run on the same N random maps and the script prints milliseconds per image and
the largest difference between their scores. It also times ``AffordanceMetric.process`` as the test
loop calls it (batches of data samples holding float32 prediction tensors, as the model returns
them, and float64 GT tensors, as ``LoadAffordanceGT`` loads them). Nothing is asserted: the tests
check correctness.

Example::

    python tools/analysis_tools/benchmark_metric.py --num-images 50
    python tools/analysis_tools/benchmark_metric.py --protocol hotspots --num-images 50
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from looptrans.evaluation import agd20k_scores, hotspots_scores


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--protocol', choices=['agd20k', 'hotspots'], default='agd20k')
    parser.add_argument('--num-images', type=int, default=50, help='number of random maps (N)')
    parser.add_argument('--pred-size', type=int, default=224, help='prediction side (network input size)')
    parser.add_argument(
        '--gt-size',
        type=int,
        nargs=2,
        default=[480, 640],
        metavar=('H', 'W'),
        help='GT map size (a typical image size)',
    )
    parser.add_argument('--batch-size', type=int, default=16, help='samples per process() call')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs; the fastest is reported')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def loop_agd20k(pred: np.ndarray, gt: np.ndarray, size: int = 224) -> Dict[str, float]:
    """One image, AGD20K protocol, with the published code's per-pixel loop for the fixation map."""
    p = cv2.resize(pred, (size, size), interpolation=cv2.INTER_LINEAR)
    p = (p - p.min()) / (p.max() - p.min() + 1e-10)
    g = cv2.resize(gt, (size, size), interpolation=cv2.INTER_LINEAR)
    pn, gn = p / (p.sum() + 1e-12), g / (g.sum() + 1e-12)
    kld = float(np.sum(gn * np.log(gn / (pn + 1e-12) + 1e-12)))
    sim = float(np.minimum(pn, gn).sum())
    s = (p - p.mean()) / p.std()
    gmm = (g - g.min()) / (g.max() - g.min() + 1e-12)
    fix = np.zeros_like(gmm)
    for y in range(gmm.shape[0]):
        for x in range(gmm.shape[1]):
            if gmm[y][x] > 0.1:
                fix[y][x] = 1
    nss = float(np.sum(s * fix) / np.sum(fix + 1e-12))
    return dict(KLD=kld, SIM=sim, NSS=nss)


def loop_hotspots(pred: np.ndarray, gt: np.ndarray, size: int = 28) -> Dict[str, float]:
    """One image, Hotspots protocol (no jitter); AUC-J passes over all pixels per threshold."""
    p = cv2.resize(pred, (size, size), interpolation=cv2.INTER_LINEAR)
    p = cv2.GaussianBlur(p / (p.max() + 1e-12), (5, 5), 0)
    g = cv2.resize(
        cv2.resize(gt, (224, 224), interpolation=cv2.INTER_LINEAR), (size, size), interpolation=cv2.INTER_LINEAR
    )
    g_real = g if g.sum() != 0 else np.full_like(g, 1.0 / g.size)
    pn, gn = p / (p.sum() + 1e-12), g_real / (g_real.sum() + 1e-12)
    kld = float(np.sum(gn * np.log(gn / (pn + 1e-12) + 1e-12)))
    sim = float(np.minimum(pn, gn).sum())
    fix = ((g / g.max() + 1e-12) if g.max() > 0 else g) > 0.5
    sal = ((p - p.min()) / (p.max() - p.min() + 1e-12)).ravel().tolist()
    flags = fix.ravel().tolist()
    s_fix = sorted((v for v, f in zip(sal, flags) if f), reverse=True)
    n, n_fix = len(sal), len(s_fix)
    if n_fix in (0, n):
        return dict(KLD=kld, SIM=sim)
    tp, fp = [0.0], [0.0]
    for k, t in enumerate(s_fix):
        above = sum(1 for v in sal if v >= t)
        tp.append((k + 1) / n_fix)
        fp.append((above - k - 1) / (n - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    auc = sum((fp[i + 1] - fp[i]) * (tp[i + 1] + tp[i]) / 2 for i in range(len(tp) - 1))
    return {'KLD': kld, 'SIM': sim, 'AUC-J': auc}


def make_maps(args: argparse.Namespace) -> tuple:
    rng = np.random.default_rng(args.seed)
    h, w = args.gt_size
    preds = rng.random((args.num_images, args.pred_size, args.pred_size))
    yy, xx = np.mgrid[0:h, 0:w]
    gts = []
    for _ in range(args.num_images):  # a few Gaussian blobs per GT, like the annotated heatmaps
        gt = np.zeros((h, w))
        for _ in range(3):
            cy, cx, sigma = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 60)
            gt += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        gts.append(np.round(gt / gt.max() * 255) / 255)
    return preds, gts


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple:
    """``(fn(), fastest wall time of `repeats` calls)``."""
    best, out = float('inf'), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def metric_process_time(
    args: argparse.Namespace, preds: np.ndarray, gts: List[np.ndarray], gt_resized_to: Optional[int] = None
) -> float:
    """Seconds for ``AffordanceMetric.process`` over all images, in batches of ``--batch-size``.

    ``gt_resized_to``: the GT maps arrive already resized (``LoadAffordanceGT(resize_to=...)`` does
    it in the data-loader workers), as the configs' test pipelines do.
    """
    import torch

    from looptrans.evaluation import AffordanceMetric

    if gt_resized_to is not None:
        size = (gt_resized_to, gt_resized_to)
        gts = [cv2.resize(g, size, interpolation=cv2.INTER_LINEAR) for g in gts]
    samples = [
        dict(
            pred_heatmap=dict(data=torch.from_numpy(p[None]).float()),
            gt_heatmap=dict(data=torch.from_numpy(g[None])),
            sample_idx=i,
            img_path=f'{i}.jpg',
            affordance='hold',
        )
        for i, (p, g) in enumerate(zip(preds, gts))
    ]
    if gt_resized_to is not None:
        for sample in samples:
            sample['gt_resized_to'] = (gt_resized_to, gt_resized_to)
    protocol = 'agd20k' if args.protocol == 'agd20k' else 'hotspots'

    def run() -> None:
        metric = AffordanceMetric(protocol=protocol)
        for start in range(0, len(samples), args.batch_size):
            metric.process({}, samples[start : start + args.batch_size])

    return timed(run, args.repeats)[1]


def main() -> None:
    args = parse_args()
    preds, gts = make_maps(args)
    n = args.num_images
    scores = agd20k_scores if args.protocol == 'agd20k' else hotspots_scores
    loop_fn = loop_agd20k if args.protocol == 'agd20k' else loop_hotspots
    ours, t_ours = timed(lambda: scores(preds, gts), args.repeats)
    loop, t_loop = timed(lambda: [loop_fn(p, g) for p, g in zip(preds, gts)])
    _, t_ours1 = timed(lambda: [scores(p[None], [g]) for p, g in zip(preds, gts)], args.repeats)
    t_metric = metric_process_time(args, preds, gts)
    t_metric_resized = metric_process_time(args, preds, gts, gt_resized_to=224) if args.protocol == 'agd20k' else None

    print(
        f'protocol={args.protocol}  N={n}  pred {args.pred_size}x{args.pred_size}  '
        f'GT {args.gt_size[0]}x{args.gt_size[1]}'
    )
    print(f'  per-pixel loop reference : {1000 * t_loop / n:8.3f} ms/image')
    print(f'  looptrans, batch of {n:<5}: {1000 * t_ours / n:8.3f} ms/image')
    print(f'  looptrans, one at a time : {1000 * t_ours1 / n:8.3f} ms/image')
    print(
        f'  AffordanceMetric.process : {1000 * t_metric / n:8.3f} ms/image (batches of '
        f'{args.batch_size}, float32 predictions, float64 GT)'
    )
    if t_metric_resized is not None:
        print(
            f'  ... GT resized in the loader: {1000 * t_metric_resized / n:8.3f} ms/image '
            f'(LoadAffordanceGT(resize_to=224), as the configs)'
        )
    diffs: List[str] = []
    for key in loop[0]:
        ref = np.array([r.get(key, np.nan) for r in loop])
        both = np.isfinite(ref) & np.isfinite(ours[key])
        diff = np.max(np.abs(ref[both] - ours[key][both])) if both.any() else 0.0
        diffs.append(f'{key} {diff:.2e}')
    print('  max |difference|         : ' + ', '.join(diffs))


if __name__ == '__main__':
    main()
