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
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

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


#: A pixel counts towards a map's saturation when its min-max normalised score is at least this.
SATURATION_LEVEL = 0.9
#: A map is reported as saturated when more than this share of its pixels reach :data:`SATURATION_LEVEL`.
SATURATED_SHARE = 0.5


@dataclass
class AffordanceRegion:
    """What a robot consumes from one heatmap, in the image's pixel coordinates.

    Attributes:
        peak: (x, y) of the heatmap's maximum (first one in row-major order on ties).
        peak_score: the heatmap's value there.
        threshold: the relative threshold of ``mask``: a pixel is in when its min-max normalised score is
            >= ``threshold`` (so 0.5 keeps what scores at least half-way between the map's min and max;
            relative, because the sources' scales differ: pixel-head probabilities, raw CAM scores).
        mask: bool (H, W) binary mask.
        bbox: (x_min, y_min, x_max, y_max) inclusive pixel bounds of the mask, or None for an empty mask.
        polygon: the largest external contour of the mask as [[x, y], ...] (OpenCV, simple chain).
        area: number of mask pixels.
        saturation: the share of pixels whose min-max normalised score is >= :data:`SATURATION_LEVEL` (1.0 for
            a constant map). A map that is high nearly everywhere localises nothing, whatever its box says.
    """

    peak: Tuple[int, int]
    peak_score: float
    threshold: float
    mask: np.ndarray
    bbox: Optional[Tuple[int, int, int, int]]
    polygon: List[List[int]]
    area: int
    saturation: float = 0.0

    @property
    def saturated(self) -> bool:
        """True when more than :data:`SATURATED_SHARE` of the map is near its maximum (no localisation)."""
        return self.saturation > SATURATED_SHARE

    def to_dict(self) -> dict:
        """JSON-ready fields (the mask is left out: it is the PNG the tools write)."""
        return dict(
            peak=list(self.peak),
            peak_score=self.peak_score,
            threshold=self.threshold,
            bbox=None if self.bbox is None else list(self.bbox),
            polygon=self.polygon,
            area=self.area,
            saturation=round(self.saturation, 4),
            saturated=self.saturated,
        )


