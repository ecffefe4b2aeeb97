"""Apply an ordinary image pipeline to every view of a sample independently."""
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose
from mmseg.registry import TRANSFORMS

#: Keys of a per-view result that describe the view itself, not its geometry.
_PER_VIEW_INPUT_KEYS = ('img', 'ori_shape')


@TRANSFORMS.register_module()
class MultiViewTransform(BaseTransform):
    """Run an inner pipeline on each view (ego and every exo) separately.

    Each image gets its own small results dict ``{'img', 'img_shape',
    'ori_shape'}`` and its own pass through the inner pipeline, so random
    transforms draw independently per view: every exocentric image gets its
    own crop and flip, as in the published torchvision pipeline. Inner
    transforms are built from the mmseg registry (which falls back to mmcv),
    so ``Resize``, ``RandomFlip``, ``RandomResize`` (mmcv) and
    ``RandomCrop`` (mmseg; it only touches ``seg_fields`` when they exist)
    all work on these image-only dicts.

    Everything the inner pipeline records about the first view (by default the
    ego image ``img``: ``img_shape``, ``scale_factor``, ``flip``, ...) is
    written back to ``results``; ``ori_shape`` is kept as loaded.

    Args:
        transforms (Sequence[dict | Callable]): The inner pipeline.
        views (Sequence[str]): Result keys holding an image or a list of
            images. Missing keys are skipped (e.g. ``exo_imgs`` at test).
            Defaults to ``('img', 'exo_imgs')``.
    """

    def __init__(self,
                 transforms: Sequence[Union[dict, Callable]],
                 views: Sequence[str] = ('img', 'exo_imgs')) -> None:
        if not views:
            raise ValueError('MultiViewTransform: `views` is empty.')
        built: List[Callable] = []
        for t in transforms:
            built.append(TRANSFORMS.build(t) if isinstance(t, dict) else t)
        self.pipeline = Compose(built)
        self.views = tuple(views)

    def _run(self, img: np.ndarray, key: str) -> Optional[dict]:
        out = self.pipeline(
            dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))
        if out is not None and 'img' not in out:
            raise KeyError(f'MultiViewTransform: the inner pipeline dropped '
                           f"'img' while transforming view {key!r}.")
        return out

    def transform(self, results: dict) -> Optional[dict]:
        for n, key in enumerate(self.views):
            if key not in results:
                continue
            value = results[key]
            if isinstance(value, np.ndarray):
                out = self._run(value, key)
                if out is None:
                    return None
                results[key] = out['img']
                if n == 0:
                    for k, v in out.items():
                        if k not in _PER_VIEW_INPUT_KEYS:
                            results[k] = v
            elif isinstance(value, (list, tuple)):
                imgs = []
                for img in value:
                    out = self._run(img, key)
                    if out is None:
                        return None
                    imgs.append(out['img'])
                results[key] = imgs
            else:
                raise TypeError(
                    f'MultiViewTransform: results[{key!r}] must be an image '
                    f'array or a list of them, got {type(value).__name__}.')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(views={self.views}, '
                f'transforms={self.pipeline})')
