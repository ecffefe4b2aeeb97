"""Export LoopTrans's egocentric inference path (image batch -> all-class heatmaps + image logits) to ONNX.

The exported graph is :class:`LoopTransExportWrapper` traced at one input size:

* input ``images``: ``uint8`` (B, 3, H, W), **BGR** channel order, pixel values 0-255 (what ``cv2.imread``
  gives, resized to H x W, transposed HWC -> CHW). The data preprocessor's steps (BGR -> RGB, ImageNet
  mean / std, from the model's own ``data_preprocessor``) are inside the graph, so a runtime needs no
  normalisation constants. H x W is fixed at export (the test pipeline's size by default); B is dynamic.
* output ``heatmaps``: ``float32`` (B, C, H, W), every affordance's heatmap at the input size, from the
  source ``heatmap`` names (``AffordanceSegmentor.decode_heatmaps``: ``'pixel'`` sigmoid probabilities,
  ``'pixel_logits'``, ``'cam'``, ``'fusion'``), exactly ``model.inference`` of the normalised batch.
* output ``logits``: ``float32`` (B, C), the shared CAM head's image-level logits (global average of the ego
  CAMs), ``model.cam_head.logits(model.cam_head(model.extract_feat(x), view='ego'))``.

The model's class names, the heatmap source, the input format and size are written into the ONNX file's
``metadata_props`` (:func:`export_metadata`), which :class:`looptrans.apis.onnx_backend.OnnxAffordanceModel`
reads back.

This module imports no ``onnx`` / ``onnxruntime`` at import time; :func:`export_onnx` needs ``onnx``
(``pip install -r requirements/optional.txt``).
"""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

#: Names of the graph's input and outputs.
INPUT_NAME = 'images'
OUTPUT_NAMES = ('heatmaps', 'logits')
#: What ``images`` holds (also in the metadata, key ``input_format``).
INPUT_FORMAT = 'uint8 BGR NCHW 0-255'
#: ONNX opset used unless asked otherwise (LayerNormalization is native from 17).
DEFAULT_OPSET = 17
#: Version of the metadata layout below; a runtime refuses files of another major version.
METADATA_VERSION = '1'


class LoopTransExportWrapper(nn.Module):
    """``uint8`` BGR images (B, 3, H, W) -> (heatmaps (B, C, H, W), logits (B, C)), traceable for ONNX.

    It works on a deep copy of ``model`` (the given model is not modified) and changes only what export
    needs, never what is computed:

    * a ViT backbone's position embedding is resized once, here, to the export grid (the same
      ``resize_pos_embed`` call the backbone makes on every forward at that size), so the graph holds the
      resized table as a constant instead of a bicubic resize of it;
    * the copy's ``test_cfg.heatmap`` is ``heatmap``;
    * normalisation is the model's ``data_preprocessor`` (``bgr_to_rgb``, ``mean``, ``std``), folded into the
      graph.

    The rest is the model's own inference, :meth:`~looptrans.models.segmentors.base.AffordanceSegmentor.
    inference_with_logits`: one backbone (and neck) pass, the CAM head once for the heatmaps and the logits.

    Args:
        model: a LoopTrans model (e.g. from :func:`looptrans.apis.init_model`), put in eval mode.
        input_size: (H, W) the graph is traced for.
        heatmap: heatmap source, one of ``looptrans.models.segmentors.base.HEATMAP_SOURCES``; None takes
            ``model.heatmap_source`` (the model's ``test_cfg.heatmap`` or its default).
    """

    def __init__(self, model: nn.Module, input_size: Tuple[int, int], heatmap: Optional[str] = None) -> None:
        super().__init__()
        height, width = (int(v) for v in input_size)
        if height < 1 or width < 1:
            raise ValueError(f'input_size must be two positive ints (H, W), got {input_size}')
        model = copy.deepcopy(model).cpu().eval()
        self.heatmap = model.heatmap_source if heatmap is None else heatmap
        model.check_heatmap_source(self.heatmap)
        model.test_cfg['heatmap'] = self.heatmap
        self.input_size = (height, width)
        pre = model.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, 'bgr_to_rgb', False))
        self.register_buffer('mean', pre.mean.detach().float().reshape(1, 3, 1, 1).clone(), persistent=False)
        self.register_buffer('std', pre.std.detach().float().reshape(1, 3, 1, 1).clone(), persistent=False)
        self.classes = tuple(getattr(model, 'dataset_meta', None) and model.dataset_meta.get('classes') or ())
        _fix_pos_embed(model.backbone, self.input_size)  # (a separate `descriptor` ViT is not used at test time)
        self.model = model

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    def normalize(self, images: Tensor) -> Tensor:
        """The data preprocessor's steps on a (B, 3, H, W) BGR batch: float, BGR -> RGB, (x - mean) / std."""
        x = images.float()
        if self.bgr_to_rgb:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != self.input_size:
            raise ValueError(
                f'expected images (B, 3, {self.input_size[0]}, {self.input_size[1]}), got {tuple(images.shape)}'
            )
        return self.model.inference_with_logits(self.normalize(images))


