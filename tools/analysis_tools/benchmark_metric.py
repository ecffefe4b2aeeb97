"""Time the AGD20K metric against the published per-image evaluation code, side by side in one process.

The published code (LOCATE ``test.py`` with ``utils/util.py: normalize_map`` and
``utils/evaluation.py: cal_kl / cal_sim / cal_nss``, which Cross-View-AG shares) scores one image at a
time: it resizes the float32 prediction to 224x224 and min-max normalises it, resizes the GT
(grayscale / 255, float64) to 224x224, and computes KLD, SIM and NSS; NSS builds its fixation map
with a Python loop over the 224x224 pixels. :func:`published_agd20k` restates those steps (the same
operations, dtypes and loop) as the reference. ``AffordanceMetric`` gets the same maps as the test
loop hands them over: batches of data samples holding float32 prediction tensors and float64 GT
tensors. The script prints milliseconds per image for both, their ratio and the largest difference
between the scores; nothing is asserted (the tests check correctness, never the wall time).

Example::

    python tools/analysis_tools/benchmark_metric.py                 # 200 maps, 14x14 predictions, 480x640 GT
    python tools/analysis_tools/benchmark_metric.py --protocol hotspots --num-images 50 --pred-size 224
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from looptrans.evaluation import hotspots_scores


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--protocol', choices=['agd20k', 'hotspots'], default='agd20k')
    parser.add_argument('--num-images', type=int, default=200, help='number of random maps (N)')
    parser.add_argument('--pred-size', type=int, default=14, help='prediction side (the ViT-S/16 patch grid: 14)')
    parser.add_argument(
        '--gt-size',
        type=int,
        nargs=2,
        default=[480, 640],
        metavar=('H', 'W'),
        help='GT map size (a typical image size)',
    )
    parser.add_argument('--batch-size', type=int, default=16, help='samples per process() call')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs of each; the fastest is reported')
    parser.add_argument(
        '--threads', type=int, default=None, help='AffordanceMetric(num_threads=...); default: torch.get_num_threads()'
    )
    parser.add_argument(
        '--device', default='cpu', help="where the samples' tensors are (cuda: as the data preprocessor leaves them)"
    )
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------
# the published per-image AGD20K evaluation (LOCATE / Cross-View-AG), restated
# --------------------------------------------------------------------------------
def published_normalize_map(heatmap: np.ndarray, crop_size: int = 224) -> np.ndarray:
    """``normalize_map``: cv2 resize (INTER_LINEAR) in the map's own dtype, then min-max with eps 1e-10."""
    resized = cv2.resize(heatmap, dsize=(crop_size, crop_size))
    low, high = np.min(resized), np.max(resized)
    return (resized - low) / (high - low + 1e-10)


def published_kl_sim(pred: np.ndarray, gt: np.ndarray, eps: float = 1e-12) -> Tuple[float, float]:
    """``cal_kl`` and ``cal_sim`` (each normalises both maps by their sums on its own)."""
    p1, g1 = pred / (pred.sum() + eps), gt / (gt.sum() + eps)
    kld = np.sum(g1 * np.log(g1 / (p1 + eps) + eps))
    p2, g2 = pred / (pred.sum() + eps), gt / (gt.sum() + eps)
    return float(kld), float(np.sum(np.minimum(p2, g2)))


def published_binarize(image: np.ndarray, threshold: float) -> np.ndarray:
    """``image_binary``: a Python loop over every pixel, one element lookup at a time."""
    out = np.zeros(image.size).reshape(image.shape)
    for row in range(image.shape[0]):
        for col in range(image.shape[1]):
            if image[row][col] > threshold:
                out[row][col] = 1
    return out


def published_nss(pred: np.ndarray, gt: np.ndarray) -> float:
    """``cal_nss``: both maps divided by 255 (the GT is already grayscale / 255), z-scored prediction,
    fixations where the min-max GT exceeds 0.1, ``sum(s * f) / sum(f + 1e-12)``."""
    pred, gt = pred / 255.0, gt / 255.0
    smap = (pred - np.mean(pred)) / np.std(pred)
    fixations = published_binarize((gt - np.min(gt)) / (np.max(gt) - np.min(gt) + 1e-12), 0.1)
    return float(np.sum(smap * fixations) / np.sum(fixations + 1e-12))


