"""The checks of a run live in the Runner: ``Runner.from_cfg(cfg)`` in a notebook gets what the tools get.

Before, the class-list checks, the resume fallbacks and the config-key check ran in ``tools/train.py`` /
``tools/test.py`` only; a Runner built the MMEngine way trained 36-class heads on a 7-class tree, scored a
checkpoint with another class order, died on a deleted ``last_checkpoint`` and ignored ``cfg.trian_cfg``
without a word. They are now ``default_hooks`` entries of every LoopTrans config (``RUN_CHECK_HOOKS``),
which a child config that sets its own ``custom_hooks`` cannot drop by accident.
"""

import argparse
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import QUICK_CONFIG, REPO, save_tiny_checkpoint, tiny_options, tool_env
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from looptrans.engine.hooks import RUN_CHECK_HOOKS, add_run_check_hooks, missing_run_check_hooks
from looptrans.testing import SYNTHETIC_SEEN_CLASSES
from looptrans.utils import CheckpointMismatchError, ClassListMismatchError, TrainingFinishedError

CLASSES = tuple(SYNTHETIC_SEEN_CLASSES)
REVERSED = tuple(reversed(CLASSES))


def _options(options):
    """``--cfg-options`` texts as the tools read them (``DictAction``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def _notebook_cfg(root, work_dir, config=QUICK_CONFIG, max_iters=2, **extra):
    """The config as a notebook user builds it: ``Config.fromfile``, settings changed in code."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(_options(tiny_options(root, max_iters=max_iters, ckpt_interval=1)))
    cfg.merge_from_dict(extra)
    cfg.work_dir = str(work_dir)
    # one MMEngine logger / message hub per runner, also for two runners in the same second
    cfg.experiment_name = f'{osp.basename(str(work_dir))}_{os.urandom(4).hex()}'
    return cfg


def _hook_types(runner):
    return {type(hook).__name__ for hook in runner.hooks}


def _runner_log(capfd):
    """What the Runners of the test logged so far (each Runner logs through its own MMEngine logger, to the
    terminal), and the capture emptied."""
    out, err = capfd.readouterr()
    return out + err


def _tool(args, timeout=600):
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=timeout
    )
    return proc, proc.stdout + proc.stderr


def _error_line(output):
    lines = [line for line in output.splitlines() if line.startswith('error: ')]
    assert lines, output[-3000:]
    return lines[-1][len('error: ') :]


# ------------------------------------------------------------------ where the checks are registered
@pytest.mark.parametrize(
    'config',
    sorted(
        c
        for c in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
        if '_base_' not in c.split(osp.sep)
    ),
)
def test_every_repository_config_registers_the_run_checks(config):
    missing = missing_run_check_hooks(Config.fromfile(config))
    assert not missing, (
        f'{osp.relpath(config, REPO)} lacks the default_hooks entries {missing}: add '
        + ', '.join(f"{name}=dict(type='{RUN_CHECK_HOOKS[name]}')" for name in missing)
        + ' to the default_hooks of the base file every schedule inherits (RUN_CHECK_HOOKS).'
    )


def test_a_child_config_with_its_own_custom_hooks_keeps_the_checks(synthetic_root, tmp_path):
    child = tmp_path / 'child.py'
    child.write_text(
        f"_base_ = ['{QUICK_CONFIG}']\n"
        "custom_hooks = [dict(type='PseudoMaskHook', start_iter=1)]\n"  # replaces the base's list
        'default_hooks = dict(logger=dict(interval=1))\n'  # merged into the base's dict
        'num_classes = 36\n'
        'model = dict(cam_head=dict(num_classes=num_classes), pixel_head=dict(num_classes=num_classes))\n'
    )
    cfg = _notebook_cfg(synthetic_root, tmp_path / 'work', config=str(child))
    assert [h['type'] for h in cfg.custom_hooks] == ['PseudoMaskHook']  # the list was replaced ...
    assert missing_run_check_hooks(cfg) == []  # ... the checks were not
    runner = Runner.from_cfg(cfg)
    assert set(RUN_CHECK_HOOKS.values()) <= _hook_types(runner)
    with pytest.raises(ClassListMismatchError, match=r'model\.cam_head\.num_classes=36'):
        runner.train()
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))


def test_a_check_is_switched_off_only_by_name():
    cfg = Config(dict(default_hooks=dict(class_lists=None), custom_hooks=[dict(type='QuietLogHook')]))
    assert missing_run_check_hooks(cfg) == ['config_keys', 'resume_check', 'world_size']
    assert add_run_check_hooks(cfg) == ['config_keys', 'resume_check', 'world_size']
    assert cfg.default_hooks['class_lists'] is None and 'quiet_log' not in cfg.default_hooks
    assert cfg.default_hooks['world_size'] == dict(type='WorldSizeCheckHook')
    assert add_run_check_hooks(cfg) == []  # idempotent


