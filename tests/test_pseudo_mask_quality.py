"""Pseudo-mask quality on generated data: the generator's true part masks, and
tools/analysis_tools/eval_pseudo_masks.py's IoU against them."""

import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, load_tool

from looptrans.models.part_discovery import PartDiscoveryResult
from looptrans.testing.synthetic_agd20k import (
    OBJECT_MASK_DIR,
    PART_MASK_DIR,
    SYNTHETIC_SEEN_CLASSES,
    make_rng,
    render_egocentric,
)


def _tool():
    return load_tool('analysis_tools', 'eval_pseudo_masks.py')


def test_part_mask_is_the_affordance_part_of_the_image(seen_tree):
    """The written mask is the part the GT heatmap is blurred from, for the same image."""
    aff, obj = 'hold', 'cup'
    img, heat, mask = render_egocentric(aff, obj, make_rng(0, 'Seen', 'ego', aff, obj, index=0), return_part_mask=True)
    on_disk = cv2.imread(
        osp.join(seen_tree, 'Seen', PART_MASK_DIR, aff, obj, f'{obj}_000000.png'), cv2.IMREAD_GRAYSCALE
    )
    assert np.array_equal(on_disk, mask) and set(np.unique(mask)) == {0, 255}
    image = cv2.imread(osp.join(seen_tree, 'Seen', 'trainset', 'egocentric', aff, obj, f'{obj}_000000.jpg'))
    assert image.shape[:2] == mask.shape
    assert heat[mask > 0].mean() > 3 * heat[mask == 0].mean()  # the GT heat sits on the part
    # the striped brown handle: darker and browner inside the mask than the cup body around it
    inside, outside = img[mask > 0].mean(0), img[(mask == 0)].mean(0)
    assert inside.sum() < outside.sum()


def test_object_mask_is_the_whole_object_around_the_part(seen_tree):
    """The written object mask is the rendered object of the same image, and it holds the part."""
    aff, obj = 'cut_with', 'knife'
    _, _, part, whole = render_egocentric(
        aff, obj, make_rng(0, 'Seen', 'ego', aff, obj, index=0), return_part_mask=True, return_object_mask=True
    )
    on_disk = cv2.imread(
        osp.join(seen_tree, 'Seen', OBJECT_MASK_DIR, aff, obj, f'{obj}_000000.png'), cv2.IMREAD_GRAYSCALE
    )
    assert np.array_equal(on_disk, whole) and set(np.unique(whole)) == {0, 255}
    assert not (part > whole).any()  # the part lies inside the object
    assert (whole > 0).sum() > 1.5 * (part > 0).sum()  # and the blade is not the whole knife


def _recording_discovery(monkeypatch, tool):
    """Make the tool's part discovery return its CAM above 0.2 as the pseudo-mask, and record the CAMs."""
    real_build = tool.build_model
    cams = []

    class Echo(torch.nn.Module):
        def forward(self, desc, cam, cls_attn=None):
            cams.append(cam.clone())
            return PartDiscoveryResult(pseudo_mask=(cam > 0.2).float(), valid=torch.ones(len(cam), dtype=torch.bool))

    def build(cfg, checkpoint, device):
        model = real_build(cfg, checkpoint, device)
        model.part_discovery = Echo()
        return model

    monkeypatch.setattr(tool, 'build_model', build)
    return cams


def test_object_oracle_hands_the_pooled_object_mask_to_part_discovery(seen_tree, monkeypatch):
    """``--oracle object``: the CAM part discovery receives is the object mask of each image, resized to the input
    and average-pooled to the descriptor's grid (recomputed here from the files); an object-sized pseudo-mask
    scores IoU |part| / |object| with the part it holds, below the part oracle's."""
    tool = _tool()
    cams = _recording_discovery(monkeypatch, tool)
    whole = tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--oracle', 'object', '--batch-size', '14'])
    part = tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--batch-size', '14'])
    samples = tool.find_samples(osp.join(seen_tree, 'Seen'), SYNTHETIC_SEEN_CLASSES)
    assert len(cams) == 2 and len(samples) == 14
    expected = []
    for _, part_mask, _ in samples:
        path = part_mask.replace(f'{osp.sep}{PART_MASK_DIR}{osp.sep}', f'{osp.sep}{OBJECT_MASK_DIR}{osp.sep}')
        mask = cv2.resize(cv2.imread(path, cv2.IMREAD_GRAYSCALE), (224, 224), interpolation=cv2.INTER_NEAREST) > 127
        expected.append(mask.reshape(14, 16, 14, 16).mean(axis=(1, 3)))  # the 16-pixel patch grid of the config
    torch.testing.assert_close(cams[0], torch.from_numpy(np.stack(expected)).float())
    assert not torch.allclose(cams[0], cams[1])
    assert whole['overall']['valid'] == 1.0 and 0.05 < whole['overall']['miou'] < part['overall']['miou']


