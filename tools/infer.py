"""Affordance heatmaps for your own images.

For each input image and each asked affordance it writes, into ``--out-dir`` (default ``outputs/heatmaps``):
``<name>_<affordance>.png`` (the heatmap as 8-bit grayscale, min-max scaled, at the image's size),
``<name>_<affordance>.npy`` (the raw float32 scores at the image's size) and
``<name>_<affordance>_overlay.jpg`` (image + colour-mapped heatmap + colour scale + the affordance name),
and one ``<name>.json`` per image with what a robot consumes: per affordance its probability (softmax of the
CAM head's image logits), the heatmap's peak (x, y), the bounding box and largest contour polygon of its mask
(min-max normalised score >= ``--threshold``), in the image's pixels. A short table is printed at the end.

``--top-k K`` answers "what can I do with this object, and where?": the K most probable affordances of each
image, with their heatmaps. ``--backend onnxruntime`` runs a file written by
``tools/deployment/pytorch2onnx.py`` instead of a checkpoint (CPU; same outputs).

Each image is prepared by the config's test pipeline, the one ``tools/test.py`` runs, its annotation loading
left out (``docs/inference.md``); a pipeline that cannot prepare a user's image is an error at start-up.

``<name>`` keeps the image's path relative to the input (``my_images/a/cup.jpg`` ->
``<out-dir>/a/cup_hold.png``; a file given directly -> ``<out-dir>/cup_hold.png``; several inputs: relative
to the deepest folder holding them all), so equal file names in different folders never overwrite each other;
images of one folder sharing a stem (``cup.jpg``, ``cup.png``) keep their suffix (``cup_jpg_hold.png``). The
output folder is never read as input, even when it lies inside an input folder. The count printed at the end
is of the heatmaps whose three files are on disk.

An image that cannot be read is reported and skipped; the others are written, and the exit status is 1 at the
end when any image was skipped.

Examples::

    python tools/infer.py CONFIG CHECKPOINT demo/mug.jpg --affordance hold drink_with
    python tools/infer.py CONFIG CHECKPOINT my_images/ --all --out-dir heatmaps --device cuda:0
    python tools/infer.py CONFIG CHECKPOINT my_images/ --top-k 3
    python tools/infer.py CONFIG model.onnx my_images/ --top-k 3 --backend onnxruntime
"""

from __future__ import annotations

import argparse
import errno
import functools
import io
import os
import os.path as osp
import pickle
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from looptrans.apis import (
    IMAGE_EXTENSIONS,
    SATURATION_LEVEL,
    AffordanceResult,
    InferencePipeline,
    inference_affordance,
    init_model,
    load_image,
    model_warnings,
    overlay_picture,
    resolve_affordances,
    result_json,
)
from looptrans.utils import atomic_write_bytes, ensure_writable_dir
from looptrans.utils.cli import positive_int, threshold_float, unit_float
from looptrans.visualization import normalize_heatmap

#: ``tools/infer.py``'s default output folder (git-ignored).
DEFAULT_OUT_DIR = osp.join('outputs', 'heatmaps')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Affordance heatmaps for images')
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint',
        help='a .pth checkpoint, or with --backend onnxruntime a .onnx file written by '
        'tools/deployment/pytorch2onnx.py',
    )
    parser.add_argument('inputs', nargs='+', help='image files and/or folders (searched recursively)')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--affordance', nargs='+', help='affordance name(s), e.g. hold cut_with')
    group.add_argument('--all', action='store_true', help='every affordance the model knows')
    group.add_argument('--top-k', type=positive_int, help="each image's K most probable affordances")
    parser.add_argument(
        '--threshold',
        type=threshold_float,
        default=0.5,
        help='relative mask threshold of the JSON regions: min-max normalised score >= it (default 0.5)',
    )
    parser.add_argument(
        '--backend',
        choices=('pytorch', 'onnxruntime'),
        default='pytorch',
        help='pytorch (CONFIG + checkpoint) or onnxruntime (CPU; the .onnx file carries the class '
        'names and input size; CONFIG is only checked for the same class list)',
    )
    parser.add_argument(
        '--out-dir', default=DEFAULT_OUT_DIR, help=f'output folder (default: {DEFAULT_OUT_DIR}); never read as input'
    )
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=positive_int, default=8, help='images per forward pass (>= 1)')
    parser.add_argument('--alpha', type=unit_float, default=0.5, help='heatmap opacity in the overlays, in [0, 1]')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (real paths, so symlinks do not hide it)."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def collect_images(inputs: List[str], out_dir: Optional[str] = None) -> List[Tuple[str, str]]:
    """``(path, relative name)`` of the image files named directly or found (recursively, sorted) in the
    given folders; ``out_dir`` and everything under it is left out (it holds this tool's outputs), and a file
    reached twice is listed once.

    The relative name is the path relative to the deepest folder that holds every input (a folder input
    counts as itself, a file input as its folder): with one folder, the path inside it; with files of one
    folder, their file names. Distinct files therefore get distinct names.
    """
    found: List[str] = []
    roots: List[str] = []
    for item in inputs:
        if osp.isdir(item):
            roots.append(osp.abspath(item))
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith('.') and not (out_dir and _inside(osp.join(root, d), out_dir))
                )
                if out_dir and _inside(root, out_dir):
                    continue
                found += [
                    osp.join(root, name)
                    for name in sorted(files)
                    if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')
                ]
        elif osp.isfile(item):
            roots.append(osp.dirname(osp.abspath(item)))
            found.append(item)
        else:
            raise FileNotFoundError(f'{item!r} is neither an image file nor a folder')
    seen, unique = set(), []
    for path in found:
        real = osp.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    if not unique:
        raise FileNotFoundError(
            f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {inputs}'
            + (f' (outside the output folder {out_dir!r})' if out_dir else '')
        )
    common = osp.commonpath(roots)
    return [(path, osp.relpath(osp.abspath(path), common)) for path in unique]


