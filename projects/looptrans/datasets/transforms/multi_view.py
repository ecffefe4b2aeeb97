"""Apply an ordinary image pipeline to every view of a sample."""

from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_random_params
from mmengine.dataset import Compose
from mmseg.registry import TRANSFORMS

#: Keys of a per-view result that describe the view itself, not its geometry.
_PER_VIEW_INPUT_KEYS = ('img', 'ori_shape')


@TRANSFORMS.register_module()
class MultiViewTransform(BaseTransform):
    """Run an inner pipeline on each view (ego and every exo) separately.

    Each image gets its own small results dict ``{'img', 'img_shape',
    'ori_shape'}`` and its own pass through the inner pipeline. Inner
    transforms are built from the mmseg registry (which falls back to mmcv),
    so ``ResizeShortEdge``, ``Resize``, ``RandomFlip``, ``RandomResize``
    (mmcv) and ``RandomCrop`` (mmseg; it only touches ``seg_fields`` when they
    exist) all work on these image-only dicts.

    Random parameters are drawn

    * **per image** for the keys in ``views`` that are not in ``clip_views``:
      every exocentric image of AGD20K gets its own crop and flip, as the
      published torchvision pipeline (LOCATE / Cross-View-AG) transforms each
      image on its own;
    * **once per clip** for the keys in ``clip_views``: every frame of the
      list gets the same crop box and flip, as the group transforms of
      Interaction Hotspots (``GroupRandomCrop``, ``GroupRandomHorizontalFlip``)
      do for the frames of a video clip. The frames must have the same size.
      Sharing uses mmcv's :func:`~mmcv.transforms.utils.cache_random_params`,
      so it covers every transform whose random choices are made in methods
      decorated with ``@cache_randomness`` (mmcv ``RandomFlip``,
      ``RandomResize``, mmseg ``RandomCrop``, ...); a transform that draws
      elsewhere would still draw per frame.

    A single image (``results['img']``, the egocentric / static view) always
    has its own draw; Interaction Hotspots likewise transforms its inactive
    image with an independent ``default_transform``.

    The first view's per-pixel maps (``seg_fields``, e.g. ``gt_seg_map`` from
    :class:`LoadEgoPartMask`) go through the inner pipeline with it, so they
    get the same resize, crop and flip.

    Everything the inner pipeline records about the first view (by default the
    ego image ``img``: ``img_shape``, ``scale_factor``, ``flip``, ...) is
    written back to ``results``; ``ori_shape`` is kept as loaded.

    Args:
        transforms (Sequence[dict | Callable]): The inner pipeline.
        views (Sequence[str]): Result keys holding an image or a list of
            images. Missing keys are skipped (e.g. ``exo_imgs`` at test).
            Defaults to ``('img', 'exo_imgs')``.
        clip_views (Sequence[str]): Keys of ``views`` whose list of images is
            one clip that shares one draw of the random parameters. Defaults
            to ``()`` (every image draws its own, the AGD20K protocol); the
            OPRA / EPIC configs use ``('exo_imgs', )``.
    """

    def __init__(
        self,
        transforms: Sequence[Union[dict, Callable]],
        views: Sequence[str] = ('img', 'exo_imgs'),
        clip_views: Sequence[str] = (),
    ) -> None:
        if not views:
            raise ValueError('MultiViewTransform: `views` is empty.')
        if isinstance(views, str) or isinstance(clip_views, str):
            raise TypeError(
                'MultiViewTransform: `views` and `clip_views` are sequences '
                f"of keys, e.g. ('exo_imgs', ); got views={views!r}, "
                f'clip_views={clip_views!r}.'
            )
        unknown = [k for k in clip_views if k not in views]
        if unknown:
            raise ValueError(
                f'MultiViewTransform: clip_views {unknown} are not in views '
                f'{list(views)}; a clip must be one of the transformed views.'
            )
        built: List[Callable] = []
        for t in transforms:
            built.append(TRANSFORMS.build(t) if isinstance(t, dict) else t)
        self.pipeline = Compose(built)
        self.views = tuple(views)
        self.clip_views = tuple(clip_views)

    def _run(self, img: np.ndarray, key: str, seg: Optional[dict] = None) -> Optional[dict]:
        view = dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        if seg:  # maps of this view (``seg_fields``) move with it
            view.update(seg)
        out = self.pipeline(view)
        if out is not None and 'img' not in out:
            raise KeyError(f'MultiViewTransform: the inner pipeline dropped \'img\' while transforming view {key!r}.')
        return out

    @staticmethod
    def _seg_maps(results: dict) -> dict:
        """The per-pixel maps of the first view (``seg_fields``, e.g. the ego part mask of
        :class:`LoadEgoPartMask`) with their ``seg_fields`` list; empty when there are none."""
        fields = [k for k in results.get('seg_fields', []) if k in results]
        if not fields:
            return {}
        return dict({k: results[k] for k in fields}, seg_fields=list(fields))

    def _run_list(self, images: Sequence[np.ndarray], key: str) -> Optional[List[np.ndarray]]:
        out_imgs = []
        for img in images:
            out = self._run(img, key)
            if out is None:
                return None
            out_imgs.append(out['img'])
        return out_imgs

    def _run_clip(self, frames: Sequence[np.ndarray], key: str) -> Optional[List[np.ndarray]]:
        shapes = {tuple(f.shape) for f in frames}
        if len(shapes) > 1:
            raise ValueError(
                f'MultiViewTransform: the frames of clip {key!r} have '
                f'different shapes {sorted(shapes)}; one crop box cannot fit '
                f'them all. Remove {key!r} from clip_views to transform them '
                'independently.'
            )
        with cache_random_params(self.pipeline.transforms):
            return self._run_list(frames, key)

    def transform(self, results: dict) -> Optional[dict]:
        for n, key in enumerate(self.views):
            if key not in results:
                continue
            value = results[key]
            if isinstance(value, np.ndarray):
                out = self._run(value, key, self._seg_maps(results) if n == 0 else None)
                if out is None:
                    return None
                results[key] = out['img']
                if n == 0:
                    for k, v in out.items():
                        if k not in _PER_VIEW_INPUT_KEYS:
                            results[k] = v
            elif isinstance(value, (list, tuple)):
                run = self._run_clip if key in self.clip_views else self._run_list
                imgs = run(value, key) if len(value) else []
                if imgs is None:
                    return None
                results[key] = imgs
            else:
                raise TypeError(
                    f'MultiViewTransform: results[{key!r}] must be an image '
                    f'array or a list of them, got {type(value).__name__}.'
                )
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(views={self.views}, clip_views={self.clip_views}, transforms={self.pipeline})'
