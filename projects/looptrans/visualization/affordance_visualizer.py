"""AffordanceVisualizer: egocentric image | predicted heatmap | GT heatmap, for tests, training and demos."""

from __future__ import annotations

from typing import Optional

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmengine.visualization import Visualizer
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample

from .overlay import draw_colour_scale, overlay_heatmap, side_by_side


def _map_of(data_sample: SegDataSample, key: str) -> Optional[np.ndarray]:
    """The (H, W) float map stored as ``key`` (PixelData with data (1, H, W)), or None."""
    if key not in data_sample:
        return None
    data = data_sample.get(key).data
    if hasattr(data, 'detach'):
        data = data.detach().float().cpu().numpy()
    return np.asarray(data, dtype=np.float32).reshape(data.shape[-2:])


@VISUALIZERS.register_module()
class AffordanceVisualizer(Visualizer):
    """Draws affordance heatmaps over images; any MMEngine vis backend (local files, TensorBoard, W&B)
    receives the pictures through ``add_image``.

    ``add_datasample`` builds one picture per sample: the image, the predicted heatmap of the sample's
    affordance over it (``pred_heatmap``), and the ground truth (``gt_heatmap``) when present; each panel is
    captioned with the affordance name, and each heatmap panel has a colour scale (max at the top, min at the
    bottom: every map is min-max normalised on its own). Heatmaps at network resolution are resized to the
    image.
    """

    def __init__(
        self,
        name: str = 'visualizer',
        image: Optional[np.ndarray] = None,
        vis_backends: Optional[list] = None,
        save_dir: Optional[str] = None,
        alpha: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir, **kwargs)
        self.alpha = alpha

    def draw_sample(
        self, image: np.ndarray, data_sample: SegDataSample, draw_gt: bool = True, draw_pred: bool = True
    ) -> np.ndarray:
        """The side-by-side picture (RGB uint8) for one sample."""
        affordance = data_sample.metainfo.get('affordance', '')
        panels, captions = [image], [affordance]
        pred = _map_of(data_sample, 'pred_heatmap') if draw_pred else None
        if pred is not None:
            panels.append(draw_colour_scale(overlay_heatmap(image, pred, self.alpha)))
            captions.append(f'pred: {affordance}')
        gt = _map_of(data_sample, 'gt_heatmap') if draw_gt else None
        if gt is not None:
            panels.append(draw_colour_scale(overlay_heatmap(image, gt, self.alpha)))
            captions.append('GT')
        return side_by_side(panels, captions)

    @master_only
    def add_datasample(
        self,
        name: str,
        image: np.ndarray,
        data_sample: Optional[SegDataSample] = None,
        draw_gt: bool = True,
        draw_pred: bool = True,
        show: bool = False,
        wait_time: float = 0,
        out_file: Optional[str] = None,
        step: int = 0,
    ) -> None:
        """Draw ``data_sample`` over ``image`` (RGB) and show it, write it to ``out_file``, or send it to the
        vis backends (in that order of preference)."""
        picture = image if data_sample is None else self.draw_sample(image, data_sample, draw_gt, draw_pred)
        self.set_image(picture)
        if show:
            self.show(picture, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(picture), out_file)
        else:
            self.add_image(name, picture, step)
