"""OPRA / EPIC-Hotspots datasets, the GT heatmaps from points and their cache, the EPIC box crop and the
synthetic video generators."""

import json
import os
import os.path as osp
import re
import runpy
import shutil
import sys
from unittest import mock

import cv2
import numpy as np
import pytest
from conftest import REPO, tool_env
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from scipy import ndimage

from looptrans.datasets import (
    CropEgoBox,
    EPICHotspotsDataset,
    HotspotsGTCache,
    OPRADataset,
    hotspots_gt,
    hotspots_video,
    points_to_heatmap,
    skip_bad_files,
)
from looptrans.datasets.classes import config_classes
from looptrans.datasets.hotspots_gt import published_kernel_size
from looptrans.datasets.hotspots_video import sample_window
from looptrans.datasets.transforms import LoadAffordanceGT
from looptrans.testing import (
    SYNTHETIC_EPIC_VERB_MAP,
    SYNTHETIC_EPIC_VERBS,
    SYNTHETIC_OPRA_VERB_MAP,
    SYNTHETIC_OPRA_VERBS,
    SYNTHETIC_SEEN_CLASSES,
    generate_synthetic_epic,
    generate_synthetic_opra,
)

CONFIGS = osp.join(REPO, 'configs')
SMALL = dict(num_clips=1, num_frames=4, num_test=1)
NUM_PAIRS = 14  # (verb, object) pairs of the synthetic trees


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp('video')
    opra_root, epic_root = str(base / 'opra'), str(base / 'epic')
    generate_synthetic_opra(opra_root, seed=0, **SMALL)
    generate_synthetic_epic(epic_root, seed=0, num_inactive=1, **SMALL)
    return dict(opra=opra_root, epic=epic_root)


@pytest.fixture
def copy_of(trees, tmp_path):
    """A private copy of a tree that a test may modify (without its GT cache)."""

    def make(name):
        dst = str(tmp_path / name)
        shutil.copytree(trees[name], dst, ignore=shutil.ignore_patterns('gt_cache'))
        return dst

    return make


@pytest.fixture
def logs():
    """Capture the messages the video datasets log."""
    messages = []
    with (
        mock.patch.object(hotspots_video, 'print_log', lambda msg, *a, **k: messages.append(msg)),
        mock.patch.object(hotspots_gt, 'print_log', lambda msg, *a, **k: messages.append(msg)),
        mock.patch.object(skip_bad_files, 'print_log', lambda msg, *a, **k: messages.append(msg)),
    ):
        yield messages


def _frame_number(path):
    return int(re.findall(r'(\d+)\.jpg$', path)[0])