def output_names(images: List[Tuple[str, str]]) -> List[str]:
    """One output base name per image: its relative name without the suffix, or with the suffix folded in
    (``cup.jpg`` -> ``cup_jpg``) when another image of the same folder has the same stem (``cup.png``)."""
    bases = [osp.splitext(rel)[0] for _, rel in images]
    count: Dict[str, int] = defaultdict(int)
    for base in bases:
        count[base] += 1
    names = []
    for (_, rel), base in zip(images, bases):
        if count[base] > 1:
            stem, ext = osp.splitext(rel)
            base = f'{stem}_{ext.lstrip(".").lower()}'
        names.append(base)
    if len(set(names)) != len(names):  # cup.JPG and cup.jpg on a case-sensitive disk
        seen: Dict[str, int] = defaultdict(int)
        for i, name in enumerate(names):
            seen[name] += 1
            if seen[name] > 1:
                names[i] = f'{name}_{seen[name]}'
    return names


OUTPUT_SUFFIXES = ('.npy', '.png', '_overlay.jpg')
#: Errors after which no later image can be written either: stop and list what was not written.
FATAL_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _encode(ext: str, image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    if not ok:
        raise OSError(f'OpenCV could not encode a {ext} image of shape {image.shape}')
    return buffer.tobytes()


def write_outputs(base: str, image_rgb: np.ndarray, heatmaps: Dict[str, np.ndarray], alpha: float) -> int:
    """Write ``<base>_<affordance>`` + :data:`OUTPUT_SUFFIXES` for each heatmap; return how many heatmaps
    have all three files on disk afterwards (what was really written, not what was asked).

    Each file is written atomically (a temporary file renamed over the name): a run killed or out of disk
    space leaves whole files or none, never a torn ``.npy`` at its final name. ``OSError`` propagates.
    """
    os.makedirs(osp.dirname(base) or '.', exist_ok=True)
    written = 0
    for name, heat in heatmaps.items():
        prefix = f'{base}_{name}'
        npy = io.BytesIO()
        np.save(npy, heat.astype(np.float32))
        atomic_write_bytes(npy.getvalue(), prefix + '.npy', durable=False)
        png = _encode('.png', (normalize_heatmap(heat) * 255).round().astype(np.uint8))
        atomic_write_bytes(png, prefix + '.png', durable=False)
        overlay = overlay_picture(image_rgb, heat, name, alpha)
        atomic_write_bytes(_encode('.jpg', mmcv.rgb2bgr(overlay)), prefix + '_overlay.jpg', durable=False)
        written += all(osp.isfile(prefix + suffix) for suffix in OUTPUT_SUFFIXES)
    return written


def write_json(base: str, result: AffordanceResult) -> None:
    """``<base>.json``: the image, and per affordance its probability, logit, peak, box and polygon
    (written atomically, as the heatmaps)."""
    atomic_write_bytes(result_json(result).encode(), base + '.json', durable=False)


def print_table(rows: List[Tuple[str, AffordanceResult]], out_dir: str, max_rows: int = 20) -> None:
    """One line per image: its most probable returned affordance, probability, peak and box."""
    if not rows:
        return
    print(f'{"image":<32} {"affordance":<14} {"prob":>6} {"peak (x, y)":>12}  box (x0, y0, x1, y1)')
    for base, result in rows[:max_rows]:
        name = max(result.affordances, key=lambda n: result.probs[n])
        region = result.regions[name]
        flag = f'  SATURATED ({region.saturation:.0%} of pixels >= {SATURATION_LEVEL:g})' if region.saturated else ''
        print(
            f'{osp.relpath(base, out_dir):<32.32} {name:<14} {result.probs[name]:>6.3f} '
            f'{str(region.peak):>12}  {region.bbox}{flag}'
        )
    if len(rows) > max_rows:
        print(f'... and {len(rows) - max_rows} more (see the .json files)')
    saturated = sum(any(r.saturated for r in result.regions.values()) for _, result in rows)
    if saturated:
        print(
            f'{saturated} image(s) have a saturated heatmap (high nearly everywhere: no localisation); '
            'the "warnings" of their .json files name them'
        )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the tool; return the exit status (1 when an image was skipped)."""
    args = parse_args(argv)
    # a quoted '~/out' reaches us unexpanded: it means the home folder, not a folder named '~'
    args.out_dir, args.config, args.checkpoint = map(osp.expanduser, (args.out_dir, args.config, args.checkpoint))
    args.inputs = [osp.expanduser(item) for item in args.inputs]
    try:
        ensure_writable_dir(args.out_dir, '--out-dir')
        images = collect_images(args.inputs, args.out_dir)
        names = output_names(images)
        if args.backend == 'onnxruntime':
            from looptrans.apis.onnx_backend import OnnxAffordanceModel, check_config_classes

            model = OnnxAffordanceModel(args.checkpoint)
            check_config_classes(model, args.config, args.cfg_options)
            infer = model.inference_affordance
        else:
            model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
            InferencePipeline(model.cfg).check()  # a test pipeline that cannot serve: refused before any image
            infer = functools.partial(inference_affordance, model)
        affordances = None if args.top_k else resolve_affordances(model, None if args.all else args.affordance)
    except (ImportError, OSError, ValueError, RuntimeError, pickle.UnpicklingError) as err:
        # unwritable --out-dir, no images, unreadable / unsafe / mismatched checkpoint, unknown affordance,
        # a test pipeline that cannot serve (InferencePipelineError, a ValueError)
        print(f'error: {err}', file=sys.stderr)
        return 2
    progress = ProgressBar(len(images), file=sys.stderr)
    skipped: List[Tuple[str, str]] = []
    unwritten: List[Tuple[str, str]] = []
    table: List[Tuple[str, AffordanceResult]] = []
    written = 0
    stop: Optional[OSError] = None
    for start in range(0, len(images), args.batch_size):
        chunk, chunk_names = images[start : start + args.batch_size], names[start : start + args.batch_size]
        loaded: List[Tuple[str, np.ndarray, str]] = []  # (path, image, output base) of the readable images
        for (path, _), name in zip(chunk, chunk_names):
            try:
                loaded.append((path, load_image(path)[0], osp.join(args.out_dir, name)))
            except (ValueError, OSError) as err:
                skipped.append((path, str(err)))
                print(f'\nskipped {path!r}: {err}', file=sys.stderr)
        images_bgr = [image for _, image, _ in loaded]
        results = (
            infer(images_bgr, affordances, args.batch_size, top_k=args.top_k, threshold=args.threshold)
            if loaded
            else []
        )
        for (path, image_bgr, base), result in zip(loaded, results):
            if stop is not None:
                unwritten.append((path, f'not attempted after: {stop.strerror or stop}'))
                continue
            result.image_path = path
            try:
                written += write_outputs(base, mmcv.bgr2rgb(image_bgr), result.heatmaps, args.alpha)
                write_json(base, result)
            except OSError as err:
                unwritten.append((path, f'{err.strerror or err} ({err.filename or base})'))
                print(f'\ncould not write the outputs of {path!r}: {err}', file=sys.stderr)
                if err.errno in FATAL_WRITE_ERRNOS:
                    stop = err
                continue
            table.append((base, result))
        for _ in chunk:
            progress.update()
    print()
    for warning in model_warnings(getattr(model, 'dataset_meta', None) or {}):
        print(f'warning: {warning}', file=sys.stderr)
    print_table(table, args.out_dir)
    per_image = f'top {args.top_k}' if args.top_k else str(len(affordances))
    print(
        f'{len(table)} of {len(images)} image(s) x {per_image} affordance(s): {written} heatmap(s) written '
        f'to {args.out_dir!r} (.png, .npy, _overlay.jpg each; one .json per image)'
    )
    if skipped:
        print(f'{len(skipped)} image(s) could not be read and were skipped:', file=sys.stderr)
        for path, why in skipped:
            print(f'  {path!r}: {why}', file=sys.stderr)
    if unwritten:
        head = 'stopped: ' if stop is not None else ''
        print(f'{head}{len(unwritten)} image(s) have no (or incomplete) outputs:', file=sys.stderr)
        for path, why in unwritten:
            print(f'  {path!r}: {why}', file=sys.stderr)
    return 1 if skipped or unwritten else 0


if __name__ == '__main__':
    sys.exit(main())