def test_object_oracle_names_a_tree_without_object_masks_and_a_conflicting_cam(seen_tree, tmp_path):
    import shutil

    tool = _tool()
    old = str(tmp_path / 'old_tree')
    shutil.copytree(seen_tree, old)
    missing = osp.join(old, 'Seen', OBJECT_MASK_DIR, 'hold', 'cup', 'cup_000000.png')
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match=r'cup_000000\.png.*is missing.*generate_synthetic_agd20k\.py'):
        tool.main([QUICK_CONFIG, '--data-root', old, '--oracle', 'object'])
    tool.main([QUICK_CONFIG, '--data-root', old])  # the part oracle does not need them
    for extra in (['any.pth'], ['--cam-from', QUICK_CONFIG, 'any.pth']):
        with pytest.raises(SystemExit):  # argparse: an oracle and a trained CAM at once
            tool.main([QUICK_CONFIG, *extra, '--data-root', old, '--oracle', 'object'])


def test_tool_iou_follows_the_alignment_of_pseudo_mask_and_true_part(seen_tree, monkeypatch):
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
            return PartDiscoveryResult(pseudo_mask=mask, valid=torch.ones(len(mask), dtype=torch.bool))

    def run(flip):
        def build(cfg, checkpoint, device):
            model = real_build(cfg, checkpoint, device)
            model.part_discovery = Echo(flip)
            return model

        monkeypatch.setattr(tool, 'build_model', build)
        return tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--batch-size', '5'])

    aligned, mirrored = run(False), run(True)
    assert set(aligned) == set(SYNTHETIC_SEEN_CLASSES) | {'overall'}
    assert aligned['overall']['num'] == 14 and aligned['overall']['valid'] == 1.0
    assert aligned['overall']['miou'] > 0.35
    assert aligned['overall']['miou'] > 2 * mirrored['overall']['miou']


def test_tool_reports_real_part_discovery_and_refuses_trees_without_masks(seen_tree, tmp_path):
    import logging

    from mmengine.logging import MMLogger

    tool = _tool()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        table = tool.main([QUICK_CONFIG, '--data-root', seen_tree])
    finally:
        logger.removeHandler(handler)
    # no line per parameter from MMEngine's weight init (hundreds on the console without a log file)
    assert not [r for r in records if 'init_weights' in r.getMessage()]
    for row in table.values():
        assert 0 <= row['valid'] <= 1 and (np.isnan(row['miou']) or 0 <= row['miou'] <= 1)
    # the pseudo-mask is one of the K parts, so no choice beats the best of them, the CAM's peak included
    overall = table['overall']
    assert overall['valid'] > 0 and overall['best'] >= overall['miou'] - 1e-9
    assert 0 <= overall['peak'] <= overall['best'] + 1e-9
    with pytest.raises(FileNotFoundError, match='part masks'):
        tool.main([QUICK_CONFIG, '--data-root', str(tmp_path)])


