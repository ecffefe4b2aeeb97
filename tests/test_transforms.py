"""Tests of the multi-view loading, transform and packing steps."""

import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from PIL import Image

from looptrans.datasets import LoadAffordanceGT, LoadAffordanceViews, MultiViewTransform, PackAffordanceInputs


def _coord_image(h, w, tag):
    """Image whose pixels encode their own position: B = x, G = y, R = tag."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w, dtype=np.uint8)[None]
    img[..., 1] = np.arange(h, dtype=np.uint8)[:, None]
    img[..., 2] = tag
    return img


# --------------------------------------------------------------------- #
# LoadAffordanceViews
# --------------------------------------------------------------------- #
@pytest.fixture
def image_files(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # pure-ish red in RGB
    rgb[..., 1] = 10
    paths = {}
    paths['png'] = str(tmp_path / 'red.png')
    Image.fromarray(rgb).save(paths['png'])
    paths['jpg'] = str(tmp_path / 'red.jpg')
    Image.fromarray(rgb).save(paths['jpg'], quality=95)
    paths['gray'] = str(tmp_path / 'gray.jpg')
    Image.fromarray(np.full((12, 14), 77, np.uint8)).save(paths['gray'])
    paths['cmyk'] = str(tmp_path / 'cmyk.jpg')
    Image.fromarray(rgb).convert('CMYK').save(paths['cmyk'])
    paths['rgba'] = str(tmp_path / 'rgba.png')
    Image.fromarray(np.dstack([rgb, np.full((20, 30), 9, np.uint8)])).save(paths['rgba'])
    paths['corrupt'] = str(tmp_path / 'corrupt.jpg')
    with open(paths['corrupt'], 'wb') as f:
        f.write(b'\xff\xd8 this is not a jpeg')
    return paths


def test_load_views_bgr_three_channels(image_files):
    load = TRANSFORMS.build(dict(type='LoadAffordanceViews'))
    assert isinstance(load, LoadAffordanceViews)
    res = load(
        dict(img_path=image_files['png'], exo_paths=[image_files['gray'], image_files['cmyk'], image_files['rgba']])
    )
    img = res['img']
    assert img.dtype == np.uint8 and img.shape == (20, 30, 3)
    assert (img[..., 2] == 200).all() and (img[..., 1] == 10).all()
    assert (img[..., 0] == 0).all()  # BGR: red is the last channel
    assert res['ori_shape'] == res['img_shape'] == (20, 30)
    gray, cmyk, rgba = res['exo_imgs']
    assert gray.shape == (12, 14, 3) and (gray == 77).all()
    assert cmyk.shape == (20, 30, 3) and cmyk.dtype == np.uint8
    assert abs(int(cmyk[..., 2].mean()) - 200) < 12  # red survives CMYK
    assert rgba.shape == (20, 30, 3) and (rgba[..., 2] == 200).all()


def test_load_views_test_time_has_no_exo(image_files):
    res = LoadAffordanceViews()(dict(img_path=image_files['jpg']))
    assert 'exo_imgs' not in res and res['img'].shape == (20, 30, 3)


def test_load_views_errors_name_the_file(image_files, tmp_path):
    load = LoadAffordanceViews()
    with pytest.raises(OSError, match='corrupt.jpg'):
        load(dict(img_path=image_files['jpg'], exo_paths=[image_files['corrupt']]))
    missing = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        load(dict(img_path=missing))
    empty = str(tmp_path / 'empty.jpg')
    open(empty, 'wb').close()
    with pytest.raises(OSError, match='empty.jpg'):
        load(dict(img_path=empty))


# --------------------------------------------------------------------- #
# LoadAffordanceGT
# --------------------------------------------------------------------- #
def test_load_gt_8bit_gray(tmp_path):
    gt = np.random.RandomState(0).randint(0, 256, (17, 23)).astype(np.uint8)
    path = str(tmp_path / 'gt.png')
    Image.fromarray(gt).save(path)
    res = TRANSFORMS.build(dict(type='LoadAffordanceGT'))(dict(gt_path=path))
    heat = res['gt_heatmap']
    assert heat.dtype == np.float64 and heat.shape == (17, 23)
    np.testing.assert_array_equal(heat, gt / 255.0)  # float64, as the published evaluation


def test_load_gt_16bit(tmp_path):
    gt = np.random.RandomState(1).randint(0, 65536, (9, 11)).astype(np.uint16)
    path = str(tmp_path / 'gt16.png')
    assert cv2.imwrite(path, gt)
    heat = LoadAffordanceGT()(dict(gt_path=path))['gt_heatmap']
    assert heat.shape == (9, 11) and heat.dtype == np.float64
    np.testing.assert_array_equal(heat, gt / 65535.0)


@pytest.mark.parametrize('mode', ['RGB', 'RGBA'])
def test_load_gt_color_is_converted_to_gray(tmp_path, mode):
    rng = np.random.RandomState(2)
    rgb = rng.randint(0, 256, (8, 10, 3)).astype(np.uint8)
    # opaque RGBA: the colour is the map (with a varying alpha as well, which one is the map is ambiguous:
    # refused, tests/test_gt_channels.py)
    arr = rgb if mode == 'RGB' else np.dstack([rgb, np.full((8, 10), 255, np.uint8)])
    path = str(tmp_path / f'gt_{mode}.png')
    Image.fromarray(arr).save(path)  # mode inferred from the channels
    assert Image.open(path).mode == mode
    heat = LoadAffordanceGT()(dict(gt_path=path))['gt_heatmap']
    r, g, b = (rgb[..., i].astype(np.float64) / 255 for i in range(3))
    expected = 0.299 * r + 0.587 * g + 0.114 * b  # ITU-R 601 luma
    np.testing.assert_allclose(heat, expected, atol=1e-3)


def test_load_gt_gray_rgb_equals_gray(tmp_path):
    gray = np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5)
    path = str(tmp_path / 'gray_rgb.png')
    Image.fromarray(np.dstack([gray] * 3)).save(path)
    heat = LoadAffordanceGT()(dict(gt_path=path))['gt_heatmap']
    np.testing.assert_array_equal(heat, gray / 255.0)  # exactly the gray read


def test_load_gt_corrupt_names_the_file(tmp_path):
    path = str(tmp_path / 'broken_gt.png')
    with open(path, 'wb') as f:
        f.write(b'\x89PNG garbage')
    with pytest.raises(OSError, match='broken_gt.png'):
        LoadAffordanceGT()(dict(gt_path=path))


# --------------------------------------------------------------------- #
# MultiViewTransform
# --------------------------------------------------------------------- #
TRAIN_VIEW_PIPELINE = [  # as the AGD20K config
    dict(type='ResizeShortEdge', size=256),
    dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]


def _crop_params(out):
    """(x0, y0, flipped) of a crop of a 256x256 coordinate image."""
    xs = out[0, :, 0].astype(int)
    flipped = xs[0] > xs[-1]
    x0 = xs[-1] if flipped else xs[0]
    y0 = int(out[0, 0, 1])
    expected_x = np.arange(x0, x0 + 224)
    np.testing.assert_array_equal(xs, expected_x[::-1] if flipped else expected_x)
    np.testing.assert_array_equal(out[:, 0, 1], np.arange(y0, y0 + 224))
    return int(x0), y0, bool(flipped)


def test_multi_view_exo_views_get_independent_crops():
    mvt = TRANSFORMS.build(dict(type='MultiViewTransform', transforms=TRAIN_VIEW_PIPELINE))
    assert isinstance(mvt, MultiViewTransform)
    np.random.seed(0)
    params = set()
    for _ in range(3):
        res = mvt(
            dict(
                img=_coord_image(256, 256, 0),
                exo_imgs=[_coord_image(256, 256, t) for t in (1, 2, 3)],
                img_shape=(256, 256),
                ori_shape=(256, 256),
            )
        )
        views = [res['img']] + res['exo_imgs']
        for tag, view in enumerate(views):
            assert view.shape == (224, 224, 3)
            assert (view[..., 2] == tag).all()  # views stay in order
        ps = [_crop_params(v) for v in views]
        params.update(ps)
        assert len(set(ps)) > 1  # not one shared crop for all views
        assert res['img_shape'] == (224, 224)
        assert res['flip'] == ps[0][2]  # ego's flip is written back
        assert res['ori_shape'] == (256, 256)
    assert len(params) >= 10


def test_multi_view_resize_and_missing_exo():
    mvt = MultiViewTransform([dict(type='Resize', scale=(224, 224), keep_ratio=False, backend='pillow')])
    img = np.random.RandomState(0).randint(0, 255, (300, 250, 3), np.uint8)
    res = mvt(dict(img=img, img_shape=(300, 250), ori_shape=(300, 250)))
    expected = np.asarray(Image.fromarray(img).resize((224, 224), Image.BILINEAR))
    np.testing.assert_array_equal(res['img'], expected)
    assert res['img_shape'] == (224, 224) and res['ori_shape'] == (300, 250)
    assert 'exo_imgs' not in res


def test_multi_view_passes_none_through():
    mvt = MultiViewTransform([lambda results: None])
    assert mvt(dict(img=np.zeros((4, 4, 3), np.uint8))) is None


# --------------------------------------------------------------------- #
# PackAffordanceInputs
# --------------------------------------------------------------------- #
def test_pack_train_sample():
    ego = _coord_image(8, 6, 0)
    exos = [_coord_image(8, 6, t) for t in (1, 2, 3)]
    res = TRANSFORMS.build(dict(type='PackAffordanceInputs'))(
        dict(
            img=ego,
            exo_imgs=exos,
            img_path='ego.jpg',
            exo_paths=['a.jpg', 'b.jpg', 'c.jpg'],
            ori_shape=(30, 20),
            img_shape=(8, 6),
            gt_label=2,
            affordance='hold',
            object='cup',
            sample_idx=7,
            flip=True,
            unrelated='x',
        )
    )
    inputs, sample = res['inputs'], res['data_samples']
    assert inputs.shape == (4, 3, 8, 6) and inputs.dtype == torch.uint8
    for v, img in enumerate([ego] + exos):
        assert torch.equal(inputs[v], torch.from_numpy(img).permute(2, 0, 1))
    assert isinstance(sample, SegDataSample)
    meta = sample.metainfo
    assert meta['exo_paths'] == ['a.jpg', 'b.jpg', 'c.jpg']
    assert (meta['gt_label'], meta['affordance'], meta['object']) == (2, 'hold', 'cup')
    assert meta['ori_shape'] == (30, 20) and meta['img_shape'] == (8, 6)
    assert meta['sample_idx'] == 7 and meta['flip'] is True
    assert 'unrelated' not in meta and 'gt_heatmap' not in sample


def test_pack_test_sample_with_gt():
    heat = np.random.RandomState(0).rand(5, 7).astype(np.float32)
    res = PackAffordanceInputs()(
        dict(img=np.zeros((4, 4, 3), np.uint8), img_path='e.jpg', gt_path='e.png', gt_heatmap=heat, gt_label=0)
    )
    assert res['inputs'].shape == (1, 3, 4, 4)
    gt = res['data_samples'].gt_heatmap
    assert isinstance(gt, PixelData)
    assert gt.data.shape == (1, 5, 7) and gt.data.dtype == torch.float32
    assert torch.equal(gt.data[0], torch.from_numpy(heat))
    assert res['data_samples'].gt_path == 'e.png'


def test_pack_rejects_views_of_different_sizes():
    with pytest.raises(ValueError, match='MultiViewTransform'):
        PackAffordanceInputs()(
            dict(img=np.zeros((4, 4, 3), np.uint8), img_path='ego.jpg', exo_imgs=[np.zeros((5, 4, 3), np.uint8)])
        )


def test_full_train_pipeline_from_files(tmp_path):
    """Load -> MultiViewTransform -> Pack on real files of mixed sizes."""
    paths = []
    for i, (h, w) in enumerate([(300, 260), (240, 320), (256, 256), (231, 287)]):
        p = str(tmp_path / f'v{i}.jpg')
        cv2.imwrite(p, np.full((h, w, 3), 40 * i, np.uint8))
        paths.append(p)
    pipeline = [
        LoadAffordanceViews(),
        MultiViewTransform(TRAIN_VIEW_PIPELINE),
        PackAffordanceInputs(),
    ]
    res = dict(img_path=paths[0], exo_paths=paths[1:], gt_label=1)
    for t in pipeline:
        res = t(res)
    assert res['inputs'].shape == (4, 3, 224, 224)
    assert res['inputs'].dtype == torch.uint8
    assert res['data_samples'].ori_shape == (300, 260)
    assert res['data_samples'].img_shape == (224, 224)
    means = res['inputs'].float().mean(dim=(1, 2, 3))
    assert torch.allclose(means, torch.tensor([0.0, 40.0, 80.0, 120.0]), atol=2)
    assert osp.basename(res['data_samples'].exo_paths[0]) == 'v1.jpg'
