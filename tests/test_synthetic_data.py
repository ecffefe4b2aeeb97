"""Tests of the synthetic AGD20K generator and its CLI."""

import glob
import os
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest

from looptrans.testing import (
    SYNTHETIC_SEEN_CLASSES,
    SYNTHETIC_UNSEEN_CLASSES,
    SYNTHETIC_UNSEEN_TEST_OBJECTS,
    generate_synthetic_agd20k,
)
from looptrans.testing.synthetic_agd20k import AFFORDANCE_PARTS, BOLD_BLADE_COLOR, OBJECTS, PART_KIND_COLORS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMALL = dict(num_exo=2, num_ego=2, num_test=2)


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = osp.join(d, n)
            with open(p, 'rb') as f:
                out[osp.relpath(p, root)] = f.read()
    return out


def _pairs(folder):
    """(affordance, object) folders under an <affordance>/<object>/ tree."""
    return {(a, o) for a in os.listdir(folder) for o in os.listdir(osp.join(folder, a))}


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('syn') / 'synthetic_agd20k')
    summary = generate_synthetic_agd20k(root, seed=0, **SMALL)
    return root, summary


def test_class_tuples_are_alphabetical_agd20k_names():
    agd20k_unseen = {
        'carry',
        'catch',
        'cut',
        'cut_with',
        'drink_with',
        'eat',
        'hit',
        'hold',
        'jump',
        'kick',
        'lie_on',
        'open',
        'peel',
        'pick_up',
        'pour',
        'push',
        'ride',
        'sip',
        'sit_on',
        'stick',
        'swing',
        'take_photo',
        'throw',
        'type_on',
        'wash',
    }
    assert list(SYNTHETIC_SEEN_CLASSES) == sorted(SYNTHETIC_SEEN_CLASSES)
    assert list(SYNTHETIC_UNSEEN_CLASSES) == sorted(SYNTHETIC_UNSEEN_CLASSES)
    assert 6 <= len(SYNTHETIC_SEEN_CLASSES) <= 8
    assert set(SYNTHETIC_UNSEEN_CLASSES) <= set(SYNTHETIC_SEEN_CLASSES)
    assert set(SYNTHETIC_SEEN_CLASSES) <= agd20k_unseen  # real AGD20K names
    assert 4 <= len(OBJECTS) <= 7


def test_objects_have_fewer_and_more_parts_than_the_default_k():
    """K = 4 must matter: some objects have clearly fewer parts, some clearly more, and all of a
    bicycle's six parts are visible in an egocentric render (a part hidden behind another does not count)."""
    from looptrans.testing.synthetic_agd20k import Pose, render_object

    counts = {obj: len(parts) for obj, parts in OBJECTS.items()}
    assert min(counts.values()) == 2 and max(counts.values()) >= 6
    img = np.zeros((320, 320, 3), np.uint8)
    labels = np.zeros((320, 320), np.int32)
    render_object(img, labels, 'bicycle', Pose(scale=130.0, angle=0.0, center=(160.0, 160.0)), np.random.default_rng(0))
    visible = {int(v) for v in np.unique(labels)} - {0}
    assert len(visible) == counts['bicycle'] == 6
    assert min((labels == v).sum() for v in visible) > 50  # each part is more than a sliver


def test_layout_and_counts(tree):
    root, summary = tree
    for split in ('Seen', 'Unseen'):
        info = summary['splits'][split]
        base = osp.join(root, split)
        exo = osp.join(base, 'trainset', 'exocentric')
        ego = osp.join(base, 'trainset', 'egocentric')
        test = osp.join(base, 'testset', 'egocentric')
        gt = osp.join(base, 'testset', 'GT')
        assert _pairs(exo) == set(info['train_pairs']) == _pairs(ego)
        assert _pairs(test) == set(info['test_pairs']) == _pairs(gt)
        assert sorted(os.listdir(exo)) == sorted({a for a, _ in info['train_pairs']})
        for a, o in info['train_pairs']:
            assert len(os.listdir(osp.join(exo, a, o))) == SMALL['num_exo']
            assert len(os.listdir(osp.join(ego, a, o))) == SMALL['num_ego']
        for a, o in info['test_pairs']:
            imgs = sorted(os.listdir(osp.join(test, a, o)))
            gts = sorted(os.listdir(osp.join(gt, a, o)))
            assert len(imgs) == SMALL['num_test']
            assert [osp.splitext(n)[0] for n in imgs] == [osp.splitext(n)[0] for n in gts]
            assert all(n.endswith('.jpg') for n in imgs)
            assert all(n.endswith('.png') for n in gts)
    seen = summary['splits']['Seen']
    assert tuple(seen['classes']) == SYNTHETIC_SEEN_CLASSES
    assert {a for a, _ in seen['test_pairs']} == set(SYNTHETIC_SEEN_CLASSES)
    files = _files(root)
    assert summary['num_files'] == len(files)
    assert summary['num_bytes'] == sum(len(v) for v in files.values())


