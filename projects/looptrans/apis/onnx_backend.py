"""Inference with an exported LoopTrans ONNX file on onnxruntime, the same way the PyTorch API does it.

Example::

    from looptrans.apis.onnx_backend import OnnxAffordanceModel
    model = OnnxAffordanceModel('looptrans.onnx')            # class names etc. from the file's metadata
    result = model.inference_affordance('mug.jpg', affordances=['hold'])
    result.heatmaps['hold']     # float32 (H, W) at the image's size, as looptrans.apis.inference_affordance
    result.logits['hold']       # the CAM head's image-level logit of 'hold'
    heatmaps, logits = model.forward(batch)  # raw graph: uint8 BGR (B, 3, h, w) -> (B, C, h, w), (B, C)

The file is one written by ``tools/deployment/pytorch2onnx.py`` (:func:`looptrans.apis.export.export_onnx`):
input ``images`` uint8 BGR (B, 3, h, w), normalisation inside the graph. ``onnxruntime`` is imported when a
model is created, not when this module is imported (``pip install -r requirements/optional.txt``).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .export import INPUT_FORMAT, INPUT_NAME, METADATA_VERSION, OUTPUT_NAMES
from .inference import AffordanceResult, ImageInput, resize_for_network, run_inference

#: Metadata keys a LoopTrans ONNX file must carry.
REQUIRED_METADATA = ('looptrans_metadata_version', 'classes', 'heatmap_source', 'input_format', 'input_size')


def check_config_classes(model: 'OnnxAffordanceModel', config, cfg_options: Optional[dict] = None) -> None:
    """Raise :class:`looptrans.utils.class_lists.ClassListMismatchError` unless the ONNX file's classes equal
    the config's (its test dataset's ``metainfo`` or the dataset class's defaults; names and order), the check
    :func:`looptrans.apis.init_model` makes for a checkpoint. ``config`` is a path or an MMEngine ``Config``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from .. import datasets  # noqa: F401  (registers the dataset classes whose default class lists are read)
    from ..utils.class_lists import check_class_lists
    from .inference import _classes_from_config

    cfg = config.copy() if isinstance(config, Config) else Config.fromfile(os.fspath(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    check_class_lists(
        model.classes,
        _classes_from_config(cfg),
        model.path,
        f'the config ({cfg.filename or "in memory"}, test dataset)',
    )


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            'the onnxruntime backend needs the optional dependencies: pip install -r requirements/optional.txt'
        ) from err
    return onnxruntime


class OnnxAffordanceModel:
    """An exported LoopTrans model on onnxruntime.

    Attributes mirror what the PyTorch API reads from a model: ``dataset_meta['classes']`` (so
    :func:`looptrans.apis.resolve_affordances` accepts it), ``classes``, ``num_classes``, ``heatmap_source``,
    ``input_size`` (h, w), and ``metadata`` (every ``metadata_props`` entry, strings).

    Args:
        path: the .onnx file.
        providers: onnxruntime execution providers; default CPU.
        num_threads: intra-op threads (default: onnxruntime's choice, all cores).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a LoopTrans export (metadata or graph inputs / outputs missing or
            unexpected).
        ImportError: onnxruntime is not installed.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        providers: Optional[Sequence[str]] = None,
        num_threads: Optional[int] = None,
    ) -> None:
        ort = _import_onnxruntime()
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f'no ONNX file {self.path!r}')
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        try:
            self.session = ort.InferenceSession(
                self.path, sess_options=options, providers=list(providers or ['CPUExecutionProvider'])
            )
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ValueError(f'onnxruntime cannot load {self.path!r}: {err}') from err
        self.metadata: Dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in self.metadata]
        if missing:
            raise ValueError(
                f'{self.path!r} is not a LoopTrans ONNX export: its metadata lacks {missing} '
                '(export with tools/deployment/pytorch2onnx.py)'
            )
        version = self.metadata['looptrans_metadata_version']
        if version.split('.')[0] != METADATA_VERSION.split('.')[0]:
            raise ValueError(
                f'{self.path!r} has LoopTrans metadata version {version}; this code reads '
                f'version {METADATA_VERSION}. Re-export it with this version.'
            )
        if self.metadata['input_format'] != INPUT_FORMAT:
            raise ValueError(
                f'{self.path!r} takes {self.metadata["input_format"]!r} input; this code feeds {INPUT_FORMAT!r}'
            )
        self.classes: Tuple[str, ...] = tuple(json.loads(self.metadata['classes']))
        self.dataset_meta = dict(classes=self.classes)
        self.heatmap_source: str = self.metadata['heatmap_source']
        height, width = json.loads(self.metadata['input_size'])
        self.input_size: Tuple[int, int] = (int(height), int(width))
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or outputs != list(OUTPUT_NAMES):
            raise ValueError(
                f'{self.path!r} has inputs {inputs} and outputs {outputs}; a LoopTrans export has '
                f'[{INPUT_NAME!r}] and {list(OUTPUT_NAMES)}'
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}({self.path!r}, {self.num_classes} classes, heatmap={self.heatmap_source!r}, '
            f'input {self.input_size[0]}x{self.input_size[1]}, providers={self.session.get_providers()})'
        )

    def forward(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Run the graph on a batch: uint8 BGR (B, 3, h, w) at ``input_size`` -> heatmaps float32 (B, C, h, w)
        and image logits float32 (B, C).

        Raises:
            ValueError: another shape (not 4-D, not 3 channels, another h x w than the export's, empty batch)
                or another dtype than uint8; the message says what is expected.
        """
        if not isinstance(images, np.ndarray):
            raise TypeError(
                f'images must be a numpy array, uint8 BGR (B, 3, {self.input_size[0]}, '
                f'{self.input_size[1]}), got {type(images).__name__}'
            )
        expected = f'uint8 BGR (B, 3, {self.input_size[0]}, {self.input_size[1]})'
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != self.input_size:
            hint = ''
            if images.ndim == 4 and images.shape[-1] in (3, 4) and images.shape[1] not in (3, 4):
                hint = ' (channels last? transpose to (B, 3, h, w))'
            elif images.ndim == 4 and images.shape[1] != 3:
                hint = f' ({images.shape[1]} channels: give BGR images, 3 channels)'
            elif images.ndim == 4:
                hint = f' (resize the images to {self.input_size[1]}x{self.input_size[0]}, w x h, first)'
            raise ValueError(f'{self.path!r} takes {expected}, got shape {images.shape}{hint}')
        if images.shape[0] == 0:
            raise ValueError(f'{self.path!r}: empty batch (shape {images.shape})')
        if images.dtype != np.uint8:
            raise ValueError(
                f'{self.path!r} takes {expected}, got dtype {images.dtype}; give the 0-255 pixel '
                'values as uint8 (normalisation is inside the graph)'
            )
        heatmaps, logits = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(images)})
        return heatmaps, logits

    __call__ = forward

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 (H, W, 3) images -> the graph's input (B, 3, h, w): the resize of
        :func:`looptrans.apis.inference_affordance` (PIL bilinear to ``input_size``), channels first."""
        return np.stack([resize_for_network(img, self.input_size) for img in images])

    def inference_affordance(
        self,
        images: Union[ImageInput, Sequence[ImageInput]],
        affordances: Union[None, str, Sequence[str]] = None,
        batch_size: int = 8,
        top_k: Optional[int] = None,
        threshold: float = 0.5,
    ) -> Union[AffordanceResult, List[AffordanceResult]]:
        """:func:`looptrans.apis.inference_affordance` on onnxruntime: same inputs (paths, PIL images, BGR
        arrays), same resizing, same :class:`AffordanceResult` (heatmaps, regions, logits, probabilities,
        ``top_k``), through the same code (:func:`looptrans.apis.inference.run_inference`)."""
        return run_inference(
            self.forward, self.classes, self.input_size, images, affordances, batch_size, top_k, threshold
        )