def published_agd20k(pred: np.ndarray, gt: np.ndarray, crop_size: int = 224) -> Dict[str, float]:
    """One image of the published test loop: the network's float32 map and the float64 GT (grayscale / 255)."""
    heat = published_normalize_map(pred, crop_size)
    gt = cv2.resize(gt, (crop_size, crop_size))
    kld, sim = published_kl_sim(heat, gt)
    return dict(KLD=kld, SIM=sim, NSS=published_nss(heat, gt))


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


def make_maps(args: argparse.Namespace) -> Tuple[np.ndarray, List[np.ndarray]]:
    """``N`` float32 predictions (uniform noise) and ``N`` float64 GT maps: a few Gaussian blobs each,
    quantised to grey levels (``round(x * 255) / 255``) like the annotated heatmaps."""
    rng = np.random.default_rng(args.seed)
    h, w = args.gt_size
    preds = rng.random((args.num_images, args.pred_size, args.pred_size)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    gts = []
    for _ in range(args.num_images):
        gt = np.zeros((h, w))
        for _ in range(3):
            cy, cx, sigma = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 60)
            gt += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        gts.append(np.round(gt / gt.max() * 255) / 255)
    return preds, gts


def timed(fn: Callable[[], object], repeats: int = 1) -> Tuple[object, List[float]]:
    """``(fn(), wall times of `repeats` calls)``."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def make_samples(
    preds: np.ndarray, gts: Sequence[np.ndarray], device: str = 'cpu', gt_resized_to: Optional[int] = None
) -> List[dict]:
    """Data samples as the test loop passes them to ``AffordanceMetric.process``: float32 prediction
    tensors, float64 GT tensors, on ``device``. ``gt_resized_to``: the GT arrives already resized
    (``LoadAffordanceGT(resize_to=...)`` does it in the data-loader workers, as the configs' test
    pipelines)."""
    if gt_resized_to is not None:
        size = (gt_resized_to, gt_resized_to)
        gts = [cv2.resize(g, size, interpolation=cv2.INTER_LINEAR) for g in gts]
    samples = []
    for i, (p, g) in enumerate(zip(preds, gts)):
        sample = dict(
            pred_heatmap=dict(data=torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32)[None]).to(device)),
            gt_heatmap=dict(data=torch.from_numpy(np.ascontiguousarray(g)[None]).to(device)),
            sample_idx=i,
            img_path=f'{i}.jpg',
            affordance='hold',
        )
        if gt_resized_to is not None:
            sample['gt_resized_to'] = (gt_resized_to, gt_resized_to)
        samples.append(sample)
    return samples


def run_metric(
    samples: List[dict], protocol: str, batch_size: int, num_threads: Optional[int] = None
) -> Dict[str, np.ndarray]:
    """Score ``samples`` with ``AffordanceMetric`` as the test loop does (``process`` per batch, then
    ``compute_metrics``); return the per-image scores, in sample order."""
    from mmengine.logging import MMLogger

    from looptrans.evaluation import AffordanceMetric

    MMLogger.get_current_instance().setLevel('WARNING')  # no per-affordance table in the figures
    metric = AffordanceMetric(protocol=protocol, num_threads=num_threads, prefix='bench')
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start : start + batch_size])
    if samples and samples[0]['pred_heatmap']['data'].is_cuda:
        torch.cuda.synchronize()
    metric.compute_metrics(list(metric.results))
    records = sorted(metric.results, key=lambda r: r['sample_idx'])
    return {key: np.array([r[key] for r in records]) for key in metric.metrics}


def max_differences(reference: List[Dict[str, float]], ours: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Largest ``|reference - ours|`` per score, over the images where both are defined."""
    out = {}
    for key in reference[0]:
        ref = np.array([r.get(key, np.nan) for r in reference], dtype=np.float64)
        both = np.isfinite(ref) & np.isfinite(ours[key])
        out[key] = float(np.max(np.abs(ref[both] - ours[key][both]))) if both.any() else 0.0
    return out


def ms(seconds: Sequence[float], n: int) -> str:
    """Fastest and slowest of the runs, in milliseconds per image."""
    return f'{1000 * min(seconds) / n:8.3f} ms/image (runs: {", ".join(f"{1000 * t / n:.3f}" for t in seconds)})'


