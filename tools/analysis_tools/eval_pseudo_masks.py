"""Measure pseudo-mask quality on generated data: IoU of the chosen part with the true affordance part.

Pseudo-masks decide what the pixel head learns, yet nothing measures them on real data. The generator
knows every object's parts and writes the true affordance part of each egocentric training image
(``<data_root>/<split>/part_masks/<affordance>/<object>/<stem>.png``). This tool runs the config's part
discovery on those images and reports the mean IoU of the chosen pseudo-mask with the true part, per
affordance and overall, and the share of images that got a (valid) pseudo-mask:

* with a CHECKPOINT, the CAM is the trained model's egocentric CAM of the labelled affordance (what
  training uses);
* without one, the CAM is the true part itself (an *oracle* CAM), which measures the clustering alone;
* with ``--oracle object`` instead, the CAM is the whole object (``<split>/object_masks/...``): the pseudo-masks a
  CAM would choose that finds the object perfectly but does not tell its parts apart.

    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py
    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py --oracle object
    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py \\
        work_dirs/looptrans_synthetic/iter_200.pth
    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py \\
        --cfg-options model.part_discovery.num_parts=auto
    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py --show pseudo_masks.jpg \\
        --show-only cut_with/knife hold/scissors

``--show FILE`` also draws the first image of every affordance/object folder with its K-means parts, the chosen
pseudo-mask and the true part, to see what the figures average over (``--show-only AFF/OBJ ...``: those
folders only).

IoU is computed at the network input size (the pseudo-mask upsampled by nearest neighbour, the true part
resized likewise); the mean runs over the images with a valid pseudo-mask.

Two more columns split a low IoU between the clustering and the choice among its parts, over the same images:
*best of K* is the IoU of the K-means part closest to the true part (what a perfect choice among these parts
reaches), *under max* that of the part holding the CAM's maximum (the choice a CAM that points well but spreads
wide would support). When the chosen IoU is far below *best of K*, the parts are good and the choice (LOCATE's
rule: the part of highest IoU with the CAM binarised at its mean) is what misses.

``--cam-from CONFIG CHECKPOINT`` lets another trained model's egocentric CAM (e.g. the LOCATE baseline's,
``configs/baselines/locate_synthetic.py``) choose among the parts of this config's part discovery: would a CAM
that points better choose better pseudo-masks? When this config takes its descriptors from its backbone and no
CHECKPOINT is given, the part discovery runs on the other model's frozen backbone weights (same architecture
required), so that the clustered keys are the features that CAM was trained on::

    python tools/analysis_tools/eval_pseudo_masks.py configs/looptrans_synthetic.py \\
        --cam-from configs/baselines/locate_synthetic.py work_dirs/locate_synthetic/iter_200.pth
"""

from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from looptrans.datasets.classes import config_classes
from looptrans.testing import OBJECT_MASK_DIR, PART_MASK_DIR

#: What an oracle CAM is: the true affordance part, or the whole object.
ORACLES = ('part', 'object')


def object_mask_path(part_mask: str) -> str:
    """The whole object's mask written beside a part mask (``<split>/object_masks/<aff>/<obj>/<stem>.png``)."""
    head, name = osp.split(part_mask)
    head, obj = osp.split(head)
    head, aff = osp.split(head)
    return osp.join(osp.dirname(head), OBJECT_MASK_DIR, aff, obj, name)


def check_object_masks(samples: List[Tuple[str, str, int]]) -> None:
    """A FileNotFoundError naming the first sample without an object mask (trees written before the generator
    wrote them) and the fix."""
    for _, part_mask, _ in samples:
        whole = object_mask_path(part_mask)
        if not osp.isfile(whole):
            raise FileNotFoundError(
                f'--oracle object needs the object mask of every egocentric training image; {whole!r} is missing. '
                'Regenerate the tree with tools/misc/generate_synthetic_agd20k.py (same options, --overwrite): it '
                'writes them, and the images come out byte-identical.'
            )


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
    from looptrans.utils.log_noise import init_weights_quietly

    init_weights_quietly(model)
    return model.to(device).eval()


