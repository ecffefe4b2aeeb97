"""Our loading + resizing gives the pixels of the published torchvision pipelines.

LOCATE / Cross-View-AG / WSMA / Interaction Hotspots: ``Image.open(path).convert('RGB')``, then
``transforms.Resize(256)`` (train) or ``transforms.Resize((224, 224))`` (test) on the PIL image. Ours:
``LoadAffordanceViews`` (BGR uint8), ``ResizeShortEdge(256)`` / mmcv ``Resize(..., backend='pillow')``.
The images are compared pixel for pixel; the brief allows one grey level, they are in fact identical.
"""

import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import TRANSFORMS
from PIL import Image
from torchvision import transforms as T

from looptrans.datasets.transforms import LoadAffordanceViews, ResizeShortEdge
from looptrans.datasets.transforms.resize import short_edge_size

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: (width, height): landscape, portrait, a truncation case (256 * 300 / 199 = 385.9 -> 385, where
#: rounding gives 386), upscaling a small image, a square, an image already at 256, a large one.
SIZES = [(640, 480), (333, 500), (300, 199), (100, 150), (90, 60), (400, 400), (256, 384), (1280, 720)]


def texture(w: int, h: int, seed: int) -> np.ndarray:
    """RGB image with edges and fine detail, so that aliasing and filter differences show."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 7 + y * 3) % 256, ((x // 5 + y // 7) % 2) * 255, (x * y) % 251], -1)
    img = img + rng.integers(-30, 31, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write(tmp_path, w, h, fmt, seed=0) -> str:
    path = str(tmp_path / f'img_{w}x{h}.{fmt}')
    Image.fromarray(texture(w, h, seed)).save(path, quality=90) if fmt == 'jpg' else Image.fromarray(
        texture(w, h, seed)
    ).save(path)
    return path


def published(path: str, transform) -> np.ndarray:
    """RGB uint8 array of the published pipeline's output (before ToTensor)."""
    return np.asarray(transform(Image.open(path).convert('RGB')))


def ours(path: str, transform) -> np.ndarray:
    """RGB uint8 array of our pipeline's output."""
    res = transform(LoadAffordanceViews()(dict(img_path=path)))
    return res['img'][..., ::-1]


def assert_same_pixels(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1, f'{(diff > 0).sum()} pixels differ, by up to {diff.max()} grey levels'
    np.testing.assert_array_equal(a, b)  # in fact identical


@pytest.mark.parametrize('w, h', SIZES)
def test_short_edge_size_is_torchvision_rule(w, h):
    img = Image.new('RGB', (w, h))
    tw, th = T.Resize(256)(img).size
    assert short_edge_size(h, w, 256) == (th, tw)
    tw, th = T.Resize(256, max_size=300)(img).size
    assert short_edge_size(h, w, 256, max_size=300) == (th, tw)
    assert short_edge_size(199, 300, 256) == (256, 385)  # truncation, not mmcv's rounding


@pytest.mark.parametrize('fmt', ['png', 'jpg'])
@pytest.mark.parametrize('w, h', SIZES)
def test_train_resize_equals_torchvision(tmp_path, w, h, fmt):
    path = write(tmp_path, w, h, fmt)
    expected = published(path, T.Resize(256))
    got = ours(path, ResizeShortEdge(256))
    assert_same_pixels(got, expected)


@pytest.mark.parametrize('w, h', SIZES)
def test_torch_backend_is_within_one_grey_level(tmp_path, w, h):
    """The opt-in faster backend: same filter, Pillow's fixed-point rounding differs by <= 1."""
    path = write(tmp_path, w, h, 'png')
    expected = published(path, T.Resize(256))
    got = ours(path, ResizeShortEdge(256, backend='torch'))
    assert got.shape == expected.shape
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05


def test_resize_short_edge_rejects_bad_arguments():
    for kwargs in (
        dict(size=0),
        dict(size=(256, 256)),
        dict(size=256, interpolation='cubic'),
        dict(size=256, max_size=200),
        dict(size=256, backend='cv2'),
        dict(size=256, backend='torch', interpolation='bicubic'),
    ):
        with pytest.raises(ValueError, match='ResizeShortEdge'):
            ResizeShortEdge(**kwargs)
    with pytest.raises(TypeError, match='uint8'):
        ResizeShortEdge(256)(dict(img=np.zeros((10, 10, 3), np.float32)))


@pytest.mark.parametrize('fmt', ['png', 'jpg'])
@pytest.mark.parametrize('w, h', SIZES)
def test_test_resize_equals_torchvision(tmp_path, w, h, fmt):
    path = write(tmp_path, w, h, fmt)
    resize = TRANSFORMS.build(dict(type='Resize', scale=(224, 224), keep_ratio=False, backend='pillow'))
    assert_same_pixels(ours(path, resize), published(path, T.Resize((224, 224))))


def test_gray_and_palette_images_decode_like_pil(tmp_path):
    """convert('RGB') of grayscale and palette files, then the resize."""
    gray = str(tmp_path / 'gray.jpg')
    Image.fromarray(texture(300, 200, 1)[..., 0]).save(gray, quality=90)
    pal = str(tmp_path / 'palette.png')
    Image.fromarray(texture(300, 200, 2)).convert('P').save(pal)
    for path in (gray, pal):
        assert_same_pixels(ours(path, ResizeShortEdge(256)), published(path, T.Resize(256)))


def test_exif_orientation_is_ignored_like_pil(tmp_path):
    """PIL's Image.open().convert('RGB') keeps the stored layout of a JPEG tagged 'rotate 90'."""
    path = str(tmp_path / 'rotated.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.fromarray(texture(300, 200, 4)).save(path, quality=90, exif=exif)
    img = LoadAffordanceViews()(dict(img_path=path))['img']
    assert img.shape == (200, 300, 3)
    assert_same_pixels(img[..., ::-1], published(path, lambda im: im))
    upright = LoadAffordanceViews(ignore_orientation=False)(dict(img_path=path))['img']
    assert upright.shape == (300, 200, 3)  # mmcv's default applies the tag


def test_cv2_resize_would_differ(tmp_path):
    """Sanity: the former cv2 (non-antialiased) resize is far from the published pixels."""
    path = write(tmp_path, 640, 480, 'png')
    expected = published(path, T.Resize(256))
    cv2_resize = TRANSFORMS.build(dict(type='Resize', scale=expected.shape[1::-1], keep_ratio=False))
    diff = np.abs(ours(path, cv2_resize).astype(int) - expected.astype(int))
    assert diff.max() > 20


@pytest.mark.parametrize(
    'config',
    [
        'configs/_base_/datasets/agd20k_seen.py',
        'configs/_base_/datasets/opra.py',
        'configs/_base_/datasets/epic_hotspots.py',
    ],
)
def test_config_train_pipeline_crops_the_torchvision_resize(tmp_path, config):
    """The config's whole train step (load, resize, crop, flip) gives a crop of torchvision's resize."""
    cfg = Config.fromfile(osp.join(REPO, config))
    (mvt_cfg,) = [t for t in cfg.train_pipeline if t['type'] == 'MultiViewTransform']
    mvt = TRANSFORMS.build(mvt_cfg)
    path = write(tmp_path, 500, 333, 'jpg', seed=3)
    full = published(path, T.Resize(256))  # 256 x 384 RGB
    np.random.seed(0)
    for _ in range(4):
        res = mvt(LoadAffordanceViews()(dict(img_path=path)))
        crop = res['img'][..., ::-1]
        assert crop.shape == (224, 224, 3)
        src = full[:, ::-1] if res['flip'] else full
        ys, xs = np.nonzero((src[:-223, :-223] == crop[0, 0]).all(-1))  # candidate top-left corners
        found = [(y, x) for y, x in zip(ys, xs) if np.array_equal(src[y : y + 224, x : x + 224], crop)]
        assert len(found) == 1


@pytest.mark.parametrize(
    'config',
    [
        'configs/_base_/datasets/agd20k_seen.py',
        'configs/_base_/datasets/agd20k_unseen.py',
        'configs/_base_/datasets/hico_iif.py',
        'configs/_base_/datasets/synthetic_agd20k.py',
        'configs/_base_/datasets/opra.py',
        'configs/_base_/datasets/epic_hotspots.py',
        'configs/_base_/datasets/synthetic_opra.py',
        'configs/_base_/datasets/synthetic_epic.py',
        'configs/looptrans_agd20k_to_opra.py',
        'configs/looptrans_agd20k_to_epic.py',
        'configs/looptrans_synthetic_to_opra.py',
    ],
)
def test_configs_resize_with_pillow(config):
    """Every dataset config resizes with PIL: train = ResizeShortEdge(256), test = pillow Resize(224)."""
    cfg = Config.fromfile(osp.join(REPO, config))

    def resizes(pipeline):
        found = []
        for t in pipeline:
            found += resizes(t.get('transforms', []))
            if 'Resize' in t['type']:
                found.append(t)
        return found

    if 'train_dataloader' in cfg and not config.startswith('configs/looptrans_'):
        (train,) = resizes(cfg.train_dataloader.dataset.pipeline)
        assert train['type'] == 'ResizeShortEdge' and train['size'] == 256
    (test,) = resizes(cfg.test_dataloader.dataset.pipeline)
    assert test['type'] == 'Resize' and test.get('backend') == 'pillow'
    assert tuple(test['scale']) == (224, 224) and test['keep_ratio'] is False
