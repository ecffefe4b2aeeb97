"""Check an AGD20K / HICO-IIF tree before training: every problem at once.

Examples::

    python tools/misc/check_dataset.py --data-root data/AGD20K --dataset AGD20K --split Seen
    python tools/misc/check_dataset.py --data-root data/HICO-IIF --dataset HICO-IIF --nproc 8
    python tools/misc/check_dataset.py --config configs/looptrans_synthetic.py --json report.json

Lists the problems by kind with their paths (what the datasets do with each
and the fix), counts the files per affordance/object (exocentric,
egocentric, test images, GT) and decodes every image and GT file with the
training decoder, with a progress bar. Exit code 1 when there is an error
(the dataset would refuse the tree, a file cannot be read), 0 when there are
only warnings. The catalogue of problems is ``docs/bad_inputs.md``.

The report (:func:`check_tree`, :data:`PROBLEM_KINDS`) lives here, with the tool: it lists a tree with
the datasets' own folder rules (:mod:`looptrans.datasets.folder_layout`) and probes files with their
decoders (:func:`looptrans.datasets.file_io.probe_file`), so it judges a tree as training would.
"""

import argparse
import json
import os.path as osp
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine import fileio
from mmengine.config import Config, DictAction
from mmengine.fileio import join_path, list_dir_or_file
from mmengine.registry import init_default_scope

from looptrans.datasets import AffordanceFolderDataset
from looptrans.datasets.agd20k import AGD20KDataset
from looptrans.datasets.classes import default_split
from looptrans.datasets.file_io import FIX_GT, FIX_IMAGE, VERIFY_LEVELS, FileProbe, probe_files
from looptrans.datasets.folder_layout import (
    EGOCENTRIC,
    EXOCENTRIC,
    IMG_SUFFIXES,
    TEST_GT,
    TEST_IMAGES,
    FolderKey,
    FolderScan,
    gt_key,
    is_junk,
    pair_test_files,
    pair_train_folders,
    scan_folder,
    unknown_affordances,
)
from looptrans.datasets.hico_iif import HICOIIFDataset
from looptrans.utils.config_check import innermost_dataset


# --------------------------------------------------------------------------- #
# the whole-tree report
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class ProblemKind:
    """A kind of problem: how bad it is, what the datasets do, the fix."""

    severity: str  # 'error' | 'warning' | 'info'
    title: str
    effect: str
    fix: str


