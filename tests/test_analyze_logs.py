"""tools/analysis_tools/analyze_logs.py on generated MMEngine JSON scalar logs (the layout LoggerHook writes:
one JSON object per line; training lines with ``iter``/``step`` (and ``epoch`` in epoch-based runs), validation
lines with metrics and ``step``). The numbers drawn are checked against numpy."""

import json
import os
import re
import shlex

import numpy as np
import pytest
from conftest import QUICK_CONFIG, REPO, load_tool, run_tool, tiny_options

tool = load_tool('analysis_tools', 'analyze_logs.py')
LogError = tool.LogError
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _loss(seed: int, it: int) -> float:
    return 2.0 * np.exp(-it / 60) + 0.05 * np.sin(seed * 7 + it)


def _iteration_run(seed: int = 0, iters=range(10, 101, 10)) -> list:
    """An iteration-based run: losses every 10 iterations, pseudo-mask statistics from iteration 50,
    validation at 50 and 100."""
    lines = []
    for it in iters:
        line = dict(lr=1e-3, loss=_loss(seed, it), loss_cls_ego=_loss(seed, it) / 2, time=0.5, iter=it, step=it)
        if it >= 50:
            line.update(pm_valid=0.5 + it / 400 + 0.01 * seed, pm_true_iou=0.2 + 0.001 * it)
        lines.append(line)
        if it % 50 == 0:
            lines.append(dict(KLD=3.0 - it / 100 - 0.1 * seed, SIM=0.1 + it / 1000, time=0.1, step=it))
    return lines


def _epoch_run() -> list:
    """An epoch-based run: 3 epochs of 25 iterations, logged every 10, metrics logged by epoch."""
    lines = []
    for it in range(10, 76, 10):
        epoch = (it - 1) // 25 + 1
        lines.append(dict(loss=100.0 / it, epoch=epoch, iter=it, step=it))
        if it in (20, 50, 70):  # the last logged iteration of each epoch
            lines.append(dict(KLD=2.0 - 0.1 * epoch, step=epoch))
    return lines


def _write(path, lines) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.writelines(json.dumps(line) + '\n' for line in lines)
    return str(path)


# ---------------------------------------------------------------- curves
def test_iteration_run_curves():
    lines = _iteration_run()
    xs, ys, from_train = tool.extract_curve(lines, 'loss')
    assert from_train
    np.testing.assert_array_equal(xs, np.arange(10, 101, 10))
    np.testing.assert_allclose(ys, [_loss(0, it) for it in range(10, 101, 10)])
    xs, ys, _ = tool.extract_curve(lines, 'pm_valid')  # only the lines that carry it
    np.testing.assert_array_equal(xs, [50, 60, 70, 80, 90, 100])
    xs, ys, from_train = tool.extract_curve(lines, 'KLD')  # validation: at its step
    assert not from_train
    np.testing.assert_array_equal(xs, [50, 100])
    np.testing.assert_allclose(ys, [2.5, 2.0])
    # a key in both kinds of lines is read from the training ones
    np.testing.assert_allclose(tool.extract_curve(lines, 'time')[1], 0.5)


def test_epoch_run_curves():
    lines = _epoch_run()
    xs, ys, _ = tool.extract_curve(lines, 'loss', xaxis='epoch')
    np.testing.assert_array_equal(xs, [1, 2, 3])
    np.testing.assert_allclose(ys, [np.mean([10, 5]), np.mean([100 / 30, 2.5, 2]), np.mean([100 / 60, 100 / 70])])
    xs, ys, _ = tool.extract_curve(lines, 'KLD', xaxis='epoch')
    np.testing.assert_array_equal(xs, [1, 2, 3])
    np.testing.assert_allclose(ys, [1.9, 1.8, 1.7])
    # on the iteration axis, an epoch's metrics sit at its last logged training iteration
    xs, _, _ = tool.extract_curve(lines, 'KLD', xaxis='iter')
    np.testing.assert_array_equal(xs, [20, 50, 70])


def test_smoothing_is_a_trailing_moving_average():
    ys = np.random.default_rng(0).normal(size=17)
    expected = [ys[max(0, i - 4) : i + 1].mean() for i in range(len(ys))]
    np.testing.assert_allclose(tool.smooth(ys, 5), expected)
    np.testing.assert_array_equal(tool.smooth(ys, 1), ys)


