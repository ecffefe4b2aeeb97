"""Inference on a user's own images: heatmaps of one, several or all affordances.

Example::

    from looptrans.apis import init_model, inference_affordance
    model = init_model('configs/looptrans_agd20k.py', 'work_dirs/looptrans_agd20k/epoch_15.pth')
    result = inference_affordance(model, 'mug.jpg', affordances=['hold', 'drink_with'])
    result.heatmaps['hold']  # float32 (H, W) at the image's size, the model's score per pixel

Images may be paths (``str`` or ``pathlib.Path``), PIL images, or numpy arrays in BGR order: ``uint8``, or
float in [0, 1] (scaled by 255); gray (H, W) and BGRA (H, W, 4) arrays are converted (:mod:`.images`). Each
goes through the config's own test pipeline (:mod:`.pipeline`), as in mmseg's ``inference_model``, so that
inference and ``tools/test.py`` give the model the same pixels; the results are :mod:`.results`.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image

from ..utils.class_lists import check_class_lists, check_head_classes, checkpoint_classes, load_checkpoint_strictly
from .images import IMAGE_EXTENSIONS, ImageInput, load_image
from .pipeline import InferencePipeline, InferencePipelineError
from .results import SATURATED_SHARE, SATURATION_LEVEL, AffordanceRegion, AffordanceResult, describe_heatmap

__all__ = [
    'AffordanceRegion',
    'AffordanceResult',
    'IMAGE_EXTENSIONS',
    'ImageInput',
    'InferencePipelineError',
    'SATURATED_SHARE',
    'SATURATION_LEVEL',
    'describe_heatmap',
    'forward_samples',
    'inference_affordance',
    'init_model',
    'load_image',
    'model_warnings',
    'resize_for_network',
    'resolve_affordances',
    'resolve_classes',
    'run_inference',
    'test_input_size',
    'trained_on_generated_data',
    'without_pretrained',
]


#: A backend's forward: uint8 BGR (B, 3, h, w) images at the input size -> (heatmaps (B, C, h, w), logits
#: (B, C)) as numpy float arrays.
ForwardFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]
#: One image's network outputs: (its path or None, its (H, W), heatmaps (C, h, w), logits (C,)).
ImageOutputs = Tuple[Optional[str], Tuple[int, int], np.ndarray, np.ndarray]


def resize_for_network(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """A BGR uint8 image resized to a fixed network input (h, w), channels first (3, h, w): PIL bilinear, the
    pixels of the configs' test ``Resize(scale=(w, h), keep_ratio=False, backend='pillow')``.

    For backends that carry an input size but no config (an ONNX export records the size its config's test
    pipeline gave); :func:`inference_affordance` runs the config's own test pipeline instead.
    """
    height, width = size
    return mmcv.imresize(image, (width, height), backend='pillow').transpose(2, 0, 1)


def _as_list(images: Union[ImageInput, Sequence[ImageInput]]) -> Tuple[list, bool]:
    """``(the images as a list, whether one image was given)``."""
    if isinstance(images, (str, os.PathLike, np.ndarray, Image.Image)):
        return [images], True
    try:
        return list(images), False
    except TypeError:
        raise TypeError(
            f'images must be a path (str / pathlib.Path), a PIL image, a numpy array or a list of '
            f'them, got {type(images).__name__}'
        ) from None


def _infer(
    run_batch: Callable[[list], List[ImageOutputs]],
    classes: Sequence[str],
    images: Union[ImageInput, Sequence[ImageInput]],
    affordances: Union[None, str, Sequence[str]],
    batch_size: int,
    top_k: Optional[int],
    threshold: float,
    model_warnings: Sequence[str],
) -> Union[AffordanceResult, List[AffordanceResult]]:
    """What every backend shares: check the request, run ``run_batch`` on batches of ``batch_size`` images,
    and turn each image's maps and logits into an :class:`AffordanceResult`."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
    if top_k is not None:
        if affordances is not None:
            raise ValueError('give either affordances (which ones) or top_k (the most probable ones), not both')
        if not isinstance(top_k, int) or not 1 <= top_k <= len(classes):
            raise ValueError(f'top_k must be an int in [1, {len(classes)}] (the number of classes), got {top_k!r}')
    items, single = _as_list(images)
    classes = list(classes)
    asked = None if top_k is not None else resolve_classes(classes, affordances)
    results: List[AffordanceResult] = []
    for start in range(0, len(items), batch_size):
        for outputs in run_batch(items[start : start + batch_size]):
            results.append(_result(outputs, classes, asked, top_k, threshold, model_warnings))
    return results[0] if single else results


