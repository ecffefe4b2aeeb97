"""Which channel of a GT PNG carries the map: the loader and tools/misc/check_dataset.py decide the same way,
and a map drawn in the alpha channel scores as the same map stored as gray."""

import cv2
import numpy as np
import pytest

from looptrans.datasets import LoadAffordanceGT
from looptrans.datasets.file_io import BadFileError, gt_map_source, probe_file
from looptrans.evaluation import agd20k_scores


def _map(h=48, w=64):
    """A blob: the heatmap the tests store in different ways."""
    yy, xx = np.mgrid[:h, :w]
    return np.clip(255 * np.exp(-((yy - 20) ** 2 + (xx - 40) ** 2) / 120.0), 0, 255).astype(np.uint8)


def _store(path, gray, how):
    """``gray`` written as a PNG in one of the ways drawing tools export maps."""
    h, w = gray.shape
    if how == 'gray':
        image = gray
    elif how == 'alpha_over_white':
        image = np.dstack([np.full((h, w, 3), 255, np.uint8), gray])
    elif how == 'alpha_over_black':
        image = np.dstack([np.zeros((h, w, 3), np.uint8), gray])
    elif how == 'same_in_both':
        image = np.dstack([gray, gray, gray, gray])
    elif how == 'cutout':
        image = np.dstack([gray, gray, gray, np.where(gray > 0, 255, 0).astype(np.uint8)])
    elif how == 'opaque_rgba':
        image = np.dstack([gray, gray, gray, np.full((h, w), 255, np.uint8)])
    else:
        raise ValueError(how)
    cv2.imwrite(str(path), image)
    return str(path)


def _load(path):
    return LoadAffordanceGT().transform(dict(gt_path=path))['gt_heatmap']


@pytest.mark.parametrize('how', ['alpha_over_white', 'alpha_over_black', 'same_in_both', 'cutout', 'opaque_rgba'])
def test_rgba_gt_reads_the_map_wherever_it_is(tmp_path, how):
    gray = _map()
    expected = _load(_store(tmp_path / 'gray.png', gray, 'gray'))
    path = _store(tmp_path / f'{how}.png', gray, how)
    np.testing.assert_array_equal(_load(path), expected)
    probe = probe_file(path, 'gt')
    assert probe.error is None
    assert probe.gt_max == pytest.approx(expected.max())  # what the check reports is what the loader reads


def test_alpha_map_scores_as_the_gray_map(tmp_path):
    """The scores that were wrong (KLD 0.919 / SIM 0.556 / NSS 0 over white) equal the gray file's."""
    gray = _map()
    pred = np.random.default_rng(0).random((14, 14))
    reference = agd20k_scores([pred], [_load(_store(tmp_path / 'gray.png', gray, 'gray'))])
    for how in ('alpha_over_white', 'alpha_over_black'):
        scores = agd20k_scores([pred], [_load(_store(tmp_path / f'{how}.png', gray, how))])
        for key in ('KLD', 'SIM', 'NSS'):
            np.testing.assert_allclose(scores[key], reference[key], atol=1e-12, err_msg=f'{how} {key}')


def test_ambiguous_rgba_gt_is_refused_naming_the_file(tmp_path):
    gray = _map()
    image = np.dstack([gray, gray, gray, np.flipud(255 - gray)])  # a different map in each
    path = str(tmp_path / 'ambiguous.png')
    cv2.imwrite(path, image)
    source, why = gt_map_source(cv2.imread(path, cv2.IMREAD_UNCHANGED))
    assert source is None and 'alpha' in why
    with pytest.raises(BadFileError, match='ambiguous.png') as err:
        _load(path)
    assert 'single-channel' in str(err.value)
    assert probe_file(path, 'gt').error is not None  # check_dataset lists it as an unreadable GT


def test_check_dataset_reports_alpha_gt_and_an_all_zero_map_agrees_with_the_loader(tmp_path):
    from conftest import load_tool

    check = load_tool('misc', 'check_dataset.py')
    gray = _map()
    alpha = probe_file(_store(tmp_path / 'a.png', gray, 'alpha_over_black'), 'gt')
    empty = probe_file(_store(tmp_path / 'e.png', np.zeros_like(gray), 'alpha_over_white'), 'gt')
    report = check.TreeReport(
        dataset='AGD20K', data_root='', split=None, split_root='', classes=(), modes=(), decode='full'
    )
    check._report_probe(report, alpha, 1)
    check._report_probe(report, empty, 1)
    found = {code: [p.path for p in problems] for code, problems in report.by_code().items()}
    assert found['gt_alpha'] == [alpha.path, empty.path]
    assert found['gt_empty'] == [empty.path]  # the loader reads zeros from its alpha: the check says so
    assert 'gt_converted' not in found