#: Every problem :func:`check_tree` reports, by code. ``error``: training or
#: testing fails (or silently uses fewer files than the tree has);
#: ``warning``: the datasets skip or convert it with a logged count, but the
#: tree is probably not what you meant; ``info``: converted, harmless.
PROBLEM_KINDS: Dict[str, ProblemKind] = dict(
    missing_folder=ProblemKind(
        'error',
        'folder does not exist',
        'the dataset raises FileNotFoundError at construction',
        'check data_root and split (the folder under data_root holding trainset/ and testset/)',
    ),
    symlink_loop=ProblemKind(
        'error',
        'symbolic link that leads back to its own folder (a loop)',
        'the dataset raises SymlinkLoopError at construction (listing the '
        'tree would never end); the link is not followed here',
        'remove the link, or point it at a folder outside its own ancestors',
    ),
    unknown_affordance=ProblemKind(
        'error',
        'affordance folder not in the class list',
        'the dataset raises ValueError at construction',
        'pass metainfo=dict(classes=(...)) listing every affordance folder, or remove the folder',
    ),
    missing_class=ProblemKind(
        'error',
        'class of the class list without an exocentric folder',
        'the training dataset raises FileNotFoundError at construction',
        'complete the tree, or pass metainfo=dict(classes=(...)) with only the affordances present',
    ),
    no_egocentric=ProblemKind(
        'error',
        'affordance with exocentric images but no egocentric image',
        'the training dataset raises FileNotFoundError at construction',
        'add egocentric images, or drop the class and its exocentric folder',
    ),
    unreadable_image=ProblemKind(
        'error',
        'image cannot be read or decoded',
        'training skips the item with a warning and draws another; testing '
        'stops with BadFileError; verify_images=True drops it at '
        'construction',
        FIX_IMAGE,
    ),
    unreadable_gt=ProblemKind(
        'error',
        'GT heatmap cannot be read or decoded',
        'testing stops with BadFileError; verify_images=True drops the pair at construction',
        FIX_GT,
    ),
    duplicate_gt=ProblemKind(
        'error',
        'GT heatmaps sharing a stem (e.g. a.png and a.PNG)',
        'the test dataset raises ValueError at construction: which file is '
        'the GT of the image is ambiguous (the scores change with the choice)',
        'keep exactly one GT file per test image',
    ),
    empty_class=ProblemKind(
        'warning',
        'class whose exocentric folder has no image',
        'logged; the class gets no training sample',
        'add images, or drop the class from metainfo["classes"]',
    ),
    empty_folder=ProblemKind(
        'warning',
        'affordance/object folder without images',
        'logged with a count; it gives no sample',
        'add images or delete the folder',
    ),
    ego_fallback=ProblemKind(
        'warning',
        'exocentric affordance/object without egocentric images',
        'logged; its samples use egocentric images of other objects of the same affordance',
        'add egocentric images of that object',
    ),
    ego_unused=ProblemKind(
        'warning',
        'egocentric affordance/object folder without an exocentric folder',
        'logged; its images are never used (a training sample starts from an '
        'exocentric image and takes the egocentric images of its own object)',
        'add exocentric images of that object, or move the folder to the right affordance / object name',
    ),
    missing_test_class=ProblemKind(
        'warning',
        'class without a test folder',
        'logged; the class is not evaluated',
        'complete testset/ or pass metainfo=dict(classes=(...))',
    ),
    missing_gt=ProblemKind(
        'warning',
        'test image without its GT heatmap',
        'logged with a count; the image is not evaluated',
        'add testset/GT/<affordance>/<object>/<stem>.png or delete the image',
    ),
    orphan_gt=ProblemKind(
        'warning',
        'GT heatmap without its test image',
        'logged with a count; the GT is not used',
        'add the image or delete the GT file',
    ),
    duplicate_stem=ProblemKind(
        'warning',
        'test image sharing its stem with another image',
        'logged with a count; only the first is evaluated',
        'rename or delete one of them',
    ),
    gt_color=ProblemKind(
        'warning',
        'GT heatmap in colour (channels differ)',
        'converted to gray with ITU-R 601 weights and logged once: wrong scores if it is a colour-mapped rendering',
        'store GT heatmaps as single-channel PNGs',
    ),
    gt_empty=ProblemKind(
        'warning',
        'GT heatmap is all zero',
        'left out of the KLD / SIM / NSS means and counted as num_empty_gt',
        'check the annotation; delete the pair if it has no affordance',
    ),
    gt_size_mismatch=ProblemKind(
        'warning',
        'GT heatmap size differs from its image',
        'both are resized to 224x224 by the metric, as published; a '
        'different aspect ratio usually means a wrong pairing',
        'check that the GT belongs to the image',
    ),
    misplaced_file=ProblemKind(
        'warning',
        'image not at <affordance>/<object>/<file>',
        'logged with a count; the file is ignored',
        'move it into an <affordance>/<object>/ folder or delete it',
    ),
    non_image_file=ProblemKind(
        'warning',
        'file whose suffix is not an image suffix',
        'logged with a count; the file is ignored',
        'delete it, or add its suffix to img_suffixes if it is an image',
    ),
    hidden_file=ProblemKind(
        'info', 'hidden or junk file / folder (.DS_Store, __MACOSX, ...)', 'skipped', 'nothing to do (or delete it)'
    ),
    converted_image=ProblemKind(
        'info',
        'image not stored as RGB (grayscale, CMYK, palette, alpha)',
        'converted to 3-channel BGR when loaded',
        'nothing to do',
    ),
    gt_converted=ProblemKind(
        'info',
        'GT heatmap stored as gray RGB(A) or 16-bit',
        'converted to gray float in [0, 1] (16-bit divided by 65535)',
        'nothing to do',
    ),
    gt_alpha=ProblemKind(
        'info',
        'GT heatmap carried by its alpha channel (constant colour channels), or gray cut out by a two-level alpha',
        'the map is read from the alpha channel (or the colour where opaque, 0 where transparent)',
        'nothing to do (a single-channel PNG is clearer)',
    ),
    exif_rotated=ProblemKind(
        'info',
        'image with an EXIF orientation tag (viewers rotate it)',
        'LoadAffordanceViews reads the pixels as stored by default '
        '(ignore_orientation=True, as the published PIL loading), so the '
        'model sees it as stored, not as viewers show it; the sizes in this '
        'report follow the setting checked (--exif-orientation)',
        'nothing to do for the published trees; if its GT was drawn on the '
        'upright view, re-save the image upright (PIL ImageOps.exif_transpose)'
        ' or set ignore_orientation=False',
    ),
    small_image=ProblemKind(
        'info',
        'image smaller than the network input',
        'upsampled by the pipeline (Resize to 256 / 224)',
        'nothing to do',
    ),
)

