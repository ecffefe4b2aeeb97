"""Throughput of a config's training data pipeline per data-loader worker, and workers per GPU.

Writes N generated JPEGs (640x480 by default, textured like photographs) to a temporary folder, builds the
config's own ``train_dataloader.dataset.pipeline`` (load + decode, resize, crop, flip, pack: everything a
data-loader worker does for one sample) and runs it on samples of 1 egocentric + ``num_exo`` exocentric
images, in one process on one thread, as one worker would. Prints images/s per worker (from the process's
CPU time, so that other load on a shared machine does not count), the time of each step, and how many
workers keep a GPU fed at ``--target`` images/s (default 1000: one batch of 16 x 4 = 64 images every
~0.06 s on an H100, see DESIGN.md section 7). Nothing is asserted: figures depend on the CPU.

    python tools/analysis_tools/benchmark_pipeline.py                       # configs/looptrans_agd20k.py
    python tools/analysis_tools/benchmark_pipeline.py configs/looptrans_opra.py --num-exo 8
    python tools/analysis_tools/benchmark_pipeline.py --cfg-options \
        train_dataloader.dataset.pipeline.1.transforms.0.backend=torch   # ResizeShortEdge's torch kernel
"""

from __future__ import annotations

import argparse
import math
import os
import os.path as osp
import tempfile
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List

