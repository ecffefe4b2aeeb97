"""Reading official DINO and DINOv2 ViT checkpoints and renaming them for mmpretrain.

The official DINO weights (https://github.com/facebookresearch/dino) use the timm parameter
layout (``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.N.{norm1,attn.qkv,attn.proj,
norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``). The official DINOv2 backbone weights
(https://github.com/facebookresearch/dinov2, e.g. ``dinov2_vits14_pretrain.pth``) use the same names plus
the LayerScale factors ``blocks.N.ls1.gamma`` / ``blocks.N.ls2.gamma`` and the training-only ``mask_token``.
:class:`~looptrans.models.backbones.DINOVisionTransformer` builds on
``mmpretrain.models.backbones.VisionTransformer``, whose parameters have other names.
This module holds the one place where that mapping lives (:func:`convert_dino_to_mmpretrain`), plus
the code that reads a checkpoint file (with the package's safe loader) and strips the wrappers the DINO
repository writes around its weights. Both the backbone's ``init_weights`` and
``tools/model_converters/dino2looptrans.py`` use it.
"""

import argparse
import io
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlparse

import torch
from mmengine.fileio import get as fileio_get
from mmengine.logging import print_log

from ...utils.checkpoint import UnsafeCheckpointError, safe_torch_load

__all__ = [
    'CheckpointKeyError',
    'convert_dino_to_mmpretrain',
    'convert_mmpretrain_to_dino',
    'unwrap_dino_checkpoint',
    'load_checkpoint_file',
    'load_dino_state_dict',
    'infer_vit_arch',
]

# timm / DINO name -> mmpretrain name, applied to each key once (anchored at the start).
# mmpretrain names match none of the patterns, so converting an mmpretrain state dict is a no-op.
_TIMM_TO_MMPRETRAIN: List[Tuple[re.Pattern, str]] = [
    (re.compile(r'^patch_embed\.proj\.'), 'patch_embed.projection.'),
    (re.compile(r'^blocks\.(\d+)\.norm1\.'), r'layers.\1.ln1.'),
    (re.compile(r'^blocks\.(\d+)\.norm2\.'), r'layers.\1.ln2.'),
    (re.compile(r'^blocks\.(\d+)\.attn\.qkv\.'), r'layers.\1.attn.qkv.'),
    (re.compile(r'^blocks\.(\d+)\.attn\.proj\.'), r'layers.\1.attn.proj.'),
    (re.compile(r'^blocks\.(\d+)\.mlp\.fc1\.'), r'layers.\1.ffn.layers.0.0.'),
    (re.compile(r'^blocks\.(\d+)\.mlp\.fc2\.'), r'layers.\1.ffn.layers.1.'),
    # DINOv2's LayerScale (x + ls1(attn(norm1(x))), x + ls2(mlp(norm2(x)))): mmpretrain's gamma1 / gamma2.
    (re.compile(r'^blocks\.(\d+)\.ls1\.gamma$'), r'layers.\1.attn.gamma1.weight'),
    (re.compile(r'^blocks\.(\d+)\.ls2\.gamma$'), r'layers.\1.ffn.gamma2.weight'),
    (re.compile(r'^norm\.'), 'ln1.'),
]