SEVERITIES: Tuple[str, ...] = ('error', 'warning', 'info')
COUNT_COLUMNS: Tuple[str, ...] = ('exocentric', 'egocentric', 'test', 'gt')


@dataclass
class Problem:
    """One occurrence of a :data:`PROBLEM_KINDS` code."""

    code: str
    path: str
    detail: str = ''

    @property
    def severity(self) -> str:
        return PROBLEM_KINDS[self.code].severity


@dataclass
class TreeReport:
    """Everything :func:`check_tree` found in one tree."""

    dataset: str
    data_root: str
    split: Optional[str]
    split_root: str
    classes: Tuple[str, ...]
    modes: Tuple[str, ...]
    decode: Optional[str]
    counts: Dict[FolderKey, Dict[str, int]] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    files_checked: int = 0
    seconds: float = 0.0

    def add(self, code: str, path: str, detail: str = '') -> None:
        if code not in PROBLEM_KINDS:
            raise KeyError(f'unknown problem code {code!r}')
        self.problems.append(Problem(code, path, detail))

    def by_code(self) -> Dict[str, List[Problem]]:
        """Problems grouped by code, in :data:`PROBLEM_KINDS` order."""
        groups: Dict[str, List[Problem]] = defaultdict(list)
        for p in self.problems:
            groups[p.code].append(p)
        return {c: groups[c] for c in PROBLEM_KINDS if c in groups}

    def num(self, severity: str) -> int:
        """Number of problems of ``severity``."""
        return sum(p.severity == severity for p in self.problems)

    @property
    def ok(self) -> bool:
        """No error (warnings and infos allowed)."""
        return self.num('error') == 0

    def totals(self) -> Dict[str, int]:
        """Column sums of :attr:`counts`."""
        return {c: sum(v[c] for v in self.counts.values()) for c in COUNT_COLUMNS}

    def to_dict(self) -> dict:
        """A JSON-serialisable form (every path of every problem)."""
        return dict(
            dataset=self.dataset,
            data_root=self.data_root,
            split=self.split,
            split_root=self.split_root,
            classes=list(self.classes),
            modes=list(self.modes),
            decode=self.decode,
            counts=[dict(affordance=a, object=o, **v) for (a, o), v in sorted(self.counts.items())],
            totals=self.totals(),
            problems={
                code: dict(
                    severity=PROBLEM_KINDS[code].severity,
                    title=PROBLEM_KINDS[code].title,
                    effect=PROBLEM_KINDS[code].effect,
                    fix=PROBLEM_KINDS[code].fix,
                    count=len(items),
                    items=[dict(path=p.path, detail=p.detail) for p in items],
                )
                for code, items in self.by_code().items()
            },
            summary=dict(
                errors=self.num('error'),
                warnings=self.num('warning'),
                infos=self.num('info'),
                files_checked=self.files_checked,
                seconds=round(self.seconds, 3),
                ok=self.ok,
            ),
        )

    def format_counts(self, per: str = 'object') -> str:
        """The count table, one row per ``'object'`` folder or per
        ``'affordance'``."""
        rows: Dict[str, Dict[str, int]] = {}
        for (aff, obj), v in sorted(self.counts.items()):
            name = f'{aff}/{obj}' if per == 'object' else aff
            row = rows.setdefault(name, dict.fromkeys(COUNT_COLUMNS, 0))
            for c in COUNT_COLUMNS:
                row[c] += v[c]
        width = max([len(r) for r in rows] + [len('affordance/object')])
        head = 'affordance/object' if per == 'object' else 'affordance'
        lines = [f'{head:<{width}}  ' + '  '.join(f'{c:>10}' for c in COUNT_COLUMNS)]
        for name, row in rows.items():
            lines.append(f'{name:<{width}}  ' + '  '.join(f'{row[c]:>10}' for c in COUNT_COLUMNS))
        tot = self.totals()
        label = f'total ({len(rows)})'
        lines.append(f'{label:<{width}}  ' + '  '.join(f'{tot[c]:>10}' for c in COUNT_COLUMNS))
        return '\n'.join(lines)

    def format_problems(self, max_paths: int = 20) -> str:
        """Every problem kind with its count, effect, fix and paths."""
        if not self.problems:
            return 'No problem found.'
        lines = []
        for code, items in self.by_code().items():
            kind = PROBLEM_KINDS[code]
            lines.append(f'{kind.severity.upper()} [{code}] {len(items)} x {kind.title}')
            lines.append(f'    what happens: {kind.effect}')
            lines.append(f'    fix: {kind.fix}')
            shown = items if max_paths < 0 else items[:max_paths]
            for p in shown:  # quoted: a trailing space must be visible
                lines.append(f'    {p.path!r}' + (f'  ({p.detail})' if p.detail else ''))
            if len(shown) < len(items):
                lines.append(f'    ... {len(items) - len(shown)} more (all of them with --max-paths -1 or --json)')
        return '\n'.join(lines)

    def format_summary(self) -> str:
        kinds = {s: sorted({p.code for p in self.problems if p.severity == s}) for s in SEVERITIES}
        parts = [f'{self.num(s)} {s}(s)' + (f' {kinds[s]}' if kinds[s] else '') for s in SEVERITIES]
        verdict = 'OK: the tree can be used' if self.ok else 'FAILED: fix the errors before training or testing'
        return (
            f'{verdict}. {", ".join(parts)}; {self.files_checked} '
            f'file(s) decoded ({self.decode or "no decoding"}) in '
            f'{self.seconds:.1f} s.'
        )


