"""A typo in a top-level config key gives a warning naming the closest
known key (``--cfg-options trian_cfg.max_iters=2`` used to train the full schedule without a word), also for
a key set in code after ``Config.fromfile`` (``ConfigKeyCheckHook``, run by the Runner).

The model-level part (unknown keys in ``model.train_cfg`` / ``model.test_cfg``) is checked in the segmentor.
"""

import argparse
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
from conftest import QUICK_CONFIG, REPO, load_tool
from mmengine.config import Config

from looptrans.engine.hooks import ConfigKeyCheckHook
from looptrans.utils.config_check import check_runner_config, check_top_level_keys, runner_keys


def _load(name):
    return load_tool(f'{name}.py')


def _args(**kw):
    base = dict(config=QUICK_CONFIG, work_dir=None, resume=None, amp=False, cfg_options=None, launcher='none')
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_typo_names_the_closest_key():
    cfg = Config.fromfile(QUICK_CONFIG)
    keys = list(cfg.keys())
    options = {'trian_cfg.max_iters': 2}
    cfg.merge_from_dict(options)
    (warning,) = check_top_level_keys(cfg, options, keys, log=False)
    assert '`trian_cfg`' in warning and 'Did you mean `train_cfg`?' in warning and 'no effect' in warning


def test_cli_override_of_a_file_variable_has_no_effect_and_says_so():
    cfg = Config.fromfile(QUICK_CONFIG)
    keys = list(cfg.keys())
    options = {'data_root': '/elsewhere', 'train_cfg.max_iters': 3, 'model.cam_head.channels': 8}
    cfg.merge_from_dict(options)
    (warning,) = check_top_level_keys(cfg, options, keys, log=False)
    assert '`data_root`' in warning and 'changes nothing' in warning
    assert 'train_dataloader.dataset.data_root' in warning


def test_file_typo_close_to_a_runner_key_is_reported(tmp_path):
    path = tmp_path / 'typo.py'
    path.write_text(f"_base_ = ['{QUICK_CONFIG}']\ndefualt_hooks = dict(logger=dict(interval=1))\nmy_variable = 3\n")
    cfg = Config.fromfile(str(path))
    (warning,) = check_top_level_keys(cfg, log=False)
    assert '`defualt_hooks`' in warning and '`default_hooks`' in warning and str(path) in warning


@pytest.mark.parametrize('config', sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)))
def test_no_warning_for_the_repository_configs(config):
    if '_base_' in config.split(osp.sep):
        pytest.skip('a base fragment')
    assert check_top_level_keys(Config.fromfile(config), log=False) == []


def test_runner_keys_cover_the_runner_arguments():
    keys = runner_keys()
    assert {'train_cfg', 'default_hooks', 'custom_hooks', 'work_dir', 'load_from', 'model_wrapper_cfg'} <= keys


def test_keys_set_in_code_after_loading_are_named():
    cfg = Config.fromfile(QUICK_CONFIG)
    cfg.trian_cfg = dict(max_iters=2)
    cfg.num_classes = 5  # a variable of the file: the heads keep the file's 7
    cfg.train_cfg.max_iters = 3  # a Runner key: an override that works, nothing to say
    variable, typo = check_runner_config(cfg, log=False)  # sorted by key
    assert '`trian_cfg`' in typo and 'Did you mean `train_cfg`?' in typo and 'cfg.trian_cfg = ...' in typo
    assert '`num_classes`' in variable and 'changes nothing' in variable
    assert check_runner_config(Config.fromfile(QUICK_CONFIG), log=False) == []


def test_a_config_without_a_file_gets_the_typo_check():
    cfg = Config(dict(train_cfg=dict(max_iters=2), defualt_hooks=dict(), my_variable=3))
    (warning,) = check_runner_config(cfg, log=False)
    assert '`defualt_hooks`' in warning and '`default_hooks`' in warning


def test_the_hook_warns_once_per_runner(mmengine_log):
    cfg = Config.fromfile(QUICK_CONFIG)
    cfg.trian_cfg = dict(max_iters=2)
    hook, runner = ConfigKeyCheckHook(), SimpleNamespace(cfg=cfg)
    hook.before_run(runner)
    hook.before_run(runner)  # train() then test(): before_run again
    assert len([m for m in mmengine_log if '`trian_cfg`' in m]) == 1


@pytest.fixture
def warnings_logged(mmengine_log):
    """The messages sent to MMEngine's current logger during the test (the tools' warnings)."""
    return mmengine_log


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_warn_after_merging_cfg_options(tool, warnings_logged):
    """The tools hand the Runner the merged config; its ConfigKeyCheckHook names the typo, once."""
    module = _load(tool)
    extra = dict(checkpoint='x.pth', out=None, show=False, show_dir=None, wait_time=2) if tool == 'test' else {}
    cfg = module.build_config(_args(cfg_options={'trian_cfg.max_iters': 2}, **extra))
    assert not any('trian_cfg' in m for m in warnings_logged)  # not twice: the tool leaves it to the Runner
    assert cfg.default_hooks['config_keys'] == dict(type='ConfigKeyCheckHook')
    ConfigKeyCheckHook().before_run(SimpleNamespace(cfg=cfg))
    assert any('Did you mean `train_cfg`?' in m for m in warnings_logged), warnings_logged


def test_innermost_dataset_unwraps_dataset_wrappers():
    """The tools find the data root through ConcatDataset / RepeatDataset-style wrappers: the first dataset config
    with a data_root, else the innermost."""
    from looptrans.utils.config_check import innermost_dataset

    inner = dict(type='AGD20KDataset', data_root='data/AGD20K', split='Seen')
    assert innermost_dataset(inner) is inner
    assert innermost_dataset(dict(type='RepeatDataset', times=2, dataset=dict(type='W', dataset=inner))) is inner
    rooted = dict(type='W', data_root='x', dataset=inner)
    assert innermost_dataset(rooted) is rooted
    assert innermost_dataset(dict(type='W', dataset=dict(type='V'))) == dict(type='V')
    assert innermost_dataset(None) is None
