"""The config's test pipeline, run on a user's image: what ``tools/test.py`` does to a dataset image, done to
an image that comes without annotation files.

mmseg's ``inference_model`` builds the config's test pipeline, removes the annotation loading and, for
arrays, puts ``LoadImageFromNDArray`` in place of the image loading. :class:`InferencePipeline` does the same
with this project's test pipelines:

* the pipeline is ``test_dataloader.dataset.pipeline`` (the one ``tools/test.py`` runs), else
  ``test_pipeline``;
* its first step loads the image (``LoadAffordanceViews``): paths go through it as configured (decoder, EXIF
  orientation); arrays replace it with mmseg's ``LoadImageFromNDArray``;
* the steps that read a dataset's annotation files (:data:`ANNOTATION_STEPS`: GT heatmaps, part masks, mmseg's
  ``LoadAnnotations``) are left out;
* every other step (the resize, ..., ``PackAffordanceInputs``) runs as configured, so a model sees at
  inference exactly the pixels it sees in ``tools/test.py``.

A pipeline that cannot serve (missing, ill-formed, a step that cannot be built, a first step that does not
load the image, a step that needs what a user's image lacks, no packing at the end) raises
:class:`InferencePipelineError` naming the config key and the fix.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmseg.registry import TRANSFORMS

#: Where the test pipeline is read from, in order: what ``tools/test.py`` runs, then mmseg's usual name.
PIPELINE_KEYS = ('test_dataloader.dataset.pipeline', 'test_pipeline')
#: Steps that read a dataset's annotation files, which a user's image does not have: left out.
ANNOTATION_STEPS = ('LoadAffordanceGT', 'LoadEgoPartMask', 'LoadAnnotations')
#: Steps that load the image from ``img_path``; a test pipeline must begin with one.
IMAGE_LOADERS = ('LoadAffordanceViews', 'LoadImageFromFile')
#: What loads an array (already BGR uint8) in place of the config's image loader, as in mmseg.
ARRAY_LOADER = dict(type='mmseg.LoadImageFromNDArray')
#: The example a test pipeline's error messages show.
EXAMPLE_PIPELINE = (
    "[dict(type='LoadAffordanceViews'), dict(type='MultiViewTransform', transforms=[dict(type='Resize', "
    "scale=(224, 224), keep_ratio=False, backend='pillow')]), dict(type='PackAffordanceInputs')]"
)
#: The two image shapes (H, W) :meth:`InferencePipeline.input_size` runs through the pipeline.
PROBE_SHAPES = ((480, 640), (640, 480))


class InferencePipelineError(ValueError):
    """A config's test pipeline cannot prepare a user's image; the message names the key and the fix."""


def step_name(step: Union[dict, Callable]) -> str:
    """The class name of a pipeline step (a config dict, scope prefix dropped, or a built transform)."""
    if isinstance(step, dict):
        kind = step.get('type')
        return (kind if isinstance(kind, str) else getattr(kind, '__name__', repr(kind))).split('.')[-1]
    return type(step).__name__


def find_test_pipeline(cfg: Config) -> Tuple[str, List[dict]]:
    """``(key, steps)`` of the config's test pipeline: :data:`PIPELINE_KEYS` in order, the first one set.

    Raises:
        InferencePipelineError: neither key is set, or the value is not a list of dicts with a ``type``.
    """
    where = cfg.filename or 'the config (in memory)'
    for key in PIPELINE_KEYS:
        steps = cfg
        for part in key.split('.'):
            steps = steps.get(part) if hasattr(steps, 'get') else None
        if steps is None:
            continue
        if not isinstance(steps, (list, tuple)) or not steps:
            raise InferencePipelineError(
                f'{where}: {key} must be a non-empty list of transforms, got {steps!r}; e.g. {key} = {EXAMPLE_PIPELINE}'
            )
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or 'type' not in step:
                raise InferencePipelineError(
                    f'{where}: {key}[{i}] must be a dict with a `type` (a registered transform), got {step!r}'
                )
        return key, [dict(step) for step in steps]
    raise InferencePipelineError(
        f'{where} has no test pipeline: neither {" nor ".join(PIPELINE_KEYS)} is set. Inference runs the '
        f'pipeline tools/test.py runs; set test_dataloader.dataset.pipeline, e.g. {EXAMPLE_PIPELINE}'
    )


class InferencePipeline:
    """A config's test pipeline for a user's images: a path or a BGR uint8 array -> ``dict(inputs=(V, 3, h, w)
    uint8 tensor, data_samples=SegDataSample)``, what the test data loader gives the model for one sample.

    Args:
        cfg: the config (``model.cfg`` of :func:`looptrans.apis.init_model`); its steps are built from mmseg's
            transform registry (which falls back to mmcv's), whatever the default scope.

    Attributes:
        key: where the pipeline was read (one of :data:`PIPELINE_KEYS`).
        from_path: the built steps for a path (the config's loader first).
        from_array: the same steps for an array (``LoadImageFromNDArray`` first).

    Raises:
        InferencePipelineError: see the module's docstring.
    """

    def __init__(self, cfg: Config) -> None:
        from .. import datasets  # noqa: F401  (registers the project's transforms)

        self.key, steps = find_test_pipeline(cfg)
        self.where = f'{cfg.filename or "the config (in memory)"}: {self.key}'
        loader, rest = steps[0], [s for s in steps[1:] if step_name(s) not in ANNOTATION_STEPS]
        if step_name(loader) not in IMAGE_LOADERS:
            raise InferencePipelineError(
                f'{self.where} begins with {step_name(loader)}; a test pipeline must begin with the step that '
                f'loads the image ({" or ".join(IMAGE_LOADERS)}): inference runs it on paths and puts '
                f'LoadImageFromNDArray in its place for arrays. E.g. {EXAMPLE_PIPELINE}'
            )
        self.from_path = self._compose([loader, *rest])
        self.from_array = self._compose([ARRAY_LOADER, *rest])

    def _compose(self, steps: Sequence[dict]) -> Compose:
        try:
            return Compose([TRANSFORMS.build(step) for step in steps])
        except Exception as err:  # noqa: BLE001 - the registry's KeyError, a transform's TypeError / ValueError
            raise InferencePipelineError(
                f'{self.where} cannot be built: {type(err).__name__}: {err}. Check the step\'s type and '
                'arguments, or list the module that registers it in custom_imports.'
            ) from err

    def __call__(self, image: Union[str, os.PathLike, np.ndarray]) -> dict:
        """One sample, as the test data loader gives it: a path (read by the config's loader) or a BGR uint8
        (H, W, 3) array (see :func:`looptrans.apis.load_image` for other images).

        Raises:
            ValueError: the file cannot be read (the message names it).
            InferencePipelineError: a step needs what a user's image does not have, drops the image, or the
                pipeline does not end by packing the inputs.
        """
        if isinstance(image, np.ndarray):
            results = self._run(dict(img=image), self.from_array, None)
        else:
            path = os.fspath(image)
            results = self._run(dict(img_path=path), self.from_path, path)
        inputs = results.get('inputs')
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4 or inputs.shape[1] != 3:
            raise InferencePipelineError(
                f'{self.where} ends with {step_name(self.from_path.transforms[-1])}, which gives no `inputs` tensor '
                f'(V, 3, h, w); end it with PackAffordanceInputs, as in {EXAMPLE_PIPELINE}'
            )
        if 'ori_shape' not in results['data_samples']:
            raise InferencePipelineError(
                f"{self.where}: the data sample has no 'ori_shape' (the image's size, which the heatmaps are "
                "resized back to); keep 'ori_shape' in PackAffordanceInputs's meta_keys"
            )
        return results

    def _run(self, results: dict, pipeline: Compose, path: Any) -> dict:
        """``pipeline(results)``, one step at a time, so that an error names the step that failed."""
        for n, step in enumerate(pipeline.transforms):
            try:
                out = step(results)
            except OSError as err:  # the loader's BadFileError (missing, empty, cut short, not an image)
                if n == 0 and path is not None:
                    raise ValueError(f'cannot read image {path!r}: {err}') from err
                raise
            except KeyError as err:
                raise InferencePipelineError(
                    f'{self.where}: step {step_name(step)} needs {err} in its input, which a user\'s image does '
                    'not have (it comes with a dataset item); remove the step from the test pipeline, or make it '
                    'pass through items without that key'
                ) from err
            if out is None:
                raise InferencePipelineError(
                    f'{self.where}: step {step_name(step)} dropped the image (returned None); a test pipeline '
                    'must keep every image'
                )
            results = out
        return results

    def check(self) -> 'InferencePipeline':
        """Run a blank image through the pipeline, so that a tool refuses a pipeline that cannot serve when it
        starts, not at its first image; returns ``self``.

        Raises:
            InferencePipelineError: as :meth:`__call__`.
        """
        self(np.zeros((*PROBE_SHAPES[0], 3), np.uint8))
        return self

    def input_size(self) -> Tuple[int, int]:
        """(h, w) of the network input this pipeline makes of any image, e.g. the size of an ONNX export.

        Found by running two images of :data:`PROBE_SHAPES` through the pipeline, not by reading its steps.

        Raises:
            InferencePipelineError: the size depends on the image's (no fixed-size resize in the pipeline).
        """
        sizes = [tuple(self(np.zeros((*shape, 3), np.uint8))['inputs'].shape[-2:]) for shape in PROBE_SHAPES]
        if sizes[0] != sizes[1]:
            raise InferencePipelineError(
                f'{self.where} gives images of different sizes different input sizes ('
                + ', '.join(f'{w}x{h} -> {s[1]}x{s[0]}' for (h, w), s in zip(PROBE_SHAPES, sizes))
                + "), and a fixed one is needed here: resize to one size (dict(type='Resize', scale=(W, H), "
                "keep_ratio=False, backend='pillow') in its MultiViewTransform), or give the size explicitly "
                '(tools/deployment/pytorch2onnx.py --input-size H W)'
            )
        return int(sizes[0][0]), int(sizes[0][1])