def _list_subdirs(path: str, backend_args: Optional[dict]) -> List[str]:
    try:
        return sorted(
            d
            for d in list_dir_or_file(path, list_dir=True, list_file=False, backend_args=backend_args)
            if not is_junk(d)
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_tree(
    data_root: str,
    classes: Sequence[str],
    split: Optional[str] = None,
    modes: Sequence[str] = ('train', 'test'),
    decode: Optional[str] = 'full',
    dataset: str = 'affordance dataset',
    img_suffixes: Sequence[str] = IMG_SUFFIXES,
    gt_suffix: str = '.png',
    min_size: int = 224,
    backend_args: Optional[dict] = None,
    nproc: int = 1,
    progress: bool = False,
    progress_file=None,
    ignore_orientation: bool = True,
) -> TreeReport:
    """Report every problem of an AGD20K-layout tree at once.

    Applies the rules of :class:`~looptrans.datasets.AffordanceFolderDataset`
    (the same functions of :mod:`looptrans.datasets.folder_layout`) without
    stopping at the first error, counts the files per affordance/object and,
    with ``decode``, reads every image and GT file (see
    :func:`~looptrans.datasets.file_io.probe_file`).

    Args:
        data_root: Dataset root.
        classes: The class list the dataset would use.
        split: Sub-folder of ``data_root`` (``'Seen'``), or None.
        modes: ``'train'`` and/or ``'test'``.
        decode: ``'full'``, ``'header'`` or None (layout only).
        dataset: Name used in messages.
        img_suffixes / gt_suffix: Accepted suffixes (case-insensitive).
        min_size: Images with a side below this are reported as info.
        backend_args: MMEngine file backend arguments.
        nproc: Processes used to decode.
        progress: Show a progress bar while decoding.
        progress_file: Stream of the progress bar.
        ignore_orientation: The pipeline's ``LoadAffordanceViews``
            setting (default True: EXIF-rotated images are read as stored);
            image sizes, and so ``gt_size_mismatch``, follow it at both
            decode levels.
    """
    start = time.perf_counter()
    split_root = join_path(data_root, split, backend_args=backend_args) if split else data_root
    unknown = [m for m in modes if m not in ('train', 'test')]
    if unknown or not modes:
        raise ValueError(f"check_tree: modes must be 'train' and/or 'test', got {list(modes)}.")
    if decode not in (None,) + VERIFY_LEVELS:
        raise ValueError(f'check_tree: decode must be None or one of {VERIFY_LEVELS}, got {decode!r}.')
    report = TreeReport(
        dataset=dataset,
        data_root=data_root,
        split=split,
        split_root=split_root,
        classes=tuple(classes),
        modes=tuple(modes),
        decode=decode,
    )
    counts: Dict[FolderKey, Dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_COLUMNS, 0))
    img_suffixes = tuple(s.lower() for s in img_suffixes)
    classes = tuple(classes)

    for root in (data_root, split_root):
        if not fileio.isdir(root, backend_args=backend_args):
            found = ''
            if root == split_root and root != data_root:
                found = f'; sub-folders of data_root: {_list_subdirs(data_root, backend_args)}'
            report.add('missing_folder', root, f'not a folder{found}')
            report.seconds = time.perf_counter() - start
            return report

    def scan(*parts: str, suffixes=img_suffixes) -> Optional[FolderScan]:
        root = join_path(split_root, *parts, backend_args=backend_args)
        if not fileio.isdir(root, backend_args=backend_args):
            subs = _list_subdirs(split_root, backend_args)
            report.add('missing_folder', root, f'expected by the layout; sub-folders of {split_root!r}: {subs}')
            return None
        s = scan_folder(root, suffixes, backend_args, collect_loops=True)
        for loop in s.loops:
            report.add('symlink_loop', loop.link, str(loop))
        for a in unknown_affordances(s.affordances, classes):
            report.add('unknown_affordance', join_path(root, a, backend_args=backend_args))
        for rel in s.misplaced:
            report.add('misplaced_file', join_path(root, rel, backend_args=backend_args))
        for rel in s.ignored:
            report.add('non_image_file', join_path(root, rel, backend_args=backend_args))
        for rel in s.hidden:
            report.add('hidden_file', join_path(root, rel, backend_args=backend_args))
        for aff, obj in s.empty_folders:
            report.add('empty_folder', join_path(root, aff, obj, backend_args=backend_args))
        return s

    def where(s: FolderScan, *parts: str) -> str:
        return join_path(s.root, *parts, backend_args=backend_args)

    to_probe: List[Tuple[str, str]] = []
    gt_of_img: Dict[str, str] = {}
    if 'train' in modes:
        exo, ego = scan(*EXOCENTRIC), scan(*EGOCENTRIC)
        for s, col in ((exo, 'exocentric'), (ego, 'egocentric')):
            for key, paths in s.files.items() if s else ():
                counts[key][col] = len(paths)
                to_probe += [(p, 'image') for p in paths]
        if exo is not None:
            pairing = pair_train_folders(classes, exo.affordances, exo.files, ego.files if ego else {})
            for c in pairing.missing_classes:
                report.add('missing_class', where(exo, c))
            for c in pairing.empty_classes:
                report.add('empty_class', where(exo, c))
        if exo is not None and ego is not None:
            for aff in pairing.no_egocentric:
                report.add('no_egocentric', where(ego, aff), 'no egocentric image of this affordance at all')
            for aff, obj in pairing.fallbacks:
                report.add('ego_fallback', where(ego, aff, obj))
            for aff, obj in pairing.unused_egocentric:
                report.add(
                    'ego_unused',
                    where(ego, aff, obj),
                    f'{len(ego.files[(aff, obj)])} image(s); no ' + repr(where(exo, aff, obj)),
                )
    if 'test' in modes:
        img = scan(*TEST_IMAGES)
        gt = scan(*TEST_GT, suffixes=(gt_suffix.lower(),))
        if img is not None:
            for c in classes:
                if c not in img.affordances:
                    report.add('missing_test_class', where(img, c))
        pairing = pair_test_files(img.files if img else {}, gt.files if gt else {})
        imgs, gts = pairing.images, pairing.gts
        for p in pairing.duplicate_images:
            report.add('duplicate_stem', p)
        for p in pairing.duplicate_gts:
            report.add('duplicate_gt', p, f'same stem as {gts[gt_key(p)]!r}')
        for s, col in ((img, 'test'), (gt, 'gt')):
            for key, paths in s.files.items() if s else ():
                counts[key][col] = len(paths)
        if img is not None and gt is not None:
            for key, p in pairing.without_gt.items():
                report.add('missing_gt', p, 'expected ' + repr(where(gt, key[0], key[1], key[2] + gt_suffix)))
            for p in pairing.without_image.values():
                report.add('orphan_gt', p)
        to_probe += [(p, 'image') for p in imgs.values()]
        to_probe += [(p, 'gt') for p in gts.values()]
        gt_of_img = {p: gts[k] for k, p in imgs.items() if k in gts}
    report.counts = dict(sorted(counts.items()))

    if decode:
        probes = probe_files(
            to_probe,
            decode,
            backend_args,
            nproc=nproc,
            progress=progress,
            progress_file=progress_file,
            ignore_orientation=ignore_orientation,
        )
        report.files_checked = len(probes)
        by_path = {p.path: p for p in probes}
        for p in probes:
            _report_probe(report, p, min_size)
            if p.error is None and p.exif_orientation not in (None, 1):
                report.add(
                    'exif_rotated',
                    p.path,
                    f'EXIF orientation {p.exif_orientation}; read '
                    + (
                        'as stored (ignore_orientation=True)'
                        if ignore_orientation
                        else 'upright (ignore_orientation=False)'
                    ),
                )
        for img_path, gt_path in gt_of_img.items():
            a, b = by_path[img_path], by_path[gt_path]
            if a.shape and b.shape and a.shape != b.shape:
                report.add(
                    'gt_size_mismatch',
                    gt_path,
                    f'GT {b.shape[0]}x{b.shape[1]}, image {a.shape[0]}x{a.shape[1]} (h x w)',
                )
    report.seconds = time.perf_counter() - start
    return report