def describe_heatmap(heat: np.ndarray, threshold: float = 0.5) -> AffordanceRegion:
    """Peak, binary mask (min-max normalised score >= ``threshold``), bounding box, largest contour and
    saturation of a float (H, W) heatmap.

    A constant map (a 1x1 image's, or one that is equal everywhere) scores every pixel at its maximum: its mask
    is the whole image, its peak (0, 0) lies inside it, and its saturation is 1 (it localises nothing).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f'threshold must be in (0, 1], got {threshold}')
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f'a heatmap must be a non-empty (H, W) array, got shape {heat.shape}')
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    low, high = float(heat.min()), float(heat.max())
    if high > low:
        scaled = (heat - low) / (high - low)
        mask = scaled >= threshold
        saturation = float((scaled >= SATURATION_LEVEL).mean())
    else:
        mask, saturation = np.ones(heat.shape, bool), 1.0
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else None
    polygon: List[List[int]] = []
    if len(xs):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        largest = max(contours, key=cv2.contourArea)
        polygon = largest.reshape(-1, 2).astype(int).tolist()
    return AffordanceRegion(
        peak=(int(x), int(y)),
        peak_score=float(heat[y, x]),
        threshold=float(threshold),
        mask=mask,
        bbox=bbox,
        polygon=polygon,
        area=int(mask.sum()),
        saturation=saturation,
    )


@dataclass
class AffordanceResult:
    """Heatmaps for one image.

    Attributes:
        heatmaps: affordance name -> float32 (H, W) map at the original image size (bilinear resize of the
            network-resolution map; the pixel head's probabilities or raw CAM scores).
        net_heatmaps: affordance name -> float32 (h, w) map at the network input size, exactly the model's
            output (what ``LoopTrans.predict`` writes as ``pred_heatmap``).
        regions: affordance name -> :class:`AffordanceRegion` of its heatmap (peak, mask, box, polygon).
        logits: every class -> the CAM head's image-level logit.
        probs: every class -> its probability (softmax of the logits): "what can I do with this object?".
        affordances: the names of ``heatmaps`` in order (by probability when chosen with ``top_k``).
        image_path: the input path, or None for arrays.
        ori_shape: (H, W) of the input image.
        warnings: what makes these numbers less than they look: a model trained on generated data (its
            heatmaps and probabilities mean nothing on photos), a saturated heatmap (no localisation).
    """

    heatmaps: Dict[str, np.ndarray] = field(default_factory=dict)
    net_heatmaps: Dict[str, np.ndarray] = field(default_factory=dict)
    regions: Dict[str, AffordanceRegion] = field(default_factory=dict)
    logits: Dict[str, float] = field(default_factory=dict)
    probs: Dict[str, float] = field(default_factory=dict)
    affordances: List[str] = field(default_factory=list)
    image_path: Optional[str] = None
    ori_shape: Tuple[int, int] = (0, 0)
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready summary: the image, its warnings, and per affordance its probability, logit and region."""
        return dict(
            image=self.image_path,
            height=self.ori_shape[0],
            width=self.ori_shape[1],
            warnings=list(self.warnings),
            affordances=[
                dict(name=name, prob=self.probs.get(name), logit=self.logits.get(name), **self.regions[name].to_dict())
                for name in self.affordances
            ],
        )


#: A backend's forward: uint8 BGR (B, 3, h, w) images at the input size -> (heatmaps (B, C, h, w), logits
#: (B, C)) as numpy float arrays.
ForwardFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


def resize_for_network(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """A BGR uint8 image resized to the network input (h, w) as the test pipeline does (PIL bilinear, as
    torchvision's ``Resize((224, 224))`` in the published code), channels first (3, h, w)."""
    height, width = size
    return mmcv.imresize(image, (width, height), backend='pillow').transpose(2, 0, 1)


def run_inference(
    forward: ForwardFn,
    classes: Sequence[str],
    input_size: Tuple[int, int],
    images: Union[ImageInput, Sequence[ImageInput]],
    affordances: Union[None, str, Sequence[str]] = None,
    batch_size: int = 8,
    top_k: Optional[int] = None,
    threshold: float = 0.5,
    model_warnings: Sequence[str] = (),
) -> Union[AffordanceResult, List[AffordanceResult]]:
    """The backend-independent part of :func:`inference_affordance`: load, resize, batch, and turn each
    image's maps and logits into an :class:`AffordanceResult`; ``model_warnings`` (e.g. "trained on
    generated data") go into every result's ``warnings``, followed by one per saturated heatmap."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
    if top_k is not None:
        if affordances is not None:
            raise ValueError('give either affordances (which ones) or top_k (the most probable ones), not both')
        if not isinstance(top_k, int) or not 1 <= top_k <= len(classes):
            raise ValueError(f'top_k must be an int in [1, {len(classes)}] (the number of classes), got {top_k!r}')
    single = isinstance(images, (str, os.PathLike, np.ndarray, Image.Image))
    try:
        items = [images] if single else list(images)
    except TypeError:
        raise TypeError(
            f'images must be a path (str / pathlib.Path), a PIL image, a numpy array or a list of '
            f'them, got {type(images).__name__}'
        ) from None
    classes = list(classes)
    asked = None if top_k is not None else resolve_classes(classes, affordances)
    results: List[AffordanceResult] = []
    for start in range(0, len(items), batch_size):
        loaded = [load_image(x) for x in items[start : start + batch_size]]
        maps, logits = forward(np.stack([resize_for_network(img, input_size) for img, _ in loaded]))
        for (img, path), per_image, per_logits in zip(loaded, maps, logits):
            per_logits = np.asarray(per_logits, np.float64)
            probs = np.exp(per_logits - per_logits.max())
            probs /= probs.sum()
            names = asked if asked is not None else [classes[i] for i in np.argsort(-probs, kind='stable')[:top_k]]
            h0, w0 = img.shape[:2]
            result = AffordanceResult(
                image_path=path,
                ori_shape=(h0, w0),
                affordances=list(names),
                logits=dict(zip(classes, per_logits.tolist())),
                probs=dict(zip(classes, probs.tolist())),
            )
            for name in names:
                heat = np.asarray(per_image[classes.index(name)], np.float32)
                result.net_heatmaps[name] = heat
                result.heatmaps[name] = cv2.resize(heat, (w0, h0), interpolation=cv2.INTER_LINEAR)
                result.regions[name] = region = describe_heatmap(result.heatmaps[name], threshold)
                if region.saturated:
                    result.warnings.append(
                        f'the {name!r} heatmap is saturated: {region.saturation:.0%} of its pixels score >= '
                        f'{SATURATION_LEVEL:g} of its range, so its peak, box and mask localise nothing'
                    )
            result.warnings[:0] = model_warnings
            results.append(result)
    return results[0] if single else results


def without_pretrained(model_cfg: dict) -> dict:
    """A copy of ``model_cfg`` whose backbone / descriptor do not load pretrained files (``init_cfg``
    dropped): for loading a full checkpoint, or for random-weight timing and tests."""
    model_cfg = copy.deepcopy(model_cfg)
    for key in ('backbone', 'descriptor'):
        if model_cfg.get(key):
            model_cfg[key].pop('init_cfg', None)
    return model_cfg


def init_model(
    config: Union[str, os.PathLike, Config],
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    device: str = 'cpu',
    cfg_options: Optional[dict] = None,
) -> torch.nn.Module:
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
    classes, ckpt = None, None
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        ckpt = load_checkpoint_strictly(model, checkpoint, map_location='cpu')
        classes = checkpoint_classes(ckpt)
        if classes is None:
            print_log(
                f'{checkpoint!r} records no class list (meta.dataset_meta.classes); using the config\'s '
                f'{list(config_classes)}.',
                logger='current',
                level=logging.WARNING,
            )
        else:
            check_class_lists(classes, config_classes, checkpoint, where)
    classes = tuple(classes or config_classes)
    check_head_classes(model, classes, f'the class list of {where}')
    model.dataset_meta = dict(classes=classes, generated_data=trained_on_generated_data(ckpt, cfg))
    for warning in model_warnings(model.dataset_meta):
        print_log(f'{checkpoint!r}: {warning}', logger='current', level=logging.WARNING)
    model.cfg = cfg
    return model.to(device).eval()


#: Where a training config that reads generated data shows it: the generated AGD20K dataset type, or the
#: ``custom_imports`` of ``looptrans.testing`` that every generated-data config has (also for OPRA / EPIC twins).
GENERATED_DATA_MARKERS = ('SyntheticAGD20KDataset', 'looptrans.testing')


def trained_on_generated_data(checkpoint: Optional[dict], cfg: Config) -> bool:
    """Whether the model was trained on the project's generated data.

    From the checkpoint's ``meta.dataset_meta.generated_data`` (the generated datasets set it), else from the
    training config the checkpoint carries (``meta.cfg``, which MMEngine writes), else, without either, from
    the given config (a foreign or converted checkpoint used with a generated-data config).
    """
    meta = (checkpoint or {}).get('meta') or {}
    dataset_meta = meta.get('dataset_meta') or {}
    if 'generated_data' in dataset_meta:
        return bool(dataset_meta['generated_data'])
    text = meta.get('cfg')
    if not isinstance(text, str):
        text = repr(cfg.get('train_dataloader')) + repr(cfg.get('custom_imports'))
    return any(marker in text for marker in GENERATED_DATA_MARKERS)


def _classes_from_config(cfg: Config) -> Sequence[str]:
    """The test dataset's classes (the folder datasets choose theirs per split); () when they come from data."""
    from ..datasets.classes import config_classes

    return config_classes(cfg.test_dataloader.dataset) or ()


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
        raise ValueError(
            f'an image array must be (H, W, 3) BGR, (H, W, 4) BGRA or (H, W) gray, got shape {image.shape}'
        )
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
                'For 0-255 values pass image.astype(np.uint8), or divide by 255.'
            )
        out = np.round(image * 255).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.integer):
        lo, hi = int(image.min()), int(image.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f'an integer image must have values in 0-255, this {image.dtype} one has '
                f'[{lo}, {hi}]; convert it to uint8 first (16-bit: image // 257).'
            )
        out = image.astype(np.uint8)
    else:
        raise ValueError(f'unsupported image dtype {image.dtype}; give uint8 BGR or float in [0, 1]')
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    elif out.shape[2] == 4:
        out = cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(out)


