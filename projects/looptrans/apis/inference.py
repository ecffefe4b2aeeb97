"""Inference on a user's own images: heatmaps of one, several or all affordances.

Example::

    from looptrans.apis import init_model, inference_affordance
    model = init_model('configs/looptrans_agd20k.py', 'work_dirs/looptrans_agd20k/epoch_15.pth')
    result = inference_affordance(model, 'mug.jpg', affordances=['hold', 'drink_with'])
    result.heatmaps['hold']  # float32 (H, W) at the image's size, the model's score per pixel
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine import fileio
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

ImageInput = Union[str, np.ndarray]


@dataclass
class AffordanceResult:
    """Heatmaps for one image.

    Attributes:
        heatmaps: affordance name -> float32 (H, W) map at the original image size (bilinear resize of the
            network-resolution map; the pixel head's probabilities or raw CAM scores).
        net_heatmaps: affordance name -> float32 (h, w) map at the network input size, exactly the model's
            output (what ``LoopTrans.predict`` writes as ``pred_heatmap``).
        image_path: the input path, or None for arrays.
        ori_shape: (H, W) of the input image.
    """

    heatmaps: Dict[str, np.ndarray] = field(default_factory=dict)
    net_heatmaps: Dict[str, np.ndarray] = field(default_factory=dict)
    image_path: Optional[str] = None
    ori_shape: Tuple[int, int] = (0, 0)


def without_pretrained(model_cfg: dict) -> dict:
    """A copy of ``model_cfg`` whose backbone / descriptor do not load pretrained files (``init_cfg``
    dropped): for loading a full checkpoint, or for random-weight timing and tests."""
    model_cfg = copy.deepcopy(model_cfg)
    for key in ('backbone', 'descriptor'):
        if model_cfg.get(key):
            model_cfg[key].pop('init_cfg', None)
    return model_cfg


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a model from a config, load a checkpoint (safe loading) and put it in eval mode.

    The class names come from the checkpoint's ``meta.dataset_meta`` when present, else from the config's
    test dataset ``metainfo`` or the dataset class's defaults.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import looptrans  # noqa: F401  (registers the modules)
    # the checkpoint holds every weight: do not fetch the backbone's pretrained file as well
    model = MODELS.build(without_pretrained(cfg.model) if checkpoint is not None else cfg.model)
    classes = None
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        classes = ckpt.get('meta', {}).get('dataset_meta', {}).get('classes')
    if classes is None:
        classes = _classes_from_config(cfg)
    model.dataset_meta = dict(classes=tuple(classes))
    model.cfg = cfg
    return model.to(device).eval()


def _classes_from_config(cfg: Config) -> Sequence[str]:
    dataset = cfg.test_dataloader.dataset
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return metainfo['classes']
    from mmseg.registry import DATASETS
    dataset_cls = DATASETS.get(dataset['type'])
    split = dataset.get('split')
    if hasattr(dataset_cls, 'classes_for_split') and split is not None:
        return dataset_cls.classes_for_split(split)
    return dataset_cls.METAINFO['classes']


def test_input_size(cfg: Config) -> Tuple[int, int]:
    """(H, W) the test pipeline resizes egocentric images to (its first ``Resize``), default 224x224."""

    def find(transforms: list) -> Optional[Tuple[int, int]]:
        for t in transforms:
            if t.get('type', '').split('.')[-1] == 'Resize' and 'scale' in t:
                w, h = t['scale'] if isinstance(t['scale'], (list, tuple)) else (t['scale'],) * 2
                return int(h), int(w)
            inner = t.get('transforms')
            if inner:
                found = find(inner)
                if found:
                    return found
        return None

    return find(cfg.test_dataloader.dataset.get('pipeline', [])) or (224, 224)


def _load(image: ImageInput) -> Tuple[np.ndarray, Optional[str]]:
    """BGR uint8 (H, W, 3) and the path (None for arrays)."""
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'an image array must be (H, W, 3) BGR or (H, W) gray, got {image.shape}')
        return np.ascontiguousarray(image.astype(np.uint8)), None
    try:
        img = mmcv.imfrombytes(fileio.get(image), flag='color', channel_order='bgr')
    except Exception as err:  # noqa: BLE001 - any decoder failure is reported with the path
        raise ValueError(f'cannot read image {image!r}: {err}') from err
    if img is None:
        raise ValueError(f'cannot decode image {image!r} (corrupt or not an image)')
    return img, image


def resolve_affordances(model: torch.nn.Module, affordances: Union[None, str, Sequence[str]]) -> List[str]:
    """The asked affordance names (all when None), validated against the model's classes."""
    classes = list(model.dataset_meta['classes'])
    if affordances is None or affordances == 'all':
        return classes
    names = [affordances] if isinstance(affordances, str) else list(affordances)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise ValueError(f'unknown affordance(s) {unknown}; this model knows: {", ".join(classes)}')
    return names


@torch.no_grad()
def inference_affordance(model: torch.nn.Module, images: Union[ImageInput, Sequence[ImageInput]],
                         affordances: Union[None, str, Sequence[str]] = None,
                         batch_size: int = 8) -> Union[AffordanceResult, List[AffordanceResult]]:
    """Heatmaps of the asked affordances (all when None) for one image or a list of images.

    Images (paths or BGR arrays) are resized to the test pipeline's input size and run in batches of
    ``batch_size``; returns one :class:`AffordanceResult` per image (a single one for a single input).
    """
    single = isinstance(images, (str, np.ndarray))
    items = [images] if single else list(images)
    names = resolve_affordances(model, affordances)
    classes = list(model.dataset_meta['classes'])
    index = [classes.index(n) for n in names]
    height, width = test_input_size(model.cfg)
    device = next(model.parameters()).device
    results: List[AffordanceResult] = []
    for start in range(0, len(items), batch_size):
        loaded = [_load(x) for x in items[start:start + batch_size]]
        batch = [torch.from_numpy(cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR))
                 .permute(2, 0, 1)[None] for img, _ in loaded]  # (1, 3, h, w) uint8: one ego view each
        data = model.data_preprocessor(dict(inputs=batch, data_samples=None), False)
        maps = model.inference(data['inputs'].to(device))[:, index].float().cpu().numpy()
        for (img, path), per_image in zip(loaded, maps):
            h0, w0 = img.shape[:2]
            result = AffordanceResult(image_path=path, ori_shape=(h0, w0))
            for name, heat in zip(names, per_image):
                result.net_heatmaps[name] = heat
                result.heatmaps[name] = cv2.resize(heat, (w0, h0), interpolation=cv2.INTER_LINEAR)
            results.append(result)
    return results[0] if single else results