def _report_probe(report: TreeReport, p: FileProbe, min_size: int) -> None:
    """Turn one probe into problems."""
    if p.error is not None:
        report.add('unreadable_image' if p.kind == 'image' else 'unreadable_gt', p.path, p.error)
        return
    if p.kind == 'image':
        if p.mode not in (None, 'RGB'):
            report.add('converted_image', p.path, f'mode {p.mode}')
        if p.shape and min(p.shape) < min_size:
            report.add('small_image', p.path, f'{p.shape[0]}x{p.shape[1]} (h x w) < {min_size}')
        return
    if p.gt_color:
        report.add('gt_color', p.path, f'{p.channels} channels')
    elif p.gt_source in ('alpha', 'cutout'):
        where = 'alpha channel' if p.gt_source == 'alpha' else 'gray where opaque'
        report.add('gt_alpha', p.path, f'mode {p.mode}, map read from the {where}')
    elif (p.channels or 1) > 1 or (p.bit_depth or 8) > 8 or (p.channels is None and p.mode not in (None, 'L')):
        report.add(
            'gt_converted',
            p.path,
            f'mode {p.mode}' + (f', {p.channels} channel(s), {p.bit_depth}-bit' if p.channels else ''),
        )
    if p.gt_max == 0:
        report.add('gt_empty', p.path, 'every pixel is 0')