# ---------------------------------------------------------------------------------------------- GT heatmaps
def _reference_heatmap(points, shape, transpose):
    """Independent rendering: np.add.at counts, separable Gaussian with OpenCV's sigma for the published
    kernel size, scipy 'mirror' borders (= OpenCV's reflect-101), sum-normalised, float64."""
    h, w = shape
    counts = np.zeros((h, w))
    idx = np.asarray(points).astype(int)  # int() truncation, as the published code
    np.add.at(counts, (idx[:, 0], idx[:, 1]), 1.0)
    k = int(np.sqrt(h * w) / 3.0)
    k += 1 - k % 2
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    x = np.arange(k) - (k - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    out = ndimage.correlate1d(ndimage.correlate1d(counts, g, axis=0, mode='mirror'), g, axis=1, mode='mirror')
    out /= out.sum()
    return out.T if transpose else out


@pytest.mark.parametrize('transpose', [False, True])
def test_points_to_heatmap_matches_independent_gaussian(transpose):
    rng = np.random.default_rng(0)
    shape = (40, 64)
    points = np.stack([rng.uniform(0, 40, 9), rng.uniform(0, 64, 9)], 1)
    points = np.concatenate([points, points[:2]])  # repeated points count twice
    heat = points_to_heatmap(points.tolist(), shape, transpose=transpose)
    expected = _reference_heatmap(points, shape, transpose)
    assert heat.dtype == np.float32 and heat.shape == expected.shape
    assert heat.shape == ((64, 40) if transpose else (40, 64))
    np.testing.assert_allclose(heat, expected, rtol=0, atol=2e-4 * expected.max())
    assert abs(heat.sum() - 1) < 1e-5


def test_published_kernel_size_is_odd():
    assert published_kernel_size((30, 30)) == 11  # 10 -> 11
    assert published_kernel_size((27, 27)) == 9
    assert published_kernel_size((90, 40)) == 21  # int(60 / 3) = 20 -> 21
    assert all(published_kernel_size((h, w)) % 2 == 1 for h in range(1, 60, 7) for w in range(1, 90, 11))


def test_heatmap_edge_cases_follow_the_published_code():
    shape = (40, 64)
    # past the end: clamped to the last row / column (the published IndexError branch)
    np.testing.assert_array_equal(points_to_heatmap([[50.2, 70.9]], shape), points_to_heatmap([[39, 63]], shape))
    # negative: numpy indexing wraps around, as in the published code
    np.testing.assert_array_equal(points_to_heatmap([[-1.5, 3]], shape), points_to_heatmap([[39, 3]], shape))
    # no point: all zeros, no division
    assert not points_to_heatmap([], shape).any()
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        points_to_heatmap([[1.0], [2.0]], shape)
    with pytest.raises(ValueError, match='shape'):
        points_to_heatmap([[1, 1]], (0, 5))


def test_gt_cache_writes_once_atomically_and_loads_back(tmp_path):
    cache = HotspotsGTCache(str(tmp_path / 'gt_cache'))
    points, shape = [[10.5, 20.2], [12.0, 30.0], [30.0, 50.0]], (40, 64)
    path = cache.get('a/b.jpg_hold', points, shape)
    mtime = os.stat(path).st_mtime_ns
    assert cache.get('a/b.jpg_hold', points, shape) == path
    assert (cache.num_written, cache.num_reused) == (1, 1) and os.stat(path).st_mtime_ns == mtime
    assert os.listdir(str(tmp_path / 'gt_cache')) == [osp.basename(path)]  # no temporary file left
    # the file goes through the ordinary GT loader: 16-bit PNG / 65535, proportional to the heatmap
    loaded = LoadAffordanceGT().transform(dict(gt_path=path))['gt_heatmap']
    heat = points_to_heatmap(points, shape)
    assert loaded.shape == shape and loaded.max() == 1.0
    np.testing.assert_allclose(loaded, heat / heat.max(), atol=1e-5)
    # another annotation (points, shape or transpose) is another file
    others = {
        cache.path_for('a/b.jpg_hold', points[:2], shape, False),
        cache.path_for('a/b.jpg_hold', points, (41, 64), False),
        cache.path_for('a/b.jpg_hold', points, shape, True),
    }
    assert path not in others and len(others) == 3


def test_gt_cache_that_cannot_be_written_names_the_option(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')  # a folder cannot be made under a file (whatever the user's permissions)
    with pytest.raises(PermissionError, match='gt_cache_dir'):
        HotspotsGTCache(str(blocker / 'gt_cache')).get('x', [[1, 1]], (8, 8))


def _write_tree(root, annotations, images):
    """A hand-made tree: annotations.json and images {relative path: (h, w)}."""
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'annotations.json'), 'w') as f:
        json.dump(annotations, f)
    for rel, (h, w) in images.items():
        os.makedirs(osp.dirname(osp.join(root, rel)), exist_ok=True)
        cv2.imwrite(osp.join(root, rel), np.full((h, w, 3), 128, np.uint8))


