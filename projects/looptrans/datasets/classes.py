"""The class list of a dataset config, without building the dataset (no file is read).

Configs do not write class lists down: a dataset class gives its own (``default_classes(split)`` of the
folder datasets, the annotation file's verbs of the video benchmarks), a video benchmark scored against a
model trained on another dataset names that dataset (``classes_from=dict(type=..., split=...)``), and
``metainfo=dict(classes=(...))`` overrides both. Tools and tests that need the classes of a config before
any data exists (``tools/infer.py``, the shipped-config checks) ask :func:`config_classes`.
"""

import inspect
from typing import Mapping, Optional, Tuple

from mmseg.registry import DATASETS

__all__ = ['default_split', 'default_classes_of', 'config_classes']


def _dataset_class(dataset: Mapping) -> type:
    name = dataset.get('type')
    cls = name if isinstance(name, type) else DATASETS.get(name)
    if cls is None:
        raise KeyError(f'dataset type {name!r} is not registered (is its module in custom_imports?).')
    return cls


def default_split(cls: type) -> Optional[str]:
    """The ``split`` a dataset class uses when its config gives none (AGD20K ``'Seen'``, HICO-IIF None)."""
    param = inspect.signature(cls.__init__).parameters.get('split')
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def default_classes_of(dataset: Mapping) -> Tuple[str, ...]:
    """The classes a dataset of config ``dataset`` (``dict(type=..., split=...)``) uses by default:
    ``default_classes(split)`` of the folder datasets (AGD20K Seen / Unseen, HICO-IIF, generated trees; the
    class's own default split when ``split`` is not given), else the class's ``METAINFO['classes']`` (empty
    for the video benchmarks, whose classes come from their annotation file)."""
    cls = _dataset_class(dataset)
    if hasattr(cls, 'default_classes'):
        split = dataset['split'] if 'split' in dataset else default_split(cls)
        return tuple(cls.default_classes(split))
    return tuple(cls.METAINFO.get('classes', ()))


def config_classes(dataset: Mapping) -> Optional[Tuple[str, ...]]:
    """The class list of dataset config ``dataset``: ``metainfo.classes``, else the default classes of its
    ``classes_from`` dataset, else :func:`default_classes_of` itself; None when the classes come from the
    data (a video benchmark's verbs)."""
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return tuple(metainfo['classes'])
    if dataset.get('classes_from'):
        return default_classes_of(dataset['classes_from'])
    return default_classes_of(dataset) or None
