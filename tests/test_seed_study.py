"""tools/analysis_tools/seed_study.py: its statistics by hand, and a tiny study end to end."""

import math

import numpy as np
import pytest
from conftest import load_tool, tiny_options


def _tool():
    return load_tool('analysis_tools', 'seed_study.py')


def test_summary_and_noise_rule_by_hand():
    tool = _tool()
    mean, std, n = tool.summarise([1.0, 2.0, 4.0])
    assert (mean, n) == (pytest.approx(7 / 3), 3)
    assert std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert math.isnan(tool.summarise([1.0])[1])
    # Welch: difference 1.0, standard error sqrt(0.01/3 + 0.01/3) = 0.0816 -> beyond; 0.1 -> not
    assert tool.beyond_noise([1.0, 1.1, 0.9], [0.0, 0.1, -0.1]) is True
    assert tool.beyond_noise([0.1, 0.2, 0.0], [0.0, 0.1, -0.1]) is False
    assert tool.beyond_noise([1.0], [0.0, 0.1]) is None


def test_table_skips_undefined_values_and_marks_columns_without_any():
    tool = _tool()
    run = dict(KLD=2.0, SIM=0.2, NSS=1.0, on_object=0.5, on_part=0.25)
    results = {
        'locate': [dict(run, pm_true_iou=float('nan')), dict(run, KLD=2.2, pm_true_iou=float('nan'))],
        'all': [dict(run, pm_true_iou=0.3), dict(run, KLD=1.8, pm_true_iou=float('nan'))],
    }
    lines = tool.table(results)
    locate = next(line for line in lines if line.startswith('| locate |'))
    full = next(line for line in lines if line.startswith('| all |'))
    cells = [c.strip() for c in locate.strip('|').split('|')]
    assert cells[tool.COLUMNS.index('pm_true_iou') + 2] == '—'  # no IoU at all: a dash, not 'nan'
    cells = [c.strip() for c in full.strip('|').split('|')]
    assert cells[tool.COLUMNS.index('pm_true_iou') + 2] == '0.300'  # one finite value: its mean, no spread
    assert cells[2] == '1.900 ± 0.141'  # KLD over both seeds
    assert math.isnan(tool.summarise([float('nan')])[0]) and tool.summarise([float('nan'), 1.0])[:1] == (1.0,)


def test_test_metrics_reads_the_last_test_line(tmp_path):
    log = tmp_path / 'test.log'
    log.write_text(
        'x Iter(test) [1/1]    KLD: 9.0  SIM: 0.1  NSS: 0.2  data_time: 1\n'
        'y Iter(test) [6/6]    KLD: 2.4154  SIM: 0.2147  NSS: -1.6368  data_time: 0.02\n'
    )
    assert _tool().test_metrics(str(log)) == dict(KLD=2.4154, SIM=0.2147, NSS=-1.6368)
    (tmp_path / 'empty.log').write_text('nothing')
    with pytest.raises(ValueError, match='no "Iter'):
        _tool().test_metrics(str(tmp_path / 'empty.log'))
    with pytest.raises(ValueError, match='unknown row'):
        _tool().config_of('everything')


@pytest.mark.slow
def test_tiny_study_runs_every_row_and_seed_and_prints_the_table(synthetic_root, tmp_path, capsys):
    # options every row takes (LOCATE has no pixel or noise head to shrink, and the noise head's width is the CAM's)
    options = [
        o
        for o in tiny_options(synthetic_root, max_iters=2)
        if not o.startswith(('model.pixel_head', 'model.noise_head', 'model.cam_head'))
    ]
    results = _tool().main(
        ['--root', str(tmp_path / 'study'), '--rows', 'locate', 'all', '--seeds', '0', '1', '--cfg-options', *options]
    )
    assert set(results) == {'locate', 'all'} and all(len(runs) == 2 for runs in results.values())
    for runs in results.values():
        for run in runs:
            assert set(run) == {'KLD', 'SIM', 'NSS', 'on_object', 'on_part', 'pm_true_iou'}
            scores = {k: v for k, v in run.items() if k != 'pm_true_iou'}  # NaN until pixel supervision logs it
            assert all(np.isfinite(v) for v in scores.values()) and 0 <= run['on_object'] <= 1
    assert results['all'][0]['KLD'] != results['all'][1]['KLD']  # the seed changes the run
    out = capsys.readouterr().out
    assert '| locate | 2 |' in out and '| all | 2 |' in out and ' ± ' in out
    # finished runs are reused: a second call trains nothing and gives the same figures
    again = _tool().main(
        ['--root', str(tmp_path / 'study'), '--rows', 'all', '--seeds', '0', '--cfg-options', *options]
    )
    assert again['all'][0].keys() == results['all'][0].keys()
    np.testing.assert_equal(again['all'][0], results['all'][0])  # NaN-aware: an unlogged IoU is NaN both times
