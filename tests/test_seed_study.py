"""tools/analysis_tools/seed_study.py: its statistics by hand, and a tiny study end to end."""

import math

import numpy as np
import pytest
from conftest import QUICK_CONFIG, TINY_MODEL, load_tool, save_tiny_checkpoint, tiny_options


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
    run = dict(KLD=2.0, SIM=0.2, NSS=1.0, on_object=0.5, on_part=0.25, rival_own=0.3, rival_other=0.1)
    results = {
        'locate': [dict(run, pm_true_iou=float('nan')), dict(run, KLD=2.2, pm_true_iou=float('nan'))],
        'all': [dict(run, pm_true_iou=0.3), dict(run, KLD=1.8, pm_true_iou=float('nan'))],
    }
    lines = tool.table(results)
    locate = next(line for line in lines if line.startswith('| locate |'))
    full = next(line for line in lines if line.startswith('| all |'))
    cells = [c.strip() for c in locate.strip('|').split('|')]
    assert cells[tool.COLUMNS.index('pm_true_iou') + 2] == '—'  # no IoU at all: a dash, not 'nan'
    assert cells[tool.COLUMNS.index('exo_on_object') + 2] == '—'  # a column the runs do not have: a dash too
    cells = [c.strip() for c in full.strip('|').split('|')]
    assert cells[tool.COLUMNS.index('pm_true_iou') + 2] == '0.300'  # one finite value: its mean, no spread
    assert cells[2] == '1.900 ± 0.141'  # KLD over both seeds
    assert math.isnan(tool.summarise([float('nan')])[0]) and tool.summarise([float('nan'), 1.0])[:1] == (1.0,)


def test_checkpoint_figures_load_the_model_once_and_agree_with_each_tool(seen_tree, tmp_path, monkeypatch):
    """One load of the checkpoint gives the figures that eval_cam_pointing.py (test heatmap, ``--exo``) and
    eval_pseudo_masks.py report when each loads it itself."""
    import looptrans.apis as apis

    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    data = [f'{d}_dataloader.dataset.data_root={seen_tree}' for d in ('train', 'val', 'test')]
    # the CAM binarised at 0.5: an untrained CAM's top 8% (0.92) often lies wholly in the border part, and
    # the comparison needs valid pseudo-masks
    options = [*data, *[f'{k}={v}' for k, v in TINY_MODEL.items()], 'model.part_discovery.cam_thr=0.5']
    loads = []
    real = apis.init_model
    monkeypatch.setattr(apis, 'init_model', lambda *a, **k: loads.append(a) or real(*a, **k))
    figures = _tool().checkpoint_figures(QUICK_CONFIG, ckpt, options)
    assert len(loads) == 1
    monkeypatch.setattr(apis, 'init_model', real)

    assert set(figures) == set(_tool().COLUMNS) - {'KLD', 'SIM', 'NSS', 'pm_true_iou'}
    pointing = load_tool('analysis_tools', 'eval_cam_pointing.py')
    test = pointing.main([QUICK_CONFIG, ckpt, '--heatmaps', 'pixel_logits', '--cfg-options', *options])
    test = test['pixel_logits']['overall']
    exo = pointing.main([QUICK_CONFIG, ckpt, '--exo', '--cfg-options', *options])['exo_cam']['overall']
    masks = load_tool('analysis_tools', 'eval_pseudo_masks.py')
    pm = masks.main([QUICK_CONFIG, ckpt, '--cfg-options', *options])['overall']
    assert (figures['on_object'], figures['on_part']) == (test['object'], test['part'])
    assert (figures['exo_on_object'], figures['exo_on_part'], figures['exo_top1']) == (
        exo['object'],
        exo['part'],
        exo['top1'],
    )
    assert figures['pm_eval_valid'] == pm['valid'] and 0 < pm['valid'] <= 1
    np.testing.assert_equal(figures['pm_eval_iou'], pm['miou'])