import cv2
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', default=osp.join(REPO, 'configs', 'looptrans_agd20k.py'))
    parser.add_argument('--num-images', type=int, default=64, help='distinct JPEG files generated')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--quality', type=int, default=90, help='JPEG quality of the generated files')
    parser.add_argument(
        '--num-exo',
        type=int,
        default=None,
        help='exocentric images (or clip frames) per sample; default: the config\'s num_exo '
        '(num_frames for video configs), else 3',
    )
    parser.add_argument('--samples', type=int, default=60, help='timed samples')
    parser.add_argument('--warmup', type=int, default=5, help='untimed samples first')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs; the fastest is reported')
    parser.add_argument('--target', type=float, default=1000.0, help='images/s one GPU consumes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--no-reference', action='store_true', help='skip timing the published torchvision pipeline on the same files'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A BGR image with smooth shading, edges and fine texture (JPEG decodes it like a photo)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(2, 12, 3) * [1 / w, 1 / h, 1]
        img[..., c] = 128 + 90 * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
    for _ in range(12):  # solid shapes: edges
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = int(x0 + rng.integers(20, 200)), int(y0 + rng.integers(20, 200))
        cv2.rectangle(img, (int(x0), int(y0)), (x1, y1), tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
    img += rng.normal(0, 12, img.shape).astype(np.float32)  # sensor-like texture
    return np.clip(img, 0, 255).astype(np.uint8)


def write_images(root: str, args: argparse.Namespace) -> List[str]:
    rng = np.random.default_rng(args.seed)
    paths = []
    for i in range(args.num_images):
        path = osp.join(root, f'{i:04d}.jpg')
        cv2.imwrite(path, photo_like(rng, args.height, args.width), [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        paths.append(path)
    return paths


def num_views(cfg: Config, args: argparse.Namespace) -> int:
    if args.num_exo is not None:
        return args.num_exo
    dataset = cfg.train_dataloader.dataset
    return int(dataset.get('num_exo') or dataset.get('num_frames') or 3)


def samples(paths: List[str], n_exo: int, count: int, rng: np.random.Generator) -> List[Dict[str, Any]]:
    out = []
    for i in range(count):
        pick = rng.choice(len(paths), n_exo + 1, replace=n_exo + 1 > len(paths))
        out.append(
            dict(
                img_path=paths[pick[0]],
                exo_paths=[paths[j] for j in pick[1:]],
                gt_label=0,
                affordance='hold',
                object='cup',
                sample_idx=i,
            )
        )
    return out


class Timed:
    """Wraps a transform and adds its CPU time to ``totals[name]``."""

    def __init__(self, transform: Callable, name: str, totals: Dict[str, float]) -> None:
        self.transform, self.name, self.totals = transform, name, totals

    def __call__(self, results: dict) -> dict:
        start = time.process_time()
        out = self.transform(results)
        self.totals[self.name] += time.process_time() - start
        return out


def instrument(pipeline: Compose, totals: Dict[str, float]) -> None:
    """Time every top-level transform and every transform inside a MultiViewTransform."""
    for i, t in enumerate(pipeline.transforms):
        inner = getattr(t, 'pipeline', None)
        if isinstance(inner, Compose):
            for j, u in enumerate(inner.transforms):
                inner.transforms[j] = Timed(u, f'  {type(t).__name__} > {type(u).__name__}', totals)
            # the views' own bookkeeping is the rest of the wrapper's time
        pipeline.transforms[i] = Timed(t, type(t).__name__, totals)


def run(pipeline: Compose, items: List[Dict[str, Any]]) -> float:
    """CPU seconds of this process for the pipeline over ``items``.

    CPU time, not wall time: a worker owns a core, and CPU time does not count the time other
    processes of a shared machine take from this one.
    """
    start = time.process_time()
    for item in items:
        out = pipeline(dict(item))
        assert out is not None
    return time.process_time() - start


def published_reference(paths: List[str], n_images: int, repeats: int) -> float:
    """CPU seconds of the published per-image transform (LOCATE ``datatrain.py``) on ``n_images``.

    ``Image.open(path).convert('RGB')``, ``Resize(256)``, ``RandomCrop(224)``,
    ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize(...)`` (ours normalises on the GPU, in the
    data preprocessor, and packs uint8 instead).
    """
    import torch
    from PIL import Image
    from torchvision import transforms as T

    transform = T.Compose(
        [
            T.Resize(256),
            T.RandomCrop(224),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
        ]
    )
    torch.manual_seed(0)
    chosen = [paths[i % len(paths)] for i in range(n_images)]

    def once() -> float:
        start = time.process_time()
        for path in chosen:
            transform(Image.open(path).convert('RGB'))
        return time.process_time() - start

    once()
    return min(once() for _ in range(repeats))


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(1)  # one worker = one core; mmengine's workers do the same
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import TRANSFORMS

    import looptrans  # noqa: F401  (registers the transforms)

    pipeline_cfg = cfg.train_dataloader.dataset.pipeline
    n_exo = num_views(cfg, args)
    per_sample = 1 + n_exo
    rng = np.random.default_rng(args.seed)
    np.random.seed(args.seed)

    with tempfile.TemporaryDirectory() as root:
        paths = write_images(root, args)
        size_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
        items = samples(paths, n_exo, args.warmup + args.samples, rng)
        pipeline = Compose([TRANSFORMS.build(t) for t in pipeline_cfg])
        run(pipeline, items[: args.warmup])
        best = min(run(pipeline, items[args.warmup :]) for _ in range(args.repeats))

        totals: Dict[str, float] = defaultdict(float)
        timed = Compose([TRANSFORMS.build(t) for t in pipeline_cfg])
        instrument(timed, totals)
        run(timed, items[: args.warmup])
        totals.clear()
        run(timed, items[args.warmup :])
        n_images = args.samples * per_sample
        reference = None if args.no_reference else published_reference(paths, n_images, args.repeats)

    rate = n_images / best
    print(f'config   : {osp.relpath(args.config, REPO) if args.config.startswith(REPO) else args.config}')
    print(
        f'input    : {args.num_images} JPEGs {args.width}x{args.height} q{args.quality} '
        f'(~{size_kb:.0f} KiB), samples of 1 + {n_exo} images'
    )
    print('pipeline : ' + ' -> '.join(t.get('type', '?') for t in pipeline_cfg))
    print(f'per worker: {rate:8.1f} images/s  ({1000 / rate:.2f} ms/image, {1000 * best / args.samples:.1f} ms/sample)')
    print(f'workers for {args.target:.0f} images/s per GPU: {math.ceil(args.target / rate)}')
    if reference is not None:
        ref_rate = n_images / reference
        print(
            f'published torchvision transform (PIL decode .. Normalize), same files: {ref_rate:.1f} '
            f'images/s per worker ({math.ceil(args.target / ref_rate)} workers)'
        )
    print('CPU time per image by step (ms):')
    for name, seconds in totals.items():
        print(f'  {name:<48s} {1000 * seconds / n_images:7.3f}')


if __name__ == '__main__':
    main()