def test_part_breakdown_scores_the_best_part_and_the_part_under_the_cam_maximum():
    """Hand-made 2x2 parts on a 4x4 input: the best part's IoU and the IoU of the part that holds the CAM's
    maximum, per image; NaN for an algorithm without an assignment."""
    tool = _tool()
    truth = torch.zeros(2, 4, 4, dtype=torch.bool)
    truth[0, :2] = True  # image 0: the top half
    truth[1, :2, :2] = True  # image 1: the top-left quarter
    assign = torch.tensor([[0, 0, 1, 1], [0, 1, 0, 1]])  # image 0: rows; image 1: columns
    cam = torch.zeros(2, 2, 2)
    cam[0, 1, 0] = 1.0  # image 0 peaks in the bottom row (part 1, IoU 0)
    cam[1, 0, 0] = 1.0  # image 1 peaks top-left (part 0: the left half, IoU 4 / 8)
    parts = PartDiscoveryResult(
        pseudo_mask=torch.zeros(2, 2, 2), valid=torch.ones(2, dtype=torch.bool), assign=assign, cam=cam
    )
    best, peak = tool.part_breakdown(parts, truth)
    assert best.tolist() == pytest.approx([1.0, 0.5]) and peak.tolist() == pytest.approx([0.0, 0.5])
    bare = PartDiscoveryResult(pseudo_mask=torch.zeros(2, 2, 2), valid=torch.ones(2, dtype=torch.bool))
    assert all(torch.isnan(t).all() for t in tool.part_breakdown(bare, truth))


def test_summary_averages_every_column_over_the_valid_images_only():
    tool = _tool()
    rows = [(0, True, 0.2, 0.6, 0.4), (0, False, 0.0, 0.9, 0.9), (1, True, 0.4, 0.8, 0.0)]
    table = tool.summarise(rows, ('hold', 'cut_with'))
    assert table['hold'] == dict(miou=0.2, best=0.6, peak=0.4, valid=0.5, num=2)
    assert table['overall']['miou'] == pytest.approx(0.3) and table['overall']['best'] == pytest.approx(0.7)
    assert table['overall']['peak'] == pytest.approx(0.2) and table['overall']['valid'] == pytest.approx(2 / 3)
    assert np.isnan(tool.summarise([(0, False, 0.0, 0.5, 0.5)], ('hold',))['hold']['best'])


def test_show_draws_one_row_per_folder_with_the_true_part_in_green(seen_tree, tmp_path):
    """``--show``: one row (image | K-means parts | pseudo-mask | true part) per affordance/object folder; the
    last tile is the image with the generator's true part tinted green, the rest of it untouched."""
    tool = _tool()
    out = str(tmp_path / 'pics' / 'pm.png')
    tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--show', out])
    pic = cv2.imread(out)
    samples = tool.first_of_each_folder(tool.find_samples(osp.join(seen_tree, 'Seen'), SYNTHETIC_SEEN_CLASSES))
    assert len(samples) == 14 and pic.shape == (14 * 224, 4 * 224, 3)
    for row, (_, mask_path, _) in enumerate(samples[:3]):
        tiles = pic[row * 224 : (row + 1) * 224].reshape(224, 4, 224, 3).transpose(1, 0, 2, 3)
        mask = cv2.resize(cv2.imread(mask_path, 0), (224, 224), interpolation=cv2.INTER_NEAREST) > 127
        mask[:30] = False  # the caption
        assert mask.sum() > 50
        image, truth = tiles[0].astype(int), tiles[3].astype(int)
        below = np.zeros_like(mask)
        below[30:] = True
        assert np.array_equal(image[~mask & below], truth[~mask & below])
        green = truth[mask][:, 1] - image[mask][:, 1]
        red = truth[mask][:, 2] - image[mask][:, 2]
        assert green.mean() > 20 and green.mean() > red.mean() + 20
    with pytest.raises(SystemExit):
        tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--show', str(tmp_path / 'pm.gif')])
    tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--show', out, '--show-only', 'pour/kettle', 'hold/cup'])
    assert cv2.imread(out).shape == (2 * 224, 4 * 224, 3)
    with pytest.raises(SystemExit):
        tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--show-only', 'hold/cup'])
    with pytest.raises(SystemExit, match='hold/spoon'):
        tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--show', out, '--show-only', 'hold/spoon'])