def test_checkpoint_figures_note_a_tree_without_exocentric_masks_and_go_on(monkeypatch, capsys):
    """A tree generated before the exocentric masks existed: the exocentric columns are NaN, a line says why, and
    the test heatmap's figures are still reported; a model without part discovery (LOCATE) has NaN pseudo-masks."""
    tool = _tool()
    overall = dict(object=0.9, part=0.5, rival_own_part=0.4, rival_other=0.2)

    class Model:
        test_cfg = dict(heatmap='cam')

    class FakePointing:
        RIVAL_KEY = 'rival_other'
        TOP1_KEY = 'top1'

        @staticmethod
        def parse_args(argv):
            return argv

        @staticmethod
        def load(args):
            return Model(), 'old/Seen'

        @staticmethod
        def play(model, root, heatmaps=('cam', 'pixel'), exo=False):
            if exo:
                raise FileNotFoundError("no masks under 'old/Seen/exo_masks'")
            return {heatmaps[0]: {'overall': overall}}, []

    monkeypatch.setattr(tool, '_sibling', lambda name: FakePointing)
    figures = tool.checkpoint_figures(QUICK_CONFIG, 'run/iter_9.pth', [])
    assert figures['on_object'] == 0.9 and figures['rival_other'] == 0.2
    for key in ('exo_on_object', 'exo_on_part', 'exo_top1', 'pm_eval_iou', 'pm_eval_valid'):
        assert math.isnan(figures[key]), key
    assert (
        "run/iter_9.pth: no exocentric pointing game (no masks under 'old/Seen/exo_masks')" in capsys.readouterr().out
    )


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
        if not o.startswith(('model.pixel_head', 'model.noise_head', 'model.cam_head', 'train_cfg.max_iters'))
    ]
    # the schedule stretched (here shrunk) to 2 iterations by --max-iters, as a long study stretches it
    study = ['--root', str(tmp_path / 'study'), '--max-iters', '2']
    results = _tool().main([*study, '--rows', 'locate', 'all', '--seeds', '0', '1', '--cfg-options', *options])
    assert set(results) == {'locate', 'all'} and all(len(runs) == 2 for runs in results.values())
    for row, runs in results.items():
        for run in runs:
            assert set(run) == set(_tool().COLUMNS)
            # the log's IoU is NaN until pixel supervision logs it; LOCATE has no part discovery to score
            undefined = {'pm_true_iou'} | ({'pm_eval_iou', 'pm_eval_valid'} if row == 'locate' else set())
            assert all(math.isnan(run[k]) for k in undefined - {'pm_true_iou'})
            scores = {k: v for k, v in run.items() if k not in undefined}
            assert all(np.isfinite(v) for v in scores.values()) and 0 <= run['on_object'] <= 1
            assert 0 <= run['exo_top1'] <= 1
            assert 0 <= run['exo_on_part'] <= run['exo_on_object'] <= 1  # the exocentric CAM on exo images
            assert 0 <= run['rival_other'] <= 1 and 0 <= run['rival_own'] <= 1
    assert results['all'][0]['KLD'] != results['all'][1]['KLD']  # the seed changes the run
    out = capsys.readouterr().out
    assert '| locate | 2 |' in out and '| all | 2 |' in out and ' ± ' in out
    # finished runs are reused: a second call trains nothing and gives the same figures
    assert (tmp_path / 'study' / 'all' / 'seed0' / 'iter_2.pth').is_file()
    again = _tool().main([*study, '--rows', 'all', '--seeds', '0', '--cfg-options', *options])
    assert again['all'][0].keys() == results['all'][0].keys()
    np.testing.assert_equal(again['all'][0], results['all'][0])  # NaN-aware: an unlogged IoU is NaN both times
    # --ego-norm-stats: the same runs' copies with egocentric statistics; the full model's test map, the pixel
    # decoder, skips the CAM projection (the same scores), LOCATE's CAM-scored test map does not
    ego = _tool().main(
        [*study, '--rows', 'locate', 'all', '--seeds', '0', '--ego-norm-stats', '--cfg-options', *options]
    )
    for key in ('KLD', 'SIM', 'NSS', 'on_object', 'on_part'):
        assert ego['all'][0][key] == results['all'][0][key], key
    assert ego['locate'][0]['KLD'] != results['locate'][0]['KLD']
    for row in ('locate', 'all'):
        seed0 = tmp_path / 'study' / row / 'seed0'
        assert (seed0 / 'iter_2_ego_stats.pth').is_file() and (seed0 / 'test_ego_stats.log').is_file()