def read_images(paths: Sequence[str], size: Tuple[int, int]) -> Tuple[np.ndarray, List[torch.Tensor]]:
    """The images resized to ``size`` (h, w) with PIL bilinear, as the test pipeline does: (N, h, w, 3) BGR, and
    as the data preprocessor's inputs (one (1, 3, h, w) tensor each)."""
    h, w = size
    bgr = np.stack([mmcv.imresize(mmcv.imread(p), (w, h), backend='pillow') for p in paths])
    return bgr, [torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None] for img in bgr]


def reestimate_ego_norm_stats(model: torch.nn.Module, samples: List[Tuple[str, str, int]], batch_size: int) -> int:
    """:func:`looptrans.apis.reestimate_cam_norm_stats` on the egocentric images of ``samples`` (each prepared as
    ``tools/test.py`` prepares a test image, the pixels part discovery reads): the CAM that chooses the
    pseudo-masks normalised with egocentric statistics, as in a training step, rather than the blend of both
    views' that a shared projection's running statistics hold. Returns the number of BatchNorm layers; a
    SystemExit naming the problem when it cannot be done."""
    from looptrans.apis import reestimate_cam_norm_stats

    try:
        return reestimate_cam_norm_stats(model, [p for p, _, _ in samples], 'ego', batch_size)
    except ValueError as err:
        raise SystemExit(f'error: --ego-norm-stats: {err}') from err


@torch.no_grad()
def discover(
    model: torch.nn.Module,
    chunk: List[Tuple[str, str, int]],
    size: Tuple[int, int],
    oracle: Optional[str],
    cam_model: Optional[torch.nn.Module] = None,
) -> Tuple[np.ndarray, torch.Tensor, torch.Tensor, object]:
    """Part discovery on the images of ``chunk``: (BGR images resized to ``size`` (N, h, w, 3), true parts (N, h,
    w) bool, labels (N,), the ``PartDiscoveryResult``). The CAM is the true part (``oracle='part'``) or the whole
    object (``oracle='object'``), each average-pooled to the descriptor grid, else (``oracle=None``) the egocentric
    CAM of the labelled affordance of ``cam_model`` (default: ``model``)."""
    from looptrans.models.heads import select_class_maps

    device = next(model.parameters()).device
    h, w = size
    bgr, images = read_images([p for p, _, _ in chunk], size)

    def masks(paths: List[str]) -> torch.Tensor:
        return torch.stack(
            [
                torch.from_numpy(
                    cv2.resize(cv2.imread(m, cv2.IMREAD_GRAYSCALE), (w, h), interpolation=cv2.INTER_NEAREST) > 127
                )
                for m in paths
            ]
        ).to(device)

    truth = masks([m for _, m, _ in chunk])
    labels = torch.tensor([label for _, _, label in chunk], device=device)
    x = model.data_preprocessor(dict(inputs=images), False)['inputs'][:, 0]
    desc = model.part_descriptors(x)
    grid = tuple(desc['cls_attn'].shape[-2:])
    if oracle:
        target = truth if oracle == 'part' else masks([object_mask_path(m) for _, m, _ in chunk])
        cam = F.adaptive_avg_pool2d(target[:, None].float(), grid)[:, 0]
    else:
        source, xc = model, x
        if cam_model is not None:  # its own normalisation: the two configs' preprocessors may differ
            source, xc = cam_model, cam_model.data_preprocessor(dict(inputs=images), False)['inputs'][:, 0]
        cam = select_class_maps(source.cam_head(source.extract_feat(xc), view='ego'), labels)
        cam = F.interpolate(cam[:, None], size=grid, mode='bilinear', align_corners=False)[:, 0]
    return bgr, truth, labels, model.part_discovery(desc['keys'], cam, cls_attn=desc['cls_attn'])