def benchmark_agd20k(args: argparse.Namespace) -> Dict[str, float]:
    """Published per-image code vs ``AffordanceMetric``, side by side; prints the table, returns the figures."""
    preds, gts = make_maps(args)
    n = args.num_images
    threads = torch.get_num_threads() if args.threads is None else args.threads
    samples = make_samples(preds, gts, args.device)
    published, t_published, t_ours = None, [], []
    ours = None
    for _ in range(max(1, args.repeats)):  # alternate, so that a change of load hits both
        published, t = timed(lambda: [published_agd20k(p, g) for p, g in zip(preds, gts)])
        t_published += t
        ours, t = timed(lambda: run_metric(samples, 'agd20k', args.batch_size, threads))
        t_ours += t
    _, t_one = timed(lambda: run_metric(samples, 'agd20k', args.batch_size, 1), max(1, args.repeats))
    resized = make_samples(preds, gts, args.device, gt_resized_to=224)
    _, t_resized = timed(lambda: run_metric(resized, 'agd20k', args.batch_size, threads), max(1, args.repeats))
    diffs = max_differences(published, ours)
    ratio = min(t_published) / min(t_ours)

    print(
        f'protocol=agd20k  N={n}  prediction {args.pred_size}x{args.pred_size} float32  '
        f'GT {args.gt_size[0]}x{args.gt_size[1]} float64  device={args.device}  '
        f'torch threads={torch.get_num_threads()}'
    )
    print(f'  published per-image code      : {ms(t_published, n)}')
    print(f'  AffordanceMetric, {threads} thread(s) : {ms(t_ours, n)}  (batches of {args.batch_size})')
    print(f'  ratio published / ours        : {ratio:8.1f}x')
    print(f'  ... AffordanceMetric, 1 thread: {ms(t_one, n)}  ratio {min(t_published) / min(t_one):.1f}x')
    print(
        f'  ... GT resized in the loader  : {ms(t_resized, n)}  ratio {min(t_published) / min(t_resized):.1f}x '
        f'(LoadAffordanceGT(resize_to=224), as the configs)'
    )
    print('  max |difference|              : ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    return dict(
        published_ms=1000 * min(t_published) / n,
        ours_ms=1000 * min(t_ours) / n,
        ratio=ratio,
        ours_one_thread_ms=1000 * min(t_one) / n,
        ours_gt_resized_ms=1000 * min(t_resized) / n,
        **{f'diff_{k}': v for k, v in diffs.items()},
    )


def benchmark_hotspots(args: argparse.Namespace) -> Dict[str, float]:
    """The Hotspots protocol (KLD, SIM, AUC-J) against a per-pixel-loop implementation of it."""
    preds, gts = make_maps(args)
    preds = preds.astype(np.float64)
    n = args.num_images
    loop, t_loop = timed(lambda: [loop_hotspots(p, g) for p, g in zip(preds, gts)])
    ours, t_ours = timed(lambda: hotspots_scores(preds, gts), max(1, args.repeats))
    _, t_metric = timed(lambda: run_metric(make_samples(preds, gts), 'hotspots', args.batch_size), max(1, args.repeats))
    diffs = max_differences(loop, ours)
    print(
        f'protocol=hotspots  N={n}  prediction {args.pred_size}x{args.pred_size}  '
        f'GT {args.gt_size[0]}x{args.gt_size[1]}'
    )
    print(f'  per-pixel loop reference : {ms(t_loop, n)}')
    print(f'  hotspots_scores, batch   : {ms(t_ours, n)}')
    print(f'  AffordanceMetric         : {ms(t_metric, n)}  (batches of {args.batch_size})')
    print(f'  ratio loop / metric      : {min(t_loop) / min(t_metric):8.1f}x')
    print('  max |difference|         : ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    return dict(loop_ms=1000 * min(t_loop) / n, ours_ms=1000 * min(t_metric) / n, ratio=min(t_loop) / min(t_metric))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    return benchmark_agd20k(args) if args.protocol == 'agd20k' else benchmark_hotspots(args)


if __name__ == '__main__':
    main()