class CheckpointKeyError(KeyError):
    """Keys of a checkpoint do not fit the model. Prints its message as written (unlike KeyError,
    which shows the repr of its argument)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


_LAYER_ID = re.compile(r'^layers\.(\d+)\.')
# Wrappers written by the DINO repository (full checkpoints hold 'teacher' and 'student'; the
# released backbone weights are the teacher's), by MMEngine ('state_dict') and by others ('model').
_WRAPPER_KEYS = ('state_dict', 'model')
_DINO_WRAPPER_KEYS = ('teacher', 'student')
# Prefixes added by DistributedDataParallel and by the DINO/MMEngine model wrappers.
_STRIP_PREFIXES = ('module.',)
_BACKBONE_PREFIX = 'backbone.'
# A classification / DINO projection head is not part of the backbone; DINOv2's mask token only replaces
# masked patches during its self-supervised training (the released files keep it).
_HEAD_PREFIXES = ('head.', 'fc_norm.')
_TRAINING_ONLY_KEYS = ('mask_token',)


# The inverse: mmpretrain name -> timm / DINO name (anchored; each key renamed once).
_MMPRETRAIN_TO_TIMM: List[Tuple[re.Pattern, str]] = [
    (re.compile(r'^patch_embed\.projection\.'), 'patch_embed.proj.'),
    (re.compile(r'^layers\.(\d+)\.ln1\.'), r'blocks.\1.norm1.'),
    (re.compile(r'^layers\.(\d+)\.ln2\.'), r'blocks.\1.norm2.'),
    (re.compile(r'^layers\.(\d+)\.attn\.qkv\.'), r'blocks.\1.attn.qkv.'),
    (re.compile(r'^layers\.(\d+)\.attn\.proj\.'), r'blocks.\1.attn.proj.'),
    (re.compile(r'^layers\.(\d+)\.ffn\.layers\.0\.0\.'), r'blocks.\1.mlp.fc1.'),
    (re.compile(r'^layers\.(\d+)\.ffn\.layers\.1\.'), r'blocks.\1.mlp.fc2.'),
    (re.compile(r'^layers\.(\d+)\.attn\.gamma1\.weight$'), r'blocks.\1.ls1.gamma'),
    (re.compile(r'^layers\.(\d+)\.ffn\.gamma2\.weight$'), r'blocks.\1.ls2.gamma'),
    (re.compile(r'^ln1\.'), 'norm.'),
]


def convert_mmpretrain_to_dino(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, Any]':
    """Rename an mmpretrain ``VisionTransformer`` state dict to the official DINO (timm) layout: the inverse
    of :func:`convert_dino_to_mmpretrain`, so that weights trained here are saved as DINO releases them.

    Raises:
        ValueError: if a key is neither an mmpretrain ViT name nor ``cls_token`` / ``pos_embed`` (nothing
            would load it under the official names).
    """
    converted: 'OrderedDict[str, Any]' = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in _MMPRETRAIN_TO_TIMM:
            new_key, n = pattern.subn(repl, key, count=1)
            if n:
                break
        else:
            if key not in ('cls_token', 'pos_embed'):
                raise ValueError(
                    f'{key!r} is no parameter of an mmpretrain VisionTransformer; cannot name it as DINO does.'
                )
            new_key = key
        converted[new_key] = value
    return converted


def convert_dino_to_mmpretrain(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, Any]':
    """Rename a timm-layout (official DINO) ViT state dict to mmpretrain's names.

    Keys that match no timm pattern (already mmpretrain names, or foreign keys) are kept unchanged
    so that a strict load downstream can report them. Values are not copied.

    Args:
        state_dict: Parameter name -> tensor, without wrapper keys or ``module.`` prefixes (see
            :func:`unwrap_dino_checkpoint`).

    Returns:
        A new ordered dict with mmpretrain ``VisionTransformer`` parameter names.

    Raises:
        ValueError: if two input keys map to the same name, i.e. the dict mixes both layouts.
    """
    converted: 'OrderedDict[str, Any]' = OrderedDict()
    origin: Dict[str, str] = {}
    for key, value in state_dict.items():
        new_key = key
        for pattern, repl in _TIMM_TO_MMPRETRAIN:
            new_key, n = pattern.subn(repl, key, count=1)
            if n:
                break
        if new_key in converted:
            raise ValueError(
                f'Keys {origin[new_key]!r} and {key!r} both map to {new_key!r}: the state dict '
                'mixes the timm/DINO and mmpretrain layouts. Convert from the original DINO file.'
            )
        converted[new_key] = value
        origin[new_key] = key
    return converted


def unwrap_dino_checkpoint(checkpoint: Mapping[str, Any], source: str = 'teacher') -> 'OrderedDict[str, torch.Tensor]':
    """Extract the backbone state dict from a checkpoint object.

    Handles, in this order: ``state_dict`` / ``model`` wrappers; DINO full checkpoints with
    ``teacher`` and ``student`` entries (``source`` picks one); ``module.`` prefixes; a
    ``backbone.`` prefix (DINO full checkpoints, mmpretrain classifiers and mmseg segmentors keep
    the ViT under it: only those keys are kept); and classifier / projection head keys (``head.*``,
    ``fc_norm.*``) and DINOv2's training-only ``mask_token``, which are dropped with a log line giving
    their count.

    Args:
        checkpoint: The object returned by ``torch.load``.
        source: ``'teacher'`` (the released DINO weights) or ``'student'``; used only for DINO full
            checkpoints.

    Returns:
        Parameter name -> tensor for the ViT alone, names still in the layout they were saved in.
    """
    if source not in _DINO_WRAPPER_KEYS:
        raise ValueError(f'source must be one of {_DINO_WRAPPER_KEYS}, got {source!r}')
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'Expected a checkpoint dict, got {type(checkpoint).__name__}.')
    state = checkpoint
    for _ in range(3):  # wrappers can nest, e.g. {'teacher': {'state_dict': ...}}
        if source in state and isinstance(state[source], Mapping):
            state = state[source]
            continue
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if wrapper is None:
            break
        state = state[wrapper]

    tensors = OrderedDict()
    for key, value in state.items():
        for prefix in _STRIP_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        tensors[key] = value
    if any(k.startswith(_BACKBONE_PREFIX) for k in tensors):
        tensors = OrderedDict(
            (k[len(_BACKBONE_PREFIX) :], v) for k, v in tensors.items() if k.startswith(_BACKBONE_PREFIX)
        )
    head_keys = [k for k in tensors if k.startswith(_HEAD_PREFIXES) or k in _TRAINING_ONLY_KEYS]
    if head_keys:
        print_log(
            f'Ignoring {len(head_keys)} head / training-only parameters that are not part of the ViT '
            f'backbone ({", ".join(head_keys[:4])}{", ..." if len(head_keys) > 4 else ""}).',
            logger='current',
        )
        for k in head_keys:
            del tensors[k]
    return tensors


def load_checkpoint_file(path: str, backend_args: Optional[dict] = None) -> Any:
    """Read a checkpoint through the package's one safe loader
    (:func:`looptrans.utils.checkpoint.safe_torch_load`: ``weights_only=True``, plain tensors and
    containers only, broken files named).

    ``http(s)://`` addresses are downloaded into the torch hub cache once; other paths are read
    through ``mmengine.fileio.get`` so any MMEngine storage backend works. ``argparse.Namespace`` is
    allowed because DINO full checkpoints store their training arguments that way.
    """
    try:
        if path.startswith(('http://', 'https://')):
            source = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(path).path))
            if not osp.isfile(source):
                os.makedirs(osp.dirname(source), exist_ok=True)
                torch.hub.download_url_to_file(path, source, progress=False)
        else:
            source = io.BytesIO(fileio_get(path, backend_args=backend_args))
        with torch.serialization.safe_globals([argparse.Namespace]):
            return safe_torch_load(source, map_location='cpu', name=path)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'Checkpoint {path!r} not found. Download the official DINO weights (see '
            'tools/model_converters/dino2looptrans.py) or fix init_cfg.checkpoint.'
        ) from e
    except UnsafeCheckpointError as e:
        raise RuntimeError(
            f'Refusing to load {path!r}: it holds Python objects other than tensors, and it is '
            'read with torch.load(weights_only=True). Re-save only its state dict, e.g. '
            '`torch.save(torch.load(path, weights_only=False)["state_dict"], new_path)`, for a '
            f'file you trust. Original error: {e}'
        ) from e


def load_dino_state_dict(
    path: str, source: str = 'teacher', prefix: Optional[str] = None, backend_args: Optional[dict] = None
) -> 'OrderedDict[str, torch.Tensor]':
    """Read ``path`` and return the ViT state dict in mmpretrain names.

    Args:
        path: Local path, MMEngine backend path or http(s) URL.
        source: ``'teacher'`` or ``'student'`` for DINO full checkpoints.
        prefix: If given, keep only keys starting with it and strip it (as MMEngine's
            ``Pretrained`` init does), before the automatic unwrapping.
        backend_args: Passed to ``mmengine.fileio.get``.
    """
    checkpoint = load_checkpoint_file(path, backend_args=backend_args)
    if prefix:
        if not isinstance(checkpoint, Mapping):
            raise TypeError(f'{path!r} does not hold a dict; cannot select prefix {prefix!r}.')
        inner = checkpoint.get('state_dict', checkpoint)
        selected = {k[len(prefix) :]: v for k, v in inner.items() if k.startswith(prefix)}
        if not selected:
            raise CheckpointKeyError(f'No key of {path!r} starts with prefix {prefix!r}; fix init_cfg.prefix.')
        checkpoint = selected
    return convert_dino_to_mmpretrain(unwrap_dino_checkpoint(checkpoint, source=source))


def infer_vit_arch(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    """Read the architecture of an mmpretrain-named ViT state dict from its tensor shapes.

    Returns:
        ``dict(embed_dims, num_layers, patch_size, num_patches, layer_scale, arch)`` where
        ``layer_scale`` tells whether the blocks have LayerScale (DINOv2) and ``arch`` is the mmpretrain
        arch name (``'deit-small'``, ``'deit-base'``, ``'dinov2-small'``...) or ``None`` if none matches.

    Raises:
        KeyError: if the dict lacks ``patch_embed.projection.weight`` (not a ViT).
    """
    proj = 'patch_embed.projection.weight'
    if proj not in state_dict:
        raise CheckpointKeyError(f'{proj!r} not found (first keys: {list(state_dict)[:5]}): not a ViT state dict.')
    embed_dims, _, patch_h, _ = state_dict[proj].shape
    layer_ids = {int(m.group(1)) for m in map(_LAYER_ID.match, state_dict) if m}
    num_layers = max(layer_ids) + 1 if layer_ids else 0
    pos = state_dict.get('pos_embed')
    num_patches = pos.shape[1] - 1 if pos is not None else None
    layer_scale = 'layers.0.attn.gamma1.weight' in state_dict
    names = {(384, 12): 'deit-small', (768, 12): 'deit-base', (192, 12): 'deit-tiny', (1024, 24): 'large'}
    if layer_scale:  # mmpretrain names only DINOv2's ViT-S; its ViT-B / ViT-L sizes are 'deit-base' / 'large'
        names[(384, 12)] = 'dinov2-small'
    return dict(
        embed_dims=int(embed_dims),
        num_layers=num_layers,
        patch_size=int(patch_h),
        num_patches=num_patches,
        layer_scale=layer_scale,
        arch=names.get((int(embed_dims), num_layers)),
    )
