"""The class lists of checkpoint, model and dataset must agree (names, order, count).

(a) the same classes in another order in the config: tools/test.py scored each image with another class's
channel (exit 0) and infer took the checkpoint's order; (b) a 7-class checkpoint into a 5-class config loaded
non-strictly (random class layers); (c) heads of another number of classes than the training dataset trained
without a word.
"""

import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import QUICK_CONFIG, TINY_MODEL, save_tiny_checkpoint, tiny_options, tool_env
from mmengine.config import Config
from mmengine.runner import BaseLoop

from looptrans.apis import init_model
from looptrans.engine.hooks import ClassListCheckHook
from looptrans.testing import SYNTHETIC_SEEN_CLASSES
from looptrans.utils import CheckpointMismatchError, ClassListMismatchError, check_class_lists, load_checkpoint_strictly

CLASSES = SYNTHETIC_SEEN_CLASSES
REVERSED = tuple(reversed(CLASSES))
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

MODEL_OPTIONS = TINY_MODEL


def _options(num_classes=None, classes=None):
    opts = dict(MODEL_OPTIONS)
    if num_classes is not None:
        opts.update({'model.cam_head.num_classes': num_classes, 'model.pixel_head.num_classes': num_classes})
    if classes is not None:
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts[f'{loader}.dataset.metainfo.classes'] = tuple(classes)
    return opts


def _save_checkpoint(path, num_classes=7, classes=CLASSES):
    """A checkpoint of the tiny quick model, as MMEngine writes it (meta.dataset_meta.classes)."""
    return save_tiny_checkpoint(str(path), _options(num_classes), classes)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return _save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'seven.pth')


def _cli(opts):
    return [f'{k}={v}' if not isinstance(v, tuple) else f'{k}=({",".join(v)},)' for k, v in opts.items()]


# ------------------------------------------------------------------ (a) same classes, another order
def test_infer_api_refuses_checkpoint_classes_in_another_order(checkpoint):
    reordered = tuple(reversed(CLASSES))
    with pytest.raises(ClassListMismatchError) as info:
        init_model(QUICK_CONFIG, checkpoint, cfg_options=_options(classes=reordered))
    message = str(info.value)
    assert str(list(CLASSES)) in message and str(list(reordered)) in message and 'another order' in message
    model = init_model(QUICK_CONFIG, checkpoint, cfg_options=_options())  # the right order loads
    assert model.dataset_meta['classes'] == CLASSES


