"""A checkpoint, a model and a dataset must agree on the class list, or the scores are silently wrong.

A LoopTrans model has one output channel per class (``cam_head``, ``pixel_head``), and a test item's label is
the index of its affordance in the dataset's ``metainfo['classes']``. Three ways to get wrong numbers without
an error, all caught here:

* the same classes in another order in the config than in the checkpoint: every image is scored with
  another class's channel (:func:`check_class_lists`);
* a checkpoint of another number of classes: MMEngine's default non-strict loading skips the class layers
  with a "size mismatch" line on stderr and the heads keep their random weights
  (:func:`load_checkpoint_strictly` loads every key with its shape, or stops naming what differs);
* heads built for another number of classes than the training dataset has (36-class heads on a 7-class
  tree train without a word; 5 heads on 7 classes crash with ``IndexError: Target 6``)
  (:func:`check_head_classes`, run before the first iteration by ``ClassListCheckHook``).

``ClassListCheckHook`` (a default hook of every LoopTrans config) runs these checks inside the Runner, so
``Runner.from_cfg(cfg).train()`` / ``.test()`` get them as ``tools/train.py`` / ``tools/test.py`` do.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import is_model_wrapper

#: Heads of a LoopTrans model that have one output channel per class.
CLASS_HEADS: Tuple[str, ...] = ('cam_head', 'pixel_head')


class ClassListMismatchError(ValueError):
    """The class lists of a checkpoint, a model and/or a dataset disagree."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model built from the config (keys or shapes differ)."""


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


def checkpoint_classes(checkpoint: dict) -> Optional[Tuple[str, ...]]:
    """The class list a checkpoint was trained with (``meta.dataset_meta.classes``), or None."""
    meta = checkpoint.get('meta') or {}
    classes = (meta.get('dataset_meta') or {}).get('classes')
    return tuple(classes) if classes else None


def head_num_classes(model: torch.nn.Module) -> Dict[str, int]:
    """``{head name: num_classes}`` for the heads of ``model`` that have a per-class output."""
    model = _unwrap(model)
    found = {}
    for name in CLASS_HEADS:
        head = getattr(model, name, None)
        if head is not None and isinstance(getattr(head, 'num_classes', None), int):
            found[name] = head.num_classes
    if not found and isinstance(getattr(model, 'num_classes', None), int):
        found['model'] = model.num_classes
    return found


def check_head_classes(model: torch.nn.Module, classes: Sequence[str], where: str) -> None:
    """Raise :class:`ClassListMismatchError` when a head's ``num_classes`` differs from ``len(classes)``.

    Args:
        model: the (possibly wrapped) model.
        classes: the dataset's class list.
        where: what the class list is, for the message (e.g. ``"the training dataset (AGD20KDataset)"``).
    """
    heads = head_num_classes(model)
    wrong = {name: n for name, n in heads.items() if n != len(classes)}
    if wrong:
        settings = ', '.join(f'model.{name}.num_classes={n}' for name, n in heads.items())
        raise ClassListMismatchError(
            f'The model has {settings}, but {where} has {len(classes)} classes: {list(classes)}. Each head '
            'needs one output per class of the dataset (label i is the i-th class). Set num_classes of every '
            f'head to {len(classes)} (in the repo configs: the top-level `num_classes` variable, or '
            f'--cfg-options '
            + ' '.join(f'model.{name}.num_classes={len(classes)}' for name in wrong)
            + '), or give the dataset the class list the model was built for (metainfo=dict(classes=...)).'
        )


def describe_class_difference(
    expected: Sequence[str], got: Sequence[str], first: str = 'first', second: str = 'second'
) -> str:
    """One line saying how two class lists differ (count, names, order); ``first`` / ``second`` name them."""
    expected, got = list(expected), list(got)
    parts = []
    if len(expected) != len(got):
        parts.append(f'{len(expected)} vs {len(got)} classes')
    only_a = [c for c in expected if c not in got]
    only_b = [c for c in got if c not in expected]
    if only_a:
        parts.append(f'only in the {first}: {only_a}')
    if only_b:
        parts.append(f'only in the {second}: {only_b}')
    if not only_a and not only_b and len(expected) == len(got):
        moved = [f'{i}: {a!r} vs {b!r}' for i, (a, b) in enumerate(zip(expected, got)) if a != b]
        parts.append(
            f'same classes in another order; label index: {first} vs {second}: '
            + ', '.join(moved[:6])
            + (f', ... ({len(moved) - 6} more)' if len(moved) > 6 else '')
        )
    return '; '.join(parts)