@pytest.mark.parametrize('name', ['opra', 'epic'])
def test_gt_orientation_of_each_benchmark(tmp_path, name):
    """A point at row 5, column 40 of a 30 x 50 image: OPRA writes it [row, col] with shape [H, W], EPIC
    [x, y] with shape [W, H]; both must give an (H, W) GT peaking there."""
    if name == 'opra':
        entry = dict(image=['c', 'p', '1', 'img.jpg'], verb=0, points=[[5.5, 40.5]], shape=[30, 50])
        rel, cls = 'data/images/c/p/1/img.jpg', OPRADataset
    else:
        entry = dict(image=['img.jpg'], verb=0, points=[[40.5, 5.5]], shape=[50, 30])
        rel, cls = 'images/img.jpg', EPICHotspotsDataset
    root = str(tmp_path / name)
    _write_tree(root, dict(verbs=['hold'], nouns=['cup'], test_images=[entry]), {rel: (30, 50)})
    ds = cls(root, mode='test', pipeline=[dict(type='LoadAffordanceGT')])
    gt = ds[0]['gt_heatmap']
    assert gt.shape == (30, 50)
    assert np.unravel_index(gt.argmax(), gt.shape) == (5, 40)


# ---------------------------------------------------------------------------------------------- sampling
def test_sample_window():
    np.random.seed(0)
    for _ in range(20):
        idx = sample_window(10, 4, 'window')
        assert idx == list(range(idx[0], idx[0] + 4)) and 0 <= idx[0] <= 6
        rnd = sample_window(10, 4, 'random')
        assert rnd == sorted(set(rnd)) and len(rnd) == 4 and max(rnd) < 10
    starts = {sample_window(10, 4, 'window')[0] for _ in range(200)}
    assert starts == set(range(7))  # every start, the last one included
    assert sample_window(3, 7) == [0, 0, 0, 1, 1, 2, 2]  # short clip: every frame, repeated in order
    assert sample_window(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        sample_window(0, 3)


# ---------------------------------------------------------------------------------------------- OPRA
def test_opra_train_items(trees):
    ds = OPRADataset(trees['opra'], mode='train', num_frames=3)
    assert len(ds) == NUM_PAIRS and ds.metainfo['classes'] == SYNTHETIC_OPRA_VERBS
    np.random.seed(0)
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        frames = info['exo_paths']
        assert len(frames) == 3
        numbers = [_frame_number(f) for f in frames]
        assert numbers == list(range(numbers[0], numbers[0] + 3)) and 1 <= numbers[0] <= 2  # window of 4
        clip_dir = osp.dirname(frames[0])
        assert {osp.dirname(f) for f in frames} == {clip_dir}
        _, verb, obj, clip = clip_dir.split(os.sep)[-4:]
        assert clip.endswith('.mp4') and verb == info['verb'] == info['affordance']
        # the static image of the same product is the egocentric view
        images = osp.join(trees['opra'], 'data', 'images', 'synthetic')
        assert info['img_path'] == osp.join(images, verb, obj, 'static.jpg')
        assert info['gt_label'] == SYNTHETIC_OPRA_VERBS.index(verb) == ds.get_cat_ids(idx)[0]
        assert info['object'] == obj and 'gt_path' not in info


def test_opra_test_items_have_cached_gt_matching_each_image(trees, logs):
    ds = OPRADataset(trees['opra'], mode='test')
    ds2 = OPRADataset(trees['opra'], mode='test')  # built again: every GT reused, none recomputed
    assert ds2.gt_cache.num_written == 0 and ds2.gt_cache.num_reused == len(ds) == NUM_PAIRS
    with open(osp.join(trees['opra'], 'annotations.json')) as f:
        entries = json.load(f)['test_images']
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        entry = entries[idx]
        assert info['img_path'].endswith(osp.join(*entry['image']))
        image = cv2.imread(info['img_path'])
        gt = LoadAffordanceGT().transform(dict(gt_path=info['gt_path']))['gt_heatmap']
        assert gt.shape == image.shape[:2]  # non-square images: a transposed GT would not fit
        heat = points_to_heatmap(entry['points'], entry['shape'])
        np.testing.assert_allclose(gt, heat / heat.max(), atol=1e-5)
        assert info['gt_label'] == entry['verb']


def test_config_pipelines_give_clip_samples(trees):
    """The synthetic configs' train / test pipelines (the AGD20K ones) on both trees."""
    for name in ('opra', 'epic'):
        cfg = Config.fromfile(osp.join(CONFIGS, f'looptrans_synthetic_{name}.py'))
        train_cfg = dict(cfg.train_dataloader.dataset, data_root=trees[name])
        test_cfg = dict(cfg.test_dataloader.dataset, data_root=trees[name])
        np.random.seed(0)
        sample = DATASETS.build(train_cfg)[0]
        t = train_cfg['num_frames']
        assert tuple(sample['inputs'].shape) == (1 + t, 3, 224, 224)
        meta = sample['data_samples'].metainfo
        assert len(meta['exo_paths']) == t and meta['img_path'] not in meta['exo_paths']
        assert 'gt_heatmap' not in sample['data_samples']
        sample = DATASETS.build(test_cfg)[0]
        assert tuple(sample['inputs'].shape) == (1, 3, 224, 224)
        # the GT is resized to 224x224 in the pipeline (LoadAffordanceGT(resize_to=224))
        assert tuple(sample['data_samples'].gt_heatmap.data.shape) == (1, 224, 224)


def test_missing_clips_frames_and_images_are_skipped_with_counts(copy_of, logs):
    root = copy_of('opra')
    frames = osp.join(root, 'data', 'frames', 'synthetic')
    shutil.rmtree(osp.join(frames, 'hold', 'cup', '0.0_0.0.mp4'))  # a whole clip
    os.remove(osp.join(frames, 'pour', 'kettle', '0.0_0.0.mp4', 'image-00000002.jpg'))  # one frame
    os.remove(osp.join(root, 'data', 'images', 'synthetic', 'push', 'bicycle', 'static.jpg'))  # static image
    ds = OPRADataset(root, mode='train', num_frames=4)
    assert len(ds) == NUM_PAIRS - 2
    text = '\n'.join(logs)
    assert re.search(r'1 of 14 annotation entries: clip has no frame on disk', text)
    assert re.search(r'1 of 14 annotation entries: clip misses some frames', text)
    assert re.search(r'1 of 14 annotation entries: no static / inactive image', text)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    kettle = next(i for i in infos if (i['verb'], i['object']) == ('pour', 'kettle'))
    assert [_frame_number(f) for f in kettle['exo_paths']] == [1, 1, 3, 4]  # the 3 present, stretched
    # test mode: a missing test image is skipped and counted (the static image is not a test image)
    os.remove(osp.join(root, 'data', 'images', 'synthetic', 'hold', 'cup', 'test_000.jpg'))
    assert len(OPRADataset(root, mode='test')) == NUM_PAIRS - 1
    assert re.search(r'1 of 14 annotation entries: test image not on disk', '\n'.join(logs))


def test_unreadable_frame_is_skipped_in_training(copy_of, logs):
    root = copy_of('opra')
    bad = osp.join(root, 'data', 'frames', 'synthetic', 'cut', 'knife', '0.0_0.0.mp4', 'image-00000003.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg')
    ds = OPRADataset(root, mode='train', num_frames=6, pipeline=[dict(type='LoadAffordanceViews')])
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['exo_paths'][0].startswith(osp.dirname(bad)))
    np.random.seed(0)
    assert ds[idx] is not None  # another item was drawn
    assert ds.skipped[bad] == 1 and any('skipped training item' in m for m in logs)
    assert bad not in ds.get_data_info(idx)['exo_paths']  # not drawn again