def _result(
    outputs: ImageOutputs,
    classes: List[str],
    asked: Optional[List[str]],
    top_k: Optional[int],
    threshold: float,
    model_warnings: Sequence[str],
) -> AffordanceResult:
    """One image's :class:`AffordanceResult`: probabilities (softmax of the logits), and for the ``asked``
    affordances (else the ``top_k`` most probable) the heatmap at the image's size, its region, and a warning
    when it is saturated, after ``model_warnings``."""
    path, (h0, w0), maps, logits = outputs
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    names = asked if asked is not None else [classes[i] for i in np.argsort(-probs, kind='stable')[:top_k]]
    result = AffordanceResult(
        image_path=path,
        ori_shape=(h0, w0),
        affordances=list(names),
        logits=dict(zip(classes, logits.tolist())),
        probs=dict(zip(classes, probs.tolist())),
        warnings=list(model_warnings),
    )
    for name in names:
        heat = np.asarray(maps[classes.index(name)], np.float32)
        result.net_heatmaps[name] = heat
        result.heatmaps[name] = cv2.resize(heat, (w0, h0), interpolation=cv2.INTER_LINEAR)
        result.regions[name] = region = describe_heatmap(result.heatmaps[name], threshold)
        if region.saturated:
            result.warnings.append(
                f'the {name!r} heatmap is saturated: {region.saturation:.0%} of its pixels score >= '
                f'{SATURATION_LEVEL:g} of its range, so its peak, box and mask localise nothing'
            )
    return result


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
    """:func:`inference_affordance` for a backend with a fixed input size and no config (an ONNX export):
    images read by :func:`load_image`, resized by :func:`resize_for_network`, run through ``forward`` in
    batches; ``model_warnings`` (e.g. "trained on generated data") go into every result's ``warnings``,
    followed by one per saturated heatmap."""

    def run_batch(batch: list) -> List[ImageOutputs]:
        loaded = [load_image(x) for x in batch]
        maps, logits = forward(np.stack([resize_for_network(img, input_size) for img, _ in loaded]))
        return [(path, img.shape[:2], m, lg) for (img, path), m, lg in zip(loaded, maps, logits)]

    return _infer(run_batch, classes, images, affordances, batch_size, top_k, threshold, model_warnings)


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
    """(H, W) the config's test pipeline gives every image (:meth:`InferencePipeline.input_size`): the input
    size of an ONNX export.

    Raises:
        InferencePipelineError: the config has no usable test pipeline, or it gives no fixed size.
    """
    return InferencePipeline(cfg).input_size()


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

    Each image goes the way ``tools/test.py`` takes a dataset image: through the config's test pipeline
    (:class:`~looptrans.apis.pipeline.InferencePipeline`: paths read by its loader, arrays and PIL images
    converted by :func:`load_image` and loaded as arrays, annotation loading left out), then the model's data
    preprocessor and forward, in batches of ``batch_size``. Returns one :class:`AffordanceResult` per image
    (a single one for a single input), with every class's probability (softmax of the CAM head's image
    logits) and, per returned heatmap, its region (peak, mask at the relative ``threshold``, box, polygon:
    :func:`describe_heatmap`).

    Raises:
        InferencePipelineError: the model has no config (``model.cfg``, which :func:`init_model` sets), or its
            test pipeline cannot prepare a user's image; the message names the key and the fix.
        ValueError / TypeError: an image that cannot be read or used, or an invalid request.
    """
    cfg = getattr(model, 'cfg', None)
    if not isinstance(cfg, Config):
        raise InferencePipelineError(
            'the model has no config (model.cfg), whose test pipeline prepares the images: load it with '
            'looptrans.apis.init_model(config, checkpoint), or set model.cfg = Config.fromfile(config)'
        )
    pipeline = InferencePipeline(cfg)

    def run_batch(batch: list) -> List[ImageOutputs]:
        paths = [os.fspath(x) if isinstance(x, (str, os.PathLike)) else None for x in batch]
        samples = [pipeline(x if p is not None else load_image(x)[0]) for x, p in zip(batch, paths)]
        outputs = forward_samples(model, samples)
        return [
            (path, tuple(sample['data_samples'].ori_shape), maps, logits)
            for path, sample, (maps, logits) in zip(paths, samples, outputs)
        ]

    return _infer(
        run_batch,
        model.dataset_meta['classes'],
        images,
        affordances,
        batch_size,
        top_k,
        threshold,
        model_warnings=model_warnings(model.dataset_meta),
    )


@torch.no_grad()
def forward_samples(model: torch.nn.Module, samples: Sequence[dict]) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Heatmaps (C, h, w) at the input size and CAM logits (C,) of each packed sample (``dict(inputs,
    data_samples)``, what the test pipeline gives): the model's data preprocessor, then its
    ``inference_with_logits`` (the heatmaps of ``predict``, with the image logits from the same pass). Samples
    of one input size run as one batch (a pipeline that keeps the aspect ratio gives several sizes)."""
    groups: Dict[tuple, List[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(tuple(sample['inputs'].shape), []).append(i)
    outputs: List[Tuple[np.ndarray, np.ndarray]] = [None] * len(samples)  # type: ignore[list-item]
    for members in groups.values():
        batch = dict(
            inputs=[samples[i]['inputs'] for i in members], data_samples=[samples[i]['data_samples'] for i in members]
        )
        data = model.data_preprocessor(batch, False)
        maps, logits = model.inference_with_logits(data['inputs'])
        maps, logits = maps.float().cpu().numpy(), logits.float().cpu().numpy()
        for j, i in enumerate(members):
            outputs[i] = (maps[j], logits[j])
    return outputs


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
