"""The AGD20K-sized generator and tools/analysis_tools/scale_study.py, on a tiny fraction (no wall-time checks)."""

import hashlib
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import load_tool

from looptrans.datasets.agd20k import AGD20K_SEEN_CLASSES
from looptrans.testing.agd20k_scale import (
    AGD20K_EGOCENTRIC,
    AGD20K_EXOCENTRIC,
    AGD20K_OBJECTS,
    AGD20K_SEEN_PAIRS,
    IMAGE_SIZE,
    agd20k_counts,
    generate_agd20k_sized,
    read_summary,
    seen_pairs,
    split_counts,
)

TINY = 1 / 512  # every folder gets its minimum of one image per set: 123 x 3 images


@pytest.fixture(scope='module')
def study():
    return load_tool('analysis_tools', 'scale_study.py')


@pytest.fixture(scope='module')
def tiny_tree(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('agd20k_tiny'))
    return out, generate_agd20k_sized(out, TINY, seed=3)


def _tree_digest(root: str) -> dict:
    digests = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                digests[osp.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return digests


# --------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------
def test_vocabulary_is_agd20k_seen():
    assert tuple(AGD20K_SEEN_PAIRS) == AGD20K_SEEN_CLASSES  # the 36 real Seen names, in the published order
    assert len(AGD20K_OBJECTS) == len(set(AGD20K_OBJECTS)) == 50
    assert {o for objs in AGD20K_SEEN_PAIRS.values() for o in objs} == set(AGD20K_OBJECTS)
    assert len(seen_pairs()) == sum(len(v) for v in AGD20K_SEEN_PAIRS.values())


@pytest.mark.parametrize('total', [0, 5, 123, 1000, 20061])
def test_split_counts_sums_and_floors(total):
    weights = np.random.default_rng(0).lognormal(0, 0.6, size=123)
    counts = split_counts(total, weights)
    assert counts.sum() == max(total, 123) and counts.min() >= 1
    if total > 10 * 123:  # proportional, up to the rounding and the floor of one
        expected = weights / weights.sum() * total
        assert np.abs(counts - expected).max() < 2


def test_full_size_counts_are_agd20k():
    counts = agd20k_counts(1.0)
    n = {k: sum(v.values()) for k, v in counts.items()}
    assert n['exocentric'] == AGD20K_EXOCENTRIC
    assert n['egocentric'] + n['test'] == AGD20K_EGOCENTRIC
    assert all(set(v) == set(seen_pairs()) for v in counts.values())
    assert counts == agd20k_counts(1.0)  # deterministic
    quarter = {k: sum(v.values()) for k, v in agd20k_counts(0.25).items()}
    assert quarter['exocentric'] == round(AGD20K_EXOCENTRIC / 4)
    with pytest.raises(ValueError):
        agd20k_counts(0)


def test_tree_layout_counts_and_files(tiny_tree):
    out, summary = tiny_tree
    assert read_summary(out) == summary
    root = osp.join(out, 'Seen')
    counts = agd20k_counts(TINY, seed=3)
    for kind, parts in (
        ('exocentric', ('trainset', 'exocentric')),
        ('egocentric', ('trainset', 'egocentric')),
        ('test', ('testset', 'egocentric')),
    ):
        for (aff, obj), n in counts[kind].items():
            files = sorted(os.listdir(osp.join(root, *parts, aff, obj)))
            assert files == [f'{obj}_{i:06d}.jpg' for i in range(n)]
    for (aff, obj), n in counts['test'].items():
        gts = sorted(os.listdir(osp.join(root, 'testset', 'GT', aff, obj)))
        assert gts == [f'{obj}_{i:06d}.png' for i in range(n)]
    assert summary['num_folders'] == len(seen_pairs()) and summary['num_objects'] == 50
    assert summary['num_images'] == sum(sum(v.values()) for v in counts.values())
    assert summary['num_files'] == summary['num_images'] + summary['num_test']
    img = cv2.imread(osp.join(root, 'trainset', 'exocentric', 'hold', 'cup', 'cup_000000.jpg'))
    gt = cv2.imread(osp.join(root, 'testset', 'GT', 'hold', 'cup', 'cup_000000.png'), cv2.IMREAD_UNCHANGED)
    assert img.shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3)
    assert gt.shape == (IMAGE_SIZE[1], IMAGE_SIZE[0]) and gt.dtype == np.uint8 and gt.max() == 255


def test_tree_is_read_by_agd20k_dataset(tiny_tree):
    from mmseg.registry import DATASETS

    import looptrans  # noqa: F401

    out, summary = tiny_tree
    train = DATASETS.build(dict(type='AGD20KDataset', data_root=out, split='Seen', mode='train'))
    test = DATASETS.build(dict(type='AGD20KDataset', data_root=out, split='Seen', mode='test'))
    assert len(train) == summary['num_exocentric'] and len(test) == summary['num_test']
    assert train.classes == AGD20K_SEEN_CLASSES


