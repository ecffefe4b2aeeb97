"""Tests of tools/misc/check_dataset.py and its report (``check_tree``): every
problem of a tree at once."""

import json
import os
import os.path as osp
import runpy
import shutil
import sys

import cv2
import numpy as np
import pytest
from conftest import load_tool
from PIL import Image

from looptrans.datasets.file_io import probe_file
from looptrans.testing import SYNTHETIC_SEEN_CLASSES

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'misc', 'check_dataset.py')
CLASSES = list(SYNTHETIC_SEEN_CLASSES)


tool = load_tool('misc', 'check_dataset.py')
PROBLEM_KINDS, SEVERITIES, check_tree = tool.PROBLEM_KINDS, tool.SEVERITIES, tool.check_tree


@pytest.fixture
def tree(synthetic_root, tmp_path):
    dst = str(tmp_path / 'tree')
    shutil.copytree(osp.join(synthetic_root, 'Seen'), osp.join(dst, 'Seen'))
    return dst


def p(root, *parts):
    return osp.join(root, 'Seen', *parts)


def _files(folder):
    """Independent count: {(aff, obj): number of files} by os.listdir."""
    return {
        (a, o): len(os.listdir(osp.join(folder, a, o)))
        for a in os.listdir(folder)
        for o in os.listdir(osp.join(folder, a))
    }


def _paths(report, code):
    return sorted(x.path for x in report.problems if x.code == code)


def run(argv, capsys):
    code = tool.main(argv + ['--no-progress'])
    return code, capsys.readouterr().out


# --------------------------------------------------------------------- #
# a clean tree
# --------------------------------------------------------------------- #
def test_clean_tree_counts_and_exit_zero(tree, capsys, tmp_path):
    out_json = str(tmp_path / 'report.json')
    code, out = run(['--data-root', tree, '--split', 'Seen', '--classes', *CLASSES, '--json', out_json], capsys)
    assert code == 0
    assert 'No problem found.' in out and 'OK: the tree can be used' in out
    report = json.load(open(out_json))
    expected = {
        'exocentric': _files(p(tree, 'trainset', 'exocentric')),
        'egocentric': _files(p(tree, 'trainset', 'egocentric')),
        'test': _files(p(tree, 'testset', 'egocentric')),
        'gt': _files(p(tree, 'testset', 'GT')),
    }
    rows = {(r['affordance'], r['object']): r for r in report['counts']}
    assert set(rows) == set(expected['exocentric'])
    for col, per in expected.items():
        for key, n in per.items():
            assert rows[key][col] == n
        assert report['totals'][col] == sum(per.values())
    assert report['summary'] == dict(
        errors=0, warnings=0, infos=0, files_checked=42 + 14 + 14 + 14, seconds=report['summary']['seconds'], ok=True
    )
    assert 'hold/cup' in out and 'total (14)' in out


