"""The CAM projection's BatchNorm statistics re-estimated on one view's images ("precise BN").

A shared CAM projection run once per view in training (``joint_norm=False``, as the published LoopTrans code
calls its shared ``scam``) normalises each view with that view's own batch statistics, but its running
statistics average both views' batches. At test time the egocentric CAM is then normalised with a blend it never
saw in a training step, which moves its maximum off the object (docs/generated_benchmark.md, section 11). The
test map of the full model (the pixel decoder) skips the projection and is not affected; a CAM scored or read
directly (``model.test_cfg.heatmap='cam'``, the pointing game, pseudo-masks in eval mode) is.

Example::

    from looptrans.apis import init_model, reestimate_cam_norm_stats, view_training_images
    model = init_model('configs/looptrans_agd20k.py', 'work_dirs/looptrans_agd20k/epoch_15.pth')
    reestimate_cam_norm_stats(model, view_training_images('data/AGD20K', 'ego', split='Seen'), view='ego')

``tools/misc/reestimate_norm_stats.py`` does this and writes a checkpoint for ``tools/test.py``.
"""

from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

from ..datasets.folder_layout import EGOCENTRIC, EXOCENTRIC, flatten, scan_folder
from .images import IMAGE_EXTENSIONS, ImageInput, load_image
from .pipeline import InferencePipeline, InferencePipelineError

__all__ = ['VIEW_FOLDERS', 'norm_stats_state', 'reestimate_cam_norm_stats', 'view_training_images']

#: The training folder of each view, under ``<data_root>[/<split>]``.
VIEW_FOLDERS = {'exo': EXOCENTRIC, 'ego': EGOCENTRIC}


def _check_view(view: str) -> None:
    if view not in VIEW_FOLDERS:
        raise ValueError(f"view must be 'exo' or 'ego', got {view!r}")


def view_training_images(data_root: Union[str, os.PathLike], view: str, split: Optional[str] = None) -> List[str]:
    """Every training image of one view of an AGD20K-layout tree, sorted:
    ``<data_root>[/<split>]/trainset/{exocentric,egocentric}/<affordance>/<object>/<image>``.

    Raises:
        ValueError: ``view`` is neither 'exo' nor 'ego'.
        FileNotFoundError: the folder does not exist or holds no image at that depth; the message names it.
    """
    _check_view(view)
    root = osp.join(os.fspath(data_root), *([split] if split else []), *VIEW_FOLDERS[view])
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'no {view} training folder {root!r}: the tree must hold trainset/{VIEW_FOLDERS[view][1]}/'
            '<affordance>/<object>/<image> under the data root (and split); tools/misc/check_dataset.py checks a tree'
        )
    paths = sorted(flatten(scan_folder(root, IMAGE_EXTENSIONS).files))
    if not paths:
        raise FileNotFoundError(f'no {view} training images (<affordance>/<object>/<image>) under {root!r}')
    return paths


def _projection(model: torch.nn.Module, view: str) -> str:
    """The name of the projection ``view`` goes through in ``model.cam_head.projs``."""
    head = getattr(model, 'cam_head', None)
    if head is None or not hasattr(head, 'reestimate_norm_stats'):
        raise ValueError(
            f'this model ({type(model).__name__}) has no shared CAM head (cam_head with reestimate_norm_stats): '
            'only its projection has statistics to re-estimate'
        )
    return 'shared' if head.shared else view


def norm_stats_state(model: torch.nn.Module, view: str = 'ego') -> Dict[str, torch.Tensor]:
    """The running statistics (``running_mean``, ``running_var``, ``num_batches_tracked``) of the BatchNorm layers
    of the CAM projection ``view`` goes through, by their ``model.state_dict()`` key: what
    :func:`reestimate_cam_norm_stats` changes, and nothing else."""
    _check_view(view)
    projection = _projection(model, view)
    prefix = f'cam_head.projs.{projection}'
    state = {}
    for name, module in model.cam_head.projs[projection].named_modules():
        if isinstance(module, _BatchNorm):
            for buffer in ('running_mean', 'running_var', 'num_batches_tracked'):
                value = getattr(module, buffer, None)
                if value is not None:
                    state[f'{prefix}.{name}.{buffer}' if name else f'{prefix}.{buffer}'] = value
    return state


def _feature_batches(
    model: torch.nn.Module, pipeline: InferencePipeline, images: Sequence[ImageInput], batch_size: int
) -> Iterator:
    """The backbone's features of ``images`` in batches of ``batch_size``, each image taken as ``tools/test.py``
    takes a dataset image: the config's test pipeline, then the model's data preprocessor."""
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        samples = [pipeline(os.fspath(x) if isinstance(x, (str, os.PathLike)) else load_image(x)[0]) for x in batch]
        sizes = {tuple(s['inputs'].shape) for s in samples}
        if len(sizes) > 1:
            raise InferencePipelineError(
                f'the test pipeline gives these images different sizes {sorted(sizes)}: batch statistics need one '
                'size per batch; use a pipeline with a fixed Resize (keep_ratio=False), as the configs do'
            )
        data = model.data_preprocessor(
            dict(inputs=[s['inputs'] for s in samples], data_samples=[s['data_samples'] for s in samples]), False
        )
        inputs = data['inputs']
        yield model.extract_feat(inputs[:, 0] if inputs.dim() == 5 else inputs)


@torch.no_grad()
def reestimate_cam_norm_stats(
    model: torch.nn.Module, images: Sequence[ImageInput], view: str = 'ego', batch_size: int = 8
) -> int:
    """Re-estimate the running statistics of the BatchNorm layers of the CAM projection ``view`` goes through
    from ``images`` of that view (:meth:`SharedCAMHead.reestimate_norm_stats`: reset, then the cumulative
    average over the batches), every other weight and statistic unchanged; the model is left in eval mode.

    Each image is prepared as ``tools/test.py`` prepares a dataset image (the config's test pipeline, then the
    data preprocessor), in batches of ``batch_size``: the batch statistics, and so the estimate, depend on it
    (each batch contributes its unbiased variance; use the training batch size for a faithful estimate).
    Returns the number of BatchNorm layers re-estimated.

    Raises:
        ValueError: no images, a bad ``view`` or ``batch_size``, a model without a shared CAM head, a
            projection without BatchNorm, or an image that cannot be read (the message names it).
        Whatever is raised, the statistics are left as they were.
        InferencePipelineError: the model has no config (``model.cfg``) or its test pipeline cannot prepare
            the images.
    """
    _check_view(view)
    _projection(model, view)
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f'batch_size must be an integer >= 1, got {batch_size!r}')
    images = list(images)
    if not images:
        raise ValueError(f'no {view} images given to re-estimate the statistics on')
    cfg = getattr(model, 'cfg', None)
    if not isinstance(cfg, Config):
        raise InferencePipelineError(
            'the model has no config (model.cfg), whose test pipeline prepares the images: load it with '
            'looptrans.apis.init_model(config, checkpoint)'
        )
    model.eval()
    before = {k: v.clone() for k, v in norm_stats_state(model, view).items()}
    try:
        return model.cam_head.reestimate_norm_stats(
            _feature_batches(model, InferencePipeline(cfg), images, batch_size), view
        )
    except BaseException:
        state = norm_stats_state(model, view)
        for key, value in before.items():
            state[key].copy_(value)
        raise
