"""Measure pseudo-mask quality on generated data: IoU of the chosen part with the true affordance part.

Pseudo-masks decide what the pixel head learns, yet nothing measures them on real data. The generator
knows every object's parts and writes the true affordance part of each egocentric training image
(``<data_root>/<split>/part_masks/<affordance>/<object>/<stem>.png``). This tool runs the config's part
discovery on those images and reports the mean IoU of the chosen pseudo-mask with the true part, per
affordance and overall, and the share of images that got a (valid) pseudo-mask:

* with a CHECKPOINT, the CAM is the trained model's egocentric CAM of the labelled affordance (what
  training uses);
* without one, the CAM is the true part itself (an *oracle* CAM), which measures the clustering alone.

    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py
    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py \\
        work_dirs/looptrans_synthetic/iter_200.pth
    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py \\
        --cfg-options model.part_discovery.num_parts=auto

IoU is computed at the network input size (the pseudo-mask upsampled by nearest neighbour, the true part
resized likewise); the mean runs over the images with a valid pseudo-mask.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import cv2
import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from looptrans.datasets.classes import config_classes
from looptrans.testing import PART_MASK_DIR


def find_samples(root: str, classes: Tuple[str, ...]) -> List[Tuple[str, str, int]]:
    """(image path, part-mask path, label) of every egocentric training image that has a part mask."""
    samples = []
    for mask in sorted(glob.glob(osp.join(root, PART_MASK_DIR, '*', '*', '*.png'))):
        aff, obj, name = mask.split(osp.sep)[-3:]
        if aff not in classes:
            continue
        stem = osp.splitext(name)[0]
        images = glob.glob(osp.join(root, 'trainset', 'egocentric', aff, obj, stem + '.*'))
        if images:
            samples.append((images[0], mask, classes.index(aff)))
    if not samples:
        raise FileNotFoundError(
            f'no part masks under {osp.join(root, PART_MASK_DIR)!r} with egocentric training images beside '
            'them; generate the data with tools/misc/generate_synthetic_agd20k.py (it writes them).'
        )
    return samples


def build_model(cfg: Config, checkpoint: Optional[str], device: str) -> torch.nn.Module:
    """The trained model (checkpoint) or the config's model with its initial weights (oracle mode: the
    frozen DINO, pretrained where the config says so, is all that is used)."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import looptrans  # noqa: F401

    if checkpoint:
        from looptrans.apis import init_model

        return init_model(cfg, checkpoint, device=device)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    # without a log file MMEngine prints one 'initialised by ...' line per parameter (hundreds) to the console
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.to(device).eval()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    samples: List[Tuple[str, str, int]],
    size: Tuple[int, int],
    oracle: bool,
    batch_size: int = 16,
) -> List[Tuple[int, bool, float]]:
    """(label, valid, IoU) of every sample."""
    from looptrans.models.heads import select_class_maps
    from looptrans.models.part_discovery import pseudo_mask_iou

    device = next(model.parameters()).device
    results = []
    h, w = size
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images = [
            torch.from_numpy(
                np.ascontiguousarray(mmcv.imresize(mmcv.imread(p), (w, h), backend='pillow').transpose(2, 0, 1))
            )[None]
            for p, _, _ in chunk
        ]
        truth = torch.stack(
            [
                torch.from_numpy(
                    cv2.resize(cv2.imread(m, cv2.IMREAD_GRAYSCALE), (w, h), interpolation=cv2.INTER_NEAREST) > 127
                )
                for _, m, _ in chunk
            ]
        ).to(device)
        labels = torch.tensor([label for _, _, label in chunk], device=device)
        x = model.data_preprocessor(dict(inputs=images), False)['inputs'][:, 0]
        desc = model.part_descriptors(x)
        grid = tuple(desc['cls_attn'].shape[-2:])
        if oracle:
            cam = F.adaptive_avg_pool2d(truth[:, None].float(), grid)[:, 0]
        else:
            cam = select_class_maps(model.cam_head(model.extract_feat(x), view='ego'), labels)
            cam = F.interpolate(cam[:, None], size=grid, mode='bilinear', align_corners=False)[:, 0]
        parts = model.part_discovery(desc['keys'], cam, cls_attn=desc['cls_attn'])
        ious = pseudo_mask_iou(parts.pseudo_mask, truth)
        for label, valid, iou in zip(labels.tolist(), parts.valid.tolist(), ious.tolist()):
            results.append((label, valid, iou))
    return results


def summarise(results: List[Tuple[int, bool, float]], classes: Tuple[str, ...]) -> Dict[str, Dict[str, float]]:
    """Per affordance and overall: mean IoU over valid samples, share valid, number of images."""
    groups = defaultdict(list)
    for label, valid, iou in results:
        groups[classes[label]].append((valid, iou))
        groups['overall'].append((valid, iou))
    table = {}
    for name in [c for c in classes if c in groups] + ['overall']:
        rows = groups[name]
        ious = [iou for valid, iou in rows if valid]
        table[name] = dict(
            miou=float(np.mean(ious)) if ious else float('nan'),
            valid=sum(v for v, _ in rows) / len(rows),
            num=len(rows),
        )
    return table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='trained model; without it the CAM is an oracle')
    parser.add_argument('--data-root', help='generated tree (default: the config\'s training data_root)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def main(argv=None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    train = cfg.train_dataloader.dataset
    root = osp.join(args.data_root or train.data_root, train.get('split', 'Seen'))
    model = build_model(cfg, args.checkpoint, args.device)
    classes = tuple(config_classes(train) or model.dataset_meta['classes'])
    from looptrans.apis.inference import test_input_size

    samples = find_samples(root, classes)
    results = evaluate(model, samples, test_input_size(cfg), oracle=not args.checkpoint, batch_size=args.batch_size)
    table = summarise(results, classes)
    mode = 'trained CAM' if args.checkpoint else 'oracle CAM (the true part)'
    print(
        f'pseudo-masks of {len(samples)} egocentric training images under {root}, {mode}, '
        f'K = {cfg.model.part_discovery.get("num_parts", 4)}'
    )
    print('| affordance | images | valid | mIoU (valid) |')
    print('| --- | --- | --- | --- |')
    for name, row in table.items():
        print(f'| {name} | {row["num"]} | {row["valid"]:.2f} | {row["miou"]:.3f} |')
    return table


if __name__ == '__main__':
    main()
