"""The catalogue of bad inputs (docs/bad_inputs.md): one test per entry.

Each test copies the small generated tree, breaks it in one way and checks
what a user gets: an error at construction naming the path and the fix, a
logged skip with a count, or a conversion, and never a crash mid-epoch or a
NaN in the metric.
"""

import glob
import logging
import os
import os.path as osp
import pickle
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from PIL import Image
from torch.utils.data import DataLoader

from looptrans.datasets import AGD20KDataset, HICOIIFDataset, LoadAffordanceGT
from looptrans.datasets.file_io import BadFileError, MissingFileError, probe_file, truncation
from looptrans.evaluation import AffordanceMetric
from looptrans.testing import SYNTHETIC_SEEN_CLASSES

SEEN = dict(classes=SYNTHETIC_SEEN_CLASSES)
TRAIN_PIPELINE = [
    dict(type='LoadAffordanceViews'),
    dict(
        type='MultiViewTransform',
        transforms=[
            dict(type='Resize', scale=(256, 256), keep_ratio=False),
            dict(type='mmseg.RandomCrop', crop_size=(224, 224)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ],
    ),
    dict(type='PackAffordanceInputs'),
]
TEST_PIPELINE = [
    dict(type='LoadAffordanceViews'),
    dict(type='MultiViewTransform', transforms=[dict(type='Resize', scale=(224, 224), keep_ratio=False)]),
    dict(type='LoadAffordanceGT'),
    dict(type='PackAffordanceInputs'),
]
N_TRAIN, N_TEST = 14 * 3, 14  # synthetic_root: 3 exo, 1 ego, 1 test per pair


# --------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------- #
@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


@pytest.fixture
def tree(synthetic_root, tmp_path):
    """A private copy of the Seen split, ``<tmp>/tree/Seen/...``."""
    dst = str(tmp_path / 'tree')
    shutil.copytree(osp.join(synthetic_root, 'Seen'), osp.join(dst, 'Seen'))
    return dst


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def text(self, level=logging.DEBUG):
        return '\n'.join(r.getMessage() for r in self.records if r.levelno >= level)


@pytest.fixture
def log():
    """Everything logged through MMEngine's current logger."""
    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def path(root, *parts):
    return osp.join(root, 'Seen', *parts)


def exo(root, aff='hold', obj='cup', i=0):
    return path(root, 'trainset', 'exocentric', aff, obj, f'{obj}_{i:06d}.jpg')


def ego(root, aff='hold', obj='cup', i=0):
    return path(root, 'trainset', 'egocentric', aff, obj, f'{obj}_{i:06d}.jpg')


def query_img(root, aff='hold', obj='cup', i=0):
    return path(root, 'testset', 'egocentric', aff, obj, f'{obj}_{i:06d}.jpg')


def gt(root, aff='hold', obj='cup', i=0):
    return path(root, 'testset', 'GT', aff, obj, f'{obj}_{i:06d}.png')


def train_ds(root, **kwargs):
    kwargs.setdefault('pipeline', TRAIN_PIPELINE)
    kwargs.setdefault('metainfo', SEEN)
    return AGD20KDataset(root, split='Seen', **kwargs)


def eval_ds(root, **kwargs):
    kwargs.setdefault('pipeline', TEST_PIPELINE)
    return AGD20KDataset(root, split='Seen', mode='test', metainfo=SEEN, **kwargs)


def break_file(p, how):
    """Damage ``p`` in place; returns ``p``."""
    data = open(p, 'rb').read()
    if how == 'deleted':
        os.remove(p)
        return p
    new = dict(
        corrupt=b'\xff\xd8\xff\xe0 not really a jpeg' + bytes(200),
        truncated=data[: len(data) // 2],
        zero_byte=b'',
        text=b'<html>404 Not Found</html>\n',
    )[how]
    with open(p, 'wb') as f:
        f.write(new)
    return p


BREAKS = ['corrupt', 'truncated', 'zero_byte', 'text']


# --------------------------------------------------------------------- #
# unreadable images: training skips and resamples, never crashes
# --------------------------------------------------------------------- #
@pytest.mark.parametrize('how', BREAKS + ['deleted'])
def test_unreadable_exo_anchor_is_skipped_mid_epoch(tree, log, how):
    ds = train_ds(tree)  # not verified: the file is found when loaded
    bad = break_file(exo(tree), how)
    assert len(ds) == N_TRAIN
    loader = DataLoader(ds, batch_size=8, shuffle=False, num_workers=0, collate_fn=pseudo_collate)
    np.random.seed(0)
    n = 0
    for batch in loader:  # a whole epoch, no crash
        for inputs, sample in zip(batch['inputs'], batch['data_samples']):
            assert inputs.shape == (4, 3, 224, 224)
            assert bad not in sample.exo_paths
            n += 1
    assert n == N_TRAIN
    bad_idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['exo_paths'][0] == bad)
    assert ds[bad_idx]['data_samples'].sample_idx != bad_idx  # resampled
    assert ds.skipped[bad] == ds.num_skipped >= 2
    warnings = [
        r.getMessage() for r in log.records if r.levelno == logging.WARNING and 'skipped training' in r.getMessage()
    ]
    assert len(warnings) == 1  # one line per bad file, then only counted
    assert repr(bad) in warnings[0] and 'drew another one' in warnings[0]
    assert '1 bad file(s), 1 item(s) skipped so far' in warnings[0]


def test_unreadable_extra_exo_view_is_not_drawn_again(tree, log):
    bad = break_file(exo(tree, i=1), 'truncated')
    ds = train_ds(tree)
    anchor = next(i for i in range(len(ds)) if ds.get_data_info(i)['exo_paths'][0] == exo(tree, i=0))
    np.random.seed(0)
    ds.prepare_data(anchor)  # num_exo=3 of 3 files: draws the bad one
    assert ds.num_skipped == 1 and repr(bad) in log.text(logging.WARNING)
    for _ in range(10):  # now the anchor's item loads, without the bad file
        sample = ds.prepare_data(anchor)['data_samples']
        assert sample.sample_idx == anchor
        assert bad not in sample.exo_paths and len(sample.exo_paths) == 3
    assert ds.num_skipped == 1


def test_unreadable_egocentric_falls_back_to_other_objects(tree):
    bad = break_file(ego(tree), 'corrupt')  # the only ego image of hold/cup
    ds = train_ds(tree)
    idx = next(
        i
        for i in range(len(ds))
        if ds.get_data_info(i)['object'] == 'cup' and ds.get_data_info(i)['affordance'] == 'hold'
    )
    np.random.seed(0)
    assert ds.prepare_data(idx) is None and ds.skipped[bad] == 1
    for _ in range(5):
        sample = ds.prepare_data(idx)['data_samples']
        assert sample.affordance == 'hold' and sample.img_path != bad
        assert '/hold/' in sample.img_path.replace('\\', '/')


def test_everything_unreadable_gives_a_clear_error(tree):
    ds = train_ds(tree, max_refetch=4)
    for p in glob.glob(path(tree, 'trainset', 'exocentric', '*', '*', '*')):
        break_file(p, 'zero_byte')  # e.g. a network mount that went away
    with pytest.raises(RuntimeError, match='5 items in a row') as err:
        ds[0]
    assert 'check_dataset.py' in str(err.value)
    assert '.jpg' in str(err.value) and ds.num_skipped == 5


def test_bad_file_error_survives_pickling():
    # raised in a DataLoader worker, re-raised in the main process
    err = pickle.loads(pickle.dumps(MissingFileError('gone: /x.jpg', '/x.jpg')))
    assert isinstance(err, FileNotFoundError) and err.path == '/x.jpg'
    assert str(err) == 'gone: /x.jpg'


# --------------------------------------------------------------------- #
# unreadable test files: error naming the file (scores must be complete)
# --------------------------------------------------------------------- #
@pytest.mark.parametrize('how', BREAKS)
@pytest.mark.parametrize('which', ['image', 'gt'])
def test_unreadable_test_file_raises_naming_it(tree, how, which):
    ds = eval_ds(tree)
    bad = break_file(query_img(tree) if which == 'image' else gt(tree), how)
    idx = next(i for i in range(len(ds)) if bad in ds.get_data_info(i).values())
    with pytest.raises(BadFileError) as err:
        ds[idx]
    msg = str(err.value)
    assert err.value.path == bad and repr(bad) in msg
    assert 'verify_images=True' in msg and f'Test item {idx}:' in msg


# --------------------------------------------------------------------- #
# verify_images: found at construction, dropped with a count
# --------------------------------------------------------------------- #
@pytest.mark.parametrize('level', [True, 'header', 'full'])
def test_verify_images_drops_unreadable_training_files(tree, log, level):
    bad = [
        break_file(exo(tree, i=0), 'truncated'),
        break_file(exo(tree, 'pour', 'kettle', 2), 'zero_byte'),
        break_file(exo(tree, 'push', 'bicycle', 1), 'text'),
        break_file(ego(tree, 'hold', 'cup'), 'corrupt'),
    ]
    ds = train_ds(tree, verify_images=level)
    assert len(ds) == N_TRAIN - 3  # three exocentric anchors gone
    text = log.text(logging.WARNING)
    assert 'verify_images dropped 4 unreadable file(s) of 56' in text
    assert bad[0] in text
    assert "checked 56 file(s)" in log.text(logging.INFO)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert not set(bad) & set(info['exo_paths'] + [info['img_path']])
    # hold/cup lost its only egocentric image: other objects of 'hold' serve
    assert 'no egocentric folder' in text and 'hold/cup' in text


def test_verify_images_all_egocentric_of_an_affordance_bad(tree):
    break_file(ego(tree, 'ride', 'bicycle'), 'corrupt')
    with pytest.raises(FileNotFoundError, match=r"\['ride'\].*no egocentric"):
        train_ds(tree, verify_images=True)


@pytest.mark.parametrize('level', ['header', 'full'])
def test_verify_images_drops_unreadable_test_pairs(tree, log, level):
    break_file(query_img(tree), 'truncated')
    break_file(gt(tree, 'pour', 'kettle'), 'corrupt')
    ds = eval_ds(tree, verify_images=level)
    assert len(ds) == N_TEST - 2
    assert 'verify_images dropped 2 unreadable file(s) of 28' in log.text()
    for i in range(len(ds)):  # every remaining item loads
        assert ds[i]['data_samples'].gt_heatmap.data.shape[0] == 1


def test_verify_images_bad_value(tree):
    with pytest.raises(ValueError, match='verify_images'):
        train_ds(tree, verify_images='fast')


def test_truncation_check_is_independent_of_the_decoder(tree):
    data = open(exo(tree), 'rb').read()
    assert truncation(data) is None
    assert 'truncated' in truncation(data[:-2])  # only the EOI marker cut
    assert 'truncated' in truncation(data[: len(data) // 3])
    png = open(gt(tree), 'rb').read()
    assert truncation(png) is None and 'IEND' in truncation(png[:-20])
    # header-level probe finds it although PIL can parse the header
    open(exo(tree), 'wb').write(data[:-2])
    assert 'truncated' in probe_file(exo(tree), level='header').error


# --------------------------------------------------------------------- #
# stray files and folders
# --------------------------------------------------------------------- #
def test_non_image_and_hidden_files_are_ignored_with_a_count(tree, log):
    folder = osp.dirname(exo(tree))
    for name in ('notes.txt', 'labels.csv', '.DS_Store', 'Thumbs.db', '._cup_000000.jpg'):
        open(osp.join(folder, name), 'w').write('x')
    ckpt = osp.join(folder, '.ipynb_checkpoints')
    os.makedirs(ckpt)
    shutil.copy(exo(tree), osp.join(ckpt, 'cup_000000-checkpoint.jpg'))
    # a junk folder at the affordance level would otherwise be an
    # "affordance not in the class list" error
    os.makedirs(path(tree, 'trainset', 'exocentric', '.ipynb_checkpoints'))
    os.makedirs(path(tree, 'trainset', 'exocentric', '__MACOSX', 'hold'))
    ds = train_ds(tree)
    assert len(ds) == N_TRAIN
    warn = log.text(logging.WARNING)
    assert (
        'ignored 2 file(s)' in warn and 'whose suffix is not an image suffix' in warn and 'hold/cup/notes.txt' in warn
    )
    info = log.text(logging.INFO)
    # .DS_Store and ._x are never listed by MMEngine's local backend
    assert 'skipped 4 hidden or junk file(s)/folder(s)' in info
    assert '.ipynb_checkpoints/' in info and '__MACOSX/' in info


def test_misplaced_image_is_ignored_with_a_count(tree, log):
    shutil.copy(exo(tree), path(tree, 'trainset', 'exocentric', 'hold', 'stray.jpg'))
    ds = train_ds(tree)
    assert len(ds) == N_TRAIN
    assert "ignored 1 file(s)" in log.text(logging.WARNING) and 'hold/stray.jpg' in log.text(logging.WARNING)


# --------------------------------------------------------------------- #
# unpaired test files, duplicates
# --------------------------------------------------------------------- #
def test_test_image_without_gt_and_gt_without_image(tree, log):
    os.remove(gt(tree))
    os.remove(query_img(tree, 'pour', 'kettle'))
    ds = eval_ds(tree)
    assert len(ds) == N_TEST - 2
    text = log.text(logging.WARNING)
    assert 'skipped 1 test image(s) without a GT heatmap' in text
    assert 'cup_000000.jpg' in text
    assert 'skipped 1 GT file(s) without a test image' in text
    assert 'kettle_000000.png' in text


def test_test_images_sharing_a_stem(tree, log):
    img = cv2.imread(query_img(tree))
    cv2.imwrite(query_img(tree).replace('.jpg', '.png'), img)
    ds = eval_ds(tree)
    assert len(ds) == N_TEST
    assert 'skipped 1 test image(s) that share their stem' in log.text(logging.WARNING)


# --------------------------------------------------------------------- #
# empty folders, class list vs disk, wrong root / split
# --------------------------------------------------------------------- #
def test_empty_object_and_affordance_folders(tree, log):
    os.makedirs(path(tree, 'trainset', 'exocentric', 'hold', 'teapot'))
    shutil.rmtree(path(tree, 'trainset', 'exocentric', 'push', 'bicycle'))
    os.makedirs(path(tree, 'trainset', 'exocentric', 'push', 'bicycle'))
    ds = train_ds(tree)
    assert len(ds) == N_TRAIN - 3
    assert 'push' not in {ds.get_data_info(i)['affordance'] for i in range(len(ds))}
    text = log.text(logging.WARNING)
    assert "2 affordance/object folder(s)" in text and 'hold/teapot' in text
    assert "1 class(es) have an exocentric folder but no images" in text and "'push'" in text
    os.makedirs(path(tree, 'testset', 'egocentric', 'hold', 'teapot'))
    assert len(eval_ds(tree)) == N_TEST
    assert 'hold/teapot' in log.text(logging.WARNING)


def test_affordance_folder_not_in_class_list(tree):
    os.makedirs(path(tree, 'trainset', 'exocentric', 'fly', 'kite'))
    with pytest.raises(ValueError) as err:
        train_ds(tree)
    msg = str(err.value)
    assert "['fly']" in msg
    assert repr(path(tree, 'trainset', 'exocentric')) in msg
    assert 'metainfo=dict(classes=(...))' in msg


def test_class_missing_on_disk(tree):
    shutil.rmtree(path(tree, 'trainset', 'exocentric', 'push'))
    with pytest.raises(FileNotFoundError) as err:
        train_ds(tree)
    msg = str(err.value)
    assert "['push']" in msg
    assert repr(path(tree, 'trainset', 'exocentric', 'push')) in msg
    assert 'metainfo=dict(classes=(...))' in msg and 'Expected layout' in msg


def test_wrong_data_root_and_split(tree):
    with pytest.raises(FileNotFoundError) as err:
        train_ds(osp.join(tree, 'typo'))
    assert repr(osp.join(tree, 'typo')) in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        AGD20KDataset(tree, split='seen', metainfo=SEEN)
    assert "['Seen']" in str(err.value) and 'set `split`' in str(err.value)
    with pytest.raises(FileNotFoundError) as err:  # HICO-IIF has no split
        HICOIIFDataset(tree, metainfo=SEEN)
    assert repr(osp.join(tree, 'trainset', 'exocentric')) in str(err.value)
    with pytest.raises(ValueError, match="'Seen', 'Unseen'"):
        AGD20KDataset(tree, split='Val')  # no default class list


# --------------------------------------------------------------------- #
# GT formats, sizes and content
# --------------------------------------------------------------------- #
def _load_gt(p):
    return LoadAffordanceGT()(dict(gt_path=p))['gt_heatmap']


def test_gt_rgb_rgba_16bit_are_converted(tree, log):
    g8 = cv2.imread(gt(tree), cv2.IMREAD_UNCHANGED)
    assert g8.ndim == 2 and g8.dtype == np.uint8
    ref = g8.astype(np.float64) / 255
    Image.fromarray(np.dstack([g8] * 3)).save(gt(tree))
    np.testing.assert_allclose(_load_gt(gt(tree)), ref, atol=1e-6)
    Image.fromarray(np.dstack([g8] * 3 + [np.full_like(g8, 7)])).save(gt(tree))
    np.testing.assert_allclose(_load_gt(gt(tree)), ref, atol=1e-6)
    assert cv2.imwrite(gt(tree), g8.astype(np.uint16) * 257)  # 16-bit PNG
    np.testing.assert_allclose(_load_gt(gt(tree)), ref, atol=1e-6)
    assert 'colour' not in log.text(logging.WARNING)  # gray in any format
    # and through the dataset: the same packed heatmap as the 8-bit file
    ds = eval_ds(tree)
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['gt_path'] == gt(tree))
    heat = ds[idx]['data_samples'].gt_heatmap.data[0].numpy()
    np.testing.assert_allclose(heat, ref, atol=1e-6)


def test_colour_gt_warns_once_naming_the_file(tree, log):
    g8 = cv2.imread(gt(tree), cv2.IMREAD_GRAYSCALE)
    colour = cv2.applyColorMap(g8, cv2.COLORMAP_JET)
    cv2.imwrite(gt(tree), colour)
    cv2.imwrite(gt(tree, 'pour', 'kettle'), colour)
    load = LoadAffordanceGT()
    load(dict(gt_path=gt(tree)))
    load(dict(gt_path=gt(tree, 'pour', 'kettle')))
    warnings = [r.getMessage() for r in log.records if 'is a colour image' in r.getMessage()]
    assert len(warnings) == 1 and repr(gt(tree)) in warnings[0]


def _predict(ds, idx):
    """A fixed non-trivial prediction (1, 224, 224) for item ``idx``."""
    yy, xx = np.mgrid[0:224, 0:224]
    cy, cx = 40 + 7 * idx % 150, 60 + 11 * idx % 120
    pred = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 800.0)
    return torch.from_numpy(pred[None].astype(np.float32))


def _evaluate(ds, indices=None, gt_override=None):
    metric = AffordanceMetric()
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)) if indices is None else indices:
        sample = ds[i]['data_samples']
        if gt_override is not None and i in gt_override:
            sample.gt_heatmap = PixelData(data=gt_override[i])
        sample.pred_heatmap = PixelData(data=_predict(ds, i))
        metric.process({}, [sample.to_dict()])
    return metric.evaluate(len(metric.results))


