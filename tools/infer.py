"""Affordance heatmaps for your own images.

For each input image and each asked affordance it writes, into ``--out-dir`` (default ``outputs/heatmaps``):
``<name>_<affordance>.png`` (the heatmap as 8-bit grayscale, min-max scaled, at the image's size),
``<name>_<affordance>.npy`` (the raw float32 scores at the image's size) and
``<name>_<affordance>_overlay.jpg`` (image + colour-mapped heatmap + colour scale + the affordance name).

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
"""
from __future__ import annotations

import argparse
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

from looptrans.apis import inference_affordance, init_model, load_image, resolve_affordances
from looptrans.utils import ensure_writable_dir
from looptrans.visualization import draw_colour_scale, normalize_heatmap, overlay_heatmap
from looptrans.visualization.overlay import put_caption

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
#: ``tools/infer.py``'s default output folder (git-ignored).
DEFAULT_OUT_DIR = osp.join('outputs', 'heatmaps')


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def unit_float(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {text!r}')
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must be in [0, 1] (0: image only, 1: heatmap only), got {value:g}')
    return value


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Affordance heatmaps for images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders (searched recursively)')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--affordance', nargs='+', help='affordance name(s), e.g. hold cut_with')
    group.add_argument('--all', action='store_true', help='every affordance the model knows')
    parser.add_argument('--out-dir', default=DEFAULT_OUT_DIR,
                        help=f'output folder (default: {DEFAULT_OUT_DIR}); never read as input')
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
                dirs[:] = sorted(d for d in dirs if not d.startswith('.')
                                 and not (out_dir and _inside(osp.join(root, d), out_dir)))
                if out_dir and _inside(root, out_dir):
                    continue
                found += [osp.join(root, name) for name in sorted(files)
                          if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')]
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
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {inputs}'
                                + (f' (outside the output folder {out_dir!r})' if out_dir else ''))
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


def write_outputs(base: str, image_rgb: np.ndarray, heatmaps: Dict[str, np.ndarray], alpha: float) -> int:
    """Write ``<base>_<affordance>`` + :data:`OUTPUT_SUFFIXES` for each heatmap; return how many heatmaps
    have all three files on disk afterwards (what was really written, not what was asked)."""
    os.makedirs(osp.dirname(base) or '.', exist_ok=True)
    written = 0
    for name, heat in heatmaps.items():
        prefix = f'{base}_{name}'
        np.save(prefix + '.npy', heat.astype(np.float32))
        cv2.imwrite(prefix + '.png', (normalize_heatmap(heat) * 255).round().astype(np.uint8))
        overlay = put_caption(draw_colour_scale(overlay_heatmap(image_rgb, heat, alpha)), name)
        mmcv.imwrite(mmcv.rgb2bgr(overlay), prefix + '_overlay.jpg')
        written += all(osp.isfile(prefix + suffix) for suffix in OUTPUT_SUFFIXES)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the tool; return the exit status (1 when an image was skipped)."""
    args = parse_args(argv)
    try:
        ensure_writable_dir(args.out_dir, '--out-dir')
        images = collect_images(args.inputs, args.out_dir)
        names = output_names(images)
        model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
        affordances = resolve_affordances(model, None if args.all else args.affordance)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as err:
        # unwritable --out-dir, no images, unreadable / unsafe / mismatched checkpoint, unknown affordance
        print(f'error: {err}', file=sys.stderr)
        return 2
    progress = ProgressBar(len(images), file=sys.stderr)
    skipped: List[Tuple[str, str]] = []
    written = 0
    for start in range(0, len(images), args.batch_size):
        chunk, chunk_names = images[start:start + args.batch_size], names[start:start + args.batch_size]
        loaded, bases = [], []
        for (path, _), name in zip(chunk, chunk_names):
            try:
                loaded.append(load_image(path)[0])
                bases.append(osp.join(args.out_dir, name))
            except (ValueError, OSError) as err:
                skipped.append((path, str(err)))
                print(f'\nskipped {path!r}: {err}', file=sys.stderr)
        results = inference_affordance(model, loaded, affordances, args.batch_size) if loaded else []
        for image_bgr, base, result in zip(loaded, bases, results):
            written += write_outputs(base, mmcv.bgr2rgb(image_bgr), result.heatmaps, args.alpha)
        for _ in chunk:
            progress.update()
    done = len(images) - len(skipped)
    print(f'\n{done} of {len(images)} image(s) x {len(affordances)} affordance(s): {written} heatmap(s) written '
          f'to {args.out_dir!r} (.png, .npy, _overlay.jpg each)')
    if skipped:
        print(f'{len(skipped)} image(s) could not be read and were skipped:', file=sys.stderr)
        for path, why in skipped:
            print(f'  {path!r}: {why}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