def test_test_mode_bad_file_raises(copy_of):
    root = copy_of('opra')
    ds = OPRADataset(root, mode='test', pipeline=[dict(type='LoadAffordanceViews')])
    with open(ds.get_data_info(0)['img_path'], 'wb') as f:
        f.write(b'')
    with pytest.raises(OSError):
        ds[0]


# ---------------------------------------------------------------------------------------------- verb map
def test_verb_map_scores_verbs_as_affordances(trees, logs):
    verb_map = {k: v for k, v in SYNTHETIC_OPRA_VERB_MAP.items() if k != 'ride'}
    ds = OPRADataset(trees['opra'], mode='test', verb_map=verb_map, metainfo=dict(classes=SYNTHETIC_SEEN_CLASSES))
    assert ds.metainfo['classes'] == SYNTHETIC_SEEN_CLASSES
    assert ds.metainfo['verbs'] == SYNTHETIC_OPRA_VERBS
    with open(osp.join(trees['opra'], 'annotations.json')) as f:
        n_ride = sum(SYNTHETIC_OPRA_VERBS[e['verb']] == 'ride' for e in json.load(f)['test_images'])
    assert n_ride == 1 and len(ds) == NUM_PAIRS - n_ride  # the 'ride' test image is skipped and counted
    assert any(re.search(r'1 of 14 annotation entries: verb has no class', m) for m in logs)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert info['affordance'] == verb_map[info['verb']]
        assert info['gt_label'] == SYNTHETIC_SEEN_CLASSES.index(verb_map[info['verb']])