def test_test_tool_refuses_checkpoint_classes_in_another_order(checkpoint, synthetic_root, tmp_path):
    reordered = tuple(reversed(CLASSES))
    proc = subprocess.run(
        [
            sys.executable,
            'tools/test.py',
            QUICK_CONFIG,
            checkpoint,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *tiny_options(synthetic_root),
            *_cli(_options(classes=reordered)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=tool_env(),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert str(list(CLASSES)) in out and str(list(reordered)) in out
    assert 'Iter(test)' not in out  # stopped before any image was scored


def test_check_class_lists_names_both_lists():
    check_class_lists(CLASSES, CLASSES, 'x.pth', 'the test dataset')  # equal: nothing
    check_class_lists(None, CLASSES, 'x.pth', 'the test dataset')  # unknown: nothing to compare
    with pytest.raises(ClassListMismatchError, match=r"only in the checkpoint: \['sit_on'\]"):
        check_class_lists(CLASSES, CLASSES[:-1], 'x.pth', 'the test dataset')


# ------------------------------------------------------------------ (b) another number of classes
def test_checkpoint_of_another_number_of_classes_is_not_loaded(checkpoint):
    with pytest.raises(CheckpointMismatchError) as info:
        init_model(QUICK_CONFIG, checkpoint, cfg_options=_options(num_classes=5, classes=CLASSES[:5]))
    message = str(info.value)
    assert checkpoint in message and 'another shape' in message and 'cam_head.' in message
    # the classifier's outputs: the classes, then the noise outputs of a classifier that has them (the quick config's)
    model_cfg = Config.fromfile(QUICK_CONFIG).model
    extra = model_cfg.noise_head.num_noise if model_cfg.get('noise_on_cam_head') else 0
    assert extra == 15
    assert f'checkpoint ({7 + extra}, ' in message and f'model ({5 + extra}, ' in message


def test_test_tool_loads_strictly(checkpoint, synthetic_root, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            'tools/test.py',
            QUICK_CONFIG,
            checkpoint,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *tiny_options(synthetic_root),
            *_cli(_options(num_classes=5)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=tool_env(),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and 'another shape' in out and 'Iter(test)' not in out, out[-3000:]


def test_missing_and_unexpected_keys_are_named(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={'0.weight': torch.zeros(3, 2), 'extra': torch.zeros(1)}), path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint_strictly(model, path)
    assert '0.bias' in str(info.value) and 'extra' in str(info.value)


# ------------------------------------------------------------------ (c) training
def _runner(num_classes, train_classes, val_classes=None):
    heads = dict(
        cam_head=SimpleNamespace(num_classes=num_classes),
        pixel_head=SimpleNamespace(num_classes=num_classes),
        noise_head=SimpleNamespace(),
    )
    model = SimpleNamespace(num_classes=num_classes, **heads)

    def loop(classes):
        return SimpleNamespace(dataloader=SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=classes))))

    return SimpleNamespace(
        model=model,
        train_loop=loop(train_classes),
        val_loop=loop(val_classes) if val_classes else None,
        test_loop=loop(train_classes),
    )


@pytest.mark.parametrize('num_classes', [36, 5])
def test_hook_stops_heads_of_another_number_of_classes(num_classes):
    hook = ClassListCheckHook()
    hook.before_train(_runner(7, CLASSES))  # fits
    with pytest.raises(ClassListMismatchError) as info:
        hook.before_train(_runner(num_classes, CLASSES))
    assert f'model.cam_head.num_classes={num_classes}' in str(info.value) and str(list(CLASSES)) in str(info.value)
    with pytest.raises(ClassListMismatchError):
        hook.before_test(_runner(num_classes, CLASSES))


def test_hook_stops_validation_classes_in_another_order():
    with pytest.raises(ClassListMismatchError, match='validation dataset'):
        ClassListCheckHook().before_train(_runner(7, CLASSES, tuple(reversed(CLASSES))))


@pytest.mark.slow
def test_train_tool_stops_before_the_first_iteration(synthetic_root, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            'tools/train.py',
            QUICK_CONFIG,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            *tiny_options(synthetic_root, max_iters=2),
            'model.cam_head.num_classes=36',
            'model.pixel_head.num_classes=36',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=tool_env(),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert 'model.cam_head.num_classes=36' in out and str(list(CLASSES)) in out
    assert 'Iter(train)' not in out


# ------------------------------------------------------------------ a checkpoint loaded by the Runner
class _Loop(BaseLoop):
    """A built loop over a dataset with ``classes`` (what ClassListCheckHook reads of a Runner's loop)."""

    def __init__(self, classes):
        dataset = SimpleNamespace(metainfo=dict(classes=classes))
        super().__init__(runner=None, dataloader=SimpleNamespace(dataset=dataset))

    def run(self):
        pass


def _loading_runner(model, load_from='ckpt.pth', **loops):
    """A Runner loading ``load_from`` with ``loops`` built (``_test_loop=...``; the others are not)."""
    built = {**dict(_train_loop=None, _val_loop=None, _test_loop=None), **loops}
    return SimpleNamespace(model=model, _load_from=load_from, _resume=False, **built)


def _checkpoint(model, classes=CLASSES):
    meta = dict(dataset_meta=dict(classes=classes)) if classes else {}
    return dict(meta=meta, state_dict=model.state_dict())


def test_hook_checks_a_checkpoint_loaded_for_testing(mmengine_log):
    model = torch.nn.Linear(2, 3)
    runner = _loading_runner(model, _test_loop=_Loop(CLASSES))
    hook = ClassListCheckHook()
    hook.after_load_checkpoint(runner, _checkpoint(model))  # fits
    with pytest.raises(ClassListMismatchError, match=r"'ckpt\.pth'.*the test dataset"):
        hook.after_load_checkpoint(runner, _checkpoint(model, REVERSED))
    with pytest.raises(CheckpointMismatchError, match=r"'ckpt\.pth'.*another shape"):
        hook.after_load_checkpoint(runner, dict(state_dict={'weight': torch.zeros(4, 2), 'bias': torch.zeros(4)}))
    hook.after_load_checkpoint(runner, _checkpoint(model, classes=None))
    assert any('records no class list' in m and 'test dataset' in m for m in mmengine_log)
    val_runner = _loading_runner(model, _val_loop=_Loop(CLASSES))  # runner.val()
    with pytest.raises(ClassListMismatchError, match='the validation dataset'):
        hook.after_load_checkpoint(val_runner, _checkpoint(model, REVERSED))


def test_hook_leaves_checkpoints_loaded_for_training_alone():
    model = torch.nn.Linear(2, 3)
    other = dict(state_dict={'weight': torch.zeros(4, 2)}, meta=dict(dataset_meta=dict(classes=REVERSED)))
    fine_tuning = _loading_runner(model, _train_loop=_Loop(CLASSES), _test_loop=_Loop(CLASSES))
    ClassListCheckHook().after_load_checkpoint(fine_tuning, other)  # load_from as a start: other heads allowed
    resuming = _loading_runner(model, _test_loop=_Loop(CLASSES))
    resuming._resume = True
    ClassListCheckHook().after_load_checkpoint(resuming, other)