def _fix_pos_embed(backbone: nn.Module, input_size: Tuple[int, int]) -> None:
    """Resize a ViT's ``pos_embed`` to the patch grid of ``input_size`` in place (on the export copy).

    mmpretrain's ``VisionTransformer`` (and :class:`DINOVisionTransformer`) call ``resize_pos_embed(
    pos_embed, patch_resolution, grid)`` on each forward, a no-op when the grid equals ``patch_resolution``.
    Storing the resized table and the new ``patch_resolution`` gives the identical embedding.
    """
    if not (
        isinstance(getattr(backbone, 'pos_embed', None), Tensor)
        and hasattr(backbone, 'patch_resolution')
        and hasattr(backbone, 'patch_embed')
    ):
        return
    from mmpretrain.models.utils import resize_pos_embed

    param = next(backbone.parameters())
    with torch.no_grad():
        _, grid = backbone.patch_embed(torch.zeros(1, 3, *input_size, dtype=param.dtype, device=param.device))
        grid = tuple(int(v) for v in grid)
        if grid == tuple(backbone.patch_resolution):
            return
        resized = resize_pos_embed(
            backbone.pos_embed,
            backbone.patch_resolution,
            grid,
            mode=backbone.interpolate_mode,
            num_extra_tokens=backbone.num_extra_tokens,
        )
    backbone.pos_embed = nn.Parameter(resized.detach().clone(), requires_grad=False)
    backbone.patch_resolution = grid


@torch.no_grad()
def reference_outputs(model: nn.Module, images: Tensor, heatmap: Optional[str] = None) -> Tuple[Tensor, Tensor]:
    """The PyTorch outputs the exported graph must reproduce, computed the model's own way (not through the
    wrapper): ``data_preprocessor`` on the uint8 BGR batch, ``model.inference`` with ``test_cfg.heatmap`` set
    to ``heatmap``, and the CAM head's image logits."""
    data = model.data_preprocessor(dict(inputs=[img[None] for img in images], data_samples=None), False)
    x = data['inputs'][:, 0]
    saved = dict(model.test_cfg)
    try:
        if heatmap is not None:
            model.test_cfg['heatmap'] = heatmap
        heatmaps = model.inference(x)
    finally:
        model.test_cfg.clear()
        model.test_cfg.update(saved)
    logits = model.cam_head.logits(model.cam_head(model.extract_feat(x), view='ego'))
    return heatmaps, logits


