"""Rank a frozen DINO ViT's heads by how object-centred their CLS attention is, to choose the saliency heads.

``exclude_background='saliency'`` (LOCATE's background rule) thresholds the CLS attention of a few heads; LOCATE
uses heads 0, 1 and 3 of DINO ViT-S/16. Another ViT (another DINO size, DINOv2, the ViT that
``tools/misc/pretrain_dino_synthetic.py`` pretrains on generated images) has other heads, and a head that attends
almost uniformly makes the saliency cover the backdrop: the background part then becomes a candidate pseudo-mask,
which a diffuse trained CAM picks (``docs/generated_benchmark.md``, section 8).

Egocentric images show one object, away from the image edge, so an object-centred head puts little of its CLS
attention on the patch grid's outermost ring, while a uniform head puts the ring's share of the tokens there. This
tool measures that share for every head on the egocentric training images of the config's data (no labels are
read), ranks the heads, and suggests those whose share is below ``--ratio`` (default 0.5) times the ring's share of
the tokens. When no head is (a random ViT, or weights whose CLS attention is not on the object), it says so and
points to ``exclude_background='border'``. For the configured heads and the suggested ones it reports the saliency
mask's area and the share of the ring's tokens it marks salient (what reaches part selection):

    python tools/analysis_tools/rank_saliency_heads.py configs/looptrans_synthetic_dino_pretrained.py
    python tools/analysis_tools/rank_saliency_heads.py configs/looptrans_agd20k.py --max-images 500 \\
        --out work_dirs/saliency_heads.json

It prints the ``--cfg-options`` that use the suggested heads (``model.saliency_heads`` for the LOCATE baseline).
The frozen ViT is the config's part-discovery encoder (``model.descriptor`` when set, else the backbone) with the
weights its ``init_cfg`` loads.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
DEFAULT_HEADS = (0, 1, 3)


def find_egocentric_images(root: str, max_images: int) -> List[str]:
    """Up to ``max_images`` egocentric training images under ``root`` (``trainset/egocentric/<aff>/<obj>/``),
    evenly spaced over the sorted list so that every folder is represented and the choice is deterministic."""
    pattern = osp.join(root, 'trainset', 'egocentric', '*', '*', '*')
    paths = sorted(p for p in glob.glob(pattern) if osp.splitext(p)[1].lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(
            f'no egocentric training images under {osp.join(root, "trainset", "egocentric")!r} '
            '(expected <aff>/<obj>/<image>); pass --data-root and --split of an AGD20K-layout tree.'
        )
    if len(paths) > max_images:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_images).round().astype(int)]
    return paths


def build_encoder(cfg: Config, device: str):
    """(frozen part-discovery ViT with its configured weights, the config's data preprocessor)."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import looptrans  # noqa: F401

    encoder_cfg = cfg.model.get('descriptor') or cfg.model.backbone
    encoder = MODELS.build(encoder_cfg)
    if not hasattr(encoder, 'forward_descriptors'):
        raise SystemExit(
            f'error: the part-discovery encoder {encoder_cfg.get("type")!r} has no CLS attention; the saliency '
            'needs a DINO ViT (type=DINOVisionTransformer) as model.backbone or model.descriptor.'
        )
    from looptrans.utils.log_noise import init_weights_quietly

    init_weights_quietly(encoder)
    return encoder.to(device).eval(), MODELS.build(cfg.model.data_preprocessor).to(device)


@torch.no_grad()
def cls_attention(encoder, preprocessor, paths: Sequence[str], size, batch_size: int) -> torch.Tensor:
    """(N, heads, h, w) CLS attention of the readable images of ``paths``; an unreadable image is skipped with a
    warning naming it."""
    h, w = size
    out = []
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start : start + batch_size]:
            try:
                img = mmcv.imread(path)
            except Exception as err:  # mmcv raises for a missing file, OpenCV returns None for a corrupt one
                img, reason = None, err
            else:
                reason = 'not a readable image'
            if img is None:
                print_log(f'skipped {path!r}: {reason}', logger='current', level=logging.WARNING)
                continue
            img = mmcv.imresize(img, (w, h), backend='pillow')
            images.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None])
        if images:
            x = preprocessor(dict(inputs=images), False)['inputs'][:, 0]
            out.append(encoder.forward_descriptors(x)['cls_attn'].float().cpu())
    if not out:
        raise SystemExit('error: none of the egocentric images could be read; see the warnings above.')
    return torch.cat(out)


def suggest_heads(share: Sequence[float], ring_share: float, ratio: float) -> List[int]:
    """Heads whose border share is below ``ratio * ring_share``, most object-centred first (empty when no head
    is: then no choice of heads gives a saliency that separates object and backdrop)."""
    order = sorted(range(len(share)), key=lambda head: share[head])
    return [head for head in order if share[head] < ratio * ring_share]