def part_breakdown(parts, truth: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per image (B,): the IoU with the true part (B, H, W) of the best of the K parts in ``parts.assign`` and of
    the part that holds the maximum of ``parts.cam``; NaN where the algorithm reports no assignment."""
    from looptrans.models.part_discovery import pseudo_mask_iou

    num = truth.shape[0]
    if parts.assign is None or parts.cam is None:
        nan = torch.full((num,), float('nan'))
        return nan, nan.clone()
    grid = tuple(parts.pseudo_mask.shape[-2:])
    assign = parts.assign.view(num, *grid)
    per_part = torch.stack(
        [pseudo_mask_iou((assign == k).float(), truth) for k in range(int(parts.assign.max()) + 1)], dim=1
    )  # (B, K)
    peak_part = parts.assign.gather(1, parts.cam.flatten(1).argmax(dim=1, keepdim=True))
    return per_part.max(dim=1).values.cpu(), per_part.gather(1, peak_part)[:, 0].cpu()


def evaluate(
    model: torch.nn.Module,
    samples: List[Tuple[str, str, int]],
    size: Tuple[int, int],
    oracle: Optional[str],
    batch_size: int = 16,
    cam_model: Optional[torch.nn.Module] = None,
) -> List[Tuple[int, bool, float, float, float]]:
    """(label, valid, IoU of the pseudo-mask, IoU of the best of the K parts, IoU of the part under the CAM's
    maximum) of every sample; ``cam_model`` as in :func:`discover`."""
    from looptrans.models.part_discovery import pseudo_mask_iou

    results = []
    for start in range(0, len(samples), batch_size):
        _, truth, labels, parts = discover(model, samples[start : start + batch_size], size, oracle, cam_model)
        ious = pseudo_mask_iou(parts.pseudo_mask, truth)
        best, peak = part_breakdown(parts, truth)
        results.extend(zip(labels.tolist(), parts.valid.tolist(), ious.tolist(), best.tolist(), peak.tolist()))
    return results


#: Colours (BGR) of the K-means parts in the picture; the background part is drawn in the first.
PART_COLORS = np.array(
    [(150, 60, 40), (60, 180, 60), (40, 200, 240), (200, 80, 220), (60, 60, 230), (230, 200, 60), (140, 140, 140)],
    np.uint8,
)


def render_picture(
    model: torch.nn.Module,
    samples: List[Tuple[str, str, int]],
    size: Tuple[int, int],
    oracle: Optional[str],
    classes,
    cam_model: Optional[torch.nn.Module] = None,
) -> np.ndarray:
    """One row per sample: the image | its K-means parts | the pseudo-mask (red; a grey frame when it is not
    valid) | the true part (green), captioned with the affordance, the object and the IoU."""
    from looptrans.models.part_discovery import pseudo_mask_iou
    from looptrans.visualization import colour_overlay, put_caption

    bgr, truth, labels, parts = discover(model, samples, size, oracle, cam_model)
    ious = pseudo_mask_iou(parts.pseudo_mask, truth).tolist()
    h, w = size
    grid = tuple(parts.pseudo_mask.shape[-2:])
    assign = parts.assign.reshape(len(samples), *grid).cpu().numpy()
    rows = []
    for i, (path, _, _) in enumerate(samples):
        img = bgr[i]
        clusters = cv2.resize(PART_COLORS[assign[i] % len(PART_COLORS)], (w, h), interpolation=cv2.INTER_NEAREST)
        pm = cv2.resize(parts.pseudo_mask[i].float().cpu().numpy(), (w, h), interpolation=cv2.INTER_NEAREST) > 0.5
        t = truth[i].cpu().numpy()
        chosen, true = colour_overlay(img, pm, (0, 0, 255)), colour_overlay(img, t, (0, 255, 0))
        if not parts.valid[i]:
            cv2.rectangle(chosen, (0, 0), (w - 1, h - 1), (128, 128, 128), 6)
        obj = osp.basename(osp.dirname(path))
        caption = f'{classes[int(labels[i])]} / {obj}  IoU {ious[i]:.2f}' + ('' if parts.valid[i] else ' (not valid)')
        row = put_caption(np.concatenate([img, clusters, chosen, true], 1), caption)  # white on dark: any order
        rows.append(row)
    return np.concatenate(rows, 0)


def first_of_each_folder(samples: List[Tuple[str, str, int]]) -> List[Tuple[str, str, int]]:
    """The first sample of every affordance/object folder, in the order of ``samples``."""
    seen, out = set(), []
    for sample in samples:
        folder = osp.dirname(sample[0])
        if folder not in seen:
            seen.add(folder)
            out.append(sample)
    return out


def summarise(
    results: List[Tuple[int, bool, float, float, float]], classes: Tuple[str, ...]
) -> Dict[str, Dict[str, float]]:
    """Per affordance and overall: share valid, number of images, and over the valid samples the mean IoU of the
    pseudo-mask (``miou``), of the best of the K parts (``best``) and of the part under the CAM's maximum
    (``peak``)."""
    groups = defaultdict(list)
    for label, *row in results:
        groups[classes[label]].append(row)
        groups['overall'].append(row)
    table = {}
    for name in [c for c in classes if c in groups] + ['overall']:
        rows = groups[name]
        kept = np.array([r[1:] for r in rows if r[0]], np.float64).reshape(-1, 3)
        means = kept.mean(0) if len(kept) else np.full(3, np.nan)
        table[name] = dict(
            miou=float(means[0]),
            best=float(means[1]),
            peak=float(means[2]),
            valid=sum(r[0] for r in rows) / len(rows),
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
    parser.add_argument(
        '--show',
        metavar='FILE',
        help='also write a picture: the first image of every affordance/object folder, its K-means parts, the '
        'pseudo-mask and the true part',
    )
    parser.add_argument(
        '--show-only',
        nargs='+',
        metavar='AFF/OBJ',
        help='rows of the picture: these affordance/object folders only, in this order (e.g. cut_with/knife)',
    )
    parser.add_argument(
        '--cam-from',
        nargs=2,
        metavar=('CAM_CONFIG', 'CAM_CHECKPOINT'),
        help="another trained model whose egocentric CAM chooses the pseudo-masks (e.g. the LOCATE baseline's)",
    )
    parser.add_argument(
        '--oracle',
        choices=ORACLES,
        help='without a CHECKPOINT or --cam-from: the oracle CAM is the true part (default) or the whole object',
    )
    parser.add_argument(
        '--ego-norm-stats',
        action='store_true',
        help="with a CHECKPOINT: first re-estimate its CAM projection's BatchNorm running statistics on these "
        "egocentric images (a shared projection trained per view keeps a blend of both views')",
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if args.ego_norm_stats and (not args.checkpoint or args.cam_from):
        parser.error("--ego-norm-stats re-estimates the CHECKPOINT's statistics; give one, without --cam-from")
    if args.oracle and (args.checkpoint or args.cam_from):
        parser.error('--oracle chooses the CAM when there is no trained one; drop it, or drop CHECKPOINT / --cam-from')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.show_only and not args.show:
        parser.error('--show-only selects the rows of the --show picture; add --show FILE')
    if args.show and osp.splitext(args.show)[1].lower() not in ('.png', '.jpg', '.jpeg'):
        parser.error(f'--show writes a .png or .jpg picture, got {args.show!r}')
    return args


def build_cam_model(
    model: torch.nn.Module, config: str, checkpoint: str, device: str, share_backbone: bool
) -> torch.nn.Module:
    """The trained model of ``config`` / ``checkpoint`` whose egocentric CAM chooses the pseudo-masks. With
    ``share_backbone``, ``model`` (whose part discovery reads its backbone's keys) gets that model's frozen backbone
    weights, so that the clustered keys are the features the CAM was trained on. A model without a ``cam_head``, or
    a backbone of another architecture, is a SystemExit naming ``config``."""
    from looptrans.apis import init_model

    cam_cfg = Config.fromfile(config)
    init_default_scope(cam_cfg.get('default_scope', 'mmseg'))
    cam_model = init_model(cam_cfg, checkpoint, device=device)
    if not hasattr(cam_model, 'cam_head'):
        raise SystemExit(f'error: --cam-from {config}: its model ({type(cam_model).__name__}) has no cam_head')
    if share_backbone:
        try:
            model.backbone.load_state_dict(cam_model.backbone.state_dict())
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise SystemExit(
                f'error: --cam-from {config}: its backbone is not the architecture of this config\'s backbone, whose '
                f'keys the part discovery clusters ({first}); give both configs the same backbone, or give this '
                'config a CHECKPOINT to cluster that model\'s keys instead'
            ) from None
    return cam_model


def training_split(cfg: Config, model: torch.nn.Module, data_root: Optional[str] = None) -> Tuple[str, Tuple[str, ...]]:
    """The generated training split whose egocentric images are scored (``data_root``, else the config's training
    ``data_root``, with its ``split``) and the class order of the CAM's channels (the config's, else the model's)."""
    train = cfg.train_dataloader.dataset
    root = osp.join(data_root or train.data_root, train.get('split', 'Seen'))
    return root, tuple(config_classes(train) or model.dataset_meta['classes'])


def main(argv=None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg, args.checkpoint, args.device)
    root, classes = training_split(cfg, model, args.data_root)
    from looptrans.apis.inference import test_input_size

    cam_model = None
    if args.cam_from:
        share = not args.checkpoint and getattr(model, 'shares_descriptor_pass', False)
        cam_model = build_cam_model(model, *args.cam_from, args.device, share)
        cam_classes = tuple((getattr(cam_model, 'dataset_meta', None) or {}).get('classes') or ())
        if cam_classes != classes:
            raise SystemExit(
                f'error: --cam-from {args.cam_from[1]}: its classes {list(cam_classes)} are not this config\'s '
                f'{list(classes)}; the CAM of a class must be the CAM of the same affordance'
            )
    oracle = (args.oracle or 'part') if not args.checkpoint and cam_model is None else None
    samples = find_samples(root, classes)
    if oracle == 'object':
        check_object_masks(samples)
    if args.ego_norm_stats:
        layers = reestimate_ego_norm_stats(model, samples, args.batch_size)
        print(f"the CAM projection's {layers} BatchNorm layers: running statistics re-estimated on these images")
    results = evaluate(model, samples, test_input_size(cfg), oracle, args.batch_size, cam_model)
    table = summarise(results, classes)
    if cam_model is not None:
        mode = f'CAM of {args.cam_from[1]} ({type(cam_model).__name__})'
    else:
        mode = (
            'trained CAM'
            if args.checkpoint
            else f'oracle CAM (the {"true part" if oracle == "part" else "whole object"})'
        )
    print(
        f'pseudo-masks of {len(samples)} egocentric training images under {root}, {mode}, '
        f'K = {cfg.model.part_discovery.get("num_parts", 4)}'
    )
    print('| affordance | images | valid | mIoU (valid) | best of K | under max |')
    print('| --- | --- | --- | --- | --- | --- |')
    for name, row in table.items():
        print(
            f'| {name} | {row["num"]} | {row["valid"]:.2f} | {row["miou"]:.3f} | {row["best"]:.3f} | '
            f'{row["peak"]:.3f} |'
        )
    if args.show:
        shown = first_of_each_folder(samples)
        if args.show_only:
            by_folder = {
                f'{classes[label]}/{osp.basename(osp.dirname(path))}': (path, m, label) for path, m, label in shown
            }
            missing = [name for name in args.show_only if name not in by_folder]
            if missing:
                raise SystemExit(
                    f'error: --show-only {missing}: no such folder under {root}; it has {sorted(by_folder)}'
                )
            shown = [by_folder[name] for name in args.show_only]
        picture = render_picture(model, shown, test_input_size(cfg), oracle, classes, cam_model)
        os.makedirs(osp.dirname(osp.abspath(args.show)), exist_ok=True)
        if not cv2.imwrite(args.show, picture):
            raise SystemExit(f'error: OpenCV could not write the picture to {args.show!r}')
        print(f'picture: {args.show}')
    return table


if __name__ == '__main__':
    main()