# ---------------------------------------------------------------- pictures
def test_single_run_png_and_printed_summary(tmp_path, capsys):
    log = _write(tmp_path / 'run' / '20250101_000000' / 'vis_data' / '20250101_000000.json', _iteration_run())
    out = tmp_path / 'pics' / 'curves.png'
    keys = ['loss_cls_ego', 'loss', 'pm_valid', 'pm_true_iou', 'KLD']
    assert tool.main([log, '--keys', *keys, '--title', 'run', '--smooth', '3', '--out', str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed
    assert f'KLD: last 20250101_000000 {2.0:.4g}' in printed  # validation metrics are not smoothed
    expected = np.mean([_loss(0, it) for it in (80, 90, 100)])
    assert f'loss: last 20250101_000000 {expected:.4g}' in printed


def test_seeds_as_mean_and_std_band(tmp_path):
    logs = [_write(tmp_path / f'seed{s}.json', _iteration_run(seed=s)) for s in range(3)]
    out = tmp_path / 'band.pdf'
    drawn = tool.plot(logs, ['loss', 'pm_valid', 'KLD'], str(out), groups=['seeds'] * 3)
    for key in ('loss', 'pm_valid', 'KLD'):
        per_seed = np.stack([tool.extract_curve(_iteration_run(seed=s), key)[1] for s in range(3)])
        xs, mean, std = drawn[key]['seeds (n=3)']
        np.testing.assert_allclose(mean, per_seed.mean(axis=0))
        np.testing.assert_allclose(std, per_seed.std(axis=0, ddof=1))
        assert len(xs) == per_seed.shape[1]
    assert out.read_bytes().startswith(b'%PDF') and out.stat().st_size > 5_000
    # --band: every log in one group, through the command line
    assert tool.main([*logs, '--band', '--keys', 'loss', '--legend', '3 seeds', '--out', str(tmp_path / 'b.png')]) == 0
    assert (tmp_path / 'b.png').read_bytes().startswith(PNG_MAGIC)


def test_two_groups_align_on_common_iterations(tmp_path):
    a = [_write(tmp_path / f'a{s}.json', _iteration_run(seed=s)) for s in range(2)]
    # group b: one run logged only up to iteration 60 -> the group is drawn where both runs have points
    b = [
        _write(tmp_path / 'b0.json', _iteration_run(seed=5)),
        _write(tmp_path / 'b1.json', _iteration_run(6, range(10, 61, 10))),
    ]
    drawn = tool.plot([*a, *b], ['loss'], str(tmp_path / 'g.png'), groups=['A', 'A', 'B', 'B'], legend=['a', 'b'])
    assert list(drawn['loss']) == ['a', 'b']
    xs, mean, std = drawn['loss']['b']
    np.testing.assert_array_equal(xs, [10, 20, 30, 40, 50, 60])
    runs = np.array([[_loss(s, it) for it in xs] for s in (5, 6)])
    np.testing.assert_allclose(mean, runs.mean(axis=0))
    np.testing.assert_allclose(std, runs.std(axis=0, ddof=1))


def test_work_dir_resolves_to_its_newest_run(tmp_path):
    work = tmp_path / 'work'
    _write(work / '20250101_000000' / 'vis_data' / '20250101_000000.json', _iteration_run(seed=0))
    newest = _write(work / '20250202_000000' / 'vis_data' / '20250202_000000.json', _iteration_run(seed=1))
    _write(work / '20250303_000000' / 'vis_data' / 'scalars.json', _iteration_run(seed=2))  # the backend's copy
    assert tool.resolve_log_path(str(work)) == newest
    assert tool.resolve_log_path(str(work / '20250202_000000')) == newest


# ---------------------------------------------------------------- errors
def _error(tmp_path, capsys, argv) -> str:
    assert tool.main([*argv, '--out', str(tmp_path / 'x.png')]) == 1
    assert not (tmp_path / 'x.png').exists()
    return capsys.readouterr().err


def test_missing_log_file(tmp_path, capsys):
    err = _error(tmp_path, capsys, [str(tmp_path / 'nowhere.json')])
    assert f'analyze_logs.py: error: log file not found: {tmp_path / "nowhere.json"}' in err


def test_directory_without_logs(tmp_path, capsys):
    (tmp_path / 'empty_work_dir').mkdir()
    assert 'no JSON log under' in _error(tmp_path, capsys, [str(tmp_path / 'empty_work_dir')])


def test_unknown_key_names_the_available_ones(tmp_path, capsys):
    log = _write(tmp_path / 'run.json', _iteration_run())
    err = _error(tmp_path, capsys, [log, '--keys', 'loss', 'loss_pixel_dice'])
    assert f"key 'loss_pixel_dice' is not in {log}; available keys: " in err
    assert 'KLD, SIM, loss, loss_cls_ego, lr, pm_true_iou, pm_valid, time' in err


def test_empty_log(tmp_path, capsys):
    log = tmp_path / 'empty.json'
    log.write_text('\n')
    assert f'{log} holds no log lines (empty log)' in _error(tmp_path, capsys, [str(log)])


@pytest.mark.parametrize(
    'text, message',
    [('{"loss": 1, "iter": 1}\n{"loss": \n', 'line 2 is not JSON'), ('[1, 2]\n', 'line 1 is not a JSON object')],
)
def test_malformed_lines(tmp_path, capsys, text, message):
    log = tmp_path / 'bad.json'
    log.write_text(text)
    assert message in _error(tmp_path, capsys, [str(log)])


def test_epoch_axis_needs_an_epoch_based_run(tmp_path, capsys):
    log = _write(tmp_path / 'run.json', _iteration_run())
    assert 'is an iteration-based run' in _error(tmp_path, capsys, [log, '--xaxis', 'epoch'])
    metrics_only = _write(tmp_path / 'test.json', [dict(KLD=1.0, step=0)])
    assert 'has no training lines' in _error(tmp_path, capsys, [metrics_only, '--keys', 'KLD', '--xaxis', 'epoch'])


def test_group_and_legend_counts(tmp_path, capsys):
    logs = [_write(tmp_path / f'r{s}.json', _iteration_run(seed=s)) for s in range(2)]
    assert '--group needs one label per log: 1 labels for 2 logs' in _error(tmp_path, capsys, [*logs, '--group', 'A'])
    err = _error(tmp_path, capsys, [*logs, '--legend', 'a', 'b', 'c'])
    assert '--legend needs one label per log: 3 labels for 2 logs' in err
    err = _error(tmp_path, capsys, [*logs, '--band', '--legend', 'a', 'b'])
    assert '--legend needs one label per group: 2 labels for 1 groups' in err


def test_group_without_common_iterations(tmp_path, capsys):
    early = _write(tmp_path / 'early.json', _iteration_run(0, range(10, 51, 10)))
    late = _write(tmp_path / 'late.json', _iteration_run(1, range(55, 101, 10)))
    assert "the runs of group 'all' (loss) share no x value" in _error(tmp_path, capsys, [early, late, '--band'])


def test_bad_output_and_smoothing_options(tmp_path, capsys):
    log = _write(tmp_path / 'run.json', _iteration_run())
    assert tool.main([log, '--out', str(tmp_path / 'x.jpg2')]) == 1
    assert '--out must end with one of .png, .pdf, .svg' in capsys.readouterr().err
    assert '--smooth must be >= 1' in _error(tmp_path, capsys, [log, '--smooth', '0'])


@pytest.mark.slow
def test_quickstart_picture_from_a_real_run(synthetic_root, tmp_path):
    """The plotting line of tools/quickstart.sh on a real (tiny, 4-iteration) run of the quick config: the keys
    it draws are logged by the model and the picture is written."""
    work = tmp_path / 'work'
    opts = tiny_options(synthetic_root, max_iters=4)
    run_tool(
        ['tools/train.py', QUICK_CONFIG, '--work-dir', str(work), '--cfg-options', *opts, 'custom_hooks.0.start_iter=0']
    )
    script = open(os.path.join(REPO, 'tools', 'quickstart.sh')).read().replace('\\\n', ' ')
    (line,) = [ln for ln in script.splitlines() if 'analyze_logs.py' in ln]
    args = shlex.split(line.replace('"$WORK_DIR"', str(work)).replace('$WORK_DIR', str(work)))[1:]
    assert re.search(r'--keys loss_cls_ego loss_pixel_dice pm_valid pm_true_iou', line)
    proc = run_tool(args)
    assert f'wrote {work}/training_curves.png' in proc.stdout
    assert (work / 'training_curves.png').read_bytes().startswith(PNG_MAGIC)