def saliency_summary(cls_attn: torch.Tensor, heads: Sequence[int]) -> Dict[str, float]:
    """Mean share of the image the saliency of ``heads`` marks salient, and of the ring's tokens."""
    from looptrans.models.part_discovery import border_mask, cls_attention_saliency

    sal = cls_attention_saliency(cls_attn, heads).float()
    ring = border_mask(*cls_attn.shape[-2:], device=cls_attn.device)
    return dict(area=float(sal.mean()), border=float(((sal * ring).sum(1) / ring.sum()).mean()))


def saliency_heads_key(cfg: Config):
    """(the config key of the saliency heads, the heads it sets): ``model.part_discovery.saliency_heads`` for
    LoopTrans, ``model.saliency_heads`` for the LOCATE baseline; LOCATE's (0, 1, 3) where unset."""
    if 'part_discovery' in cfg.model:
        return 'model.part_discovery.saliency_heads', tuple(
            cfg.model.part_discovery.get('saliency_heads', DEFAULT_HEADS)
        )
    return 'model.saliency_heads', tuple(cfg.model.get('saliency_heads', DEFAULT_HEADS))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--data-root', help="tree to read (default: the config's training data_root)")
    parser.add_argument('--split', help="split folder under it (default: the training dataset's, else 'Seen')")
    parser.add_argument('--max-images', type=int, default=256, help='egocentric images to use (default: 256)')
    parser.add_argument('--ratio', type=float, default=0.5, help='suggest heads below ratio x the ring share')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--out', help='also write the figures as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    for name in ('max_images', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if not 0 < args.ratio <= 1:
        parser.error(f'--ratio must be in (0, 1], got {args.ratio}')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    train = cfg.train_dataloader.dataset
    root = osp.join(osp.expanduser(args.data_root or train.data_root), args.split or train.get('split', 'Seen'))
    paths = find_egocentric_images(root, args.max_images)
    from looptrans.apis.inference import test_input_size
    from looptrans.models.part_discovery import border_attention_share, border_mask

    encoder, preprocessor = build_encoder(cfg, args.device)
    attn = cls_attention(encoder, preprocessor, paths, test_input_size(cfg), args.batch_size)
    num_heads, grid = attn.shape[1], tuple(attn.shape[-2:])
    share = border_attention_share(attn).mean(0).tolist()
    ring_share = float(border_mask(*grid, device=attn.device).mean())
    suggested = suggest_heads(share, ring_share, args.ratio)
    key, configured = saliency_heads_key(cfg)
    configured = configured if max(configured) < num_heads else ()
    report = dict(
        config=args.config,
        images=len(attn),
        root=root,
        grid=list(grid),
        ring_share=ring_share,
        ratio=args.ratio,
        border_share=share,
        suggested_heads=suggested,
        configured_heads=list(configured),
        saliency={
            name: dict(heads=list(heads), **saliency_summary(attn, heads))
            for name, heads in (('configured', configured), ('suggested', sorted(suggested)))
            if heads
        },
    )
    print(
        f'CLS attention of {num_heads} heads on {len(attn)} egocentric images under {root}; the border ring is '
        f'{ring_share:.2f} of the {grid[0]}x{grid[1]} grid (a uniform head puts that share there)'
    )
    print('| head | attention on the border ring | / ring share | suggested |')
    print('| --- | --- | --- | --- |')
    for head in sorted(range(num_heads), key=lambda k: share[k]):
        mark = 'yes' if head in suggested else ''
        print(f'| {head} | {share[head]:.3f} | {share[head] / ring_share:.2f} | {mark} |')
    for name, row in report['saliency'].items():
        print(
            f'saliency of the {name} heads {row["heads"]}: {row["area"]:.2f} of the image salient, '
            f'{row["border"]:.2f} of the border ring'
        )
    if not configured:
        print(f'the configured saliency heads do not exist in a {num_heads}-head ViT')
    if suggested:
        heads_arg = '[' + ','.join(str(h) for h in sorted(suggested)) + ']'
        print(f'to use the suggested heads: --cfg-options {key}={heads_arg}')
    else:
        print_log(
            f'no head puts less than {args.ratio} x the ring share of its CLS attention on the border ring: no '
            "choice of heads gives a saliency that separates object and backdrop on these images; use "
            "exclude_background='border' (--cfg-options "
            f'{key.rsplit(".", 1)[0]}.exclude_background=border).',
            logger='current',
            level=logging.WARNING,
        )
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'figures: {args.out}')
    return report


if __name__ == '__main__':
    main()
