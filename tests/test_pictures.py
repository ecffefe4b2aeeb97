"""Pseudo-mask pictures say what each row is (affordance / object) and what the grey frame
of an invalid sample means; heatmap overlays have a colour scale.
"""

import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import looptrans  # noqa: F401
from looptrans.engine.hooks import PseudoMaskHook
from looptrans.models.part_discovery import PartDiscoveryResult
from looptrans.visualization import AffordanceVisualizer, draw_colour_scale, overlay_heatmap

JET_TOP = np.array([128, 0, 0])  # COLORMAP_JET at 255, RGB (dark red)
JET_BOTTOM = np.array([0, 0, 128])  # at 0 (dark blue)


def _samples(pairs):
    return [SegDataSample(metainfo=dict(affordance=a, object=o)) for a, o in pairs]


def _dump(tmp_path, size=96):
    b, grid = 3, 4
    masks = dict(
        pseudo_mask=torch.zeros(b, grid, grid), valid=torch.tensor([True, False, True]), cam=torch.rand(b, grid, grid)
    )
    masks['pseudo_mask'][:, 1:3, 1:3] = 1
    runner = SimpleNamespace(
        model=SimpleNamespace(pixel_supervision=True, last_part_discovery=PartDiscoveryResult(**masks)),
        iter=9,
        epoch=0,
        rank=0,
        work_dir=str(tmp_path),
    )
    inputs = [torch.full((4, 3, size, size), 90, dtype=torch.uint8) for _ in range(b)]
    samples = _samples([('hold', 'cup'), ('pour', 'kettle'), ('ride', 'bicycle')])
    PseudoMaskHook(dump_interval=10).after_train_iter(runner, 0, dict(inputs=inputs, data_samples=samples))
    return cv2.imread(osp.join(str(tmp_path), 'pseudo_masks', 'iter_10.png')), inputs, size


def test_pseudo_mask_picture_has_a_legend_and_row_labels(tmp_path):
    picture, inputs, size = _dump(tmp_path)
    legend = picture.shape[0] - 3 * size
    assert picture.shape[1] == 3 * size and legend > 0  # a legend band on top of the 3 rows
    band = picture[:legend]
    assert (band > 200).any() and np.median(band) < 64  # white text on a dark band
    assert any('grey frame' in line for line in PseudoMaskHook.LEGEND)
    assert any('affordance / object' in line for line in PseudoMaskHook.LEGEND)
    for row in range(3):
        image_panel = picture[legend + row * size : legend + (row + 1) * size, :size].astype(int)
        top = image_panel[5:20, 5 : size - 5]
        assert (np.abs(top - 90) > 60).any(), f'row {row} has no caption'  # text drawn over the flat image
    # the invalid sample (row 1) keeps its grey frame
    assert (picture[legend + size + 1, size : 2 * size] == 128).all()


def test_pseudo_mask_picture_without_samples_still_renders(tmp_path):
    masks = dict(pseudo_mask=torch.zeros(1, 4, 4), valid=torch.tensor([True]), cam=torch.rand(1, 4, 4))
    picture = PseudoMaskHook().render([torch.zeros(4, 3, 32, 32, dtype=torch.uint8)], masks)
    assert picture.shape[1] == 3 * 32 and picture.shape[0] > 32


def _bar_column(panel):
    """The column that is most red at 20 % of the height and most blue at 90 % (the colour scale's)."""
    h = panel.shape[0]
    top, bottom = panel[int(0.2 * h)].astype(int), panel[int(0.9 * h)].astype(int)
    score = (top[:, 0] - top[:, 2]) + (bottom[:, 2] - bottom[:, 0])
    return int(np.argmax(score)), int(score.max())


def test_overlays_have_a_colour_scale(tmp_path):
    image = np.full((120, 160, 3), 128, np.uint8)
    flat = overlay_heatmap(image, np.zeros((7, 7), np.float32))  # a constant map: one colour everywhere
    scaled = draw_colour_scale(flat)
    assert scaled.shape == flat.shape
    x, score = _bar_column(scaled)
    assert x > 160 * 0.85 and score > 200  # along the right edge: hot (red) at the top, cold (blue) below
    assert _bar_column(flat)[1] < 100  # (not there before)
    tiny = np.zeros((10, 10, 3), np.uint8)
    np.testing.assert_array_equal(draw_colour_scale(tiny), tiny)


def test_visualizer_panels_have_the_colour_scale(tmp_path):
    image = np.full((120, 160, 3), 128, np.uint8)
    sample = SegDataSample(metainfo=dict(affordance='hold', img_path='x/hold/cup/a.jpg', object='cup'))
    sample.pred_heatmap = PixelData(data=torch.zeros(1, 14, 14))
    sample.gt_heatmap = PixelData(data=torch.zeros(1, 120, 160))
    picture = AffordanceVisualizer(save_dir=str(tmp_path)).draw_sample(image, sample)
    assert picture.shape == (120, 480, 3)
    for k in (1, 2):  # prediction and GT panels
        panel = picture[:, k * 160 : (k + 1) * 160]
        x, score = _bar_column(panel)
        assert x > 160 * 0.85 and score > 200
