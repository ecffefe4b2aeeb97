"""Tests of AGD20KDataset / HICOIIFDataset on a generated synthetic tree."""

import os
import os.path as osp
import shutil
from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from looptrans.datasets import (
    AGD20K_SEEN_CLASSES,
    AGD20K_UNSEEN_CLASSES,
    HICO_IIF_CLASSES,
    AGD20KDataset,
    HICOIIFDataset,
    affordance_folder,
)
from looptrans.datasets.classes import config_classes
from looptrans.testing import SYNTHETIC_SEEN_CLASSES, SYNTHETIC_UNSEEN_CLASSES, generate_synthetic_agd20k
from looptrans.utils.bilinear import resize_bilinear

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join(REPO, 'configs', '_base_', 'datasets')
COUNTS = dict(num_exo=3, num_ego=2, num_test=2)
SEEN = dict(classes=SYNTHETIC_SEEN_CLASSES)
UNSEEN = dict(classes=SYNTHETIC_UNSEEN_CLASSES)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data') / 'synthetic_agd20k')
    generate_synthetic_agd20k(out, seed=0, **COUNTS)
    return out


@pytest.fixture
def copy_tree(root, tmp_path):
    """A private copy of the Seen split that a test may modify."""
    dst = str(tmp_path / 'tree')
    shutil.copytree(osp.join(root, 'Seen'), osp.join(dst, 'Seen'))
    return dst


@pytest.fixture
def logs():
    """Capture the messages the datasets log."""
    messages = []
    with mock.patch.object(affordance_folder, 'print_log', lambda msg, *a, **k: messages.append(msg)):
        yield messages


def _listing(folder):
    return {
        (a, o): sorted(os.listdir(osp.join(folder, a, o)))
        for a in os.listdir(folder)
        for o in os.listdir(osp.join(folder, a))
    }


def _parts(path):
    """(set, view, affordance, object) from .../<set>/<view>/<aff>/<obj>/f."""
    p = path.replace('\\', '/').split('/')
    return p[-5], p[-4], p[-3], p[-2]


# --------------------------------------------------------------------- #
# class lists
# --------------------------------------------------------------------- #
def test_default_class_lists():
    assert len(AGD20K_SEEN_CLASSES) == 36 and len(AGD20K_UNSEEN_CLASSES) == 25
    assert len(HICO_IIF_CLASSES) == 10
    for classes in (AGD20K_SEEN_CLASSES, AGD20K_UNSEEN_CLASSES, HICO_IIF_CLASSES):
        assert list(classes) == sorted(set(classes))
    assert set(AGD20K_UNSEEN_CLASSES) < set(AGD20K_SEEN_CLASSES)
    assert {'beat', 'write', 'talk_on'} <= set(AGD20K_SEEN_CLASSES)
    assert 'write' not in AGD20K_UNSEEN_CLASSES
    assert HICO_IIF_CLASSES[:3] == ('cut_with', 'drink_with', 'hold')
    assert AGD20KDataset.default_classes('Unseen') == AGD20K_UNSEEN_CLASSES
    with pytest.raises(ValueError, match='metainfo'):
        AGD20KDataset.default_classes('Other')


# --------------------------------------------------------------------- #
# train mode
# --------------------------------------------------------------------- #
def test_train_length_labels_and_sampling_rules(root):
    ds = AGD20KDataset(root, split='Seen', mode='train', metainfo=SEEN)
    exo = _listing(osp.join(root, 'Seen', 'trainset', 'exocentric'))
    assert len(ds) == sum(len(v) for v in exo.values()) == 14 * 3
    assert ds.metainfo['classes'] == SYNTHETIC_SEEN_CLASSES
    assert not ds.test_mode
    anchors, repeats = [], 0
    np.random.seed(0)
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        aff, obj = info['affordance'], info['object']
        assert info['sample_idx'] == idx
        assert info['gt_label'] == SYNTHETIC_SEEN_CLASSES.index(aff)
        assert len(info['exo_paths']) == 3
        # the folder has 3 images, not more than num_exo: LOCATE draws the 2 extra views with repeats from the
        # whole folder, the anchor included
        names = [osp.basename(p) for p in info['exo_paths']]
        assert set(names) <= set(exo[(aff, obj)])
        repeats += len(set(names)) < len(names)
        for p in info['exo_paths']:
            assert _parts(p) == ('trainset', 'exocentric', aff, obj)
        assert _parts(info['img_path']) == ('trainset', 'egocentric', aff, obj)
        assert osp.isfile(info['img_path'])
        anchors.append(info['exo_paths'][0])
    # each exocentric image is the anchor of exactly one item
    assert len(set(anchors)) == len(ds)
    assert repeats > 0  # with repeats (P(no repeat) = 2/9 per item); distinct with a bigger folder, below


