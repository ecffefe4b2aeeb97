"""Backbones: DINO ViT with last-block attention keys, and the official-weights key mapping."""

from .dino_vit import DINOVisionTransformer
from .dino_weights import (
    CheckpointKeyError,
    convert_dino_to_mmpretrain,
    infer_vit_arch,
    load_checkpoint_file,
    load_dino_state_dict,
    unwrap_dino_checkpoint,
)

__all__ = [
    'DINOVisionTransformer',
    'CheckpointKeyError',
    'convert_dino_to_mmpretrain',
    'unwrap_dino_checkpoint',
    'load_checkpoint_file',
    'load_dino_state_dict',
    'infer_vit_arch',
]
