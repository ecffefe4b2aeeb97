"""PseudoMaskHook reads the model's typed part-discovery result (LoopTrans.last_part_discovery)."""

import os.path as osp
from types import SimpleNamespace

import cv2
import pytest
import torch
from conftest import build_tiny_looptrans

import looptrans  # noqa: F401
from looptrans.engine.hooks import PseudoMaskHook
from looptrans.models.part_discovery import PartDiscoveryResult


def _result(b=2, grid=4, cam=True):
    mask = torch.zeros(b, grid, grid)
    mask[:, 1:3, 1:3] = 1
    return PartDiscoveryResult(
        pseudo_mask=mask, valid=torch.tensor([True, False][:b]), cam=torch.rand(b, grid, grid) if cam else None
    )


def test_hook_draws_the_models_last_part_discovery(tmp_path):
    model = SimpleNamespace(pixel_supervision=True, last_part_discovery=_result())
    runner = SimpleNamespace(model=model, iter=4, epoch=0, rank=0, work_dir=str(tmp_path))
    inputs = [torch.randint(0, 200, (3, 3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    PseudoMaskHook(dump_interval=5).after_train_iter(runner, 0, dict(inputs=inputs))
    picture = cv2.imread(osp.join(str(tmp_path), 'pseudo_masks', 'iter_5.png'))
    assert picture.shape[1] == 3 * 32 and picture.shape[0] > 2 * 32
    # before the first supervised step there is nothing to draw
    runner.model = SimpleNamespace(pixel_supervision=True, last_part_discovery=None)
    PseudoMaskHook(dump_interval=5, dump_dir='none_yet').after_train_iter(runner, 0, dict(inputs=inputs))
    assert not (tmp_path / 'none_yet').exists()


def test_render_takes_a_result_or_the_older_mapping_and_needs_the_cam():
    hook = PseudoMaskHook()
    inputs = [torch.zeros(2, 3, 16, 16, dtype=torch.uint8)]
    result = _result(b=1)
    from_result = hook.render(inputs, result)
    from_mapping = hook.render(inputs, dict(pseudo_mask=result.pseudo_mask, valid=result.valid, cam=result.cam))
    assert (from_result == from_mapping).all()
    with pytest.raises(ValueError, match='has no cam'):
        hook.render(inputs, _result(b=1, cam=False))


def test_hook_pictures_a_real_training_step(tmp_path):
    from mmseg.structures import SegDataSample

    model = build_tiny_looptrans()
    images = [torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    samples = [SegDataSample(metainfo=dict(gt_label=i, affordance='hold', object='cup')) for i in (0, 1)]
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), True)
    model.loss(data['inputs'], data['data_samples'])
    assert PseudoMaskHook.last_result(model) is model.last_part_discovery
    runner = SimpleNamespace(model=model, iter=0, epoch=0, rank=0, work_dir=str(tmp_path))
    PseudoMaskHook(dump_interval=1).after_train_iter(runner, 0, dict(inputs=images, data_samples=samples))
    assert cv2.imread(osp.join(str(tmp_path), 'pseudo_masks', 'iter_1.png')).shape[1] == 3 * 64