# ------------------------------------------------------------------ class lists, as tools/train.py / test.py
@pytest.mark.slow
def test_notebook_training_stops_heads_of_another_number_of_classes_as_the_tool_does(synthetic_root, tmp_path):
    heads = {'model.cam_head.num_classes': 36, 'model.pixel_head.num_classes': 36}
    runner = Runner.from_cfg(_notebook_cfg(synthetic_root, tmp_path / 'notebook', **heads))
    with pytest.raises(ClassListMismatchError) as notebook:
        runner.train()
    proc, out = _tool(
        [
            'tools/train.py',
            QUICK_CONFIG,
            '--work-dir',
            str(tmp_path / 'tool'),
            '--cfg-options',
            *tiny_options(synthetic_root, max_iters=2),
            *[f'{k}={v}' for k, v in heads.items()],
        ]
    )
    assert proc.returncode == 1 and 'Iter(train)' not in out
    assert _error_line(out) == str(notebook.value)
    assert 'model.cam_head.num_classes=36' in str(notebook.value) and str(list(CLASSES)) in str(notebook.value)


@pytest.fixture(scope='module')
def seven_class_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'seven.pth'))


def _test_classes(cfg, classes):
    cfg.test_dataloader.dataset.metainfo = dict(classes=classes)


@pytest.mark.slow
def test_notebook_test_refuses_checkpoint_classes_in_another_order_as_the_tool_does(
    seven_class_checkpoint, synthetic_root, tmp_path, capfd
):
    cfg = _notebook_cfg(synthetic_root, tmp_path / 'notebook')
    _test_classes(cfg, REVERSED)
    cfg.load_from = seven_class_checkpoint
    with pytest.raises(ClassListMismatchError) as notebook:
        Runner.from_cfg(cfg).test()
    assert str(list(CLASSES)) in str(notebook.value) and str(list(REVERSED)) in str(notebook.value)
    assert 'another order' in str(notebook.value)
    assert 'Iter(test)' not in _runner_log(capfd)  # stopped before any image was scored
    proc, out = _tool(
        [
            'tools/test.py',
            QUICK_CONFIG,
            seven_class_checkpoint,
            '--work-dir',
            str(tmp_path / 'tool'),
            '--cfg-options',
            *tiny_options(synthetic_root),
            f'test_dataloader.dataset.metainfo.classes=({",".join(REVERSED)},)',
        ]
    )
    assert proc.returncode == 1 and 'Iter(test)' not in out
    assert _error_line(out) == str(notebook.value)


def test_notebook_test_loads_strictly(seven_class_checkpoint, synthetic_root, tmp_path):
    five = {'model.cam_head.num_classes': 5, 'model.pixel_head.num_classes': 5}
    cfg = _notebook_cfg(synthetic_root, tmp_path, **five)
    cfg.load_from = seven_class_checkpoint
    with pytest.raises(CheckpointMismatchError, match='another shape') as info:
        Runner.from_cfg(cfg).test()
    assert seven_class_checkpoint in str(info.value) and 'Nothing was loaded' in str(info.value)


def test_notebook_test_of_a_fitting_checkpoint_scores(seven_class_checkpoint, synthetic_root, tmp_path):
    cfg = _notebook_cfg(synthetic_root, tmp_path)
    cfg.load_from = seven_class_checkpoint
    metrics = Runner.from_cfg(cfg).test()
    assert {'KLD', 'SIM', 'NSS'} <= set(metrics)


# ------------------------------------------------------------------ config keys
def test_notebook_keys_that_have_no_effect_are_named(synthetic_root, tmp_path, capfd):
    cfg = _notebook_cfg(synthetic_root, tmp_path, max_iters=1)
    cfg.trian_cfg = dict(max_iters=1)  # a typo: the Runner reads train_cfg
    cfg.data_root = '/elsewhere'  # a variable of the file: substituted when the file was read
    Runner.from_cfg(cfg).train()
    log = _runner_log(capfd).splitlines()
    (typo,) = [m for m in log if '`trian_cfg`' in m]
    assert 'Did you mean `train_cfg`?' in typo and 'no effect' in typo and 'cfg.trian_cfg = ...' in typo
    (variable,) = [m for m in log if '`data_root`' in m]
    assert 'changes nothing' in variable and 'train_dataloader.dataset.data_root' in variable


# ------------------------------------------------------------------ resume fallbacks
@pytest.mark.slow
def test_notebook_resume_falls_back_and_says_when_finished(synthetic_root, tmp_path, capfd):
    work = tmp_path / 'work'
    Runner.from_cfg(_notebook_cfg(synthetic_root, work)).train()
    assert (work / 'iter_2.pth').exists()
    _runner_log(capfd)  # the first run's log, set aside
    # finished: said at once, nothing replayed
    finished = Runner.from_cfg(_notebook_cfg(synthetic_root, work, resume=True))
    with pytest.raises(TrainingFinishedError, match=r'train_cfg\.max_iters=2, so this run is already finished'):
        finished.train()
    log = _runner_log(capfd)
    assert 'Advance dataloader' not in log and 'Iter(train)' not in log
    # last_checkpoint names a deleted file: the newest one that exists, with a warning
    os.remove(work / 'iter_2.pth')
    runner = Runner.from_cfg(_notebook_cfg(synthetic_root, work, resume=True))
    runner.train()
    assert runner.iter == 2
    assert any('does not exist' in m and 'iter_1.pth' in m for m in _runner_log(capfd).splitlines())
    # an empty work dir: from scratch, with a warning
    empty = Runner.from_cfg(_notebook_cfg(synthetic_root, tmp_path / 'empty', max_iters=1, resume=True))
    empty.train()
    assert empty.iter == 1 and 'training starts from scratch' in _runner_log(capfd)
