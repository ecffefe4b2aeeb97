"""PseudoMaskHook: when pixel supervision starts, and pictures of the pseudo-masks for inspection."""

from __future__ import annotations

import os.path as osp
from typing import Any, Mapping, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ...models.part_discovery import PartDiscoveryResult
from ...visualization import colour_overlay, normalize_heatmap, put_caption


@HOOKS.register_module()
class PseudoMaskHook(Hook):
    """Controls pixel-level pseudo-mask supervision of :class:`LoopTrans` and dumps pseudo-mask pictures.

    The model is a :class:`LoopTrans` (any model with a ``pixel_supervision`` flag and, for the pictures, a
    ``last_part_discovery`` :class:`~looptrans.models.part_discovery.PartDiscoveryResult` with its ``cam``).

    Pseudo-masks come from part discovery on the egocentric CAM, so they are meaningless until the CAM has
    learnt something: pixel supervision, and with it the denoising distillation (whose teacher is the pixel
    head's localisation), is off before ``start_iter`` and on from then. The masks are recomputed on every
    training step from the current CAM (batched on the model's device, a few milliseconds), so they always
    follow the CAM.

    Args:
        start_iter: first (0-based) training iteration with pixel supervision. 0 = from the start.
        start_epoch: alternatively, the first (0-based) epoch with pixel supervision (epoch-based loops);
            when both are given, supervision starts once either is reached.
        dump_interval: every how many iterations to draw a picture of the batch's pseudo-masks
            (0 = never). Each picture goes to the runner's visualizer (``add_image('pseudo_masks', ...)``,
            so every vis backend receives it: local files, TensorBoard, W&B) and, with ``dump_dir``, to
            ``<work_dir>/<dump_dir>/iter_<N>.png``. A picture has a legend band on top, then
            one row per sample: the ego image captioned with its affordance / object, its CAM of that
            affordance (red) and its pseudo-mask (green). A sample without a valid pseudo-mask (no candidate
            part overlaps its CAM: an all-zero or flat CAM, or every part failed part discovery's background
            / saliency gate; its pixel loss is skipped) gets a grey frame and the caption "no pseudo-mask",
            as the legend says.
        dump_dir: sub-folder of the work dir for the picture files (None: the vis backends only).
        max_samples: at most this many samples per picture.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        start_iter: Optional[int] = None,
        start_epoch: Optional[int] = None,
        dump_interval: int = 0,
        dump_dir: Optional[str] = 'pseudo_masks',
        max_samples: int = 8,
    ) -> None:
        if (start_iter or 0) < 0 or (start_epoch or 0) < 0 or dump_interval < 0 or max_samples < 1:
            raise ValueError('start_iter, start_epoch and dump_interval must be >= 0, max_samples >= 1')
        if start_iter is None and start_epoch is None:
            start_iter = 0
        self.start_iter = start_iter
        self.start_epoch = start_epoch
        self.dump_interval = dump_interval
        self.dump_dir = dump_dir
        self.max_samples = max_samples

    @staticmethod
    def _model(runner: Any) -> Any:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        model = self._model(runner)
        if not hasattr(model, 'pixel_supervision'):
            raise TypeError(f'PseudoMaskHook needs a LoopTrans model, got {type(model).__name__}')
        model.pixel_supervision = self.supervision_on(runner.iter, runner.epoch)

    def supervision_on(self, iteration: int, epoch: int) -> bool:
        """Whether pixel supervision is on at this (0-based) iteration / epoch."""
        by_iter = self.start_iter is not None and iteration >= self.start_iter
        by_epoch = self.start_epoch is not None and epoch >= self.start_epoch
        return by_iter or by_epoch

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Optional[dict] = None, outputs: Optional[dict] = None
    ) -> None:
        if not self.dump_interval or not self.every_n_train_iters(runner, self.dump_interval):
            return
        result = self.last_result(self._model(runner))
        if result is None or data_batch is None or runner.rank != 0:
            return
        picture = self.render(data_batch['inputs'], result, data_batch.get('data_samples'))
        visualizer = getattr(runner, 'visualizer', None)
        if visualizer is not None:
            visualizer.add_image('pseudo_masks', mmcv.bgr2rgb(picture), step=runner.iter + 1)
        if self.dump_dir:
            mmcv.imwrite(picture, osp.join(runner.work_dir, self.dump_dir, f'iter_{runner.iter + 1}.png'))

    @staticmethod
    def last_result(model: Any) -> Optional[PartDiscoveryResult]:
        """The model's last part discovery (``last_part_discovery``), None before the first supervised step."""
        return getattr(model, 'last_part_discovery', None)

    @staticmethod
    def as_result(masks: Union[PartDiscoveryResult, Mapping[str, torch.Tensor]]) -> PartDiscoveryResult:
        """A :class:`PartDiscoveryResult` as is, or one made of a mapping with ``pseudo_mask``, ``valid`` and
        ``cam``; the pictures need the CAM (ValueError without it)."""
        result = masks if isinstance(masks, PartDiscoveryResult) else PartDiscoveryResult(**dict(masks))
        if result.cam is None:
            raise ValueError(
                'PseudoMaskHook: the part-discovery result has no cam; BasePartDiscovery.forward records it, '
                'a part discovery called otherwise must set PartDiscoveryResult.cam.'
            )
        return result

    LEGEND = (
        'image (affordance / object) | CAM of the affordance (red) | pseudo-mask (green)',
        'grey frame: no valid pseudo-mask (no candidate part overlaps the CAM); no pixel loss',
    )

    @staticmethod
    def _label(sample: Any) -> str:
        """``affordance / object`` of a data sample (what is known of it)."""
        meta = getattr(sample, 'metainfo', None) or {}
        parts = [str(meta[k]) for k in ('affordance', 'object') if meta.get(k) is not None]
        return ' / '.join(parts)

    def render(
        self,
        inputs: Sequence[torch.Tensor],
        masks: Union[PartDiscoveryResult, Mapping[str, torch.Tensor]],
        data_samples: Optional[Sequence[Any]] = None,
    ) -> np.ndarray:
        """One picture of a part discovery (a :class:`PartDiscoveryResult`, or a mapping of the fields
        ``pseudo_mask``, ``valid``, ``cam``): a legend band, then per sample its ego image (captioned with
        affordance / object), CAM (red) and pseudo-mask (green) side by side; invalid samples framed grey."""
        result = self.as_result(masks)
        tiles = []
        n = min(len(inputs), result.pseudo_mask.shape[0], self.max_samples)
        for i in range(n):
            image = inputs[i][0].permute(1, 2, 0).cpu().numpy().astype(np.uint8)  # ego view, BGR
            h, w = image.shape[:2]
            cam = cv2.resize(result.cam[i].float().cpu().numpy(), (w, h), interpolation=cv2.INTER_LINEAR)
            cam = normalize_heatmap(cam)
            mask = cv2.resize(result.pseudo_mask[i].float().cpu().numpy(), (w, h), interpolation=cv2.INTER_NEAREST)
            label = self._label(data_samples[i]) if data_samples is not None and i < len(data_samples) else ''
            valid = bool(result.valid[i])
            if not valid:
                label = f'{label}: no pseudo-mask' if label else 'no pseudo-mask'
            captioned = put_caption(image, label) if label else image  # white on dark: any channel order
            tile = np.concatenate(
                [captioned, colour_overlay(image, cam, (0, 0, 255)), colour_overlay(image, mask, (0, 255, 0))], axis=1
            )
            if not valid:
                tile = cv2.copyMakeBorder(tile[4:-4, 4:-4], 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=(128, 128, 128))
            tiles.append(np.ascontiguousarray(tile))
        body = np.concatenate(tiles, axis=0)
        return np.concatenate([self._legend(body.shape[1]), body], axis=0)

    def _legend(self, width: int) -> np.ndarray:
        """A dark band with :attr:`LEGEND`, one line each, scaled to fit ``width``."""
        scale = 0.4
        sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0] for line in self.LEGEND]
        scale *= min(1.0, (width - 8) / max(w for w, _ in sizes))
        line_h = max(8, int(round(max(h for _, h in sizes) * scale / 0.4)) + 6)
        band = np.full((line_h * len(self.LEGEND) + 4, width, 3), 32, np.uint8)
        for k, line in enumerate(self.LEGEND):
            cv2.putText(
                band, line, (4, line_h * (k + 1) - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
            )
        return band
