"""Inference on a user's own images: heatmaps of one, several or all affordances.

Example::

    from looptrans.apis import init_model, inference_affordance
    model = init_model('configs/looptrans_agd20k.py', 'work_dirs/looptrans_agd20k/epoch_15.pth')
    result = inference_affordance(model, 'mug.jpg', affordances=['hold', 'drink_with'])
    result.heatmaps['hold']  # float32 (H, W) at the image's size, the model's score per pixel

Images may be paths (``str`` or ``pathlib.Path``), PIL images, or numpy arrays in BGR order: ``uint8``, or
float in [0, 1] (scaled by 255); gray (H, W) and BGRA (H, W, 4) arrays are converted.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine import fileio
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image

from ..utils.class_lists import check_class_lists, check_head_classes, checkpoint_classes, load_checkpoint_strictly

ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image]


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


def init_model(config: Union[str, os.PathLike, Config], checkpoint: Optional[Union[str, os.PathLike]] = None,
               device: str = 'cpu', cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a model from a config, load a checkpoint (safe and strict loading) and put it in eval mode.

    The checkpoint must fit the model exactly (every weight, every shape: see
    :func:`looptrans.utils.class_lists.load_checkpoint_strictly`), and its class list
    (``meta.dataset_meta.classes``) must equal the config's (the test dataset's ``metainfo`` or the dataset
    class's defaults), names and order, so that ``tools/infer.py`` and ``tools/test.py`` agree on what each
    output channel is. A checkpoint without a class list takes the config's, with a warning.

    Raises:
        CheckpointMismatchError: the checkpoint's weights do not fit the config's model.
        ClassListMismatchError: the checkpoint's classes differ from the config's, or the heads' number of
            classes differs from the config's class list.
    """
    cfg = Config.fromfile(os.fspath(config)) if not isinstance(config, Config) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from .. import models  # noqa: F401  (registers the modules, also when `looptrans` is shadowed)
    # the checkpoint holds every weight: do not fetch the backbone's pretrained file as well
    model = MODELS.build(without_pretrained(cfg.model) if checkpoint is not None else cfg.model)
    config_classes = _classes_from_config(cfg)
    where = f'the config ({cfg.filename or "in memory"}, test dataset)'
    classes = None
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        ckpt = load_checkpoint_strictly(model, checkpoint, map_location='cpu')
        classes = checkpoint_classes(ckpt)
        if classes is None:
            print_log(f'{checkpoint!r} records no class list (meta.dataset_meta.classes); using the config\'s '
                      f'{list(config_classes)}.', logger='current', level='WARNING')
        else:
            check_class_lists(classes, config_classes, checkpoint, where)
    classes = tuple(classes or config_classes)
    check_head_classes(model, classes, f'the class list of {where}')
    model.dataset_meta = dict(classes=classes)
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


def _array_to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """A numpy image as BGR uint8 (H, W, 3): uint8 as is, float in [0, 1] scaled by 255, gray / BGRA converted.

    Anything else is refused with the reason: a float image outside [0, 1] (is it 0-255?), non-finite
    values, or integer values outside 0-255; a silent cast would feed the model a black or wrapped image.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f'an image array must be (H, W, 3) BGR, (H, W, 4) BGRA or (H, W) gray, got shape '
                         f'{image.shape}')
    if image.size == 0:
        raise ValueError(f'the image array is empty (shape {image.shape})')
    if image.dtype == np.uint8:
        out = image
    elif image.dtype == np.bool_:
        raise ValueError('a boolean array is a mask, not an image; give uint8 BGR or float in [0, 1]')
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError('the float image has NaN or infinite values')
        lo, hi = float(image.min()), float(image.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f'a float image must have values in [0, 1] (it is scaled by 255); this one has [{lo:g}, {hi:g}]. '
                'For 0-255 values pass image.astype(np.uint8), or divide by 255.')
        out = np.round(image * 255).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.integer):
        lo, hi = int(image.min()), int(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(f'an integer image must have values in 0-255, this {image.dtype} one has '
                             f'[{lo}, {hi}]; convert it to uint8 first (16-bit: image // 257).')
        out = image.astype(np.uint8)
    else:
        raise ValueError(f'unsupported image dtype {image.dtype}; give uint8 BGR or float in [0, 1]')
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    elif out.shape[2] == 4:
        out = cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(out)


def load_image(image: ImageInput) -> Tuple[np.ndarray, Optional[str]]:
    """An input image as BGR uint8 (H, W, 3) and its path (None for arrays and PIL images).

    Paths (``str`` / ``pathlib.Path``) are decoded like the training pipeline (``mmcv.imfrombytes``, cv2,
    EXIF orientation applied); PIL images are converted to RGB then BGR; arrays follow
    :func:`_array_to_bgr_uint8`.

    Raises:
        ValueError: the file cannot be read or decoded, or the array / object is not an image; the message
            names the path.
        TypeError: ``image`` is of another type.
    """
    if isinstance(image, np.ndarray):
        return _array_to_bgr_uint8(image), None
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert('RGB'))[..., ::-1]), None
    if isinstance(image, torch.Tensor):
        raise TypeError('give images as numpy arrays (BGR, H x W x 3), paths or PIL images, not tensors')
    if not isinstance(image, (str, os.PathLike)):
        raise TypeError(f'an image must be a path (str / pathlib.Path), a PIL image or a numpy array, got '
                        f'{type(image).__name__}')
    path = os.fspath(image)
    try:
        img = mmcv.imfrombytes(fileio.get(path), flag='color', channel_order='bgr')
    except Exception as err:  # noqa: BLE001 - any read or decoder failure is reported with the path
        raise ValueError(f'cannot read image {path!r}: {err}') from err
    if img is None or img.size == 0:
        raise ValueError(f'cannot decode image {path!r} (corrupt or not an image)')
    return img, path



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

    Images (paths, PIL images, BGR arrays: see :func:`load_image`) are resized to the test pipeline's input
    size and run in batches of ``batch_size``; returns one :class:`AffordanceResult` per image (a single one
    for a single input).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
    single = isinstance(images, (str, os.PathLike, np.ndarray, Image.Image))
    try:
        items = [images] if single else list(images)
    except TypeError:
        raise TypeError(f'images must be a path (str / pathlib.Path), a PIL image, a numpy array or a list of '
                        f'them, got {type(images).__name__}') from None
    names = resolve_affordances(model, affordances)
    classes = list(model.dataset_meta['classes'])
    index = [classes.index(n) for n in names]
    height, width = test_input_size(model.cfg)
    device = next(model.parameters()).device
    results: List[AffordanceResult] = []
    for start in range(0, len(items), batch_size):
        loaded = [load_image(x) for x in items[start:start + batch_size]]
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