def test_verb_names_are_matched_loosely_and_bad_maps_are_errors(trees, logs):
    classes = SYNTHETIC_SEEN_CLASSES
    ds = EPICHotspotsDataset(
        trees['epic'],
        mode='test',
        metainfo=dict(classes=classes),
        verb_map={'Sit On': 'sit_on', 'TAKE': 'hold', 'open': 'hold'},
    )
    assert {ds.get_data_info(i)['verb'] for i in range(len(ds))} == {'sit-on', 'take'}
    assert any("['open'] are not verbs" in m for m in logs)  # reported, ignored
    with pytest.raises(ValueError, match=r"targets \['fly'\] are not in"):
        OPRADataset(trees['opra'], mode='test', verb_map={'hold': 'fly'}, metainfo=dict(classes=classes))
    with pytest.raises(ValueError, match='no verb of the annotation file'):
        OPRADataset(trees['opra'], mode='test', metainfo=dict(classes=('beat', 'boxing')))


def test_annotation_file_errors(tmp_path, trees):
    with pytest.raises(FileNotFoundError, match=r'annotations\.json.*video_benchmarks'):
        OPRADataset(str(tmp_path), mode='test')
    _write_tree(str(tmp_path / 'x'), dict(verbs=['hold']), {})
    with pytest.raises(KeyError, match=r"no key\(s\) \['nouns', 'train_clips'\]"):
        OPRADataset(str(tmp_path / 'x'), mode='train')
    with pytest.raises(ValueError, match='num_frames'):
        OPRADataset(trees['opra'], num_frames=0)
    with pytest.raises(ValueError, match='data_prefix'):
        OPRADataset(trees['opra'], data_prefix=dict(clips='x'))
    with pytest.raises(FileNotFoundError, match='no usable item'):
        OPRADataset(trees['opra'], mode='train', data_prefix=dict(frames='nowhere'))


# ---------------------------------------------------------------------------------------------- EPIC
def test_epic_train_items(trees):
    ds = EPICHotspotsDataset(trees['epic'], mode='train', num_frames=3)
    assert len(ds) == NUM_PAIRS and ds.metainfo['classes'] == SYNTHETIC_EPIC_VERBS
    with open(osp.join(trees['epic'], 'annotations.json')) as f:
        ann = json.load(f)
    np.random.seed(0)
    for idx in range(len(ds)):
        info, clip = ds.get_data_info(idx), ann['train_clips'][idx]
        numbers = [_frame_number(f) for f in info['exo_paths']]
        assert np.diff(numbers).tolist() == [10, 10]  # every 10th frame, in order
        assert clip['start'] <= numbers[0] and numbers[-1] <= clip['stop']
        assert all(f'{os.sep}P01{os.sep}{clip["v_id"]}{os.sep}' in f for f in info['exo_paths'])
        inactive = ann['inactive_images'][info['object']]
        assert info['img_path'].endswith(f'{inactive[0]["f_id"]:010d}.jpg')
        assert info['ego_box'] == inactive[0]['box']