def _stretched(config: str, options):
    """``config`` as tools/train.py reads it with ``--cfg-options *options`` (mmengine's DictAction)."""
    import argparse

    from mmengine.config import DictAction

    from looptrans.utils.config_check import load_tool_config

    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return load_tool_config(config, parser.parse_args(['--cfg-options', *options]).cfg_options)


@pytest.mark.parametrize('row', ['all', 'none', 'locate'])
def test_stretched_schedule_moves_every_iteration_count_of_a_row(row):
    tool = _tool()
    config = tool.config_of(row)
    cfg = _stretched(config, tool.stretched_schedule_options(config, 1000))
    # by hand from configs/_base_/schedules/schedule_synthetic.py (200 iterations) stretched 5x
    assert cfg.train_cfg.max_iters == 1000 and cfg.train_cfg.val_interval == 1000
    warm_up, cosine = cfg.param_scheduler
    assert (warm_up.begin, warm_up.end) == (0, 10)  # the warm-up keeps its length
    assert (cosine.T_max, cosine.begin, cosine.end) == (1000, 0, 1000)
    assert cfg.default_hooks.checkpoint.interval == 500
    hooks = {h.type: h for h in cfg.custom_hooks}
    if row == 'all':
        assert (hooks['PseudoMaskHook'].start_iter, hooks['PseudoMaskHook'].dump_interval) == (250, 500)
    else:
        assert not hooks  # no pixel head, no hook: nothing to stretch, nothing added
    if row == 'locate':
        # on in 0-based iterations > 249: the prototype loss starts at iteration 250 with the pseudo-masks' rows
        assert cfg.model.train_cfg.warm_iter == 249
    else:
        assert 'warm_iter' not in (cfg.model.get('train_cfg') or {})


def test_stretching_to_the_configs_own_length_changes_nothing():
    from mmengine.config import Config

    tool = _tool()
    for row in tool.ROWS:
        config = tool.config_of(row)
        stretched = _stretched(config, tool.stretched_schedule_options(config, 200))
        plain = Config.fromfile(config)
        for key in ('train_cfg', 'param_scheduler', 'default_hooks', 'custom_hooks'):
            assert stretched[key] == plain[key], (row, key)
        assert stretched.model.get('train_cfg') == plain.model.get('train_cfg'), row


def test_stretching_refuses_bad_lengths_epoch_schedules_and_runs_of_another_schedule(tmp_path, capsys):
    tool = _tool()
    with pytest.raises(ValueError, match='>= 1'):
        tool.stretched_schedule_options(tool.config_of('all'), 0)
    epoch_config = 'configs/looptrans_agd20k.py'
    with pytest.raises(ValueError, match=r'looptrans_agd20k\.py: no iteration-based schedule'):
        tool.stretched_schedule_options(str(tool.REPO) + '/' + epoch_config, 1000)
    for argv, message in (
        (['--max-iters', '0'], '--max-iters must be >= 1'),
        (['--max-iters', '10', '--cfg-options', 'train_cfg.max_iters=5'], 'not both'),
    ):
        with pytest.raises(SystemExit):
            tool.parse_args(argv)
        assert message in capsys.readouterr().err
    # a finished run of the 200-iteration schedule is refused, not silently reused, by a 1000-iteration study
    work = tmp_path / 'all' / 'seed0'
    work.mkdir(parents=True)
    (work / 'last_checkpoint').write_text(str(work / 'iter_200.pth'))
    with pytest.raises(ValueError, match=r'ended at iter_200\.pth, not iter_1000\.pth.*another --root'):
        tool.run_one('all', 0, str(tmp_path), [], max_iters=1000)
