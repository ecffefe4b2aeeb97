"""ClassListCheckHook: the model's heads, the datasets and a loaded checkpoint must agree on the classes."""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ...utils.class_lists import (
    ClassListMismatchError,
    check_checkpoint_fits,
    check_class_lists,
    check_head_classes,
    checkpoint_classes,
    describe_class_difference,
)


def _dataset_classes(loop: Any) -> Optional[Sequence[str]]:
    """``metainfo['classes']`` of a loop's dataset, or None when it has none."""
    dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
    metainfo = getattr(dataset, 'metainfo', None) or {}
    classes = metainfo.get('classes')
    return tuple(classes) if classes else None


def _name(loop: Any) -> str:
    return type(loop.dataloader.dataset).__name__


def _built(runner: Any, attr: str) -> Optional[BaseLoop]:
    """The runner's loop ``attr`` (``'_test_loop'`` ...) once built (MMEngine keeps the config dict until then)."""
    loop = getattr(runner, attr, None)
    return loop if isinstance(loop, BaseLoop) else None


@HOOKS.register_module()
class ClassListCheckHook(Hook):
    """Stops a run whose heads, datasets or checkpoint disagree on the classes, before the first iteration.

    Before training: every head with a per-class output (``cam_head``, ``pixel_head``; see
    :func:`looptrans.utils.class_lists.check_head_classes`) must have ``num_classes`` equal to the number of
    classes of the training dataset, and the validation dataset (when there is one) must have the same class
    list in the same order (a label is an index into it). Before testing: the heads must fit the test
    dataset. When ``load_from`` is loaded for ``val()`` / ``test()``: the checkpoint must hold every weight of
    the model with its shape (:func:`~looptrans.utils.class_lists.check_checkpoint_fits`; MMEngine would skip
    the layers of another shape and score with random ones), and its class list
    (``meta.dataset_meta.classes``) must equal the evaluated dataset's, names and order (a warning when the
    checkpoint records none). Loading for training (``load_from`` as a fine-tuning start, ``resume``) is not
    checked here.

    Why: 36-class heads on a 7-class tree train without a word and give a model whose class channels mean
    nothing; 5 heads on 7 classes crash mid-run with ``IndexError: Target 6``; a dataset whose class order
    differs from the checkpoint's or the training set's scores every image with another class's channel.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner: Any) -> None:
        classes = _dataset_classes(runner.train_loop)
        if classes is None:
            return
        check_head_classes(runner.model, classes, f'the training dataset ({_name(runner.train_loop)})')
        val_loop = getattr(runner, 'val_loop', None)
        val_classes = _dataset_classes(val_loop) if val_loop is not None else None
        if val_classes is not None and list(val_classes) != list(classes):
            difference = describe_class_difference(classes, val_classes, 'training', 'validation')
            raise ClassListMismatchError(
                f'The training dataset ({_name(runner.train_loop)}) has the classes {list(classes)} but the '
                f'validation dataset ({_name(val_loop)}) has {list(val_classes)} '
                f'({difference}). A label is an index into the class list, so validation would score each '
                'image with another class\'s channel. Give '
                'val_dataloader.dataset the same metainfo=dict(classes=...) as train_dataloader.dataset.'
            )

    def before_test(self, runner: Any) -> None:
        classes = _dataset_classes(runner.test_loop)
        if classes is not None:
            check_head_classes(runner.model, classes, f'the test dataset ({_name(runner.test_loop)})')

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        if _built(runner, '_train_loop') is not None or getattr(runner, '_resume', False):
            return  # training: a fine-tuning start may differ from the model on purpose
        filename = getattr(runner, '_load_from', None) or 'the loaded checkpoint'
        check_checkpoint_fits(runner.model, checkpoint, filename)
        loop, what = _built(runner, '_test_loop'), 'test'
        if loop is None:
            loop, what = _built(runner, '_val_loop'), 'validation'
        dataset_classes = _dataset_classes(loop) if loop is not None else None
        if not dataset_classes:
            return
        classes = checkpoint_classes(checkpoint)
        if classes is None:
            print_log(
                f'{filename!r} records no class list (meta.dataset_meta.classes); the class order of the '
                f'{what} dataset ({list(dataset_classes)}) cannot be checked against it.',
                logger='current',
                level=logging.WARNING,
            )
            return
        check_class_lists(classes, dataset_classes, filename, f'the {what} dataset ({_name(loop)} of this config)')
