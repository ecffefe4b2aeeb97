"""ClassListCheckHook: the model's heads and the datasets must agree on the classes before iteration 1."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.class_lists import ClassListMismatchError, check_head_classes, describe_class_difference


def _dataset_classes(loop: Any) -> Optional[Sequence[str]]:
    """``metainfo['classes']`` of a loop's dataset, or None when it has none."""
    dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
    metainfo = getattr(dataset, 'metainfo', None) or {}
    classes = metainfo.get('classes')
    return tuple(classes) if classes else None


def _name(loop: Any) -> str:
    return type(loop.dataloader.dataset).__name__


@HOOKS.register_module()
class ClassListCheckHook(Hook):
    """Stops a run whose heads or datasets disagree on the classes, before the first iteration.

    Before training: every head with a per-class output (``cam_head``, ``pixel_head``; see
    :func:`looptrans.utils.class_lists.check_head_classes`) must have ``num_classes`` equal to the number of
    classes of the training dataset, and the validation dataset (when there is one) must have the same class
    list in the same order (a label is an index into it). Before testing: the heads must fit the test
    dataset. ``tools/train.py`` and ``tools/test.py`` add this hook to every run; add it to ``custom_hooks``
    when you build a ``Runner`` yourself.

    Why: 36-class heads on a 7-class tree train without a word and give a model whose class channels mean
    nothing; 5 heads on 7 classes crash mid-run with ``IndexError: Target 6``; a validation set whose class
    order differs from the training set's scores every image with another class's channel.
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
