"""Pseudo-mask quality on generated data: the generator's true part masks, and
tools/analysis_tools/eval_pseudo_masks.py's IoU against them."""

import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, load_tool

from looptrans.testing.synthetic_agd20k import (
    PART_MASK_DIR,
    SYNTHETIC_SEEN_CLASSES,
    generate_synthetic_agd20k,
    make_rng,
    render_egocentric,
)


def _tool():
    return load_tool('analysis_tools', 'eval_pseudo_masks.py')


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('pm'))
    generate_synthetic_agd20k(root, seed=0, num_exo=1, num_ego=1, num_test=1, splits=['Seen'])
    return root


def test_part_mask_is_the_affordance_part_of_the_image(tree):
    """The written mask is the part the GT heatmap is blurred from, for the same image."""
    aff, obj = 'hold', 'cup'
    img, heat, mask = render_egocentric(aff, obj, make_rng(0, 'Seen', 'ego', aff, obj, index=0), return_part_mask=True)
    on_disk = cv2.imread(osp.join(tree, 'Seen', PART_MASK_DIR, aff, obj, f'{obj}_000000.png'), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(on_disk, mask) and set(np.unique(mask)) == {0, 255}
    image = cv2.imread(osp.join(tree, 'Seen', 'trainset', 'egocentric', aff, obj, f'{obj}_000000.jpg'))
    assert image.shape[:2] == mask.shape
    assert heat[mask > 0].mean() > 3 * heat[mask == 0].mean()  # the GT heat sits on the part
    # the striped brown handle: darker and browner inside the mask than the cup body around it
    inside, outside = img[mask > 0].mean(0), img[(mask == 0)].mean(0)
    assert inside.sum() < outside.sum()


def test_tool_iou_follows_the_alignment_of_pseudo_mask_and_true_part(tree, monkeypatch):
    """With a part discovery that returns the (oracle) CAM itself, the IoU is as high as the 16-pixel grid
    allows; the same masks mirrored score far lower: image, true part and pseudo-mask are aligned through
    resizing and batching."""
    tool = _tool()
    real_build = tool.build_model

    class Echo(torch.nn.Module):
        def __init__(self, flip):
            super().__init__()
            self.flip = flip

        def forward(self, desc, cam, cls_attn=None):
            mask = (cam > 0.2).float()
            mask = mask.flip(-1) if self.flip else mask
            return dict(pseudo_mask=mask, valid=torch.ones(len(mask), dtype=torch.bool))

    def run(flip):
        def build(cfg, checkpoint, device):
            model = real_build(cfg, checkpoint, device)
            model.part_discovery = Echo(flip)
            return model

        monkeypatch.setattr(tool, 'build_model', build)
        return tool.main([QUICK_CONFIG, '--data-root', tree, '--batch-size', '5'])

    aligned, mirrored = run(False), run(True)
    assert set(aligned) == set(SYNTHETIC_SEEN_CLASSES) | {'overall'}
    assert aligned['overall']['num'] == 14 and aligned['overall']['valid'] == 1.0
    assert aligned['overall']['miou'] > 0.35
    assert aligned['overall']['miou'] > 2 * mirrored['overall']['miou']


def test_tool_reports_real_part_discovery_and_refuses_trees_without_masks(tree, tmp_path):
    tool = _tool()
    table = tool.main([QUICK_CONFIG, '--data-root', tree])
    for row in table.values():
        assert 0 <= row['valid'] <= 1 and (np.isnan(row['miou']) or 0 <= row['miou'] <= 1)
    with pytest.raises(FileNotFoundError, match='part masks'):
        tool.main([QUICK_CONFIG, '--data-root', str(tmp_path)])
