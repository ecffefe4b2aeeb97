"""Clip-consistent augmentation: the frames of a clip share one crop box and one flip.

Interaction Hotspots transforms the frames of a clip with group transforms (``GroupResize(256)``,
``GroupRandomCrop(224)``, ``GroupRandomHorizontalFlip``: one draw per clip) and its inactive image
with an independent ``default_transform``; LOCATE transforms every AGD20K image on its own.
"""

import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import TRANSFORMS

from looptrans.datasets.transforms import MultiViewTransform, PackAffordanceInputs

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
VIDEO_CONFIGS = [
    'configs/_base_/datasets/opra.py',
    'configs/_base_/datasets/epic_hotspots.py',
    'configs/_base_/datasets/synthetic_opra.py',
    'configs/_base_/datasets/synthetic_epic.py',
]
IMAGE_CONFIGS = [
    'configs/_base_/datasets/agd20k_seen.py',
    'configs/_base_/datasets/agd20k_unseen.py',
    'configs/_base_/datasets/hico_iif.py',
    'configs/_base_/datasets/synthetic_agd20k.py',
]


def coord_image(h: int, w: int, tag: int) -> np.ndarray:
    """B = x, G = y, R = tag (h, w <= 256)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None]
    img[..., 1] = np.arange(h)[:, None]
    img[..., 2] = tag
    return img


def crop_params(view: np.ndarray):
    """(x0, y0, flipped) of a 224x224 crop of a coordinate image."""
    xs = view[0, :, 0].astype(int)
    flipped = bool(xs[0] > xs[-1])
    x0 = int(xs[-1] if flipped else xs[0])
    expected = np.arange(x0, x0 + view.shape[1])
    np.testing.assert_array_equal(xs, expected[::-1] if flipped else expected)
    y0 = int(view[0, 0, 1])
    np.testing.assert_array_equal(view[:, 0, 1], np.arange(y0, y0 + view.shape[0]))
    return x0, y0, flipped


def train_view_pipeline(config: str):
    cfg = Config.fromfile(osp.join(REPO, config))
    (mvt,) = [t for t in cfg.train_pipeline if t['type'] == 'MultiViewTransform']
    return mvt


@pytest.mark.parametrize('config', VIDEO_CONFIGS)
def test_video_configs_share_one_draw_per_clip(config):
    mvt_cfg = train_view_pipeline(config)
    assert tuple(mvt_cfg.get('clip_views', ())) == ('exo_imgs',)
    mvt = TRANSFORMS.build(mvt_cfg)
    pack = PackAffordanceInputs()
    np.random.seed(0)
    clip_params, ego_differs = set(), 0
    for _ in range(12):
        res = mvt(
            dict(
                img=coord_image(256, 256, 0),
                exo_imgs=[coord_image(256, 256, t) for t in range(1, 9)],
                img_shape=(256, 256),
                ori_shape=(256, 256),
            )
        )
        inputs = pack(res)['inputs'].numpy().transpose(0, 2, 3, 1)  # (V, H, W, 3) BGR
        assert inputs.shape == (9, 224, 224, 3)
        for tag, view in enumerate(inputs):
            assert (view[..., 2] == tag).all()  # frames stay in order
        frames = [crop_params(v) for v in inputs[1:]]
        assert len(set(frames)) == 1, frames  # one crop box and one flip for the whole clip
        clip_params.add(frames[0])
        ego_differs += crop_params(inputs[0]) != frames[0]
    assert len(clip_params) >= 8  # still random from clip to clip
    assert {p[2] for p in clip_params} == {False, True}
    assert ego_differs >= 8  # the static image draws on its own


@pytest.mark.parametrize('config', IMAGE_CONFIGS)
def test_image_configs_keep_one_draw_per_image(config):
    mvt_cfg = train_view_pipeline(config)
    assert not mvt_cfg.get('clip_views')
    mvt = TRANSFORMS.build(mvt_cfg)
    np.random.seed(1)
    independent = 0
    for _ in range(4):
        res = mvt(
            dict(
                img=coord_image(256, 256, 0),
                exo_imgs=[coord_image(256, 256, t) for t in (1, 2, 3)],
                img_shape=(256, 256),
                ori_shape=(256, 256),
            )
        )
        independent += len({crop_params(v) for v in res['exo_imgs']}) > 1
    assert independent >= 3


def test_clip_frames_of_real_size_get_identical_pixels():
    """480x640 frames -> resize 256 -> one crop -> one flip: equal frames stay equal."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    texture[:, :320, 0] //= 2  # left/right asymmetric, so a flip shows
    mvt = TRANSFORMS.build(train_view_pipeline('configs/_base_/datasets/opra.py'))
    np.random.seed(3)
    flips = set()
    for _ in range(6):
        res = mvt(
            dict(
                img=texture.copy(),
                exo_imgs=[texture.copy() for _ in range(5)],
                img_shape=(480, 640),
                ori_shape=(480, 640),
            )
        )
        frames = res['exo_imgs']
        assert all(f.shape == (224, 224, 3) for f in frames)
        for f in frames[1:]:
            np.testing.assert_array_equal(f, frames[0])
        flips.add(bool(res.get('flip')))
    assert len(flips) == 2  # the ego view's own flip varies too (sanity of the draw)


def test_clip_views_validation_and_shape_mismatch():
    with pytest.raises(ValueError, match='clip_views'):
        MultiViewTransform([], views=('img',), clip_views=('exo_imgs',))
    with pytest.raises(TypeError, match='sequences'):
        MultiViewTransform([], clip_views='exo_imgs')
    mvt = MultiViewTransform([dict(type='RandomFlip', prob=0.5, direction='horizontal')], clip_views=('exo_imgs',))
    with pytest.raises(ValueError, match='different shapes'):
        mvt(dict(img=coord_image(8, 8, 0), exo_imgs=[coord_image(8, 8, 1), coord_image(8, 9, 2)]))
    assert 'clip_views' in repr(mvt)
