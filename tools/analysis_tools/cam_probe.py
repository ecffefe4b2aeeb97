"""Can a CAM on these frozen features find the object? Train only the CAM head, on cached features, and point.

The full model's CAM is shaped by four losses, two views and a closed loop; this probe removes all of that. It
computes the config's frozen backbone features of the generated tree's training images once, trains the
config's CAM head (a fresh one) with the classification loss alone (cross-entropy of the globally pooled CAM, as
``SharedCAMHead``) on the chosen views, and plays the pointing game of ``eval_cam_pointing.py`` on the
egocentric test images with the labelled affordance's CAM. It answers, in seconds, questions the full training
needs minutes for: do the features allow a localising CAM at all? do the exocentric views help or hurt it? how
many steps does it need?

    python tools/analysis_tools/cam_probe.py configs/looptrans_synthetic.py --views ego --iters 1000
    python tools/analysis_tools/cam_probe.py configs/looptrans_synthetic.py --views exo ego --iters 200

Images are resized to the test pipeline's input size (as ``test_input_size``) and normalised with the config's
data preprocessor; the CAM is upsampled to each image's mask size (bilinear).
"""

from __future__ import annotations

import argparse
import glob
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from eval_cam_pointing import KEYS, POINTING_TOLERANCE, _read_mask, find_test_samples, point  # noqa: E402

VIEW_DIRS = dict(exo='exocentric', ego='egocentric')


def training_images(root: str, classes: Sequence[str], views: Sequence[str]) -> List[Tuple[str, int]]:
    """(path, label) of every training image of ``views`` under ``<root>/trainset/<view>/<aff>/<obj>/``."""
    images = []
    for view in views:
        for path in sorted(glob.glob(osp.join(root, 'trainset', VIEW_DIRS[view], '*', '*', '*'))):
            aff = path.split(osp.sep)[-3]
            if aff in classes:
                images.append((path, classes.index(aff)))
    if not images:
        raise FileNotFoundError(f'no {"/".join(views)} training images of the classes {list(classes)} under {root!r}')
    return images


def load_image(path: str, size: Tuple[int, int], mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """RGB float (3, H, W), resized to ``size`` (w, h) and normalised."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f'cannot read the image {path!r}')
    img = cv2.resize(img[:, :, ::-1], size, interpolation=cv2.INTER_LINEAR).astype(np.float64)
    return torch.from_numpy(((img - mean) / std).transpose(2, 0, 1).copy()).float()


@torch.no_grad()
def frozen_features(model, paths: Sequence[str], size, mean, std, batch_size: int = 16) -> torch.Tensor:
    """The backbone's last feature map of every image (N, C, h, w)."""
    out = []
    for i in range(0, len(paths), batch_size):
        x = torch.stack([load_image(p, size, mean, std) for p in paths[i : i + batch_size]])
        feats = model.extract_feat(x)
        out.append(feats[-1] if isinstance(feats, (list, tuple)) else feats)
    return torch.cat(out)


def train_cam_head(head, feats: torch.Tensor, labels: torch.Tensor, iters: int, lr: float, batch_size: int, seed: int):
    """AdamW on the cross-entropy of the pooled CAM, batches drawn with replacement; returns the last loss."""
    gen = torch.Generator().manual_seed(seed)
    optim = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    loss = torch.zeros(())
    for _ in range(iters):
        idx = torch.randint(0, len(feats), (batch_size,), generator=gen)
        loss = F.cross_entropy(head(feats[idx]).mean((2, 3)), labels[idx])
        optim.zero_grad()
        loss.backward()
        optim.step()
    head.eval()
    return float(loss.detach())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--views', nargs='+', choices=sorted(VIEW_DIRS), default=['exo', 'ego'])
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tolerance', type=float, default=POINTING_TOLERANCE)
    parser.add_argument('--data-root', help="generated tree (default: the config's test data_root)")
    parser.add_argument('--split', help="Seen or Unseen (default: the config's test split)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    for name in ('iters', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if not args.lr > 0:
        parser.error(f'--lr must be > 0, got {args.lr}')
    if not args.tolerance >= 0:
        parser.error(f'--tolerance must be >= 0 pixels, got {args.tolerance}')
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    from looptrans.datasets.classes import config_classes
    from looptrans.utils.config_check import load_tool_config

    cfg = load_tool_config(args.config, args.cfg_options)
    init_default_scope('mmseg')
    torch.manual_seed(args.seed)
    test = cfg.test_dataloader.dataset
    root = osp.join(osp.expanduser(args.data_root or test.data_root), args.split or test.get('split', 'Seen'))
    classes = config_classes(cfg.train_dataloader.dataset)
    if not classes:
        raise SystemExit(f'error: {args.config} names no class list of its training dataset; the probe needs one.')
    classes = tuple(classes)
    pre = cfg.model.data_preprocessor
    mean, std = np.asarray(pre.mean, np.float64), np.asarray(pre.std, np.float64)
    from looptrans.apis.inference import test_input_size

    height, width = test_input_size(cfg)
    size = (width, height)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()

    train = training_images(root, classes, args.views)
    samples = find_test_samples(root, classes)
    x_train = frozen_features(model, [p for p, _ in train], size, mean, std)
    y_train = torch.tensor([c for _, c in train])
    x_test = frozen_features(model, [s[0] for s in samples], size, mean, std)
    y_test = torch.tensor([classes.index(s[3]) for s in samples])
    loss = train_cam_head(model.cam_head, x_train, y_train, args.iters, args.lr, args.batch_size, args.seed)
    with torch.no_grad():
        train_acc = float((model.cam_head(x_train).mean((2, 3)).argmax(1) == y_train).float().mean())
        cams = model.cam_head(x_test)
    test_acc = float((cams.mean((2, 3)).argmax(1) == y_test).float().mean())
    outcomes = []
    for cam, label, (_, whole_path, part_path, _) in zip(cams, y_test, samples):
        whole, part = _read_mask(whole_path), _read_mask(part_path)
        heat = F.interpolate(cam[label][None, None], size=whole.shape, mode='bilinear', align_corners=False)
        outcomes.append(point(heat[0, 0].numpy(), whole, part, args.tolerance))
    result = dict(train_images=len(train), loss=loss, train_acc=train_acc, test_acc=test_acc, test_images=len(samples))
    result.update({k: float(np.mean([o[k] for o in outcomes])) for k in KEYS})
    tol = f'{args.tolerance:g} px'
    print(
        f'CAM head alone, {args.iters} steps on {len(train)} {"+".join(args.views)} training images '
        f'(seed {args.seed}): loss {loss:.3f}, top-1 train {train_acc:.2f} / test {test_acc:.2f}'
    )
    print(f'| images | max on object | within {tol} | max on part | within {tol} | mass on object |')
    print('| --- | --- | --- | --- | --- | --- |')
    print(f'| {len(samples)} | ' + ' | '.join(f'{result[k]:.2f}' for k in KEYS) + ' |')
    return result


if __name__ == '__main__':
    main()