# --------------------------------------------------------------------------- #
# pm_true_iou: the true part moves with the ego image and is scored in training
# --------------------------------------------------------------------------- #
def _square_image(h=300, w=400):
    """A BGR image with a bright red square off-centre (so a flip moves it) and its mask."""
    img = np.full((h, w, 3), 40, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    img[60:180, 50:190, 2] = 255
    mask[60:180, 50:190] = 255
    return img, mask


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_part_mask_moves_with_the_ego_image_through_resize_crop_flip(tmp_path, flip_prob):
    from mmcv.transforms import Compose

    from looptrans.datasets import LoadEgoPartMask, MultiViewTransform

    img, mask = _square_image()
    path = str(tmp_path / 'mask.png')
    cv2.imwrite(path, mask)
    pipeline = Compose(
        [
            LoadEgoPartMask(),
            MultiViewTransform(
                transforms=[
                    dict(type='ResizeShortEdge', size=256),
                    dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
                    dict(type='RandomFlip', prob=flip_prob, direction='horizontal'),
                ]
            ),
        ]
    )
    np.random.seed(3)
    out = pipeline(dict(img=img, img_shape=img.shape[:2], part_mask_path=path, exo_imgs=[img.copy()]))
    seg = out['gt_seg_map']
    assert seg.shape == out['img'].shape[:2] == (224, 224) and set(np.unique(seg)) <= {0, 1}
    red = out['img'][..., 2] > 128
    iou = (red & (seg > 0)).sum() / max((red | (seg > 0)).sum(), 1)
    assert red.sum() > 1000 and iou > 0.97  # same pixels up to the antialiased rim
    assert np.mean(seg[:, ::-1].astype(bool) == red) < np.mean(seg.astype(bool) == red)  # a real check of the flip
    assert out['flip'] == (flip_prob == 1.0)


def test_load_ego_part_mask_passes_samples_without_one_and_names_a_wrong_sized_file(tmp_path):
    from looptrans.datasets import LoadEgoPartMask

    img, mask = _square_image()
    results = LoadEgoPartMask()(dict(img=img))
    assert 'gt_seg_map' not in results and 'seg_fields' not in results
    path = str(tmp_path / 'small.png')
    cv2.imwrite(path, mask[:100])
    with pytest.raises(ValueError, match='small.png.*pixel for pixel'):
        LoadEgoPartMask()(dict(img=img, img_path='ego.jpg', part_mask_path=path))


def test_synthetic_train_items_point_at_their_part_mask(seen_tree):
    import os

    from looptrans.testing import SyntheticAGD20KDataset

    ds = SyntheticAGD20KDataset(data_root=seen_tree, split='Seen', mode='train', pipeline=[])
    info = ds.get_data_info(0)
    stem = osp.splitext(osp.basename(info['img_path']))[0]
    expected = osp.join(seen_tree, 'Seen', PART_MASK_DIR, info['affordance'], info['object'], stem + '.png')
    assert info['part_mask_path'] == expected
    moved = expected + '.bak'
    os.rename(expected, moved)
    try:
        assert 'part_mask_path' not in ds.get_data_info(0)  # data without masks: no key, no error
    finally:
        os.rename(moved, expected)


def test_true_part_iou_is_the_iou_at_input_size_over_valid_samples_with_masks():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from looptrans.models.part_discovery import PartDiscoveryResult

    pm = torch.zeros(3, 2, 2)
    pm[0, 0, 0] = 1  # top-left quarter of an 8x8 input
    pm[1] = 1  # everything, but invalid
    pm[2, :, 1] = 1  # right half
    parts = PartDiscoveryResult(pseudo_mask=pm, valid=torch.tensor([True, False, True]))
    samples = [SegDataSample() for _ in range(3)]
    truth0 = torch.zeros(1, 8, 8, dtype=torch.uint8)
    truth0[0, :4, :2] = 1  # 8 pixels, all inside the 16-pixel pseudo-mask: IoU 0.5
    samples[0].gt_sem_seg = PixelData(data=truth0)
    samples[1].gt_sem_seg = PixelData(data=torch.ones(1, 8, 8, dtype=torch.uint8))
    # sample 2 has no true mask: not counted
    out = parts.true_part_iou(samples, (8, 8))
    assert out['pm_true_iou'].item() == pytest.approx(0.5)
    samples[2].gt_sem_seg = PixelData(data=torch.ones(1, 8, 8, dtype=torch.uint8))  # right half of all: 0.5
    truth0[0, :4, :4] = 1  # now exactly the pseudo-mask: 1.0
    assert parts.true_part_iou(samples, (8, 8))['pm_true_iou'].item() == pytest.approx(0.75)
    assert parts.statistics(samples, (8, 8))['pm_true_iou'].item() == pytest.approx(0.75)
    assert parts.true_part_iou([SegDataSample() for _ in range(3)], (8, 8)) == {}
    with pytest.raises(ValueError, match='LoadEgoPartMask'):
        parts.true_part_iou(samples, (16, 16))


def test_part_count_study_reads_its_logs_and_refuses_bad_k(tmp_path):
    study = load_tool('analysis_tools', 'part_count_study.py')
    test_log = tmp_path / 'test.out'
    test_log.write_text(
        '11/27 12:00:00 - mmengine - INFO - Iter(val) [1/2] eta: 0:00:01\n'
        '11/27 12:00:01 - mmengine - INFO - Iter(test) [6/6]    KLD: 2.4020  SIM: 0.2140  NSS: 1.7250  data_time: 0.1\n'
    )
    assert study.test_metrics(str(test_log)) == dict(KLD=2.402, SIM=0.214, NSS=1.725)
    train_log = tmp_path / 'train.log'
    lines = [
        f'Iter(train) [{i}/9]  loss: 1.0  pm_iou: 0.5  pm_true_iou: {v}  loss_dill: 0.1' for i, v in enumerate(range(9))
    ]
    train_log.write_text('\n'.join(lines))
    assert study.train_pm_true_iou(str(train_log), last=3) == pytest.approx((6 + 7 + 8) / 3)
    assert study.train_pm_true_iou(str(tmp_path / 'missing.log')) is None
    (tmp_path / 'empty.out').write_text('no metrics here')
    with pytest.raises(ValueError, match='no test metrics'):
        study.test_metrics(str(tmp_path / 'empty.out'))
    row = dict(split='Seen', k='auto', oracle=dict(miou=0.3, valid=0.8), trained=dict(miou=0.1, valid=0.5))
    table = study.format_table([dict(row, pm_true_iou=None, KLD=2.0, SIM=0.2, NSS=1.5)])
    assert '| Seen | auto | 0.300 (0.80) | 0.100 (0.50) | n/a | 2.000 | 0.200 | 1.500 |' in table
    for bad in (['--ks', '1'], ['--ks', 'four']):
        with pytest.raises(SystemExit):
            study.parse_args(bad)


def _tiny_config(tmp_path) -> str:
    """A config file of the tiny quick-config model (conftest's TINY_MODEL), for ``--cam-from``."""
    path = tmp_path / 'tiny_looptrans.py'
    path.write_text(
        f'_base_ = [{osp.abspath(QUICK_CONFIG)!r}]\n'
        'model = dict(backbone=dict(arch=dict(num_layers=1)), cam_head=dict(channels=32), '
        'noise_head=dict(channels=32), pixel_head=dict(channels=32))\n'
    )
    return str(path)


def _perturb(model) -> None:
    """Move every weight away from the seed-0 initialisation the tool's own model is built with."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * p.std().nan_to_num(1.0) * torch.randn(p.shape, generator=gen))


def test_cam_from_another_model_equals_that_model_choosing_on_its_own_backbone(seen_tree, tmp_path):
    """``--cam-from CFG CKPT`` on a model with no checkpoint: the part discovery runs on the other model's backbone
    and its CAM chooses, so it reproduces the other model's own trained-CAM figures exactly; both the backbone and
    the CAM head of the checkpoint differ from the tool's seed-0 model, so dropping either changes the figures."""
    from conftest import save_tiny_checkpoint

    tool = _tool()
    cfg = _tiny_config(tmp_path)
    ckpt = save_tiny_checkpoint(str(tmp_path / 'other.pth'), prepare=_perturb)
    own = tool.main([cfg, ckpt, '--data-root', seen_tree])
    borrowed = tool.main([cfg, '--data-root', seen_tree, '--cam-from', cfg, ckpt])
    fresh = tool.main([cfg, '--data-root', seen_tree, '--cam-from', cfg, save_tiny_checkpoint(tmp_path / 'fresh.pth')])
    for name in own:
        for key in ('miou', 'best', 'peak', 'valid', 'num'):
            np.testing.assert_equal(borrowed[name][key], own[name][key], err_msg=f'{name} {key}')
    assert any(fresh[name]['best'] != own[name]['best'] for name in own)  # the checkpoint's backbone is used


def test_cam_from_names_a_backbone_or_class_list_that_does_not_fit(seen_tree, tmp_path):
    from conftest import save_tiny_checkpoint

    tool = _tool()
    cfg = _tiny_config(tmp_path)
    ckpt = save_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    # the quick config's 2-block backbone cannot take the 1-block checkpoint's weights
    with pytest.raises(SystemExit, match="not the architecture of this config's backbone"):
        tool.main([QUICK_CONFIG, '--data-root', seen_tree, '--cam-from', cfg, ckpt])
    # the CAM model's classes (its config's and checkpoint's) in another order than this config's
    reordered = '[' + ','.join(reversed(SYNTHETIC_SEEN_CLASSES)) + ']'
    with pytest.raises(SystemExit, match=r"its classes \['cut_with'.* are not this config's \['sit_on'"):
        tool.main(
            [cfg, '--data-root', seen_tree, '--cam-from', cfg, ckpt]
            + ['--cfg-options', f'train_dataloader.dataset.metainfo.classes={reordered}']
        )
    with pytest.raises(SystemExit):  # argparse: CONFIG and CHECKPOINT both
        tool.main([cfg, '--data-root', seen_tree, '--cam-from', cfg])


def test_cam_from_names_a_model_without_a_cam(seen_tree, tmp_path, monkeypatch):
    import looptrans.apis

    tool = _tool()
    cfg = _tiny_config(tmp_path)
    monkeypatch.setattr(looptrans.apis, 'init_model', lambda *args, **kwargs: torch.nn.Identity())
    with pytest.raises(SystemExit, match=r'tiny_looptrans\.py: its model \(Identity\) has no cam_head'):
        tool.main([cfg, '--data-root', seen_tree, '--cam-from', cfg, 'any.pth'])


def test_ego_norm_stats_re_estimates_on_the_egocentric_images_as_part_discovery_reads_them(
    seen_tree, tmp_path, monkeypatch, capsys
):
    """``--ego-norm-stats``: the CAM head re-estimates its statistics (view 'ego') from the backbone features of
    every egocentric training image, read and preprocessed as part discovery reads them, before the pseudo-masks
    are scored; the tool says so. Without a CHECKPOINT, or with --cam-from, it is refused."""
    from conftest import save_tiny_checkpoint
    from mmengine.config import Config

    from looptrans.apis.inference import test_input_size
    from looptrans.models.heads import SharedCAMHead

    tool = _tool()
    cfg = _tiny_config(tmp_path)
    ckpt = save_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    calls = []
    real = SharedCAMHead.reestimate_norm_stats

    def spy(head, features, view='ego'):
        features = list(features)
        calls.append(([f[-1].clone() if isinstance(f, (list, tuple)) else f.clone() for f in features], view))
        return real(head, features, view)

    monkeypatch.setattr(SharedCAMHead, 'reestimate_norm_stats', spy)
    tool.main([cfg, ckpt, '--data-root', seen_tree, '--ego-norm-stats', '--batch-size', '5'])
    assert "the CAM projection's 2 BatchNorm layers: running statistics re-estimated" in capsys.readouterr().out
    ((features, view),) = calls
    assert view == 'ego'
    model = tool.build_model(Config.fromfile(cfg), ckpt, 'cpu')
    root, classes = tool.training_split(model.cfg, model, seen_tree)
    samples = tool.find_samples(root, classes)
    assert sum(f.shape[0] for f in features) == len(samples) and features[0].shape[0] == 5
    _, images = tool.read_images([p for p, _, _ in samples[:5]], test_input_size(model.cfg))
    with torch.no_grad():
        expected = model.extract_feat(model.data_preprocessor(dict(inputs=images), False)['inputs'][:, 0])
    torch.testing.assert_close(features[0], expected[-1] if isinstance(expected, (list, tuple)) else expected)

    for bad in ([cfg, '--ego-norm-stats'], [cfg, ckpt, '--ego-norm-stats', '--cam-from', cfg, ckpt]):
        with pytest.raises(SystemExit):
            tool.parse_args(bad)