def test_gt_of_another_size_than_its_image(tree):
    g8 = cv2.imread(gt(tree), cv2.IMREAD_GRAYSCALE)
    h, w = g8.shape
    small = cv2.resize(g8, (w // 2, h // 3), interpolation=cv2.INTER_AREA)
    cv2.imwrite(gt(tree), small)
    ds = eval_ds(tree)
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['gt_path'] == gt(tree))
    assert ds[idx]['data_samples'].gt_heatmap.data.shape == (1, h // 3, w // 2)
    scores = _evaluate(ds, [idx])
    assert all(np.isfinite(v) for v in scores.values())
    # the metric resizes GT to 224x224 (published protocol): a GT given
    # already at 224x224 scores the same
    at224 = cv2.resize(small.astype(np.float32) / 255, (224, 224), interpolation=cv2.INTER_LINEAR)
    same = _evaluate(ds, [idx], {idx: torch.from_numpy(at224)[None]})
    for k in scores:
        assert scores[k] == pytest.approx(same[k], rel=1e-5, abs=1e-6)


def test_all_zero_gt_is_left_out_of_the_means(tree, log):
    g8 = cv2.imread(gt(tree), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(gt(tree), np.zeros_like(g8))
    ds = eval_ds(tree)
    zero = next(i for i in range(len(ds)) if ds.get_data_info(i)['gt_path'] == gt(tree))
    scores = _evaluate(ds)
    assert set(scores) == {'KLD', 'SIM', 'NSS'}
    assert all(np.isfinite(v) for v in scores.values())
    assert 'num_empty_gt=1' in log.text()
    rest = _evaluate(ds, [i for i in range(len(ds)) if i != zero])
    for k in scores:
        assert scores[k] == pytest.approx(rest[k], rel=1e-6)


# --------------------------------------------------------------------- #
# odd but valid images: converted, never a crash
# --------------------------------------------------------------------- #
@pytest.mark.parametrize('size', [(100, 80), (7, 5)])
def test_image_smaller_than_the_crop(tree, size):
    h, w = size
    for p in (exo(tree, i=0), exo(tree, i=1), ego(tree)):
        img = cv2.resize(cv2.imread(p), (w, h), interpolation=cv2.INTER_AREA)
        cv2.imwrite(p, img)
    ds = train_ds(tree)
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['exo_paths'][0] == exo(tree))
    np.random.seed(0)
    item = ds[idx]
    assert item['data_samples'].sample_idx == idx  # loaded, not skipped
    assert item['inputs'].shape == (4, 3, 224, 224)
    assert item['data_samples'].ori_shape == (h, w) and ds.num_skipped == 0
    cv2.imwrite(query_img(tree), cv2.resize(cv2.imread(query_img(tree)), (w, h)))
    tds = eval_ds(tree)
    tidx = next(i for i in range(len(tds)) if tds.get_data_info(i)['img_path'] == query_img(tree))
    assert tds[tidx]['inputs'].shape == (1, 3, 224, 224)


def test_grayscale_and_cmyk_jpegs_load_as_bgr(tree):
    rgb = np.asarray(Image.open(ego(tree)).convert('RGB'))
    Image.fromarray(rgb).convert('L').save(exo(tree, i=0), quality=95)
    Image.fromarray(rgb).convert('CMYK').save(ego(tree), quality=95)
    assert Image.open(exo(tree)).mode == 'L'
    assert Image.open(ego(tree)).mode == 'CMYK'
    ds = train_ds(tree, pipeline=[dict(type='LoadAffordanceViews'), dict(type='PackAffordanceInputs')], num_exo=1)
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['exo_paths'][0] == exo(tree))
    np.random.seed(0)
    item = ds[idx]
    assert ds.num_skipped == 0
    ego_t, exo_t = item['inputs'][0], item['inputs'][1]
    assert ego_t.shape == (3, *rgb.shape[:2]) and ego_t.dtype == torch.uint8
    gray = exo_t.numpy()
    assert (gray[0] == gray[1]).all() and (gray[0] == gray[2]).all()
    # CMYK decodes to the same colours as PIL's own conversion (BGR order)
    ref = np.asarray(Image.open(ego(tree)).convert('RGB'))[..., ::-1]
    diff = np.abs(ego_t.permute(1, 2, 0).numpy().astype(int) - ref)
    assert diff.mean() < 3
