"""The base class of the Interaction Hotspots video benchmarks (OPRA, EPIC-Hotspots).

The video benchmarks of Interaction Hotspots (Nagarajan et al., ICCV 2019) describe everything in one
``annotations.json`` (from the ``hotspot_data.tar.gz`` of ``Tushar-N/interaction-hotspots``):

* ``verbs``, ``nouns``: name lists; entries refer to them by index;
* ``train_clips`` / ``test_clips``: demonstration clips, each with a ``verb`` and a ``noun`` (the weak label);
* ``train_images`` / ``test_images``: static (OPRA) or inactive (EPIC) object images with a ``verb``, the
  annotated ``points`` and the image ``shape``; the GT heatmap is computed from the points
  (:mod:`looptrans.datasets.hotspots_gt`).

For LoopTrans a video sample replaces AGD20K's exocentric image set with a window of ``num_frames`` frames of
a clip (``exo_paths``, in temporal order) and pairs it with a static image of the same object (``img_path``,
the egocentric side), labelled with the clip's verb. Test samples are the static images with their GT heatmap
(``gt_path``). Both feed the AGD20K pipeline unchanged (``LoadAffordanceViews`` -> ``MultiViewTransform`` ->
``LoadAffordanceGT`` -> ``PackAffordanceInputs``), so the segmentor sees ``V = 1 + num_frames`` views.
"""

from __future__ import annotations

import json
import logging
import os
import os.path as osp
import re
from abc import ABCMeta, abstractmethod
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from ..utils.messages import preview
from .classes import default_classes_of
from .hotspots_gt import PUBLISHED_K_RATIO, HotspotsGTCache, default_cache_dir
from .skip_bad_files import SkipBadFilesMixin


def normalize_name(name: str) -> str:
    """Compare verb / class names case-insensitively with spaces and hyphens as underscores
    (``'Pick up'``, ``'pick-up'`` and ``'pick_up'`` are the same verb)."""
    return re.sub(r'[\s\-]+', '_', str(name).strip().lower())