def test_unseen_test_objects_are_absent_from_training(tree):
    root, summary = tree
    base = osp.join(root, 'Unseen')
    train_objs = {o for sub in ('exocentric', 'egocentric') for _, o in _pairs(osp.join(base, 'trainset', sub))}
    test_objs = {o for _, o in _pairs(osp.join(base, 'testset', 'egocentric'))}
    assert train_objs and test_objs
    assert not train_objs & test_objs
    assert test_objs == set(SYNTHETIC_UNSEEN_TEST_OBJECTS)
    # every Unseen class is trained on some objects and tested on others
    train_affs = set(os.listdir(osp.join(base, 'trainset', 'exocentric')))
    test_affs = set(os.listdir(osp.join(base, 'testset', 'egocentric')))
    assert train_affs == test_affs == set(SYNTHETIC_UNSEEN_CLASSES)


def test_images_decode_with_sizes_in_range(tree):
    root, _ = tree
    for rel in _files(root):
        img = cv2.imread(osp.join(root, rel), cv2.IMREAD_UNCHANGED)
        assert img is not None, rel
        assert 224 <= img.shape[0] <= 320 and 224 <= img.shape[1] <= 320, rel
        if '/GT/' in rel:
            assert img.dtype == np.uint8 and img.ndim == 2, rel
            assert img.max() == 255, rel
        elif any(f'/{d}/' in rel for d in ('part_masks', 'object_masks', 'test_masks', 'exo_masks')):
            assert img.dtype == np.uint8 and img.ndim == 2 and set(np.unique(img)) == {0, 255}, rel
        else:
            assert img.ndim == 3 and img.shape[2] == 3, rel


def _nearest_kind(color):
    """The part kind whose colour (or striped, darkened colour) is closest."""
    best, best_d = None, np.inf
    for kind, ref in PART_KIND_COLORS.items():
        for scale in (1.0, 0.65) if kind == 'handle' else (1.0,):
            d = np.linalg.norm(np.asarray(ref) * scale - color)
            if d < best_d:
                best, best_d = kind, d
    return best


def test_gt_heatmap_marks_the_affordance_part(tree):
    """The GT peak lies on pixels that look like the affordance's part kind."""
    root, summary = tree
    base = osp.join(root, 'Seen', 'testset')
    for aff, obj in summary['splits']['Seen']['test_pairs']:
        part = AFFORDANCE_PARTS[aff][obj]
        kind = next(p.kind for p in OBJECTS[obj] if p.name == part)
        for name in sorted(os.listdir(osp.join(base, 'GT', aff, obj))):
            gt = cv2.imread(osp.join(base, 'GT', aff, obj, name), 0)
            img = cv2.imread(osp.join(base, 'egocentric', aff, obj, name.replace('.png', '.jpg')))
            peak = gt >= 230
            assert peak.sum() >= 10, (aff, obj, name)
            # heat is concentrated: most of the image is (near) zero
            assert (gt > 25).mean() < 0.5, (aff, obj, name)
            votes = [_nearest_kind(c) for c in img[peak].astype(float)]
            share = votes.count(kind) / len(votes)
            assert share > 0.6, (aff, obj, name, kind, share)


def test_exocentric_images_show_the_part_kind(tree):
    """Most exocentric images contain pixels of the affordance's part look. Hips-contact affordances
    (``ride``, ``sit_on``) are left out: the person sits on the part and may hide all of it, the occlusion case
    the shared CAM is meant for (a ridden bicycle's saddle is small)."""
    from looptrans.testing.synthetic_agd20k import HIPS_CONTACT

    root, summary = tree
    base = osp.join(root, 'Seen', 'trainset', 'exocentric')
    hits = total = 0
    for aff, obj in summary['splits']['Seen']['train_pairs']:
        if aff in HIPS_CONTACT:
            continue
        part = AFFORDANCE_PARTS[aff][obj]
        kind = next(p.kind for p in OBJECTS[obj] if p.name == part)
        ref = np.asarray(PART_KIND_COLORS[kind], float)
        for name in os.listdir(osp.join(base, aff, obj)):
            img = cv2.imread(osp.join(base, aff, obj, name)).astype(float)
            close = np.linalg.norm(img - ref, axis=2) < 40
            hits += close.sum() >= 20
            total += 1
    assert hits / total > 0.8


