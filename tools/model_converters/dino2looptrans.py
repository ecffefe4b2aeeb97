"""Convert official DINO / DINOv2 ViT weights to the state dict of looptrans' ``DINOVisionTransformer``.

Official weights (self-supervised DINO, https://github.com/facebookresearch/dino):

- ViT-S/16 (LOCATE / LoopTrans default):
  https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth
- ViT-S/8:
  https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth
- ViT-B/16:
  https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth

DINOv2 (https://github.com/facebookresearch/dinov2; the same names plus LayerScale ``blocks.N.ls1/ls2.gamma``
and a training-only ``mask_token``, which is dropped):

- ViT-S/14 (configs/backbones/looptrans_agd20k_dinov2_vits14.py):
  https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth

Conversion is optional: the backbone reads these files directly through
``init_cfg=dict(type='Pretrained', checkpoint=PATH)``. Converted files (mmpretrain parameter names)
also load into a plain ``mmpretrain.VisionTransformer`` with MMEngine's ``Pretrained`` init (for DINOv2
with ``layer_scale_init_value > 0``).

Usage::

    python tools/model_converters/dino2looptrans.py dino_deitsmall16_pretrain.pth \
        checkpoints/dino_vits16_mmpretrain.pth
    python tools/model_converters/dino2looptrans.py dinov2_vits14_pretrain.pth \
        checkpoints/dinov2_vits14_mmpretrain.pth

DINO *full* checkpoints (``teacher``/``student`` entries, ``module.backbone.`` prefixes) are
accepted; ``--source`` picks the network (the released weights are the teacher's). The file is
read with ``torch.load(weights_only=True)``.
"""

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import torch

from looptrans.models.backbones import (
    DINOVisionTransformer,
    infer_vit_arch,
    load_checkpoint_file,
    unwrap_dino_checkpoint,
)
from looptrans.models.backbones.dino_weights import convert_dino_to_mmpretrain

# Any value > 0 builds the LayerScale parameters (DINOv2); the file's learned values replace it.
_LAYER_SCALE_INIT = 1e-5


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert official DINO / DINOv2 ViT weights (timm names) to mmpretrain names.'
    )
    parser.add_argument('src', help='official DINO checkpoint (path or http(s) URL)')
    parser.add_argument('dst', help='where to save the converted state dict')
    parser.add_argument(
        '--source',
        choices=('teacher', 'student'),
        default='teacher',
        help='network to take from a DINO full checkpoint (default: teacher)',
    )
    return parser.parse_args(argv)


def convert(src: str, dst: str, source: str = 'teacher') -> dict:
    """Convert ``src`` to ``dst`` and check the result against the matching backbone.

    Returns:
        ``dict(num_in, num_out, arch, patch_size, img_size, layer_scale)``; ``img_size`` is the input size
        the file's position grid is laid out for (224 for DINO, 518 for DINOv2), ``layer_scale`` whether
        it is a DINOv2 file (LayerScale in its blocks).

    Raises:
        KeyError / ValueError: if the converted keys do not fit a ``DINOVisionTransformer`` of the
            architecture read from the file (the error names the keys).
    """
    raw = unwrap_dino_checkpoint(load_checkpoint_file(src), source=source)
    state_dict = convert_dino_to_mmpretrain(raw)
    info = infer_vit_arch(state_dict)
    if info['arch'] is None:
        raise ValueError(
            f'{src!r}: a ViT with {info["embed_dims"]} dims and {info["num_layers"]} '
            'blocks is none of the DINO models (ViT-S/16, ViT-S/8, ViT-B/16) nor of the DINOv2 models with an '
            'MLP (ViT-S/14, ViT-B/14, ViT-L/14).'
        )
    img_size = 224
    if info['num_patches']:
        img_size = int(round(info['num_patches'] ** 0.5)) * info['patch_size']
    with torch.device('meta'):  # only names and shapes are needed: allocate nothing
        model = DINOVisionTransformer(
            arch=info['arch'],
            patch_size=info['patch_size'],
            img_size=img_size,
            layer_scale_init_value=_LAYER_SCALE_INIT if info['layer_scale'] else 0.0,
        )
    model.check_state_dict(state_dict, src)  # raises naming missing/unexpected keys
    dst_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(state_dict, dst)
    return dict(
        num_in=len(raw),
        num_out=len(state_dict),
        arch=info['arch'],
        patch_size=info['patch_size'],
        img_size=img_size,
        layer_scale=info['layer_scale'],
    )


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    result = convert(args.src, args.dst, source=args.source)
    print(
        f'Read {result["num_in"]} backbone tensors from {args.src}; wrote {result["num_out"]} '
        f'tensors (arch={result["arch"]}, patch_size={result["patch_size"]}, no missing or '
        f'unexpected keys) to {args.dst}'
    )
    dinov2 = ''
    if result['layer_scale']:
        dinov2 = f"img_size={result['img_size']}, layer_scale_init_value={_LAYER_SCALE_INIT}, interpolate_offset=0.1, "
    print(
        f"Config: backbone=dict(type='DINOVisionTransformer', arch='{result['arch']}', "
        f"patch_size={result['patch_size']}, {dinov2}init_cfg=dict(type='Pretrained', "
        f"checkpoint='{args.dst}'))"
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
