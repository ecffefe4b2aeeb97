"""Datasets stored in the exocentric / egocentric folder layout of AGD20K.

The layout (AGD20K, HICO-IIF)::

    <data_root>[/<split>]/trainset/exocentric/<affordance>/<object>/*.jpg
    <data_root>[/<split>]/trainset/egocentric/<affordance>/<object>/*.jpg
    <data_root>[/<split>]/testset/egocentric/<affordance>/<object>/*.jpg
    <data_root>[/<split>]/testset/GT/<affordance>/<object>/<same stem>.png

Training follows the published LOCATE / Cross-View-AG sampling: one item per
exocentric image, plus ``num_exo - 1`` more exocentric images of the same
``<affordance>/<object>`` folder and one egocentric image of the same
affordance and object, drawn afresh every time the item is read. Only
folder-level lists are kept on the dataset; the random draws happen in
:meth:`AffordanceFolderDataset.get_data_info` with ``np.random``, which
MMEngine seeds per rank and per dataloader worker.

Bad input (see ``docs/bad_inputs.md``): layout errors raise at construction
naming the folder and the fix; unpaired, misplaced and non-image files are
skipped with a logged count; ``verify_images`` drops unreadable files at
construction; in training a file that fails to load is skipped with a
warning and another item is drawn (:meth:`AffordanceFolderDataset.__getitem__`).
"""

import logging
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.fileio import isdir, join_path, list_dir_or_file
from mmengine.logging import print_log

from ..utils.messages import preview
from .file_io import VERIFY_LEVELS, BadFileError, find_unreadable
from .folder_layout import (
    EGOCENTRIC,
    EXOCENTRIC,
    IMG_SUFFIXES,
    TEST_GT,
    TEST_IMAGES,
    FolderKey,
    flatten,
    gt_key,
    log_scan_notes,
    pair_test_files,
    pair_train_folders,
    scan_folder,
    unknown_affordances,
)
from .skip_bad_files import SkipBadFilesMixin

__all__ = ['AffordanceFolderDataset']