def test_train_draws_distinct_views_from_a_folder_of_more_than_num_exo(root):
    ds = AGD20KDataset(root, split='Seen', mode='train', metainfo=SEEN, num_exo=2)  # folders of 3 > 2
    np.random.seed(0)
    for idx in range(len(ds)):
        paths = ds.get_data_info(idx)['exo_paths']
        assert len(set(paths)) == 2 and osp.dirname(paths[0]) == osp.dirname(paths[1])
    labels = [ds.get_cat_ids(i)[0] for i in range(len(ds))]
    assert labels == [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
    np.random.seed(0)
    ds.get_cat_ids(0)
    assert np.random.rand() == np.random.RandomState(0).rand()  # no draw


def test_train_draws_with_replacement_when_folder_is_small(root):
    ds = AGD20KDataset(root, split='Seen', metainfo=SEEN, num_exo=6)
    np.random.seed(1)
    info = ds.get_data_info(0)
    assert len(info['exo_paths']) == 6
    folder = osp.dirname(info['exo_paths'][0])
    assert {osp.dirname(p) for p in info['exo_paths']} == {folder}
    assert len(set(info['exo_paths'])) <= 3  # only 3 files exist


def test_train_draws_follow_numpy_seed_and_vary(root):
    ds = AGD20KDataset(root, split='Seen', metainfo=SEEN, num_exo=2)
    np.random.seed(123)
    first = [ds.get_data_info(i) for i in range(len(ds))]
    np.random.seed(123)
    second = [ds.get_data_info(i) for i in range(len(ds))]
    assert first == second
    egos = {ds.get_data_info(0)['img_path'] for _ in range(60)}
    extras = {ds.get_data_info(0)['exo_paths'][1] for _ in range(60)}
    assert len(egos) == 2 and len(extras) == 2  # both candidates drawn


def test_data_list_stores_no_folder_copies(root):
    ds = AGD20KDataset(root, split='Seen', metainfo=SEEN, serialize_data=False)
    assert set(ds.data_list[0]) == {'exo_index', 'affordance', 'object', 'gt_label'}
    # fallback pools share one tuple instead of copying it per folder
    assert all(isinstance(v, tuple) for v in ds._ego_pools.values())


def test_ego_fallback_to_other_object_of_same_affordance(copy_tree, logs):
    shutil.rmtree(osp.join(copy_tree, 'Seen', 'trainset', 'egocentric', 'hold', 'cup'))
    ds = AGD20KDataset(copy_tree, split='Seen', metainfo=SEEN)
    assert any(
        '1 exocentric affordance/object folder(s) have no egocentric folder' in m and 'hold/cup' in m for m in logs
    )
    idx = [
        i
        for i in range(len(ds))
        if ds.get_data_info(i)['object'] == 'cup' and ds.get_data_info(i)['affordance'] == 'hold'
    ]
    assert len(idx) == 3
    seen_objs = set()
    for _ in range(30):
        _, view, aff, obj = _parts(ds.get_data_info(idx[0])['img_path'])
        assert (view, aff) == ('egocentric', 'hold') and obj != 'cup'
        seen_objs.add(obj)
    assert seen_objs <= {'kettle', 'knife', 'scissors'}


def test_affordance_without_any_egocentric_image_is_an_error(copy_tree):
    shutil.rmtree(osp.join(copy_tree, 'Seen', 'trainset', 'egocentric', 'pour'))
    with pytest.raises(FileNotFoundError, match=r"\['pour'\].*no egocentric image") as err:
        AGD20KDataset(copy_tree, split='Seen', metainfo=SEEN)
    assert osp.join('egocentric', 'pour') in str(err.value)


# --------------------------------------------------------------------- #
# test mode
# --------------------------------------------------------------------- #
def test_test_mode_pairs_images_with_gt(root):
    ds = AGD20KDataset(root, split='Seen', mode='test', metainfo=SEEN)
    assert ds.test_mode
    assert len(ds) == 14 * 2
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        assert 'exo_paths' not in info
        aff, obj = info['affordance'], info['object']
        assert _parts(info['img_path']) == ('testset', 'egocentric', aff, obj)
        assert _parts(info['gt_path']) == ('testset', 'GT', aff, obj)
        stem = osp.splitext(osp.basename(info['img_path']))[0]
        assert osp.basename(info['gt_path']) == stem + '.png'
        assert info['gt_label'] == SYNTHETIC_SEEN_CLASSES.index(aff)


def test_test_mode_skips_unpaired_files_with_warning(copy_tree, logs):
    test = osp.join(copy_tree, 'Seen', 'testset')
    os.remove(osp.join(test, 'GT', 'hold', 'cup', 'cup_000000.png'))
    shutil.copy(
        osp.join(test, 'GT', 'hold', 'knife', 'knife_000000.png'),
        osp.join(test, 'GT', 'hold', 'knife', 'knife_000099.png'),
    )
    ds = AGD20KDataset(copy_tree, split='Seen', mode='test', metainfo=SEEN)
    assert len(ds) == 14 * 2 - 1
    assert any('skipped 1 test image(s) without a GT' in m and 'cup_000000.jpg' in m for m in logs)
    assert any('skipped 1 GT file(s) without a test image' in m and 'knife_000099.png' in m for m in logs)


def test_unseen_split(root):
    train = AGD20KDataset(root, split='Unseen', metainfo=UNSEEN)
    test = AGD20KDataset(root, split='Unseen', mode='test', metainfo=UNSEEN)
    train_objs = {train.get_data_info(i)['object'] for i in range(len(train))}
    test_objs = {test.get_data_info(i)['object'] for i in range(len(test))}
    assert train_objs and test_objs and not train_objs & test_objs


# --------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------- #
def test_wrong_data_root_names_the_path_and_layout(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as err:
        AGD20KDataset(missing, split='Seen', metainfo=SEEN)
    msg = str(err.value)
    assert repr(missing) in msg and 'Expected layout' in msg
    assert 'trainset/exocentric/<affordance>/<object>' in msg


def test_wrong_split_lists_the_existing_ones(root):
    with pytest.raises(FileNotFoundError) as err:
        AGD20KDataset(root, split='seen', metainfo=SEEN)
    msg = str(err.value)
    assert repr(osp.join(root, 'seen')) in msg
    assert "['Seen', 'Unseen']" in msg


def test_class_on_disk_missing_from_class_list(root):
    classes = tuple(c for c in SYNTHETIC_SEEN_CLASSES if c != 'push')
    with pytest.raises(ValueError, match=r"\['push'\].*not in the class list"):
        AGD20KDataset(root, split='Seen', metainfo=dict(classes=classes))
    with pytest.raises(ValueError, match=r"\['push'\]"):
        AGD20KDataset(root, split='Seen', mode='test', metainfo=dict(classes=classes))


def test_class_without_folder_on_disk(root):
    # the default 36 Seen classes do not all exist in the synthetic tree
    with pytest.raises(FileNotFoundError, match=r"'beat'.*have no folder.*metainfo"):
        AGD20KDataset(root, split='Seen')


def test_bad_arguments(root):
    with pytest.raises(ValueError, match='mode'):
        AGD20KDataset(root, split='Seen', mode='val', metainfo=SEEN)
    with pytest.raises(ValueError, match='num_exo'):
        AGD20KDataset(root, split='Seen', num_exo=0, metainfo=SEEN)
    with pytest.raises(ValueError, match='ann_file'):
        AGD20KDataset(root, split='Seen', ann_file='x.json', metainfo=SEEN)
    with pytest.raises(ValueError, match='duplicate'):
        AGD20KDataset(root, split='Seen', metainfo=dict(classes=('hold', 'hold')))


# --------------------------------------------------------------------- #
# HICO-IIF, registry, configs
# --------------------------------------------------------------------- #
def test_hico_iif_reads_trainset_directly_under_data_root(root):
    # the Seen folder of the synthetic tree is laid out like HICO-IIF
    ds = HICOIIFDataset(osp.join(root, 'Seen'), metainfo=SEEN)
    assert ds.split is None and len(ds) == 14 * 3
    assert HICOIIFDataset.METAINFO['classes'] == HICO_IIF_CLASSES
    with pytest.raises(FileNotFoundError, match='HICO-IIF'):
        HICOIIFDataset(root, metainfo=SEEN)  # trainset/ is one level deeper


def test_built_from_registry(root):
    ds = DATASETS.build(dict(type='AGD20KDataset', data_root=root, split='Seen', mode='test', metainfo=SEEN))
    assert isinstance(ds, AGD20KDataset) and len(ds) == 28


def test_base_configs():
    seen = Config.fromfile(osp.join(CFG_DIR, 'agd20k_seen.py'))
    unseen = Config.fromfile(osp.join(CFG_DIR, 'agd20k_unseen.py'))
    hico = Config.fromfile(osp.join(CFG_DIR, 'hico_iif.py'))
    syn = Config.fromfile(osp.join(CFG_DIR, 'synthetic_agd20k.py'))
    assert seen.train_dataloader.batch_size == 16
    assert seen.train_dataloader.dataset.split == 'Seen'
    assert seen.train_dataloader.sampler.shuffle
    assert not seen.test_dataloader.sampler.shuffle
    assert seen.test_dataloader.dataset.mode == 'test'
    assert seen.val_evaluator.type == 'AffordanceMetric'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert unseen[loader].dataset.split == 'Unseen'
        assert hico[loader].dataset.type == 'HICOIIFDataset'
        assert hico[loader].dataset.split is None
        assert hico[loader].dataset.data_root == 'data/HICO-IIF'
        assert syn[loader].dataset.data_root == 'data/synthetic_agd20k'
        assert syn[loader].dataset.type == 'SyntheticAGD20KDataset'
        assert 'metainfo' not in syn[loader].dataset  # the dataset class gives them
        assert config_classes(syn[loader].dataset) == SYNTHETIC_SEEN_CLASSES
        assert syn[loader].batch_size == 8 and syn[loader].num_workers == 2
        assert syn[loader].persistent_workers
    assert syn.test_evaluator.type == 'AffordanceMetric'


def test_synthetic_config_pipelines_end_to_end(root):
    """Config datasets + pipelines give the packed shapes of data_flow.md."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(CFG_DIR, 'synthetic_agd20k.py'))
    train_cfg = cfg.train_dataloader.dataset
    train_cfg.data_root = root
    test_cfg = cfg.test_dataloader.dataset
    test_cfg.data_root = root
    train, test = DATASETS.build(train_cfg), DATASETS.build(test_cfg)

    np.random.seed(0)
    item = train[5]
    inputs, sample = item['inputs'], item['data_samples']
    assert inputs.shape == (4, 3, 224, 224) and inputs.dtype == torch.uint8
    info = train.get_data_info(5)
    assert sample.affordance == info['affordance']
    assert sample.object == info['object']
    assert sample.gt_label == info['gt_label'] and sample.sample_idx == 5
    assert len(sample.exo_paths) == 3 and sample.img_shape == (224, 224)
    assert len(sample.ori_shape) == 2 and 'gt_heatmap' not in sample

    item = test[3]
    inputs, sample = item['inputs'], item['data_samples']
    assert inputs.shape == (1, 3, 224, 224) and inputs.dtype == torch.uint8
    gt = cv2.imread(sample.gt_path, cv2.IMREAD_GRAYSCALE)
    heat = sample.gt_heatmap.data  # gray / 255.0 in float64, resized to 224 in the pipeline
    assert heat.dtype == torch.float64 and heat.shape == (1, 224, 224)
    # the metric's own resize (bit for bit the scores of a GT resized in the metric); OpenCV's numbers to rounding
    assert torch.equal(heat[0], torch.from_numpy(resize_bilinear(gt / 255.0, (224, 224))[0]))
    np.testing.assert_allclose(heat[0].numpy(), cv2.resize(gt / 255.0, (224, 224)), atol=1e-13)
    assert sample.ori_shape == cv2.imread(sample.img_path).shape[:2]
    assert sample.img_shape == (224, 224) and 'exo_paths' not in sample