def check_class_lists(
    checkpoint_cls: Optional[Sequence[str]], dataset_cls: Sequence[str], checkpoint: str, where: str
) -> None:
    """Raise :class:`ClassListMismatchError` unless the checkpoint's and the dataset's classes are equal
    (names and order).

    Args:
        checkpoint_cls: the checkpoint's classes (:func:`checkpoint_classes`); None skips the check.
        dataset_cls: the dataset's ``metainfo['classes']`` (or the config's class list).
        checkpoint: the checkpoint path, for the message.
        where: what ``dataset_cls`` is, for the message.
    """
    if checkpoint_cls is None or list(checkpoint_cls) == list(dataset_cls):
        return
    difference = describe_class_difference(checkpoint_cls, dataset_cls, 'checkpoint', 'dataset')
    raise ClassListMismatchError(
        f'The checkpoint {checkpoint!r} was trained with the classes {list(checkpoint_cls)}, but {where} '
        f'uses {list(dataset_cls)} ({difference}). Label i of the '
        "dataset must be output channel i of the model, so the scores would be another class's. Use the "
        "config the checkpoint was trained with, or set the dataset's metainfo=dict(classes=...) to the "
        "checkpoint's list (same names, same order)."
    )


_MODULE_PREFIX = re.compile(r'^module\.')


def state_dict_mismatch(model: torch.nn.Module, state_dict: Dict[str, Any], limit: int = 8) -> List[str]:
    """What differs between ``state_dict`` and ``model``: missing keys, unexpected keys, other shapes.

    Keys of a DDP-saved state dict (``module.`` prefix) are compared without the prefix, as MMEngine loads
    them. Returns one line per kind of difference (empty when every key and shape matches).
    """
    own = {k: v for k, v in _unwrap(model).state_dict().items()}
    theirs = {_MODULE_PREFIX.sub('', k): v for k, v in state_dict.items()}
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    shapes = [
        f'{k}: checkpoint {tuple(theirs[k].shape)} vs model {tuple(own[k].shape)}'
        for k in own
        if k in theirs and hasattr(theirs[k], 'shape') and tuple(theirs[k].shape) != tuple(own[k].shape)
    ]

    def show(items: List[str]) -> str:
        more = f', ... ({len(items) - limit} more)' if len(items) > limit else ''
        return ', '.join(items[:limit]) + more

    lines = []
    if shapes:
        lines.append(f'{len(shapes)} weight(s) of another shape: {show(shapes)}')
    if missing:
        lines.append(f'{len(missing)} weight(s) of the model missing from the checkpoint: {show(missing)}')
    if unexpected:
        lines.append(f'{len(unexpected)} weight(s) in the checkpoint that the model does not have: {show(unexpected)}')
    return lines


def check_checkpoint_fits(model: torch.nn.Module, checkpoint: Any, filename: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` holds exactly the weights of ``model``
    (every key, every shape), naming ``filename`` and each difference.

    MMEngine's ``Runner`` and ``load_checkpoint`` load non-strictly by default: a layer whose shape differs
    (another number of classes) is skipped with a line on stderr and keeps its random weights. Call this
    before loading, so that nothing is loaded when it raises.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'{filename!r} holds a {type(checkpoint).__name__}, not a checkpoint '
            'dict (a state_dict, or a dict with "state_dict").'
        )
    problems = state_dict_mismatch(model, checkpoint.get('state_dict', checkpoint))
    if problems:
        classes = checkpoint_classes(checkpoint)
        trained = f' (trained with {len(classes)} classes: {list(classes)})' if classes else ''
        heads = ', '.join(f'{k}={v}' for k, v in head_num_classes(model).items())
        raise CheckpointMismatchError(
            f'The checkpoint {filename!r}{trained} does not fit the model built from the config (num_classes: '
            f'{heads}): ' + '; '.join(problems) + '. Nothing was loaded. Use the config the checkpoint was '
            'trained with (same backbone, heads and number of classes).'
        )


def load_checkpoint_strictly(
    model: torch.nn.Module, filename: str, map_location: Any = 'cpu', runner: Any = None
) -> dict:
    """Load every weight of ``filename`` into ``model``, checking every key and shape first
    (:func:`check_checkpoint_fits`).

    Testing and inference must not run on a model whose class layers kept their random weights. Loading goes
    through MMEngine's ``_load_checkpoint`` (the safe loader of :mod:`looptrans.utils.checkpoint`); with a
    ``runner`` its ``after_load_checkpoint`` hooks run first, as in ``Runner.load_checkpoint``.

    Returns:
        The checkpoint dict (``meta``, ``state_dict`` ...).
    """
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

    checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        check_checkpoint_fits(model, checkpoint, filename)
    if runner is not None:
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    check_checkpoint_fits(model, checkpoint, filename)
    _load_checkpoint_to_model(_unwrap(model), checkpoint, strict=True)
    return checkpoint