class AffordanceFolderDataset(SkipBadFilesMixin, BaseDataset):
    """Base class for affordance datasets in the AGD20K folder layout.

    Subclasses set ``METAINFO['classes']`` (tuple of affordance names; the
    label of an item is the index of its affordance in that tuple) and may
    override :meth:`default_classes` to choose the class list per split.

    Args:
        data_root (str): Root folder of the dataset.
        split (str, optional): Sub-folder of ``data_root`` holding
            ``trainset/`` and ``testset/`` (``'Seen'`` / ``'Unseen'`` for
            AGD20K). ``None`` reads ``<data_root>/trainset`` directly.
        mode (str): ``'train'`` reads ``trainset/`` and yields exocentric +
            egocentric samples; ``'test'`` reads ``testset/`` and yields
            egocentric images with their GT heatmap. Defaults to ``'train'``.
        num_exo (int): Exocentric images per training sample. Defaults to 3.
        img_suffixes (Sequence[str]): Image file suffixes (case-insensitive).
        gt_suffix (str): Suffix of the GT heatmap files. Defaults to '.png'.
        backend_args (dict, optional): Arguments of the MMEngine file backend
            used to list the folders.
        verify_images (bool | str): Check every listed file once at
            construction and drop the unreadable ones with a logged count.
            ``False`` (default): no check, a bad file is found when it is
            loaded. ``True`` or ``'header'``: read each file and parse its
            header, and check a JPEG / PNG is not cut short (finds empty,
            truncated and non-image files; ~0.2 ms per file on a local
            disk). ``'full'``: also decode every pixel with the training
            decoder (~1-3 ms per file).
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``metainfo``, ``lazy_init``, ``indices``, ...).
            ``test_mode`` defaults to ``mode == 'test'``. ``ann_file`` and
            ``data_prefix`` are not used: every path is derived from
            ``data_root``, ``split`` and ``mode``.
    """

    METAINFO: dict = dict(classes=())
    #: Printed in error messages; subclasses give the dataset's name.
    LAYOUT_NAME: str = 'affordance dataset'

    def __init__(
        self,
        data_root: str,
        split: Optional[str] = None,
        mode: str = 'train',
        num_exo: int = 3,
        img_suffixes: Sequence[str] = IMG_SUFFIXES,
        gt_suffix: str = '.png',
        backend_args: Optional[dict] = None,
        verify_images: Union[bool, str] = False,
        **kwargs,
    ) -> None:
        if verify_images is True:
            verify_images = 'header'
        if verify_images not in (False, None) + VERIFY_LEVELS:
            raise ValueError(
                f'{type(self).__name__}: verify_images must be False, True, '
                f"'header' or 'full', got {verify_images!r}."
            )
        if mode not in ('train', 'test'):
            raise ValueError(f'{type(self).__name__}: mode must be "train" or "test", got {mode!r}.')
        if not isinstance(num_exo, int) or num_exo < 1:
            raise ValueError(f'{type(self).__name__}: num_exo must be an int >= 1, got {num_exo!r}.')
        for unused in ('ann_file', 'data_prefix'):
            if kwargs.get(unused):
                raise ValueError(
                    f'{type(self).__name__} does not use `{unused}`: the '
                    'folders are derived from `data_root`, `split` and '
                    f'`mode`. Remove `{unused}` from the dataset config.'
                )
            kwargs.pop(unused, None)
        if not data_root:
            raise ValueError(f'{type(self).__name__}: `data_root` is required.')
        data_root = os.path.expanduser(data_root)  # '~/data' in a config is the home folder, as in a shell
        self.split = split
        self.mode = mode
        self.num_exo = num_exo
        self.img_suffixes = tuple(s.lower() for s in img_suffixes)
        self.gt_suffix = gt_suffix.lower()
        self.backend_args = backend_args
        self.verify_images = verify_images or None
        # Folder-level lists, filled by load_data_list (train mode only).
        self._exo_folders: Dict[FolderKey, Tuple[str, ...]] = {}
        self._ego_pools: Dict[FolderKey, Tuple[str, ...]] = {}
        self._ego_aff_pools: Dict[str, Tuple[str, ...]] = {}
        self._init_bad_file_state()
        kwargs.setdefault('test_mode', mode == 'test')
        kwargs['metainfo'] = self._resolve_metainfo(split, kwargs.get('metainfo'))
        super().__init__(data_root=data_root, **kwargs)

    # ------------------------------------------------------------------ #
    # class lists
    # ------------------------------------------------------------------ #
    @classmethod
    def default_classes(cls, split: Optional[str]) -> Tuple[str, ...]:
        """Class tuple used when ``metainfo`` does not give ``classes``."""
        return tuple(cls.METAINFO['classes'])

    @classmethod
    def _resolve_metainfo(cls, split: Optional[str], metainfo: Optional[dict]) -> dict:
        metainfo = dict(metainfo or {})
        if 'classes' not in metainfo:
            metainfo['classes'] = cls.default_classes(split)
        classes = tuple(metainfo['classes'])
        if not classes:
            raise ValueError(f'{cls.__name__}: the class list is empty; pass metainfo=dict(classes=(...)).')
        if len(set(classes)) != len(classes):
            dup = sorted({c for c in classes if classes.count(c) > 1})
            raise ValueError(f'{cls.__name__}: duplicate classes {dup} in metainfo["classes"].')
        metainfo['classes'] = classes
        return metainfo

    @property
    def classes(self) -> Tuple[str, ...]:
        """The affordance names; a label is an index into this tuple."""
        return tuple(self._metainfo['classes'])

    # ------------------------------------------------------------------ #
    # paths
    # ------------------------------------------------------------------ #
    @property
    def split_root(self) -> str:
        """``<data_root>/<split>``, or ``data_root`` when ``split`` is None."""
        if self.split:
            return join_path(self.data_root, self.split, backend_args=self.backend_args)
        return self.data_root

    def _subdir(self, *parts: str) -> str:
        return join_path(self.split_root, *parts, backend_args=self.backend_args)

    def _layout_help(self) -> str:
        split = '<split>/' if self.split else ''
        return (
            f'Expected layout of {self.LAYOUT_NAME}:\n'
            f'  <data_root>/{split}trainset/exocentric/<affordance>/<object>/*.jpg\n'
            f'  <data_root>/{split}trainset/egocentric/<affordance>/<object>/*.jpg\n'
            f'  <data_root>/{split}testset/egocentric/<affordance>/<object>/*.jpg\n'
            f'  <data_root>/{split}testset/GT/<affordance>/<object>/<stem>.png\n'
            f'Got data_root={self.data_root!r}, split={self.split!r}.'
        )

    def _require_dir(self, path: str) -> None:
        """Raise a FileNotFoundError naming the first missing folder."""
        if isdir(path, backend_args=self.backend_args):
            return
        missing = path
        for candidate in (self.data_root, self.split_root):
            if not isdir(candidate, backend_args=self.backend_args):
                missing = candidate
                break
        hint = ''
        if missing == self.split_root and missing != self.data_root:
            found = sorted(self._list_dirs(self.data_root))
            hint = (
                f' Sub-folders of data_root: {found}; set `split` to one '
                'of them (or split=None if trainset/ is directly under '
                'data_root).'
            )
        raise FileNotFoundError(
            f'{type(self).__name__}: folder {missing!r} does not exist.{hint}\n{self._layout_help()}'
        )

    def _list_dirs(self, path: str) -> List[str]:
        return sorted(list_dir_or_file(path, list_dir=True, list_file=False, backend_args=self.backend_args))

    def _scan(self, root: str, suffixes: Tuple[str, ...]) -> Tuple[List[str], Dict[FolderKey, List[str]]]:
        """List ``<root>/<affordance>/<object>/<file>`` and log what is
        skipped (see :func:`~.folder_layout.scan_folder`).

        Returns the affordance folder names and, per (affordance, object),
        the sorted full paths of files whose suffix is in ``suffixes``.
        """
        self._require_dir(root)
        scan = scan_folder(root, suffixes, self.backend_args)
        log_scan_notes(scan, type(self).__name__, log=print_log)
        return scan.affordances, scan.files

    def _drop_unreadable(self, items: List[Tuple[str, str]]) -> Set[str]:
        """With ``verify_images``, the set of paths in ``items`` that cannot
        be used (logged with a count); otherwise an empty set."""
        if not self.verify_images or not items:
            return set()
        owner = type(self).__name__
        bad = find_unreadable(items, self.verify_images, self.backend_args, owner)
        if bad:
            shown = preview([f'{p} ({why})' for p, why in bad.items()])
            print_log(
                f'{owner}: verify_images dropped {len(bad)} unreadable '
                f'file(s) of {len(items)}: {shown}. Re-download or delete '
                'them; tools/misc/check_dataset.py reports every problem of '
                'the tree.',
                logger='current',
                level=logging.WARNING,
            )
        return set(bad)

    @staticmethod
    def _without(files: Dict[FolderKey, List[str]], bad: Set[str]) -> Dict[FolderKey, List[str]]:
        """``files`` less the ``bad`` paths; folders left empty are gone."""
        kept = {k: [p for p in v if p not in bad] for k, v in files.items()}
        return {k: v for k, v in kept.items() if v}

    def _check_known(self, root: str, affordances: Sequence[str]) -> None:
        unknown = sorted(unknown_affordances(affordances, self.classes))
        if unknown:
            raise ValueError(
                f'{type(self).__name__}: affordance folder(s) {unknown} in '
                f'{root!r} are not in the class list {list(self.classes)}. '
                'Either pass metainfo=dict(classes=(...)) that lists every '
                'affordance folder, or remove those folders from the tree.'
            )

    # ------------------------------------------------------------------ #
    # data list
    # ------------------------------------------------------------------ #
    def load_data_list(self) -> List[dict]:
        """Scan the folders of ``mode`` and build the data list."""
        if self.mode == 'train':
            return self._load_train()
        return self._load_test()

    def _load_train(self) -> List[dict]:
        exo_root = self._subdir(*EXOCENTRIC)
        ego_root = self._subdir(*EGOCENTRIC)
        exo_affs, exo_files = self._scan(exo_root, self.img_suffixes)
        ego_affs, ego_files = self._scan(ego_root, self.img_suffixes)
        self._check_known(exo_root, exo_affs)
        self._check_known(ego_root, ego_affs)
        bad = self._drop_unreadable([(p, 'image') for files in (exo_files, ego_files) for p in flatten(files)])
        if bad:
            exo_files = self._without(exo_files, bad)
            ego_files = self._without(ego_files, bad)
        pairing = pair_train_folders(self.classes, exo_affs, exo_files, ego_files)
        missing = pairing.missing_classes
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: class(es) {missing} have no folder '
                f'in {exo_root!r} (e.g. {join_path(exo_root, missing[0])!r}). '
                'Either pass metainfo=dict(classes=(...)) with only the '
                'affordances present on disk, or complete the tree.\n'
                f'{self._layout_help()}'
            )
        if pairing.empty_classes:
            print_log(
                f'{type(self).__name__}: {len(pairing.empty_classes)} class(es) have '
                f'an exocentric folder but no images in {exo_root!r}: '
                f'{preview(pairing.empty_classes)}; they get no training samples.',
                logger='current',
                level=logging.WARNING,
            )
        no_ego = pairing.no_egocentric
        if no_ego:
            raise FileNotFoundError(
                f'{type(self).__name__}: affordance(s) {no_ego} have '
                'exocentric images but no egocentric image at all; expected '
                f'images in {join_path(ego_root, no_ego[0])!r}/<object>/. '
                'Add egocentric images or drop the class via '
                'metainfo=dict(classes=(...)) and remove its exocentric folder.'
            )

        data_list = []
        self._exo_folders.clear()
        self._ego_pools.clear()
        # Objects without egocentric images share their affordance's tuple (no copy).
        self._ego_aff_pools = pairing.egocentric_by_affordance
        label_of = {c: i for i, c in enumerate(self.classes)}
        for key, exo_paths in exo_files.items():
            aff, obj = key
            self._exo_folders[key] = tuple(exo_paths)
            self._ego_pools[key] = tuple(ego_files[key]) if key in ego_files else self._ego_aff_pools[aff]
            for i in range(len(exo_paths)):
                data_list.append(dict(exo_index=i, affordance=aff, object=obj, gt_label=label_of[aff]))
        if pairing.fallbacks:
            fallbacks = [join_path(ego_root, aff, obj) for aff, obj in pairing.fallbacks]
            print_log(
                f'{type(self).__name__}: {len(fallbacks)} exocentric '
                'affordance/object folder(s) have no egocentric folder; their '
                'samples use egocentric images of the same affordance (other '
                f'objects). Missing: {preview(fallbacks)}',
                logger='current',
                level=logging.WARNING,
            )
        if pairing.unused_egocentric:
            unused = [join_path(ego_root, aff, obj) for aff, obj in pairing.unused_egocentric]
            print_log(
                f'{type(self).__name__}: {len(unused)} egocentric '
                'affordance/object folder(s) have no exocentric folder, so '
                'their images are never used (a sample starts from an '
                'exocentric image and takes egocentric images of its own '
                f'object): {preview(unused)}. Add exocentric images of those '
                'objects or fix the folder names.',
                logger='current',
                level=logging.WARNING,
            )
        return data_list

    def _load_test(self) -> List[dict]:
        img_root = self._subdir(*TEST_IMAGES)
        gt_root = self._subdir(*TEST_GT)
        img_affs, img_files = self._scan(img_root, self.img_suffixes)
        gt_affs, gt_files = self._scan(gt_root, (self.gt_suffix,))
        self._check_known(img_root, img_affs)
        self._check_known(gt_root, gt_affs)

        pairing = pair_test_files(img_files, gt_files)
        imgs, gts = pairing.images, pairing.gts
        if pairing.duplicate_gts:
            dup_gts = pairing.duplicate_gts
            pairs = [f'{gts[gt_key(p)]!r} and {p!r}' for p in dup_gts]
            raise ValueError(
                f'{type(self).__name__}: {len(dup_gts)} GT heatmap(s) in '
                f'{gt_root!r} share their stem with another GT file of the '
                f'same folder: {"; ".join(pairs[:5])}'
                f'{" ..." if len(pairs) > 5 else ""}. Which one is the GT of '
                'the test image is ambiguous and changes the scores; keep '
                'exactly one GT file per test image. '
                'tools/misc/check_dataset.py lists them all.'
            )
        if pairing.duplicate_images:
            print_log(
                f'{type(self).__name__}: skipped {len(pairing.duplicate_images)} test '
                'image(s) that share their stem (and so their GT) with '
                f'another image of the same folder: {preview(pairing.duplicate_images)}',
                logger='current',
                level=logging.WARNING,
            )
        no_gt, no_img = list(pairing.without_gt.values()), list(pairing.without_image.values())
        if no_gt:
            print_log(
                f'{type(self).__name__}: skipped {len(no_gt)} test image(s) '
                f'without a GT heatmap in {gt_root!r}: {preview(no_gt)}',
                logger='current',
                level=logging.WARNING,
            )
        if no_img:
            print_log(
                f'{type(self).__name__}: skipped {len(no_img)} GT file(s) '
                f'without a test image in {img_root!r}: {preview(no_img)}',
                logger='current',
                level=logging.WARNING,
            )
        absent = [c for c in self.classes if c not in img_affs]
        if absent:
            print_log(
                f'{type(self).__name__}: {len(absent)} class(es) have no test '
                f'folder in {img_root!r}: {preview(absent, 5)}',
                logger='current',
                level=logging.INFO,
            )

        pairs = pairing.pairs
        bad = self._drop_unreadable([(imgs[k], 'image') for k in pairs] + [(gts[k], 'gt') for k in pairs])
        if bad:
            pairs = [k for k in pairs if imgs[k] not in bad and gts[k] not in bad]
        label_of = {c: i for i, c in enumerate(self.classes)}
        return [
            dict(img_path=imgs[key], gt_path=gts[key], gt_label=label_of[key[0]], affordance=key[0], object=key[1])
            for key in pairs
        ]

    def get_cat_ids(self, idx: int) -> List[int]:
        """The label of item ``idx`` (for class-balanced wrappers); no
        random draw is made."""
        return [BaseDataset.get_data_info(self, idx)['gt_label']]

    # ------------------------------------------------------------------ #
    # sampling
    # ------------------------------------------------------------------ #
    def get_data_info(self, idx: int) -> dict:
        """Return the idx-th item; in train mode draw its views at random.

        Train items get ``exo_paths`` (exocentric image ``idx`` first, then
        ``num_exo - 1`` others from the same folder: distinct and other than
        the anchor when the folder has more than ``num_exo`` images, else
        drawn with repeats from the whole folder, the anchor included, as
        LOCATE's ``datatrain.py`` does) and
        ``img_path`` (one egocentric image of the same affordance/object).
        Files that failed to load earlier in this process are not drawn as
        extra exocentric views while the folder has others, nor as the
        egocentric view while the object (else the affordance) has others.
        """
        info = super().get_data_info(idx)
        if self.mode != 'train':
            return info
        key = (info['affordance'], info['object'])
        folder = self._exo_folders[key]
        anchor = info.pop('exo_index')
        anchor_path = folder[anchor]
        pool = self._ego_pools[key]
        if self._bad_paths:
            others = [p for j, p in enumerate(folder) if j != anchor and p not in self._bad_paths]
            folder = (anchor_path, *others) if others else folder
            anchor = 0 if others else anchor
            pool = self._good(pool) or self._good(self._ego_aff_pools.get(key[0], ())) or pool
        extra = self.num_exo - 1
        if len(folder) > self.num_exo:  # LOCATE's rule (data/datatrain.py): distinct only with MORE than num_exo
            picks = np.random.choice(len(folder) - 1, size=extra, replace=False)
            picks = [int(j) + (j >= anchor) for j in picks]  # skip the anchor
        else:
            picks = [int(j) for j in np.random.randint(len(folder), size=extra)]
        info['exo_paths'] = [anchor_path] + [folder[j] for j in picks]
        info['img_path'] = pool[np.random.randint(len(pool))]
        return info

    def _good(self, paths: Sequence[str]) -> Tuple[str, ...]:
        """``paths`` without the files that failed to load."""
        return tuple(p for p in paths if p not in self._bad_paths)

    # ------------------------------------------------------------------ #
    # loading, with skip-and-resample of unreadable files in training
    # ------------------------------------------------------------------ #
    def _test_time_error(self, err: BadFileError, idx: int) -> BadFileError:
        """At test time a bad file is raised with the fix: every test image counts in the scores."""
        return type(err)(
            f'{err} Test item {idx}: every test image counts in the scores, so it is not skipped; fix the '
            'file, or drop unreadable files with a logged count at construction with verify_images=True.',
            err.path,
        )

    def _broken_tree_hint(self) -> str:
        return f'the tree under {self.split_root!r}'