#: File suffixes the inference tools (``tools/infer.py``, ``tools/deployment``) read as images.
IMAGE_EXTENSIONS: Tuple[str, ...] = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def load_image(image: ImageInput, ignore_orientation: bool = True) -> Tuple[np.ndarray, Optional[str]]:
    """An input image as BGR uint8 (H, W, 3) and its path (None for arrays and PIL images).

    Paths (``str`` / ``pathlib.Path``) are decoded like the data pipeline (``mmcv.imfrombytes``, cv2; the
    EXIF orientation is ignored by default, as ``LoadAffordanceViews`` and the published PIL loading do, so
    that ``tools/infer.py`` and ``tools/test.py`` see the same pixels); PIL images are converted to RGB then
    BGR; arrays follow :func:`_array_to_bgr_uint8`.

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
        raise TypeError(
            f'an image must be a path (str / pathlib.Path), a PIL image or a numpy array, got {type(image).__name__}'
        )
    path = os.fspath(image)
    try:
        flag = 'color_ignore_orientation' if ignore_orientation else 'color'
        img = mmcv.imfrombytes(fileio.get(path), flag=flag, channel_order='bgr')
    except Exception as err:  # noqa: BLE001 - any read or decoder failure is reported with the path
        raise ValueError(f'cannot read image {path!r}: {err}') from err
    if img is None or img.size == 0:
        raise ValueError(f'cannot decode image {path!r} (corrupt or not an image)')
    return img, path


def resolve_classes(classes: Sequence[str], affordances: Union[None, str, Sequence[str]]) -> List[str]:
    """The asked affordance names (all when None or 'all'), validated against ``classes``."""
    classes = list(classes)
    if affordances is None or affordances == 'all':
        return classes
    names = [affordances] if isinstance(affordances, str) else list(affordances)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise ValueError(f'unknown affordance(s) {unknown}; this model knows: {", ".join(classes)}')
    return names


def resolve_affordances(model, affordances: Union[None, str, Sequence[str]]) -> List[str]:
    """The asked affordance names (all when None), validated against the model's classes."""
    return resolve_classes(model.dataset_meta['classes'], affordances)


