"""PseudoMaskHook (warm-up switch, pseudo-mask pictures) and the heatmap visualizer."""

import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import looptrans  # noqa: F401
from looptrans.engine.hooks import AffordanceVisualizationHook, PseudoMaskHook
from looptrans.models.part_discovery import PartDiscoveryResult
from looptrans.visualization import AffordanceVisualizer, overlay_heatmap


@pytest.mark.parametrize(
    'kwargs, iteration, epoch, expected',
    [
        (dict(), 0, 0, True),
        (dict(start_iter=10), 9, 0, False),
        (dict(start_iter=10), 10, 0, True),
        (dict(start_epoch=5), 1000, 4, False),
        (dict(start_epoch=5), 0, 5, True),
        (dict(start_iter=10, start_epoch=5), 10, 0, True),
    ],
)
def test_supervision_switch(kwargs, iteration, epoch, expected):
    assert PseudoMaskHook(**kwargs).supervision_on(iteration, epoch) is expected


def test_hook_sets_model_flag_and_rejects_other_models():
    model = SimpleNamespace(pixel_supervision=True)
    hook = PseudoMaskHook(start_iter=3)
    hook.before_train_iter(SimpleNamespace(model=model, iter=2, epoch=0), 0)
    assert model.pixel_supervision is False
    hook.before_train_iter(SimpleNamespace(model=model, iter=3, epoch=0), 0)
    assert model.pixel_supervision is True
    with pytest.raises(TypeError, match='LoopTrans'):
        hook.before_train_iter(SimpleNamespace(model=torch.nn.Linear(1, 1), iter=0, epoch=0), 0)


def test_pseudo_mask_dump(tmp_path):
    b, size, grid = 3, 32, 4
    masks = dict(
        pseudo_mask=torch.zeros(b, grid, grid), valid=torch.tensor([True, False, True]), cam=torch.rand(b, grid, grid)
    )
    masks['pseudo_mask'][:, 1:3, 1:3] = 1
    model = SimpleNamespace(pixel_supervision=True, last_part_discovery=PartDiscoveryResult(**masks))
    runner = SimpleNamespace(model=model, iter=9, epoch=0, rank=0, work_dir=str(tmp_path))
    # pixels below 200: the green tint (+(255 - g) / 2) is then always > 20 (unseeded, it failed ~1 run in 6)
    inputs = [torch.randint(0, 200, (4, 3, size, size), dtype=torch.uint8) for _ in range(b)]
    hook = PseudoMaskHook(dump_interval=10, max_samples=2)
    hook.after_train_iter(runner, 0, dict(inputs=inputs))
    picture = cv2.imread(osp.join(str(tmp_path), 'pseudo_masks', 'iter_10.png'))
    legend = picture.shape[0] - 2 * size  # a legend band on top (tests/test_pictures.py)
    assert legend > 0 and picture.shape[1:] == (3 * size, 3)  # 2 samples x (image | CAM | pseudo-mask)
    picture = picture[legend:]
    # the pseudo-mask panel of sample 0 is tinted green inside the mask only
    panel = picture[:size, 2 * size :].astype(int) - inputs[0][0].permute(1, 2, 0).numpy().astype(int)
    assert panel[size // 2, size // 2, 1] > 20 and abs(panel[1, 1]).max() <= 2


def test_pseudo_mask_picture_goes_to_the_vis_backends(tmp_path):
    """The runner's visualizer receives the picture (RGB), so TensorBoard / W&B backends show it too."""
    masks = dict(pseudo_mask=torch.ones(1, 4, 4), valid=torch.tensor([True]), cam=torch.rand(1, 4, 4))
    added = []
    visualizer = SimpleNamespace(add_image=lambda name, image, step: added.append((name, image, step)))
    runner = SimpleNamespace(
        model=SimpleNamespace(pixel_supervision=True, last_part_discovery=PartDiscoveryResult(**masks)),
        iter=4,
        epoch=0,
        rank=0,
        work_dir=str(tmp_path),
        visualizer=visualizer,
    )
    inputs = [torch.randint(0, 200, (4, 3, 32, 32), dtype=torch.uint8)]
    PseudoMaskHook(dump_interval=5, dump_dir=None).after_train_iter(runner, 0, dict(inputs=inputs))
    ((name, image, step),) = added
    assert name == 'pseudo_masks' and step == 5 and image.shape[1] == 3 * 32
    panel = image[-32:, :32]  # the ego image panel, RGB
    np.testing.assert_array_equal(panel, inputs[0][0].permute(1, 2, 0).numpy()[..., ::-1])
    assert not (tmp_path / 'pseudo_masks').exists()  # dump_dir=None: the backends only


def test_visualizer_draws_image_prediction_and_gt(tmp_path):
    image = np.full((40, 60, 3), 128, np.uint8)
    sample = SegDataSample(metainfo=dict(affordance='hold', img_path='x/hold/cup/a.jpg', object='cup'))
    pred = torch.zeros(1, 14, 14)
    pred[0, 3:6, 3:6] = 1
    sample.pred_heatmap = PixelData(data=pred)
    sample.gt_heatmap = PixelData(data=torch.rand(1, 40, 60))
    vis = AffordanceVisualizer(save_dir=str(tmp_path))
    out = str(tmp_path / 'pic.png')
    vis.add_datasample('s', image, sample, out_file=out)
    assert cv2.imread(out).shape == (40, 180, 3)
    assert AffordanceVisualizationHook.picture_name(sample) == 'hold_cup_a.png'


def test_overlay_resizes_heatmap_to_image():
    image = np.zeros((30, 50, 3), np.uint8)
    heat = np.zeros((7, 7), np.float32)
    heat[0, 0] = 1
    out = overlay_heatmap(image, heat, alpha=1.0)
    assert out.shape == (30, 50, 3)
    assert out[0, 0].tolist() != out[-1, -1].tolist()  # hot corner vs cold corner