# --------------------------------------------------------------------------- #
# the command line
# --------------------------------------------------------------------------- #
#: ``--dataset`` names (case-insensitive) -> dataset class.
DATASET_NAMES = {
    'agd20k': AGD20KDataset,
    'hico-iif': HICOIIFDataset,
    'hico_iif': HICOIIFDataset,
    'hicoiif': HICOIIFDataset,
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]),
    )
    parser.add_argument(
        '--config',
        help='take dataset type, data_root, split and classes from this config (train_dataloader / test_dataloader)',
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries (key=value)')
    parser.add_argument('--data-root', help='dataset root (overrides the config\'s)')
    parser.add_argument('--dataset', help='AGD20K or HICO-IIF (default: from --config, else AGD20K)')
    parser.add_argument(
        '--split',
        help='folder under data_root holding '
        'trainset/ and testset/ (default: the config\'s, else '
        'the dataset\'s: AGD20K Seen, HICO-IIF none); "none" '
        'for no split folder',
    )
    parser.add_argument(
        '--classes', nargs='+', help='class list (default: the config\'s, else the dataset\'s published one)'
    )
    parser.add_argument('--mode', choices=['train', 'test', 'both'], default='both', help='which part of the tree')
    parser.add_argument(
        '--decode',
        choices=['full', 'header', 'none'],
        default='full',
        help='decode every file (full), parse headers only (header), or check the layout only (none)',
    )
    parser.add_argument(
        '--exif-orientation',
        choices=['ignore', 'apply'],
        help='how the pipeline treats EXIF-rotated images: '
        'read as stored (ignore, LoadAffordanceViews\' '
        'default) or turned upright (apply); default: the '
        "config's LoadAffordanceViews, else ignore. Image "
        'sizes (and GT size checks) follow it',
    )
    parser.add_argument('--nproc', type=int, default=1, help='processes used to decode')
    parser.add_argument('--min-size', type=int, default=224, help='report images with a side below this (info)')
    parser.add_argument(
        '--counts', choices=['object', 'affordance', 'none'], default='object', help='rows of the count table'
    )
    parser.add_argument('--max-paths', type=int, default=20, help='paths printed per problem kind (-1: all)')
    parser.add_argument('--json', metavar='OUT', help='also write the full report as JSON')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def _dataset_cfg(cfg: Config) -> dict:
    """The affordance dataset config of a config's train (or test) loader,
    unwrapping dataset wrappers."""
    for loader in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        ds = innermost_dataset(cfg.get(loader, {}).get('dataset') if cfg.get(loader) else None)
        if isinstance(ds, dict) and 'data_root' in ds:
            return dict(ds)
    raise SystemExit(f'error: no dataset with a data_root in the train/test dataloaders of {cfg.filename!r}.')


def _dataset_class(name: str) -> type:
    from mmseg.registry import DATASETS

    key = name.lower()
    if key in DATASET_NAMES:
        return DATASET_NAMES[key]
    init_default_scope('mmseg')
    cls = DATASETS.get(name)
    if cls is None or not issubclass(cls, AffordanceFolderDataset):
        raise SystemExit(
            f'error: unknown dataset {name!r}; use AGD20K or HICO-IIF (or '
            'the name of a registered AffordanceFolderDataset subclass).'
        )
    return cls


def _loader_ignores_orientation(pipeline: Sequence[dict]) -> bool:
    """``ignore_orientation`` of the pipeline's ``LoadAffordanceViews``
    (its default, True, when the pipeline has none or does not set it)."""
    for t in pipeline:
        if isinstance(t, dict) and str(t.get('type', '')).split('.')[-1] == 'LoadAffordanceViews':
            return bool(t.get('ignore_orientation', True))
    return True


def resolve(args: argparse.Namespace) -> dict:
    """Dataset class, data_root, split, classes, suffixes from the
    arguments and the optional config (arguments win)."""
    ds_cfg: dict = {}
    if args.config:
        if not osp.isfile(args.config):
            raise SystemExit(f'error: config {args.config!r} does not exist.')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        ds_cfg = _dataset_cfg(cfg)
    cls = _dataset_class(args.dataset or ds_cfg.get('type') or 'AGD20K')
    data_root = args.data_root or ds_cfg.get('data_root')
    if not data_root:
        raise SystemExit('error: give --data-root (or --config).')
    if args.split is not None:
        split = None if args.split.lower() == 'none' else args.split
    elif 'split' in ds_cfg:
        split = ds_cfg['split']
    else:  # the dataset class's own default (AGD20K: 'Seen', HICO-IIF: None)
        split = default_split(cls)
    metainfo = ds_cfg.get('metainfo') or {}
    if args.classes:
        classes = tuple(args.classes)
    elif metainfo.get('classes'):
        classes = tuple(metainfo['classes'])
    else:
        try:
            classes = cls.default_classes(split)
        except ValueError as err:
            raise SystemExit(f'error: {err} (CLI: --classes a b c)')
    if args.exif_orientation is not None:
        ignore_orientation = args.exif_orientation == 'ignore'
    else:
        ignore_orientation = _loader_ignores_orientation(ds_cfg.get('pipeline') or [])
    return dict(
        cls=cls,
        data_root=data_root,
        split=split,
        classes=classes,
        ignore_orientation=ignore_orientation,
        img_suffixes=tuple(ds_cfg.get('img_suffixes', IMG_SUFFIXES)),
        gt_suffix=ds_cfg.get('gt_suffix', '.png'),
        backend_args=ds_cfg.get('backend_args'),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the check, print the report; return the exit code."""
    args = parse_args(argv)
    r = resolve(args)
    modes: Tuple[str, ...] = ('train', 'test') if args.mode == 'both' else (args.mode,)
    decode = None if args.decode == 'none' else args.decode
    name = r['cls'].LAYOUT_NAME
    exif = 'ignore' if r['ignore_orientation'] else 'apply'
    print(
        f'Checking {name} at {r["data_root"]!r} (split={r["split"]!r}, '
        f'{len(r["classes"])} classes, {"+".join(modes)}, '
        f'decode={args.decode}, exif-orientation={exif})',
        flush=True,
    )
    report = check_tree(
        r['data_root'],
        r['classes'],
        split=r['split'],
        modes=modes,
        decode=decode,
        dataset=name,
        img_suffixes=r['img_suffixes'],
        gt_suffix=r['gt_suffix'],
        min_size=args.min_size,
        backend_args=r['backend_args'],
        nproc=args.nproc,
        progress=not args.no_progress,
        progress_file=sys.stderr,
        ignore_orientation=r['ignore_orientation'],
    )
    out: List[str] = []
    if args.counts != 'none' and report.counts:
        out += ['', 'Files per ' + args.counts + ':', report.format_counts(args.counts)]
    out += ['', 'Problems:', report.format_problems(args.max_paths), '', report.format_summary()]
    print('\n'.join(out), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report.to_dict(), f, indent=1)
        print(f'Wrote the report to {args.json}')
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