def inference_affordance(
    model: torch.nn.Module,
    images: Union[ImageInput, Sequence[ImageInput]],
    affordances: Union[None, str, Sequence[str]] = None,
    batch_size: int = 8,
    top_k: Optional[int] = None,
    threshold: float = 0.5,
) -> Union[AffordanceResult, List[AffordanceResult]]:
    """Heatmaps of the asked affordances (all when None), or of each image's ``top_k`` most probable ones,
    for one image or a list of images.

    Images (paths, PIL images, BGR arrays: see :func:`load_image`) are resized to the test pipeline's input
    size (PIL bilinear, as the test pipeline) and run in batches of ``batch_size``; returns one
    :class:`AffordanceResult` per image (a single one for a single input), with every class's probability
    (softmax of the CAM head's image logits) and, per returned heatmap, its region (peak, mask at the relative
    ``threshold``, box, polygon: :func:`describe_heatmap`).
    """
    device = next(model.parameters()).device

    @torch.no_grad()
    def forward(batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        inputs = [torch.from_numpy(np.ascontiguousarray(img))[None] for img in batch]  # one ego view each
        data = model.data_preprocessor(dict(inputs=inputs, data_samples=None), False)
        maps, logits = model.inference_with_logits(data['inputs'].to(device))
        return maps.float().cpu().numpy(), logits.float().cpu().numpy()

    return run_inference(
        forward,
        model.dataset_meta['classes'],
        test_input_size(model.cfg),
        images,
        affordances,
        batch_size,
        top_k,
        threshold,
        model_warnings=model_warnings(model.dataset_meta),
    )


def model_warnings(dataset_meta: dict) -> List[str]:
    """What a model's ``dataset_meta`` says about the trust its outputs deserve on a user's images.

    A model trained on the project's generated data (``dataset_meta['generated_data']``, set by
    :func:`init_model` from the checkpoint) has learnt coloured shapes, not objects: on photos it still
    answers, confidently and wrongly.
    """
    if dataset_meta.get('generated_data'):
        return [
            'this model was trained on generated data (looptrans.testing); its probabilities and heatmaps '
            'carry no meaning on other images such as photos: train on AGD20K for real use'
        ]
    return []