def sample_window(num_available: int, num_frames: int, sampling: str = 'window') -> List[int]:
    """Indices (in temporal order) of ``num_frames`` frames out of ``num_available``, drawn with
    ``np.random``.

    * ``'window'``: a contiguous window at a uniformly random start (Interaction Hotspots
      ``VideoInteractions.sample``, whose ``max_len`` is our ``num_frames``; the published code never
      draws the last start, this draws every start);
    * ``'random'``: ``num_frames`` distinct frames anywhere in the clip, sorted.

    A clip shorter than ``num_frames`` is stretched: every frame is used and repeated in order
    (``floor(i * n / T)``), where the published code zero-pads instead; a fixed number of views lets the
    batch stack.
    """
    n, t = int(num_available), int(num_frames)
    if n < 1:
        raise ValueError('sample_window: the clip has no frame')
    if n <= t:
        return [int(i) for i in np.arange(t) * n // t]
    if sampling == 'window':
        start = int(np.random.randint(n - t + 1))
        return list(range(start, start + t))
    if sampling == 'random':
        return sorted(int(i) for i in np.random.choice(n, size=t, replace=False))
    raise ValueError(f"sampling must be 'window' or 'random', got {sampling!r}")


class HotspotsVideoDataset(SkipBadFilesMixin, BaseDataset, metaclass=ABCMeta):
    """Base class of the Interaction Hotspots video benchmarks (OPRA, EPIC-Hotspots).

    Subclasses say where the files of an annotation entry are (:meth:`clip_frames`,
    :meth:`ego_candidates`, :meth:`test_image_path`) and whether GT maps are transposed; this class reads
    ``annotations.json``, resolves the class list and the verb mapping, skips what is missing (with counts in
    the log), builds the cached GT heatmaps and draws the training views.

    Args:
        data_root: root folder of the dataset (see the subclass for its tree).
        ann_file: the Interaction Hotspots ``annotations.json``, relative to ``data_root`` or absolute.
        mode: ``'train'`` (clips + static images, weak verb labels) or ``'test'`` (static images + GT).
        num_frames: frames per training sample (the exocentric views). 8 is the published ``--max_len``.
        frame_stride: use every ``frame_stride``-th frame of a clip (the published ``sample_rate``); ``None``
            uses the subclass default (OPRA 1 = 5 fps frames, EPIC 10 = 6 fps of 60 fps video).
        clip_sampling: ``'window'`` (published: contiguous random window) or ``'random'`` (sorted random
            frames); see :func:`sample_window`.
        verb_map: ``{verb: class}``: the class (a name in ``metainfo['classes']``) that each verb is scored
            as. Used for image-to-video transfer, where ``metainfo['classes']`` are the AGD20K affordances a
            model was trained on and each test verb is mapped to the affordance whose heatmap is predicted.
            Names are compared by :func:`normalize_name`. Items of verbs absent from the map are skipped and
            counted. ``None`` maps every verb to the class of the same name (the weakly supervised setting,
            where the classes default to the annotation's verbs).
        classes_from: ``dict(type=<dataset type>, split=...)``: take the classes from that dataset's default
            class list (:func:`~looptrans.datasets.classes.default_classes_of`), i.e. the label order of a
            model trained on it (image-to-video transfer with ``verb_map``), instead of the verbs.
            ``metainfo=dict(classes=...)`` overrides it.
        gt_cache_dir: where GT heatmaps are written once (default ``<data_root>/gt_cache``); must be
            writable.
        k_ratio: GT kernel-size divisor (3.0 as published).
        data_prefix: sub-folders of ``data_root``, merged over the subclass's ``DEFAULT_PREFIX``.
        backend_args: MMEngine file backend arguments for reading (the GT cache is local).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``, ``metainfo``,
            ``indices``, ``lazy_init``, ...). ``metainfo=dict(classes=...)`` overrides the verb list.
    """

    METAINFO: dict = dict(classes=())
    #: Printed in messages.
    DATASET_NAME: str = 'Interaction Hotspots'
    #: Sub-folders of data_root, overridable with ``data_prefix``.
    DEFAULT_PREFIX: Dict[str, str] = {}
    DEFAULT_FRAME_STRIDE: int = 1
    #: Whether GT maps are transposed after rendering (EPIC).
    GT_TRANSPOSE: bool = False
    #: Keys a train / test annotation file must have.
    REQUIRED_KEYS: Dict[str, Tuple[str, ...]] = dict(
        train=('verbs', 'nouns', 'train_clips'), test=('verbs', 'test_images')
    )
    #: How the tree looks (for error messages).
    LAYOUT: str = ''
    #: Test sets at least this large show a progress bar while their GT heatmaps are looked up / rendered.
    PROGRESS_MIN_ITEMS: int = 200

    def __init__(
        self,
        data_root: str,
        ann_file: str = 'annotations.json',
        mode: str = 'train',
        num_frames: int = 8,
        frame_stride: Optional[int] = None,
        clip_sampling: str = 'window',
        verb_map: Optional[Mapping[str, str]] = None,
        classes_from: Optional[Mapping] = None,
        gt_cache_dir: Optional[str] = None,
        k_ratio: float = PUBLISHED_K_RATIO,
        data_prefix: Optional[Dict[str, str]] = None,
        backend_args: Optional[dict] = None,
        **kwargs,
    ) -> None:
        name = type(self).__name__
        if not data_root:
            raise ValueError(f'{name}: `data_root` is required.')
        data_root = os.path.expanduser(data_root)  # '~/data' in a config is the home folder, as in a shell
        if mode not in ('train', 'test'):
            raise ValueError(f'{name}: mode must be "train" or "test", got {mode!r}.')
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'{name}: num_frames must be an int >= 1, got {num_frames!r}.')
        frame_stride = self.DEFAULT_FRAME_STRIDE if frame_stride is None else frame_stride
        if not isinstance(frame_stride, int) or frame_stride < 1:
            raise ValueError(f'{name}: frame_stride must be an int >= 1, got {frame_stride!r}.')
        if clip_sampling not in ('window', 'random'):
            raise ValueError(f"{name}: clip_sampling must be 'window' or 'random', got {clip_sampling!r}.")
        unknown = sorted(set(data_prefix or {}) - set(self.DEFAULT_PREFIX))
        if unknown:
            raise ValueError(
                f'{name}: unknown data_prefix key(s) {unknown}; it takes '
                f'{sorted(self.DEFAULT_PREFIX)} (sub-folders of data_root).'
            )
        self.mode = mode
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.clip_sampling = clip_sampling
        self.backend_args = backend_args
        self.gt_cache = HotspotsGTCache(gt_cache_dir or default_cache_dir(data_root), k_ratio)
        self._ego_pools: Dict[str, Tuple[dict, ...]] = {}
        self._skips: Dict[str, List[Any]] = OrderedDict()
        self._init_bad_file_state()

        ann_path = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
        self._annotations: Optional[dict] = self._read_annotations(ann_path)
        self.verbs: Tuple[str, ...] = tuple(str(v) for v in self._annotations['verbs'])
        self.nouns: Tuple[str, ...] = tuple(str(n) for n in self._annotations.get('nouns', ()))
        self._verb_index = {normalize_name(v): i for i, v in enumerate(self.verbs)}
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        if 'classes' not in metainfo:
            metainfo['classes'] = default_classes_of(classes_from) if classes_from else self.verbs
        metainfo['classes'] = tuple(metainfo['classes'])
        if not metainfo['classes'] or len(set(metainfo['classes'])) != len(metainfo['classes']):
            raise ValueError(
                f'{name}: metainfo["classes"] must be a non-empty list of distinct names, '
                f'got {list(metainfo["classes"])}.'
            )
        metainfo.setdefault('verbs', self.verbs)
        self._label_of_verb = self._resolve_verb_map(verb_map, metainfo['classes'])
        kwargs.setdefault('test_mode', mode == 'test')
        prefix = dict(self.DEFAULT_PREFIX, **(data_prefix or {}))
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=prefix, metainfo=metainfo, **kwargs)

    # ------------------------------------------------------------------ annotations and classes
    def _read_annotations(self, path: str) -> dict:
        name = type(self).__name__
        try:
            text = fileio.get_text(path, backend_args=self.backend_args)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'{name}: annotation file {path!r} does not exist. Copy the Interaction Hotspots '
                f'annotations.json of {self.DATASET_NAME} there (or set `ann_file`); see '
                f'docs/video_benchmarks.md.\n{self.LAYOUT}'
            ) from err
        try:
            annotations = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f'{name}: {path!r} is not valid JSON ({err}); re-download it.') from err
        missing = [k for k in self.REQUIRED_KEYS[self.mode] if k not in annotations]
        if missing:
            raise KeyError(
                f'{name}: {path!r} has no key(s) {missing} (it has {sorted(annotations)}); '
                f'expected the Interaction Hotspots annotations.json of {self.DATASET_NAME}.'
            )
        return annotations

    def _resolve_verb_map(self, verb_map: Optional[Mapping[str, str]], classes: Sequence[str]) -> Dict[int, int]:
        """Verb index -> class index, for the verbs that have a class."""
        name = type(self).__name__
        class_index = {normalize_name(c): i for i, c in enumerate(classes)}
        if verb_map is None:
            mapping = {normalize_name(v): normalize_name(v) for v in self.verbs}
        else:
            mapping = {normalize_name(k): normalize_name(v) for k, v in dict(verb_map).items()}
            bad = sorted({v for v in dict(verb_map).values() if normalize_name(v) not in class_index})
            if bad:
                raise ValueError(
                    f'{name}: verb_map targets {bad} are not in metainfo["classes"] '
                    f'{list(classes)}; map each verb to one of those classes.'
                )
            verbs = {normalize_name(v) for v in self.verbs}
            unknown = sorted(k for k in dict(verb_map) if normalize_name(k) not in verbs)
            if unknown:
                print_log(
                    f'{name}: verb_map key(s) {unknown} are not verbs of the annotation file '
                    f'(its verbs: {list(self.verbs)}); they are ignored.',
                    logger='current',
                    level=logging.WARNING,
                )
        labels = {
            i: class_index[mapping[normalize_name(v)]]
            for i, v in enumerate(self.verbs)
            if mapping.get(normalize_name(v)) in class_index
        }
        if not labels:
            raise ValueError(
                f'{name}: no verb of the annotation file {list(self.verbs)} maps to a class '
                f'of {list(classes)}; pass verb_map={{verb: class}} or metainfo classes that '
                'name the verbs.'
            )
        return labels

    @property
    def classes(self) -> Tuple[str, ...]:
        """The class names; a label is an index into this tuple."""
        return tuple(self._metainfo['classes'])

    def verb_name(self, verb: Any) -> Tuple[int, str]:
        """``(index, name)`` of an entry's ``verb`` (an index into ``verbs``, or a name)."""
        if isinstance(verb, str):
            index = self._verb_index.get(normalize_name(verb))
            if index is None:
                raise ValueError(
                    f'{type(self).__name__}: verb {verb!r} is not in the verb list '
                    f'{list(self.verbs)} of the annotation file.'
                )
        else:
            index = int(verb)
            if not 0 <= index < len(self.verbs):
                raise ValueError(
                    f'{type(self).__name__}: verb index {index} is out of range for the '
                    f'{len(self.verbs)} verbs of the annotation file.'
                )
        return index, self.verbs[index]

    def noun_name(self, entry: Mapping) -> str:
        """The entry's noun name ('' when it has none)."""
        noun = entry.get('noun')
        if noun is None:
            return ''
        if isinstance(noun, str):
            return noun
        return self.nouns[int(noun)] if 0 <= int(noun) < len(self.nouns) else str(noun)

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def clip_frames(self, entry: Mapping) -> Tuple[List[str], int]:
        """``(paths of the clip's frames on disk in temporal order, number of frames expected)``."""

    @abstractmethod
    def ego_candidates(self, entry: Mapping) -> Tuple[str, Tuple[dict, ...]]:
        """``(pool key, candidates)``: the static images a training clip can be paired with; each candidate
        is a dict of data-info keys (``img_path``, optionally ``ego_box``). Only existing files."""

    @abstractmethod
    def test_image_path(self, entry: Mapping) -> str:
        """Path of the static image of a test entry."""

    def test_image_name(self, entry: Mapping) -> str:
        """A readable identifier of a test image (used in GT cache file names)."""
        return '_'.join(str(p) for p in entry['image'])

    # ------------------------------------------------------------------ helpers
    def prefix(self, key: str) -> str:
        return self.data_prefix[key]

    def join(self, *parts: str) -> str:
        return fileio.join_path(*parts, backend_args=self.backend_args)

    def exists(self, path: str) -> bool:
        return fileio.exists(path, backend_args=self.backend_args)

    def isdir(self, path: str) -> bool:
        return fileio.isdir(path, backend_args=self.backend_args)

    def skip(self, reason: str, example: Any) -> None:
        """Count one skipped (or partial) item under ``reason``, keeping a few examples for the log."""
        self._skips.setdefault(reason, []).append(example)

    def _log_skips(self, total: int) -> None:
        name = type(self).__name__
        for reason, examples in self._skips.items():
            print_log(
                f'{name} ({self.mode}): {len(examples)} of {total} annotation entries: {reason}. '
                f'E.g. {preview(examples)}',
                logger='current',
                level=logging.WARNING,
            )
        self._skips = OrderedDict()

    # ------------------------------------------------------------------ data list
    def load_data_list(self) -> List[dict]:
        """Build the train (clips) or test (static images + GT) list, skipping what is missing."""
        if self._annotations is None:  # full_init already ran once and freed them
            self._annotations = self._read_annotations(self.ann_file)
        try:
            data_list = self._load_train() if self.mode == 'train' else self._load_test()
        finally:
            self._annotations = None  # not needed any more; keep worker copies small
        if not data_list:
            raise FileNotFoundError(
                f'{type(self).__name__} ({self.mode}): no usable item under data_root={self.data_root!r} '
                f'with data_prefix={self.data_prefix}; every entry was skipped (see the warnings above).\n'
                f'{self.LAYOUT}'
            )
        print_log(
            f'{type(self).__name__} ({self.mode}): {len(data_list)} items, {len(self.classes)} classes',
            logger='current',
            level=logging.INFO,
        )
        return data_list

    def _load_train(self) -> List[dict]:
        entries = self._annotations['train_clips']
        data_list = []
        self._ego_pools.clear()
        for entry in entries:
            verb_index, verb = self.verb_name(entry['verb'])
            label = self._label_of_verb.get(verb_index)
            if label is None:
                self.skip('verb has no class in verb_map (skipped)', verb)
                continue
            frames, expected = self.clip_frames(entry)
            if not frames:
                self.skip('clip has no frame on disk (skipped)', self.describe_clip(entry))
                continue
            if len(frames) < expected:
                self.skip('clip misses some frames (the present ones are used)', self.describe_clip(entry))
            key, candidates = self.ego_candidates(entry)
            if not candidates:
                self.skip('no static / inactive image on disk for the clip (skipped)', self.describe_clip(entry))
                continue
            self._ego_pools.setdefault(key, tuple(candidates))
            data_list.append(
                dict(
                    frame_paths=tuple(frames),
                    ego_pool=key,
                    gt_label=label,
                    affordance=self.classes[label],
                    verb=verb,
                    object=self.noun_name(entry),
                )
            )
        self._log_skips(len(entries))
        return data_list

    def _load_test(self) -> List[dict]:
        entries = self._annotations['test_images']
        data_list = []
        # GT heatmaps are rendered on first use (a large blur per image): show progress on big test sets.
        progress = ProgressBar(len(entries)) if len(entries) >= self.PROGRESS_MIN_ITEMS else None
        for entry in entries:
            if progress is not None:
                progress.update()
            verb_index, verb = self.verb_name(entry['verb'])
            label = self._label_of_verb.get(verb_index)
            if label is None:
                self.skip('verb has no class in verb_map (skipped)', verb)
                continue
            img_path = self.test_image_path(entry)
            if not self.exists(img_path):
                self.skip('test image not on disk (skipped)', img_path)
                continue
            points = entry.get('points') or []
            if len(points) == 0:
                self.skip('no annotated point: all-zero GT (uniform for KLD/SIM, left out of AUC-J)', img_path)
            gt_path = self.gt_cache.get(
                f'{self.test_image_name(entry)}_{verb}', points, entry['shape'], transpose=self.GT_TRANSPOSE
            )
            data_list.append(
                dict(
                    img_path=img_path,
                    gt_path=gt_path,
                    gt_label=label,
                    affordance=self.classes[label],
                    verb=verb,
                    object=self.noun_name(entry),
                )
            )
        self._log_skips(len(entries))
        self.gt_cache.log_summary(type(self).__name__)
        return data_list

    def describe_clip(self, entry: Mapping) -> str:
        """A short identifier of a clip for the log."""
        return str(entry.get('clip', entry))

    def get_cat_ids(self, idx: int) -> List[int]:
        """The label of item ``idx`` (no random draw)."""
        return [BaseDataset.get_data_info(self, idx)['gt_label']]

    # ------------------------------------------------------------------ sampling and loading
    def get_data_info(self, idx: int) -> dict:
        """The idx-th item; in train mode draw its frames (``exo_paths``) and static image (``img_path``).

        Frames and images that failed to load earlier in this process are not drawn while the clip (or the
        pool) has others.
        """
        info = super().get_data_info(idx)
        if self.mode != 'train':
            return info
        frames = info.pop('frame_paths')
        pool = self._ego_pools[info.pop('ego_pool')]
        if self._bad_paths:
            frames = tuple(f for f in frames if f not in self._bad_paths) or frames
            pool = tuple(c for c in pool if c['img_path'] not in self._bad_paths) or pool
        info['exo_paths'] = [frames[i] for i in sample_window(len(frames), self.num_frames, self.clip_sampling)]
        info.update(pool[np.random.randint(len(pool))] if len(pool) > 1 else pool[0])
        return info
