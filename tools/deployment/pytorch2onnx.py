"""Export a LoopTrans checkpoint to ONNX (egocentric images -> all-class heatmaps + image logits).

The graph (see :mod:`looptrans.apis.export`):

* input ``images``: uint8 (B, 3, H, W), BGR, 0-255 (``cv2.imread`` + resize to H x W + HWC -> CHW); the
  model's normalisation (BGR -> RGB, ImageNet mean / std) is inside the graph. B is dynamic, H x W fixed
  (``--input-size``, default the config's test input size).
* outputs ``heatmaps`` float32 (B, C, H, W) (source ``--heatmap``, default the config's
  ``model.test_cfg.heatmap``) and ``logits`` float32 (B, C) (the CAM head's image-level logits).
* metadata: class names, heatmap source, input format / size, normalisation constants.

``--verify`` runs the file with onnxruntime (CPU) against PyTorch on random images and on up to
``--num-images`` test images of the config's test dataset (or ``--images``), prints the max abs differences
of both outputs (exit status 1 above ``--atol``, default 1e-4), and the throughput of PyTorch (CPU, eager, the
same computation) and onnxruntime (CPU) side by side at batch 1 and 8, with the same number of threads.

Examples::

    python tools/deployment/pytorch2onnx.py configs/looptrans_synthetic.py \\
        work_dirs/looptrans_synthetic/iter_200.pth --out work_dirs/looptrans_synthetic/looptrans.onnx --verify
    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx --input-size 320 320 \\
        --heatmap fusion --opset 18

Needs the optional dependencies: ``pip install -r requirements/optional.txt``.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

import numpy as np

from looptrans.apis import IMAGE_EXTENSIONS
from looptrans.utils.cli import positive_int


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='Export a LoopTrans model to ONNX (heatmaps + image logits)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--opset', type=positive_int, default=None, help='ONNX opset (default 17)')
    parser.add_argument(
        '--input-size',
        type=positive_int,
        nargs=2,
        metavar=('H', 'W'),
        default=None,
        help="input height and width (default: the config's test input size)",
    )
    parser.add_argument(
        '--heatmap',
        default=None,
        help="heatmap source: pixel, pixel_logits, cam or fusion (default: the config's model.test_cfg.heatmap)",
    )
    parser.add_argument(
        '--verify', action='store_true', help='compare with PyTorch on onnxruntime (CPU) and print both throughputs'
    )
    parser.add_argument('--atol', type=float, default=1e-4, help='--verify: largest allowed max abs difference')
    parser.add_argument(
        '--images',
        nargs='+',
        default=None,
        help="--verify: image files / folders (default: the config's test dataset images)",
    )
    parser.add_argument('--num-images', type=positive_int, default=16, help='--verify: at most this many images')
    parser.add_argument(
        '--batch-sizes',
        type=positive_int,
        nargs='+',
        default=[1, 8],
        help='--verify: batch sizes of the throughput comparison (default: 1 8)',
    )
    parser.add_argument(
        '--bench-seconds',
        type=float,
        default=2.0,
        help='--verify: time spent per throughput figure, at least (default 2 s)',
    )
    parser.add_argument(
        '--threads',
        type=positive_int,
        default=None,
        help='--verify: CPU threads of PyTorch and of onnxruntime (default: torch.get_num_threads())',
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def collect_images(inputs: List[str], limit: int) -> List[str]:
    """Image files named directly or found (recursively, sorted) under the given folders, at most ``limit``."""
    found: List[str] = []
    for item in inputs:
        if osp.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs.sort()
                found += [osp.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        elif osp.isfile(item):
            found.append(item)
        else:
            raise FileNotFoundError(f'--images: {item!r} is neither a file nor a folder')
    return found[:limit]


def dataset_images(cfg, limit: int) -> List[str]:
    """Up to ``limit`` egocentric test images of the config's test dataset, spread over it; [] when the dataset
    cannot be built (e.g. not on this machine)."""
    from mmseg.registry import DATASETS

    try:
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(limit, len(dataset))).round().astype(int))
        paths = [dataset.get_data_info(int(i)).get('img_path') for i in picks] if len(dataset) else []
    except Exception as err:  # noqa: BLE001 - any reason the data is not there: say so, verify on random data
        print(
            f'(no test images: the config\'s test dataset cannot be built here: {type(err).__name__}: '
            f'{str(err).splitlines()[0] if str(err) else ""})'
        )
        return []
    return [p for p in paths if isinstance(p, str)]


def verify(model, onnx_model, images: List[str], args) -> bool:
    """Print the max abs differences and the throughputs; return whether both differences are <= atol."""
    import torch

    from looptrans.apis import load_image
    from looptrans.apis.export import LoopTransExportWrapper, max_abs_difference, throughput

    height, width = onnx_model.input_size
    rng = np.random.default_rng(0)
    checks = [
        ('random uint8, batch 1', rng.integers(0, 256, (1, 3, height, width), dtype=np.uint8)),
        ('random uint8, batch 8', rng.integers(0, 256, (8, 3, height, width), dtype=np.uint8)),
    ]
    if images:
        batch = onnx_model.preprocess([load_image(p)[0] for p in images])
        checks.append((f'{len(images)} test image(s)', batch))
    else:
        print('(verifying on random images only)')
    ok = True
    print(f'\nmax abs difference, onnxruntime vs PyTorch (tolerance {args.atol:g}):')
    print(f'  {"inputs":<28} {"heatmaps":>10} {"logits":>10}')
    for name, batch in checks:
        diff = max_abs_difference(model, onnx_model, batch)
        good = diff['heatmaps'] <= args.atol and diff['logits'] <= args.atol
        ok &= good
        print(f'  {name:<28} {diff["heatmaps"]:>10.2e} {diff["logits"]:>10.2e}  {"ok" if good else "FAIL"}')

    wrapper = LoopTransExportWrapper(model, onnx_model.input_size, onnx_model.heatmap_source).eval()

    def run_torch(batch: np.ndarray):
        with torch.no_grad():
            return wrapper(torch.from_numpy(batch))

    print(
        f'\nthroughput, images/s, CPU, {torch.get_num_threads()} thread(s), input {height}x{width} '
        f'(PyTorch: eager, the exported computation; min {args.bench_seconds:g} s each):'
    )
    print(f'  {"batch":>5} {"PyTorch":>10} {"onnxruntime":>12} {"speed-up":>9}')
    for size in args.batch_sizes:
        batch = rng.integers(0, 256, (size, 3, height, width), dtype=np.uint8)
        torch_ips = throughput(run_torch, batch, min_seconds=args.bench_seconds)
        ort_ips = throughput(onnx_model.forward, batch, min_seconds=args.bench_seconds)
        print(f'  {size:>5} {torch_ips:>10.1f} {ort_ips:>12.1f} {ort_ips / torch_ips:>8.2f}x')
    return ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        print(
            f'error: {err.name} is not installed; ONNX export needs the optional dependencies: '
            'pip install -r requirements/optional.txt',
            file=sys.stderr,
        )
        return 2
    import torch

    from looptrans.apis import init_model
    from looptrans.apis.export import DEFAULT_OPSET, export_onnx
    from looptrans.apis.inference import test_input_size
    from looptrans.apis.onnx_backend import OnnxAffordanceModel

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    try:
        model = init_model(args.config, args.checkpoint, device='cpu', cfg_options=args.cfg_options)
        input_size = tuple(args.input_size) if args.input_size else test_input_size(model.cfg)
        start = time.perf_counter()
        meta = export_onnx(
            model,
            args.out,
            input_size,
            heatmap=args.heatmap,
            opset=args.opset or DEFAULT_OPSET,
            metadata=dict(config=osp.basename(args.config), checkpoint=osp.basename(args.checkpoint)),
        )
        seconds = time.perf_counter() - start
    except (OSError, ValueError, RuntimeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    size_mb = osp.getsize(args.out) / 2**20
    print(
        f'wrote {args.out} ({size_mb:.1f} MiB) in {seconds:.1f} s: input images uint8 BGR '
        f'(B, 3, {input_size[0]}, {input_size[1]}), outputs heatmaps (B, {len(model.dataset_meta["classes"])}, '
        f'{input_size[0]}, {input_size[1]}) [{meta["heatmap_source"]}] and logits '
        f'(B, {len(model.dataset_meta["classes"])}); opset {args.opset or DEFAULT_OPSET}; classes: '
        f'{", ".join(model.dataset_meta["classes"])}'
    )
    if not args.verify:
        return 0
    onnx_model = OnnxAffordanceModel(args.out, num_threads=threads)
    images = collect_images(args.images, args.num_images) if args.images else dataset_images(model.cfg, args.num_images)
    ok = verify(model, onnx_model, images, args)
    print('\nverification ' + ('passed' if ok else f'FAILED (max abs difference above {args.atol:g})'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