def test_same_seed_is_byte_identical_other_seed_differs(tmp_path, tree):
    root, _ = tree
    again = str(tmp_path / 'again')
    other = str(tmp_path / 'other')
    generate_synthetic_agd20k(again, seed=0, splits=('Unseen',), **SMALL)
    generate_synthetic_agd20k(other, seed=1, splits=('Unseen',), **SMALL)
    a = _files(osp.join(root, 'Unseen'))
    b = _files(osp.join(again, 'Unseen'))
    c = _files(osp.join(other, 'Unseen'))
    assert len(a) > 0 and a.keys() == b.keys() == c.keys()
    assert all(a[k] == b[k] for k in a)
    assert sum(a[k] != c[k] for k in a) == len(a)


def test_existing_output_needs_overwrite(tmp_path):
    out = str(tmp_path / 'syn')
    generate_synthetic_agd20k(out, splits=('Unseen',), **SMALL)
    with pytest.raises(FileExistsError, match='overwrite'):
        generate_synthetic_agd20k(out, splits=('Unseen',), **SMALL)
    stale = osp.join(out, 'Unseen', 'trainset', 'exocentric', 'stale.jpg')
    open(stale, 'wb').close()
    generate_synthetic_agd20k(out, splits=('Unseen',), overwrite=True, **SMALL)
    assert not osp.exists(stale)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_exo'):
        generate_synthetic_agd20k(str(tmp_path), num_exo=0)
    with pytest.raises(ValueError, match='unknown split'):
        generate_synthetic_agd20k(str(tmp_path), splits=('Train',))
    with pytest.raises(ValueError, match='size_range'):
        generate_synthetic_agd20k(str(tmp_path), size_range=(300, 200))


def test_cli_default_counts_and_size(tmp_path, capsys, monkeypatch):
    """The CLI with default counts writes both splits, a few MB in all."""
    out = str(tmp_path / 'cli')
    monkeypatch.setattr(sys, 'argv', ['generate_synthetic_agd20k.py', '--out', out, '--seed', '3'])
    runpy.run_path(osp.join(REPO, 'tools', 'misc', 'generate_synthetic_agd20k.py'), run_name='__main__')
    printed = capsys.readouterr().out
    assert 'Seen: 7 classes' in printed and 'Unseen: 5 classes' in printed
    files = _files(out)
    size = sum(len(v) for v in files.values())
    assert 1e6 < size < 10e6
    n_seen_pairs = sum(len(v) for v in AFFORDANCE_PARTS.values())
    seen_exo = [k for k in files if k.startswith('Seen/trainset/exocentric')]
    assert len(seen_exo) == 10 * n_seen_pairs


def _mean_mask_share(root: str, kind: str, aff: str, obj: str) -> float:
    paths = sorted(glob.glob(osp.join(root, 'Seen', 'test_masks', kind, aff, obj, '*.png')))
    assert paths
    return float(np.mean([(cv2.imread(p, cv2.IMREAD_GRAYSCALE) > 0).mean() for p in paths]))


def _assert_objects_inside_their_images(root: str) -> None:
    """No test image's object mask touches the image edge."""
    paths = glob.glob(osp.join(root, 'Seen', 'test_masks', 'object', '*', '*', '*.png'))
    assert paths
    for path in paths:
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE) > 0
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), path


def test_ego_scale_and_part_thickness_draw_larger_objects_and_thicker_parts(tmp_path):
    """``ego_scale`` sets the egocentric object's size, ``part_thickness`` the width of the stroked affordance
    parts (a cup's handle), and a thick handle still fits the image: the object mask never touches its edge."""
    small = dict(num_exo=1, num_ego=1, num_test=3, splits=('Seen',))
    default, big, thick = (str(tmp_path / n) for n in ('default', 'big', 'thick'))
    generate_synthetic_agd20k(default, **small)
    generate_synthetic_agd20k(big, ego_scale=(0.55, 0.75), **small)
    generate_synthetic_agd20k(thick, ego_scale=(0.55, 0.75), part_thickness=1.6, **small)
    # The object's area grows with the square of its scale: ~(0.65 / 0.37)^2 = 3.1x, less where it is shrunk to fit.
    ratio = _mean_mask_share(big, 'object', 'hold', 'cup') / _mean_mask_share(default, 'object', 'hold', 'cup')
    assert 2.0 < ratio < 4.0
    # The same poses up to the wider extent: the stroked handle gains area.
    handle = _mean_mask_share(thick, 'part', 'hold', 'cup') / _mean_mask_share(big, 'part', 'hold', 'cup')
    assert handle > 1.3
    _assert_objects_inside_their_images(thick)