def test_epic_inactive_images_missing_skip_their_clips(copy_of, logs):
    root = copy_of('epic')
    with open(osp.join(root, 'annotations.json')) as f:
        ann = json.load(f)
    item = ann['inactive_images']['cup'][0]
    detections = osp.join(root, 'object_detection_images', 'train', 'P02', item['v_id'])
    os.remove(osp.join(detections, f'{item["f_id"]:010d}.jpg'))
    ds = EPICHotspotsDataset(root, mode='train')
    n_cup = sum(1 for c in ann['train_clips'] if ann['nouns'][c['noun']] == 'cup')
    assert n_cup == 2 and len(ds) == NUM_PAIRS - n_cup
    assert any(f'{n_cup} of 14 annotation entries: no static / inactive image' in m for m in logs)


def test_crop_ego_box():
    img = np.arange(60 * 80 * 3, dtype=np.uint8).reshape(60, 80, 3)
    exact = CropEgoBox(random=False).transform(dict(img=img, ego_box=[10, 5, 30, 25]))
    np.testing.assert_array_equal(exact['img'], img[5:25, 10:30])
    assert exact['img_shape'] == exact['ori_shape'] == (20, 20)
    # expansion by e (no shift): half of int(size * e) on each side
    np.random.seed(0)
    grown = CropEgoBox(expand=(0.5, 0.5), shift=0.0).transform(dict(img=img, ego_box=[20, 20, 40, 40]))
    np.testing.assert_array_equal(grown['img'], img[15:45, 15:45])
    # a box leaving the image is filled with black, as PIL's crop
    out = CropEgoBox(random=False).transform(dict(img=img, ego_box=[-5, -4, 10, 10]))['img']
    assert out.shape == (14, 15, 3) and not out[:4].any() and not out[:, :5].any()
    np.testing.assert_array_equal(out[4:, 5:], img[:10, :10])
    # random crops stay near the box and follow np.random
    np.random.seed(1)
    a = [CropEgoBox().crop_box([20, 20, 40, 40], 80, 60) for _ in range(3)]
    np.random.seed(1)
    assert a == [CropEgoBox().crop_box([20, 20, 40, 40], 80, 60) for _ in range(3)]
    for x0, y0, x1, y1 in a:
        assert 20 * 1.0 <= x1 - x0 <= 20 * 2.5 and abs((x0 + x1) / 2 - 30) <= 0.2 * 50 + 1
    # no box: untouched; a bad box: the fix
    assert CropEgoBox().transform(dict(img=img))['img'] is img
    with pytest.raises(ValueError, match='inactive_images'):
        CropEgoBox().transform(dict(img=img, ego_box=[30, 5, 10, 25], img_path='x.jpg'))