def export_metadata(wrapper: LoopTransExportWrapper, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The ``metadata_props`` written into the ONNX file (every value a string; lists / numbers as JSON)."""
    meta = {
        'looptrans_metadata_version': METADATA_VERSION,
        'classes': json.dumps(list(wrapper.classes)),
        'heatmap_source': wrapper.heatmap,
        'input_name': INPUT_NAME,
        'output_names': json.dumps(list(OUTPUT_NAMES)),
        'input_format': INPUT_FORMAT,
        'input_size': json.dumps(list(wrapper.input_size)),
        'normalization': json.dumps(
            dict(
                bgr_to_rgb=wrapper.bgr_to_rgb, mean=wrapper.mean.flatten().tolist(), std=wrapper.std.flatten().tolist()
            )
        ),
    }
    try:
        from .. import __version__

        meta['looptrans_version'] = __version__
    except ImportError:  # pragma: no cover - only when the package is half-imported
        pass
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    return meta


def export_onnx(
    model: nn.Module,
    out_file: Union[str, os.PathLike],
    input_size: Tuple[int, int],
    heatmap: Optional[str] = None,
    opset: int = DEFAULT_OPSET,
    metadata: Optional[Dict[str, str]] = None,
) -> Dict[str, str]:
    """Export ``model``'s inference path to ``out_file`` (one self-contained .onnx file); returns the metadata.

    The graph is traced at batch 2 with a dynamic batch axis (``batch``) on the input and both outputs, checked
    with ``onnx.checker`` and written with the metadata of :func:`export_metadata` (plus ``metadata``).

    Raises:
        ImportError: ``onnx`` is not installed.
        ValueError: the model has no class list (``model.dataset_meta['classes']``) or it does not match the
            heads' number of classes; a bad ``heatmap`` source.
    """
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            'ONNX export needs the optional dependencies: pip install -r requirements/optional.txt'
        ) from err
    wrapper = LoopTransExportWrapper(model, input_size, heatmap).eval()
    if not wrapper.classes:
        raise ValueError(
            'the model has no class list (model.dataset_meta["classes"]); build it with looptrans.apis.init_model'
        )
    if len(wrapper.classes) != wrapper.num_classes:
        raise ValueError(
            f'the model has {wrapper.num_classes} output classes but its class list has '
            f'{len(wrapper.classes)}: {list(wrapper.classes)}'
        )
    out_file = os.fspath(out_file)
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    dummy = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, *wrapper.input_size), dtype=np.uint8))
    dynamic = {name: {0: 'batch'} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    tmp = out_file + '.tmp'
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter warns that it is deprecated in favour of dynamo=True (which needs the
            # extra onnxscript package), and about the shape checks it traces as constants (H, W are fixed by
            # design, the batch axis is dynamic)
            warnings.simplefilter('ignore', category=DeprecationWarning)
            warnings.simplefilter('ignore', category=FutureWarning)
            warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
            torch.onnx.export(
                wrapper,
                (dummy,),
                tmp,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=dynamic,
                opset_version=int(opset),
                do_constant_folding=True,
                dynamo=False,
            )
        proto = onnx.load(tmp)
        meta = export_metadata(wrapper, metadata)
        del proto.metadata_props[:]
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = 'looptrans'
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp)
        os.replace(tmp, out_file)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return meta


def max_abs_difference(
    model: nn.Module, onnx_model, images: np.ndarray, heatmap: Optional[str] = None
) -> Dict[str, float]:
    """Max abs difference of ``heatmaps`` and ``logits`` between an exported model (an
    :class:`~looptrans.apis.onnx_backend.OnnxAffordanceModel`) and the PyTorch model
    (:func:`reference_outputs`) on one uint8 BGR batch (B, 3, h, w)."""
    heatmaps, logits = onnx_model.forward(images)
    ref_heatmaps, ref_logits = reference_outputs(model, torch.from_numpy(images), heatmap or onnx_model.heatmap_source)
    if heatmaps.shape != tuple(ref_heatmaps.shape) or logits.shape != tuple(ref_logits.shape):
        raise ValueError(
            f'output shapes differ: onnxruntime {heatmaps.shape}, {logits.shape} vs PyTorch '
            f'{tuple(ref_heatmaps.shape)}, {tuple(ref_logits.shape)}'
        )
    return dict(
        heatmaps=float(np.abs(heatmaps - ref_heatmaps.cpu().numpy()).max()),
        logits=float(np.abs(logits - ref_logits.cpu().numpy()).max()),
    )


def throughput(fn, images, min_seconds: float = 1.0, min_iters: int = 3, warmup: int = 1) -> float:
    """Images per second of ``fn(images)`` (batch = ``len(images)``): ``warmup`` untimed calls, then calls
    until both ``min_iters`` calls and ``min_seconds`` have passed."""
    for _ in range(warmup):
        fn(images)
    iters, start = 0, time.perf_counter()
    while True:
        fn(images)
        iters += 1
        elapsed = time.perf_counter() - start
        if iters >= min_iters and elapsed >= min_seconds:
            return iters * len(images) / elapsed