def test_bold_parts_widen_the_tools_and_set_the_blade_apart_from_the_backgrounds(tmp_path):
    """``bold_parts``: knife and scissors drawn about twice as wide, a steel-blue blade that no plain background
    matches (the default silver lies inside their range), a larger bicycle saddle and grip; the other objects'
    files are unchanged, and every object still fits inside its image."""
    # plain backgrounds draw each channel from [150, 245], parts jitter each channel by up to 12
    assert all(150 <= c <= 245 for c in PART_KIND_COLORS['blade'])
    assert min(150 - c for c in BOLD_BLADE_COLOR) > 2 * 12
    small = dict(num_exo=1, num_ego=1, num_test=3, splits=('Seen',), ego_scale=(0.55, 0.75), part_thickness=1.6)
    plain, bold = str(tmp_path / 'plain'), str(tmp_path / 'bold')
    generate_synthetic_agd20k(plain, **small)
    generate_synthetic_agd20k(bold, bold_parts=True, **small)
    for obj in ('knife', 'scissors'):
        ratio = _mean_mask_share(bold, 'object', 'cut_with', obj) / _mean_mask_share(plain, 'object', 'cut_with', obj)
        assert ratio > 1.4, (obj, ratio)  # twice as wide, a little shrunk to fit
    for aff in ('ride', 'push'):  # saddle, grip
        ratio = _mean_mask_share(bold, 'part', aff, 'bicycle') / _mean_mask_share(plain, 'part', aff, 'bicycle')
        assert ratio > 1.5, (aff, ratio)
    for path in glob.glob(osp.join(bold, 'Seen', 'testset', 'egocentric', 'cut_with', 'knife', '*.jpg')):
        mask = cv2.imread(path.replace('testset/egocentric', 'test_masks/part').replace('.jpg', '.png'), 0) > 0
        mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # away from anti-aliased edges
        blade = cv2.imread(path)[mask].mean(0)
        assert np.abs(blade - BOLD_BLADE_COLOR).max() < 20, (path, blade)
    _assert_objects_inside_their_images(bold)
    a, b = _files(plain), _files(bold)
    touched = ('knife', 'scissors', 'bicycle')
    changed = {k for k in a if a[k] != b[k]}
    assert changed and all(any(f'/{o}/' in k or f'/{o}_' in k for o in touched) for k in changed)
    assert any('/cup/' in k for k in a) and all(a[k] == b[k] for k in a if '/cup/' in k)


def test_ego_scale_and_part_thickness_are_validated(tmp_path):
    with pytest.raises(ValueError, match='ego_scale'):
        generate_synthetic_agd20k(str(tmp_path), ego_scale=(0.8, 0.5))
    with pytest.raises(ValueError, match='ego_scale'):
        generate_synthetic_agd20k(str(tmp_path), ego_scale=(0.5, 1.5))
    with pytest.raises(ValueError, match='part_thickness'):
        generate_synthetic_agd20k(str(tmp_path), part_thickness=0.0)
    assert not os.listdir(tmp_path)  # checked before anything is written


def test_cli_passes_ego_scale_and_part_thickness(tmp_path, monkeypatch):
    """The CLI's --ego-scale / --part-thickness / --bold-parts write the same tree as the function's arguments."""
    out = str(tmp_path / 'cli')
    ref = str(tmp_path / 'ref')
    counts = ['--num-exo', '1', '--num-ego', '1', '--num-test', '1', '--splits', 'Unseen']
    argv = ['generate_synthetic_agd20k.py', '--out', out, '--ego-scale', '0.6', '0.7', '--part-thickness', '1.5']
    argv += ['--bold-parts']
    monkeypatch.setattr(sys, 'argv', argv + counts)
    runpy.run_path(osp.join(REPO, 'tools', 'misc', 'generate_synthetic_agd20k.py'), run_name='__main__')
    generate_synthetic_agd20k(
        ref,
        num_exo=1,
        num_ego=1,
        num_test=1,
        splits=('Unseen',),
        ego_scale=(0.6, 0.7),
        part_thickness=1.5,
        bold_parts=True,
    )
    generate_synthetic_agd20k(str(tmp_path / 'plain'), num_exo=1, num_ego=1, num_test=1, splits=('Unseen',))
    a, b, plain = _files(out), _files(ref), _files(str(tmp_path / 'plain'))
    assert a == b and a != plain
