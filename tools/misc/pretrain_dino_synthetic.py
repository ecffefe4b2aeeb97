"""Pretrain the generated benchmark's frozen ViT with DINO's self-supervised objective (no labels, no download).

``configs/looptrans_synthetic_dino_pretrained.py`` loads the result exactly as the real configs load the official
DINO ViT-S/16: ``init_cfg=dict(type='Pretrained', checkpoint=...)`` on a file in the official DINO layout. The run
is deterministic for its settings and thread count on one kind of CPU (floating-point kernels may round
differently elsewhere):

    python tools/misc/pretrain_dino_synthetic.py --out checkpoints/dino_synthetic_vit4x192.pth

``--ego-scale LO HI``, ``--part-thickness F`` and ``--bold-parts`` draw the images as
``generate_synthetic_agd20k.py`` draws a tree with the same options, so the features match the tree they are used
on.

The default 2,000 steps of batch 32 take about 29 minutes on 2 CPU cores. On a GPU, ``--device cuda`` with larger
settings (e.g. ``--num-images 4096 --batch-size 128 --steps 1800``) ran in about 5 minutes on an H200. Beside the
weights it writes ``<out>.json`` with the settings, the device, the thread count, the training log (loss, teacher
entropy, prototypes in use) and the file's SHA-256. Before using the weights with
``exclude_background='saliency'``, ``tools/analysis_tools/rank_saliency_heads.py`` tells which heads (if any) attend
to the object. See
``looptrans.testing.dino_pretraining`` for what follows DINO and what is scaled down, and
``docs/generated_benchmark.md`` for what these features do and do not give the generated benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import os.path as osp
import sys
from typing import List, Optional

import torch

from looptrans.testing.dino_pretraining import PretrainSettings, pretrain_dino
from looptrans.testing.synthetic_agd20k import add_drawing_arguments, check_drawing_options
from looptrans.utils import atomic_write_bytes

DEFAULT_OUT = 'checkpoints/dino_synthetic_vit4x192.pth'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    defaults = PretrainSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=DEFAULT_OUT, help=f'weights to write (default: {DEFAULT_OUT})')
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--steps', type=int, default=defaults.steps)
    parser.add_argument('--num-images', type=int, default=defaults.num_images, help='generated images to crop from')
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument(
        '--patch-size', type=int, default=defaults.patch_size, help='ViT patch size (16 as ViT-S/16; 8 for finer parts)'
    )
    parser.add_argument('--lr', type=float, default=defaults.lr, help='peak AdamW learning rate')
    parser.add_argument('--warmup-steps', type=int, default=defaults.warmup_steps, help='linear warm-up to --lr')
    add_drawing_arguments(parser)  # as generate_synthetic_agd20k.py, so the images match a tree's
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads (part of what fixes the result)')
    parser.add_argument('--device', default='cpu', help="where to train: 'cpu' (default) or a GPU such as 'cuda'")
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    args = parser.parse_args(argv)
    for name in ('steps', 'num_images', 'batch_size', 'threads', 'patch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if not args.lr > 0:
        parser.error(f'--lr must be > 0, got {args.lr}')
    if not 0 <= args.warmup_steps < args.steps:
        parser.error(f'--warmup-steps must be in [0, --steps), got {args.warmup_steps} with --steps {args.steps}')
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        parser.error(f'--device {args.device!r}: {err}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device {args.device!r}: this torch sees no CUDA GPU; use --device cpu')
    try:
        check_drawing_options(args.ego_scale, args.part_thickness)
    except ValueError as err:
        parser.error(str(err))
    if osp.exists(args.out) and not args.overwrite:
        parser.error(f'{args.out!r} exists; pass --overwrite to replace it')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = dataclasses.replace(
        PretrainSettings(),
        seed=args.seed,
        steps=args.steps,
        num_images=args.num_images,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        ego_scale=tuple(args.ego_scale),
        part_thickness=args.part_thickness,
        bold_parts=args.bold_parts,
    )
    print(f'DINO pretraining on generated images: {settings}', flush=True)
    result = pretrain_dino(settings, log=lambda line: print(line, flush=True), device=args.device)
    buffer = io.BytesIO()
    torch.save(result.state_dict, buffer)
    data = buffer.getvalue()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    atomic_write_bytes(data, args.out)
    where = torch.cuda.get_device_name(args.device) if torch.device(args.device).type == 'cuda' else 'cpu'
    meta = dict(
        result.meta(),
        threads=args.threads,
        device=where,
        torch=torch.__version__,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    atomic_write_bytes((json.dumps(meta, indent=1) + '\n').encode(), args.out + '.json')
    print(f'wrote {args.out} ({len(data) / 2**20:.1f} MiB, sha256 {meta["sha256"]}) in {result.seconds:.0f} s')
    return meta


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
