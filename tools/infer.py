"""Affordance heatmaps for your own images.

For each input image and each asked affordance it writes, into ``--out-dir``:
``<stem>_<affordance>.png`` (the heatmap as 8-bit grayscale, min-max scaled, at the image's size),
``<stem>_<affordance>.npy`` (the raw float32 scores at the image's size) and
``<stem>_<affordance>_overlay.jpg`` (image + colour-mapped heatmap + the affordance name).

Examples::

    python tools/infer.py CONFIG CHECKPOINT demo/mug.jpg --affordance hold drink_with
    python tools/infer.py CONFIG CHECKPOINT my_images/ --all --out-dir heatmaps --device cuda:0
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
from typing import List

import cv2
import mmcv
import numpy as np
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from looptrans.apis import inference_affordance, init_model, resolve_affordances
from looptrans.visualization import normalize_heatmap, overlay_heatmap
from looptrans.visualization.overlay import put_caption

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Affordance heatmaps for images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders (searched recursively)')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--affordance', nargs='+', help='affordance name(s), e.g. hold cut_with')
    group.add_argument('--all', action='store_true', help='every affordance the model knows')
    parser.add_argument('--out-dir', default='outputs/heatmaps')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--alpha', type=float, default=0.5, help='heatmap opacity in the overlays')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args()


def collect_images(inputs: List[str]) -> List[str]:
    """Image files named directly or found (recursively, sorted) in the given folders."""
    found: List[str] = []
    for item in inputs:
        if osp.isdir(item):
            for root, _, files in sorted(os.walk(item)):
                found += [osp.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        elif osp.isfile(item):
            found.append(item)
        else:
            raise FileNotFoundError(f'{item!r} is neither an image file nor a folder')
    if not found:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {inputs}')
    return found


def main() -> None:
    args = parse_args()
    model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    names = resolve_affordances(model, None if args.all else args.affordance)
    images = collect_images(args.inputs)
    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(len(images))
    written = 0
    for start in range(0, len(images), args.batch_size):
        chunk = images[start:start + args.batch_size]
        for path, result in zip(chunk, inference_affordance(model, chunk, names, args.batch_size)):
            image_rgb = mmcv.imread(path, channel_order='rgb')
            stem = osp.splitext(osp.basename(path))[0]
            for name, heat in result.heatmaps.items():
                base = osp.join(args.out_dir, f'{stem}_{name}')
                np.save(base + '.npy', heat.astype(np.float32))
                cv2.imwrite(base + '.png', (normalize_heatmap(heat) * 255).round().astype(np.uint8))
                overlay = put_caption(overlay_heatmap(image_rgb, heat, args.alpha), name)
                mmcv.imwrite(mmcv.rgb2bgr(overlay), base + '_overlay.jpg')
                written += 1
            progress.update()
    print(f'\n{len(images)} image(s) x {len(names)} affordance(s): {written} heatmaps written to '
          f'{args.out_dir} (.png, .npy, _overlay.jpg)')


if __name__ == '__main__':
    main()