# ---------------------------------------------------------------------------------------------- generators
def _read_all(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            with open(osp.join(d, n), 'rb') as f:
                out[osp.relpath(osp.join(d, n), root)] = f.read()
    return out


def test_generators_are_deterministic_and_follow_the_formats(tmp_path, trees):
    again = str(tmp_path / 'again')
    generate_synthetic_opra(again, seed=0, **SMALL)
    first = {k: v for k, v in _read_all(trees['opra']).items() if not k.startswith('gt_cache')}
    assert _read_all(again) == first
    generate_synthetic_opra(again, seed=1, overwrite=True, **SMALL)
    assert _read_all(again) != first
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_synthetic_opra(again, seed=0, **SMALL)
    with pytest.raises(ValueError, match='num_frames'):
        generate_synthetic_epic(str(tmp_path / 'e'), num_frames=0)
    with open(osp.join(trees['epic'], 'annotations.json')) as f:
        ann = json.load(f)
    assert set(ann) >= {'verbs', 'nouns', 'train_clips', 'test_images', 'inactive_images'}
    clip = ann['train_clips'][0]
    assert set(clip) == {'v_id', 'start', 'stop', 'verb', 'noun'} and clip['stop'] - clip['start'] == 30
    with open(osp.join(trees['opra'], 'annotations.json')) as f:
        clip = json.load(f)['train_clips'][0]
    assert set(clip) == {'clip', 'verb', 'noun', 'nframes', 'image'} and len(clip['clip']) == 5


def test_cli_writes_both_trees(tmp_path):
    out = str(tmp_path / 'data')
    argv = [
        'generate_synthetic_video.py',
        '--out',
        out,
        '--num-clips',
        '1',
        '--num-frames',
        '2',
        '--num-test',
        '1',
        '--datasets',
        'opra',
    ]
    with mock.patch.object(sys, 'argv', argv):
        runpy.run_path(osp.join(REPO, 'tools', 'misc', 'generate_synthetic_video.py'), run_name='__main__')
    assert osp.isfile(osp.join(out, 'synthetic_opra', 'annotations.json'))
    with mock.patch.object(sys, 'argv', argv), pytest.raises(SystemExit, match='overwrite'):
        runpy.run_path(osp.join(REPO, 'tools', 'misc', 'generate_synthetic_video.py'), run_name='__main__')


# ---------------------------------------------------------------------------------------------- configs
def test_configs_agree_with_the_generators_and_protocol():
    for name, verbs in (('opra', SYNTHETIC_OPRA_VERBS), ('epic', SYNTHETIC_EPIC_VERBS)):
        cfg = Config.fromfile(osp.join(CONFIGS, f'looptrans_synthetic_{name}.py'))
        assert cfg.model.cam_head.num_classes == cfg.model.pixel_head.num_classes == len(verbs)
        assert cfg.model.temporal.type == 'LSTMTemporalAggregator'
        assert cfg.test_evaluator == dict(type='AffordanceMetric', protocol='hotspots', pred_normalization='minmax')
    to_opra = Config.fromfile(osp.join(CONFIGS, 'looptrans_synthetic_to_opra.py'))
    assert dict(to_opra.test_dataloader.dataset.verb_map) == dict(SYNTHETIC_OPRA_VERB_MAP)
    assert config_classes(to_opra.test_dataloader.dataset) == SYNTHETIC_SEEN_CLASSES
    assert 'metainfo' not in to_opra.test_dataloader.dataset  # the classes come from the dataset class
    assert to_opra.model.cam_head.num_classes == len(SYNTHETIC_SEEN_CLASSES)
    assert set(SYNTHETIC_EPIC_VERB_MAP.values()) <= set(SYNTHETIC_SEEN_CLASSES)
    from looptrans.datasets import AGD20K_SEEN_CLASSES

    for name in ('opra', 'epic'):
        cfg = Config.fromfile(osp.join(CONFIGS, f'looptrans_agd20k_to_{name}.py'))
        dataset = cfg.test_dataloader.dataset
        assert config_classes(dataset) == AGD20K_SEEN_CLASSES and 'metainfo' not in dataset
        assert set(dataset.verb_map.values()) <= set(AGD20K_SEEN_CLASSES)
        assert cfg.train_dataloader.dataset.type == 'AGD20KDataset' and 'temporal' not in cfg.model
        assert cfg.test_evaluator.protocol == 'hotspots'
        real = Config.fromfile(osp.join(CONFIGS, f'looptrans_{name}.py'))
        assert real.model.temporal == dict(type='LSTMTemporalAggregator', channels=384)


@pytest.mark.parametrize('name, flag', [('opra', 'OPRA'), ('epic', 'EPIC')])
def test_prepare_hotspots_builds_gt_cache_and_counts(copy_of, name, flag):
    import subprocess
    import sys

    root = copy_of(name)
    assert not osp.isdir(osp.join(root, 'gt_cache'))
    proc = subprocess.run(
        [sys.executable, 'tools/misc/prepare_hotspots.py', '--dataset', flag, '--data-root', root],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cached = [f for f in os.listdir(osp.join(root, 'gt_cache')) if f.endswith('.png')]
    totals = proc.stdout.strip().splitlines()
    total = next(line for line in totals if line.startswith('total')).split()
    assert int(total[2]) == len(cached) > 0  # one GT file per usable test image
    assert int(total[1]) > 0


def test_the_video_base_class_names_what_a_subclass_must_give():
    from looptrans.datasets.hotspots_video import HotspotsVideoDataset

    assert HotspotsVideoDataset.__abstractmethods__ == {'clip_frames', 'ego_candidates', 'test_image_path'}
    with pytest.raises(TypeError, match='abstract'):
        HotspotsVideoDataset(data_root='x')
