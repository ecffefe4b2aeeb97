"""AffordanceVisualizationHook: heatmap pictures of validation / test predictions."""

from __future__ import annotations

import os.path as osp
import warnings
from typing import Any, Optional, Sequence

import mmcv
from mmengine import fileio
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample


@HOOKS.register_module()
class AffordanceVisualizationHook(SegVisualizationHook):
    """mmseg's :class:`~mmseg.engine.hooks.SegVisualizationHook` for affordance heatmaps: the current
    visualizer (:class:`~looptrans.visualization.AffordanceVisualizer`) draws ego image | predicted heatmap |
    GT for val/test samples, and ``show_dir`` stores them as files with collision-free names.

    Args:
        draw: master switch (``tools/test.py --show-dir`` turns it on).
        interval: draw every ``interval``-th batch (1 = every test image).
        show: show the pictures in a window instead of storing them.
        wait_time: seconds each shown picture stays.
        show_dir: write one PNG per image to this folder (relative paths are under the work dir), named
            ``<affordance>_<object>_<image stem>.png`` so that equal file names in different folders do not
            collide. Without it the pictures go to the visualizer's backends (local files, TensorBoard ...).
        backend_args: file backend arguments for reading the images.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        draw: bool = False,
        interval: int = 1,
        show: bool = False,
        wait_time: float = 0.0,
        show_dir: Optional[str] = None,
        backend_args: Optional[dict] = None,
    ) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        with warnings.catch_warnings():  # mmseg warns on draw=False, the configs' default (tools turn it on)
            warnings.simplefilter('ignore', UserWarning)
            super().__init__(draw=draw, interval=interval, show=show, wait_time=wait_time, backend_args=backend_args)
        self.show_dir = show_dir

    @staticmethod
    def picture_name(sample: SegDataSample) -> str:
        """``<affordance>_<object>_<stem>.png`` for a test sample."""
        meta = sample.metainfo
        stem = osp.splitext(osp.basename(meta['img_path']))[0]
        parts = [meta.get('affordance'), meta.get('object'), stem]
        return '_'.join(str(p) for p in parts if p) + '.png'

    def _after_iter(
        self,
        runner: Any,
        batch_idx: int,
        data_batch: Optional[dict] = None,
        outputs: Optional[Sequence[SegDataSample]] = None,
        mode: str = 'val',
    ) -> None:
        if not self.draw or mode == 'train' or not self.every_n_inner_iters(batch_idx, self.interval):
            return
        out_dir = None
        if self.show_dir:
            out_dir = self.show_dir if osp.isabs(self.show_dir) else osp.join(runner.work_dir, self.show_dir)
        for sample in outputs or []:
            image = mmcv.imfrombytes(fileio.get(sample.img_path, backend_args=self.backend_args), channel_order='rgb')
            name = self.picture_name(sample)
            self._visualizer.add_datasample(
                f'{mode}_{name}',
                image,
                data_sample=sample,
                show=self.show,
                wait_time=self.wait_time,
                out_file=osp.join(out_dir, name) if out_dir else None,
                step=runner.iter,
            )