def test_generator_is_deterministic_and_cli(tiny_tree, tmp_path):
    out, _ = tiny_tree
    gen = load_tool('misc', 'generate_synthetic_agd20k.py')
    cli_out = str(tmp_path / 'cli')
    summary = gen.main(['--out', cli_out, '--scale-to-agd20k', str(TINY), '--seed', '3', '--nproc', '2'])
    assert summary['num_images'] == read_summary(out)['num_images']
    assert _tree_digest(cli_out) == _tree_digest(out)  # same seed, other nproc: byte-identical
    with pytest.raises(SystemExit):  # the tree exists
        gen.main(['--out', cli_out, '--scale-to-agd20k', str(TINY)])
    other = str(tmp_path / 'other')
    generate_agd20k_sized(other, TINY, seed=4)
    assert _tree_digest(other) != _tree_digest(out)


# --------------------------------------------------------------------------------
# the study script
# --------------------------------------------------------------------------------
def test_growth_exponents_match_numpy(study):
    rng = np.random.default_rng(0)
    sizes = np.array([1506.0, 5953.0, 23816.0])
    values = rng.uniform(0.1, 100, size=3)
    expected = np.diff(np.log(values)) / np.diff(np.log(sizes))
    np.testing.assert_allclose(study.growth_exponents(values.tolist(), sizes.tolist()), expected, rtol=1e-12)
    assert study.growth_exponents([1.0, 4.0], [10, 40]) == pytest.approx([1.0])
    assert study.growth_exponents([None, 0.0, 2.0], [1, 2, 4]) == [None, None]


def test_fractions(study):
    assert study.parse_fraction('1/16') == 0.0625 and study.parse_fraction('1') == 1.0
    assert [study.fraction_label(f) for f in (0.0625, 0.25, 1.0)] == ['1/16', '1/4', '1']
    with pytest.raises(Exception):
        study.parse_fraction('2')


def test_table_format(study):
    results = [
        dict(fraction=1 / 16, num_images=1506, train_build_s=0.2, check_full_s=10.0, metric_results_mib=0.5),
        dict(fraction=1 / 4, num_images=5953, train_build_s=0.7, check_full_s=41.0, metric_results_mib=1.9),
        dict(fraction=1.0, num_images=23816, train_build_s=3.1, check_full_s=160.0, metric_results_mib=7.5),
    ]
    lines = study.format_table(results).splitlines()
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    assert header == ['figure', '1/16 (1506)', '1/4 (5953)', '1 (23816)', 'exp 1/16->1/4', 'exp 1/4->1']
    assert len(lines) == 2 + 3  # header, separator, one row per figure present
    rows = {r.split('|')[1].strip(): [c.strip() for c in r.strip('|').split('|')[1:]] for r in lines[2:]}
    sizes = np.array([r['num_images'] for r in results], float)
    for key in ('train_build_s', 'check_full_s', 'metric_results_mib'):
        label, unit, _ = study.FIGURES[key]
        cells = rows[f'{label} [{unit}]']
        values = np.array([r[key] for r in results])
        exps = np.diff(np.log(values)) / np.diff(np.log(sizes))
        assert cells[3:] == [f'{e:.2f}' for e in exps]
        assert [float(c) for c in cells[:3]] == pytest.approx(values, rel=5e-3)


def test_memory_helpers(study):
    mem = study.smaps_rollup(os.getpid())
    assert mem['pss'] > 0 and mem['uss'] > 0
    assert study.deep_sizeof(('a' * 100, 'a' * 100)) > 200
    shared = 'b' * 1000
    assert study.deep_sizeof([shared, shared]) < 2 * len(shared)  # each object once


def test_study_runs_on_tiny_trees(study, tmp_path, capsys):
    results = study.main(
        ['--root', str(tmp_path), '--fractions', '1/1024', str(TINY), '--only', 'construction', 'loader', 'test']
        + ['--batches', '4', '--workers', '0', '--json', str(tmp_path / 'study.json')]
    )
    assert [r['fraction'] for r in results] == [1 / 1024, TINY]
    for r in results:
        assert r['num_test_scored'] == r['summary']['num_test']
        assert r['metric_results_mib'] > 0 and r['train_build_s'] > 0 and r['loader_items_per_s_worker'] > 0
    out = capsys.readouterr().out
    assert '| figure | 1/1024 (' in out and 'exp 1/1024->1/512' in out
    assert 'check_dataset' not in out.split('| figure')[1]  # not measured: no row
    assert osp.isfile(tmp_path / 'study.json')
