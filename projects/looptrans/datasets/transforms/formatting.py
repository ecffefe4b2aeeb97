"""Packing of the views and GT into the model's input format."""

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

DEFAULT_META_KEYS = (
    'img_path',
    'exo_paths',
    'gt_path',
    'ori_shape',
    'img_shape',
    'gt_label',
    'affordance',
    'object',
    'sample_idx',
    'scale_factor',
    'flip',
    'flip_direction',
    'gt_resized_to',
)


@TRANSFORMS.register_module()
class PackAffordanceInputs(BaseTransform):
    """Stack the views into one tensor and build the data sample.

    Output ``inputs``: tensor (V, 3, H, W) of the images' dtype (uint8 from
    :class:`LoadAffordanceViews`), BGR; view 0 is the egocentric image,
    views 1..V-1 the exocentric images in ``exo_paths`` order.

    Output ``data_samples``: :class:`mmseg.structures.SegDataSample` whose
    metainfo holds the ``meta_keys`` present in ``results``, plus
    ``gt_heatmap = PixelData(data=tensor (1, h0, w0))`` when ``results`` has
    ``gt_heatmap``. A floating-point map keeps its dtype (float64 from
    :class:`LoadAffordanceGT`: the published evaluation resizes the GT in
    float64, and float32 moves NSS); other dtypes become float64. With
    ``gt_seg_map`` (the ego view's true part mask, :class:`LoadEgoPartMask`)
    also ``gt_sem_seg = PixelData(data=tensor (1, H, W))`` at the input size.

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _to_chw(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            img = img[..., None]
        return np.ascontiguousarray(img.transpose(2, 0, 1))

    def _stack_views(self, results: dict) -> torch.Tensor:
        views = [results['img']] + list(results.get('exo_imgs') or [])
        shapes = [tuple(v.shape[:2]) for v in views]
        if len(set(shapes)) > 1:
            raise ValueError(
                'PackAffordanceInputs: all views must have the same size, got '
                f'ego {shapes[0]} and exo {shapes[1:]} for '
                f'{results.get("img_path")!r}. Add a MultiViewTransform with '
                "dict(type='Resize', scale=(W, H), keep_ratio=False) and/or "
                "dict(type='mmseg.RandomCrop', crop_size=(H, W)) before "
                'PackAffordanceInputs.'
            )
        channels = {v.shape[2] if v.ndim == 3 else 1 for v in views}
        if channels != {3}:
            raise ValueError(
                'PackAffordanceInputs: expected 3-channel images, got '
                f'{sorted(channels)} channel(s) for '
                f'{results.get("img_path")!r}; load them with '
                'LoadAffordanceViews.'
            )
        return torch.from_numpy(np.stack([self._to_chw(v) for v in views]))

    def transform(self, results: dict) -> dict:
        inputs = self._stack_views(results)
        data_sample = SegDataSample()
        if 'gt_heatmap' in results:
            heat = np.asarray(results['gt_heatmap'])
            if not np.issubdtype(heat.dtype, np.floating):
                heat = heat.astype(np.float64)
            if heat.ndim != 2:
                raise ValueError(
                    'PackAffordanceInputs: gt_heatmap must be '
                    f'(h, w), got shape {heat.shape} for '
                    f'{results.get("gt_path")!r}.'
                )
            data_sample.gt_heatmap = PixelData(data=torch.from_numpy(np.ascontiguousarray(heat[None])))
        if 'gt_seg_map' in results:  # the ego view's true part mask (LoadEgoPartMask), at the input size
            seg = np.asarray(results['gt_seg_map'])
            if seg.shape != tuple(inputs.shape[-2:]):
                raise ValueError(
                    f'PackAffordanceInputs: gt_seg_map is {seg.shape} but the views are {tuple(inputs.shape[-2:])} '
                    f'for {results.get("img_path")!r}; put the transform that loads it before MultiViewTransform, '
                    'which moves it with the egocentric image.'
                )
            data_sample.gt_sem_seg = PixelData(data=torch.from_numpy(np.ascontiguousarray(seg[None])))
        data_sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=inputs, data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