# --------------------------------------------------------------------- #
# a tree with one of everything
# --------------------------------------------------------------------- #
def _break_everything(root):
    """Damage the tree in many ways; return {code: [paths]} expected."""
    exo = p(root, 'trainset', 'exocentric')
    ego = p(root, 'trainset', 'egocentric')
    img = p(root, 'testset', 'egocentric')
    gt = p(root, 'testset', 'GT')
    exp = {}
    # unreadable images / GT
    bad_exo = osp.join(exo, 'hold', 'cup', 'cup_000001.jpg')
    open(bad_exo, 'wb').write(b'garbage')
    bad_ego = osp.join(ego, 'pour', 'kettle', 'kettle_000000.jpg')
    data = open(bad_ego, 'rb').read()
    open(bad_ego, 'wb').write(data[:-2])  # only the end marker missing
    bad_test = osp.join(img, 'ride', 'bicycle', 'bicycle_000000.jpg')
    open(bad_test, 'wb').close()
    bad_gt = osp.join(gt, 'push', 'bicycle', 'bicycle_000000.png')
    open(bad_gt, 'wb').write(b'\x89PNG\r\n\x1a\n' + bytes(30))
    exp['unreadable_image'] = [bad_exo, bad_ego, bad_test]
    exp['unreadable_gt'] = [bad_gt]
    # stray files and folders
    notes = osp.join(exo, 'hold', 'notes.txt')
    open(notes, 'w').write('x')
    csv = osp.join(img, 'hold', 'cup', 'labels.csv')
    open(csv, 'w').write('x')
    exp['misplaced_file'] = []
    exp['non_image_file'] = [notes, csv]
    stray = osp.join(exo, 'hold', 'stray.jpg')
    shutil.copy(osp.join(exo, 'hold', 'cup', 'cup_000000.jpg'), stray)
    exp['misplaced_file'] = [stray]
    os.makedirs(osp.join(exo, 'hold', 'teapot'))
    exp['empty_folder'] = [osp.join(exo, 'hold', 'teapot')]
    ckpt = osp.join(exo, 'hold', 'cup', '.ipynb_checkpoints')
    os.makedirs(ckpt)
    exp['hidden_file'] = [ckpt + '/']
    # class list vs disk
    os.makedirs(osp.join(exo, 'fly', 'kite'))
    exp['unknown_affordance'] = [osp.join(exo, 'fly')]
    exp['empty_folder'].append(osp.join(exo, 'fly', 'kite'))
    shutil.rmtree(osp.join(exo, 'sit_on'))
    exp['missing_class'] = [osp.join(exo, 'sit_on')]
    shutil.rmtree(osp.join(ego, 'ride'))
    exp['no_egocentric'] = [osp.join(ego, 'ride')]
    shutil.rmtree(osp.join(ego, 'hold', 'knife'))
    exp['ego_fallback'] = [osp.join(ego, 'hold', 'knife')]
    # test pairs
    no_gt = osp.join(img, 'cut_with', 'knife', 'knife_000000.jpg')
    os.remove(osp.join(gt, 'cut_with', 'knife', 'knife_000000.png'))
    exp['missing_gt'] = [no_gt]
    orphan = osp.join(gt, 'cut_with', 'scissors', 'scissors_000000.png')
    os.remove(osp.join(img, 'cut_with', 'scissors', 'scissors_000000.jpg'))
    exp['orphan_gt'] = [orphan]
    # (each of those folders had one file: now they are empty too)
    exp['empty_folder'] += [osp.join(gt, 'cut_with', 'knife'), osp.join(img, 'cut_with', 'scissors')]
    dup = osp.join(img, 'hold', 'kettle', 'kettle_000000.png')
    cv2.imwrite(dup, cv2.imread(dup.replace('.png', '.jpg')))
    exp['duplicate_stem'] = [dup]
    # GT content and formats
    g = lambda a, o: osp.join(gt, a, o, f'{o}_000000.png')  # noqa: E731
    g8 = cv2.imread(g('hold', 'cup'), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(g('hold', 'cup'), cv2.applyColorMap(g8, cv2.COLORMAP_JET))
    exp['gt_color'] = [g('hold', 'cup')]
    g8 = cv2.imread(g('hold', 'knife'), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(g('hold', 'knife'), g8.astype(np.uint16) * 257)
    g8b = cv2.imread(g('hold', 'scissors'), cv2.IMREAD_GRAYSCALE)
    Image.fromarray(np.dstack([g8b] * 3)).save(g('hold', 'scissors'))
    exp['gt_converted'] = sorted([g('hold', 'knife'), g('hold', 'scissors')])
    g8 = cv2.imread(g('pour', 'bottle'), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(g('pour', 'bottle'), np.zeros_like(g8))
    exp['gt_empty'] = [g('pour', 'bottle')]
    g8 = cv2.imread(g('pour', 'kettle'), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(g('pour', 'kettle'), g8[::2, ::2])
    exp['gt_size_mismatch'] = [g('pour', 'kettle')]
    # odd but valid images
    small = osp.join(exo, 'push', 'bicycle', 'bicycle_000000.jpg')
    cv2.imwrite(small, cv2.resize(cv2.imread(small), (80, 100)))
    exp['small_image'] = [small]
    gray = osp.join(exo, 'push', 'bicycle', 'bicycle_000001.jpg')
    Image.open(gray).convert('L').save(gray)
    cmyk = osp.join(exo, 'push', 'bicycle', 'bicycle_000002.jpg')
    Image.open(cmyk).convert('CMYK').save(cmyk)
    exp['converted_image'] = sorted([gray, cmyk])
    # a test class without a test folder
    shutil.rmtree(osp.join(img, 'drink_with'))
    shutil.rmtree(osp.join(gt, 'drink_with'))
    exp['missing_test_class'] = [osp.join(img, 'drink_with')]
    return {k: sorted(v) for k, v in exp.items()}


@pytest.mark.parametrize('nproc', [1, 2])
def test_every_problem_is_reported_at_once(tree, nproc):
    expected = _break_everything(tree)
    report = check_tree(tree, CLASSES, split='Seen', nproc=nproc)
    found = {c: _paths(report, c) for c in PROBLEM_KINDS if _paths(report, c)}
    assert found == expected
    assert not report.ok
    by_sev = {s: report.num(s) for s in SEVERITIES}
    assert by_sev['error'] == sum(len(expected[c]) for c in expected if PROBLEM_KINDS[c].severity == 'error')
    details = {x.path: x.detail for x in report.problems}
    test_img, bad_ego, bad_exo = expected['unreadable_image']
    assert 'empty' in details[test_img] and 'truncated' in details[bad_ego]
    assert 'not an image' in details[bad_exo]
    h, w = cv2.imread(expected['gt_size_mismatch'][0], -1).shape
    assert details[expected['gt_size_mismatch'][0]].startswith(f'GT {h}x{w}, ')


def test_header_level_finds_the_same_unreadable_files(tree):
    expected = _break_everything(tree)
    report = check_tree(tree, CLASSES, split='Seen', decode='header')
    assert _paths(report, 'unreadable_image') == expected['unreadable_image']
    # the empty GT needs pixels: only found by decode='full'
    assert _paths(report, 'gt_empty') == []
    report = check_tree(tree, CLASSES, split='Seen', decode=None)
    assert report.files_checked == 0 and not _paths(report, 'unreadable_gt')
    assert _paths(report, 'missing_class') == expected['missing_class']


def test_tool_output_and_exit_code(tree, capsys, tmp_path):
    expected = _break_everything(tree)
    out_json = str(tmp_path / 'r.json')
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--max-paths', '-1', '--json', out_json], capsys)
    assert code == 1  # AGD20K's default split is Seen
    assert 'FAILED: fix the errors' in out
    for c, paths in expected.items():
        kind = PROBLEM_KINDS[c]
        assert f'{kind.severity.upper()} [{c}] {len(paths)} x {kind.title}' in out
        for path in paths:
            assert path in out
    report = json.load(open(out_json))
    for c, paths in expected.items():
        assert sorted(i['path'] for i in report['problems'][c]['items']) == paths
        assert report['problems'][c]['fix'] == PROBLEM_KINDS[c].fix
    assert report['summary']['ok'] is False
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--max-paths', '1', '--counts', 'none'], capsys)
    assert '... 2 more' in out and 'Files per' not in out


def test_warnings_only_exit_zero(tree, capsys):
    os.remove(p(tree, 'testset', 'GT', 'hold', 'cup', 'cup_000000.png'))
    open(p(tree, 'trainset', 'egocentric', 'hold', 'x.txt'), 'w').close()
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--decode', 'header'], capsys)
    assert code == 0
    assert 'WARNING [missing_gt] 1 x' in out
    assert 'WARNING [non_image_file] 1 x' in out and '0 error(s)' in out


def test_script_exit_status(tree, monkeypatch, capsys):
    open(p(tree, 'trainset', 'exocentric', 'hold', 'cup', 'cup_000000.jpg'), 'wb').close()
    monkeypatch.setattr(sys, 'argv', [TOOL, '--data-root', tree, '--classes', *CLASSES, '--no-progress'])
    with pytest.raises(SystemExit) as err:
        runpy.run_path(TOOL, run_name='__main__')
    assert err.value.code == 1
    assert 'ERROR [unreadable_image] 1 x' in capsys.readouterr().out


def test_progress_bar_goes_to_stderr(tree, capsys):
    code = tool.main(['--data-root', tree, '--classes', *CLASSES, '--mode', 'test'])
    captured = capsys.readouterr()
    assert code == 0 and '28/28' in captured.err
    assert '28/28' not in captured.out


# --------------------------------------------------------------------- #
# where the tree is: data root, split, dataset, config
# --------------------------------------------------------------------- #
def test_wrong_data_root_and_split(tree, capsys):
    missing = osp.join(tree, 'nope')
    code, out = run(['--data-root', missing, '--classes', *CLASSES], capsys)
    assert code == 1 and '[missing_folder] 1 x' in out and missing in out
    code, out = run(['--data-root', tree, '--split', 'seen', '--classes', *CLASSES], capsys)
    assert code == 1 and "sub-folders of data_root: ['Seen']" in out


def test_hico_iif_dataset_and_published_classes(tree, capsys):
    # HICO-IIF: no split level, 10 published classes
    code, out = run(['--data-root', osp.join(tree, 'Seen'), '--dataset', 'HICO-IIF', '--decode', 'none'], capsys)
    assert code == 1
    assert "split=None, 10 classes" in out
    assert '[unknown_affordance]' in out and '[missing_class]' in out
    code, out = run(['--data-root', tree, '--dataset', 'HICO-IIF', '--decode', 'none'], capsys)
    assert code == 1 and "sub-folders of" in out and "['Seen']" in out
    with pytest.raises(SystemExit, match='unknown dataset'):
        run(['--data-root', tree, '--dataset', 'COCO'], capsys)


def test_config_gives_root_split_and_classes(tree, capsys):
    cfg = osp.join(REPO, 'configs', 'looptrans_synthetic.py')
    code, out = run(['--config', cfg, '--data-root', tree], capsys)
    assert code == 0, out
    assert f"at {tree!r} (split='Seen', {len(CLASSES)} classes" in out
    code, out = run(
        [
            '--config',
            cfg,
            '--cfg-options',
            f'train_dataloader.dataset.data_root={tree}',
            '--mode',
            'train',
            '--decode',
            'none',
        ],
        capsys,
    )
    assert code == 0 and 'train, decode=none' in out
    with pytest.raises(SystemExit, match='does not exist'):
        run(['--config', 'nope.py'], capsys)


def test_probe_file_reports_instead_of_raising(tmp_path):
    missing = probe_file(str(tmp_path / 'gone.jpg'))
    assert missing.error == 'the file does not exist'
    txt = tmp_path / 'x.jpg'
    txt.write_text('hello')
    assert 'not an image' in probe_file(str(txt), level='header').error
    with pytest.raises(ValueError, match='level'):
        probe_file(str(txt), level='quick')
