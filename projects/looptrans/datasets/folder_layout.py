"""The AGD20K folder layout: listing a tree, and the rules that pair its folders and files.

One place for what :class:`~.AffordanceFolderDataset` builds its data lists from and what
``tools/misc/check_dataset.py`` reports, so that the two cannot drift:

* :func:`scan_folder` lists ``<root>/<affordance>/<object>/<file>`` (junk, misplaced and non-image files
  are set aside; symbolic-link loops are found);
* :func:`pair_train_folders` pairs exocentric and egocentric folders (missing / empty classes,
  affordances without egocentric images, the egocentric fallback, unused egocentric folders);
* :func:`pair_test_files` pairs test images with their GT heatmaps by stem (duplicates, unpaired files).

The dataset raises or logs what these find; the tool reports all of it at once.
"""

import errno
import logging
import os
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.fileio import LocalBackend, get_file_backend, join_path, list_dir_or_file
from mmengine.logging import print_log

from ..utils.messages import preview

FolderKey = Tuple[str, str]  # (affordance, object)
StemKey = Tuple[str, str, str]  # (affordance, object, file stem)

#: Image suffixes the datasets read (compared case-insensitively).
IMG_SUFFIXES: Tuple[str, ...] = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
#: Folder names that file managers and archivers create; never data.
JUNK_DIRS: Tuple[str, ...] = ('__MACOSX',)
#: Visible file names that file managers create; never data.
JUNK_FILES: Tuple[str, ...] = ('thumbs.db', 'desktop.ini')
#: The four folders of a tree, under ``<data_root>[/<split>]``.
EXOCENTRIC: Tuple[str, str] = ('trainset', 'exocentric')
EGOCENTRIC: Tuple[str, str] = ('trainset', 'egocentric')
TEST_IMAGES: Tuple[str, str] = ('testset', 'egocentric')
TEST_GT: Tuple[str, str] = ('testset', 'GT')


class SymlinkLoopError(OSError):
    """A symbolic link in a dataset tree points back to one of its own ancestors (or to itself).

    Listing such a tree never ends (the OS stops it with a bare ``OSError: Too many levels of symbolic
    links`` naming a path dozens of links deep); this error names the link and where it points.
    """

    def __init__(self, link: str, target: str, ancestor: Optional[str] = None) -> None:
        where = (
            f'back to its own ancestor folder {ancestor!r}'
            if ancestor
            else 'to itself (or into a chain of links that never ends)'
        )
        super().__init__(
            f'symlink loop in the dataset tree: {link!r} -> {target!r} points {where}, so the tree has no '
            'end. Remove the link (or point it at a folder outside its own ancestors); '
            'tools/misc/check_dataset.py reports every such link.'
        )
        self.link = link
        self.target = target


# --------------------------------------------------------------------------- #
# listing
# --------------------------------------------------------------------------- #
@dataclass
class FolderScan:
    """The ``<root>/<affordance>/<object>/<file>`` listing of one folder.

    Attributes:
        root: The scanned folder.
        affordances: Sub-folders of ``root`` (sorted, junk folders left out).
        folders: Every ``(affordance, object)`` folder, with or without files.
        files: Per ``(affordance, object)``, the sorted full paths of the
            files with an accepted suffix.
        misplaced: Accepted files at another depth (paths relative to root).
        ignored: Visible files whose suffix is not accepted (relative).
        hidden: Hidden / junk folders and files skipped (relative).
        loops: Symbolic links that lead back to an ancestor (only with
            ``scan_folder(..., collect_loops=True)``).
    """

    root: str
    affordances: List[str] = field(default_factory=list)
    folders: List[FolderKey] = field(default_factory=list)
    files: Dict[FolderKey, List[str]] = field(default_factory=dict)
    misplaced: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    hidden: List[str] = field(default_factory=list)
    loops: List[SymlinkLoopError] = field(default_factory=list)

    @property
    def empty_folders(self) -> List[FolderKey]:
        """``(affordance, object)`` folders without any accepted file."""
        return [k for k in self.folders if k not in self.files]


def is_junk(part: str) -> bool:
    """Whether a file or folder name is hidden (``.x``) or an archiver's junk folder (``__MACOSX``)."""
    return part.startswith('.') or part in JUNK_DIRS


def _is_local(root: str, backend_args: Optional[dict]) -> bool:
    try:
        return isinstance(get_file_backend(root, backend_args=backend_args), LocalBackend)
    except (ValueError, TypeError):
        return False


def _walk_local(root: str, loops: Optional[List[SymlinkLoopError]] = None) -> Tuple[List[str], List[str]]:
    """Folders and files under a local ``root`` (paths relative to it, ``/``-separated), like MMEngine's
    recursive ``list_dir_or_file`` (dot-files are not listed), but symlinked folders are followed only when
    they do not lead back to one of their own ancestors.

    Junk folders (hidden, ``__MACOSX``) are listed but not entered: nothing inside them is used.

    Args:
        root: the folder.
        loops: when given, a looping link is appended to it (and not followed) instead of raised.

    Raises:
        SymlinkLoopError: a link points to an ancestor folder, or to itself (without ``loops``).
    """

    def found_loop(err: SymlinkLoopError) -> None:
        if loops is None:
            raise err
        loops.append(err)

    dirs: List[str] = []
    files: List[str] = []

    def visit(folder: str, rel: str, ancestors: Tuple[str, ...]) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                sub = f'{rel}/{entry.name}' if rel else entry.name
                try:
                    is_dir = entry.is_dir()
                except OSError as err:
                    if err.errno != errno.ELOOP:
                        raise
                    found_loop(SymlinkLoopError(entry.path, os.readlink(entry.path)))
                    continue
                if not is_dir:
                    if not entry.name.startswith('.') and entry.is_file():
                        files.append(sub)
                    continue
                dirs.append(sub)
                if is_junk(entry.name):
                    continue
                real = osp.realpath(entry.path)
                if entry.is_symlink() and real in ancestors:
                    found_loop(
                        SymlinkLoopError(
                            entry.path,
                            os.readlink(entry.path),
                            osp.join(root, *sub.split('/')[: ancestors.index(real)]),
                        )
                    )
                    continue
                visit(entry.path, sub, ancestors + (real,))

    try:
        visit(root, '', (osp.realpath(root),))
    except OSError as err:
        if isinstance(err, SymlinkLoopError) or err.errno != errno.ELOOP:
            raise
        raise SymlinkLoopError(getattr(err, 'filename', None) or root, '?') from err
    return dirs, files


def list_tree(
    root: str, backend_args: Optional[dict] = None, loops: Optional[List[SymlinkLoopError]] = None
) -> Tuple[List[str], List[str]]:
    """``(folders, files)`` under ``root``, relative and ``/``-separated: :func:`_walk_local` on a local
    disk (symlink loops are raised, or collected in ``loops``), MMEngine's recursive listing otherwise."""
    if _is_local(root, backend_args):
        return _walk_local(root, loops)
    dirs = [
        rel.replace('\\', '/').strip('/')
        for rel in list_dir_or_file(root, list_dir=True, list_file=False, recursive=True, backend_args=backend_args)
    ]
    files = [
        rel.replace('\\', '/')
        for rel in list_dir_or_file(root, list_dir=False, list_file=True, recursive=True, backend_args=backend_args)
    ]
    return dirs, files


def scan_folder(
    root: str, suffixes: Sequence[str], backend_args: Optional[dict] = None, collect_loops: bool = False
) -> FolderScan:
    """List ``root`` (which must exist): folders, then files.

    Hidden entries (``.DS_Store``, ``.ipynb_checkpoints/``, AppleDouble
    ``._x.jpg``) and ``__MACOSX/`` are skipped and counted in ``hidden``.

    Raises:
        SymlinkLoopError: a symbolic link under ``root`` leads back to one of
            its ancestors (local disks), unless ``collect_loops``: then such
            links are listed in ``scan.loops`` and not followed.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    scan = FolderScan(root=root)
    affs, folders = set(), set()
    all_dirs, all_files = list_tree(root, backend_args, scan.loops if collect_loops else None)
    for rel in all_dirs:
        parts = rel.split('/')
        if any(is_junk(p) for p in parts):
            if not any(is_junk(p) for p in parts[:-1]):
                scan.hidden.append('/'.join(parts) + '/')
            continue
        if len(parts) == 1:
            affs.add(parts[0])
        elif len(parts) == 2:
            folders.add((parts[0], parts[1]))
    files: Dict[FolderKey, List[str]] = defaultdict(list)
    for rel in all_files:
        parts = rel.split('/')
        if any(is_junk(p) for p in parts[:-1]):
            continue  # inside a junk folder, already counted
        name = parts[-1]
        if is_junk(name) or name.lower() in JUNK_FILES:
            scan.hidden.append(rel)
            continue
        if not name.lower().endswith(suffixes):
            scan.ignored.append(rel)
            continue
        if len(parts) != 3:
            scan.misplaced.append(rel)
            continue
        files[(parts[0], parts[1])].append(join_path(root, rel, backend_args=backend_args))
    scan.affordances = sorted(affs)
    scan.folders = sorted(folders)
    scan.files = {k: sorted(v) for k, v in sorted(files.items())}
    scan.ignored.sort()
    scan.misplaced.sort()
    scan.hidden.sort()
    return scan


def log_scan_notes(scan: FolderScan, owner: str, log: Callable[..., None] = print_log) -> None:
    """Log (one line each, with a count) what a scan skipped."""
    if scan.misplaced:
        log(
            f'{owner}: ignored {len(scan.misplaced)} file(s) in '
            f'{scan.root!r} that are not at <affordance>/<object>/<file>: '
            f'{preview(scan.misplaced)}',
            logger='current',
            level=logging.WARNING,
        )
    if scan.ignored:
        log(
            f'{owner}: ignored {len(scan.ignored)} file(s) in {scan.root!r} '
            f'whose suffix is not an image suffix: {preview(scan.ignored)}',
            logger='current',
            level=logging.WARNING,
        )
    if scan.hidden:
        log(
            f'{owner}: skipped {len(scan.hidden)} hidden or junk '
            f'file(s)/folder(s) in {scan.root!r}: {preview(scan.hidden)}',
            logger='current',
            level=logging.INFO,
        )
    empty = scan.empty_folders
    if empty:
        log(
            f'{owner}: {len(empty)} affordance/object folder(s) in '
            f'{scan.root!r} have no image: '
            f'{preview("/".join(k) for k in empty)}; they give no sample.',
            logger='current',
            level=logging.WARNING,
        )


def stems(files: Dict[FolderKey, List[str]]) -> Tuple[Dict[Tuple[str, str, str], str], List[str]]:
    """Index files by ``(affordance, object, stem)``.

    Returns the index and the files that share a stem with an earlier file
    of the same folder (e.g. ``a.jpg`` and ``a.png``); those are left out
    of the index.
    """
    index: Dict[Tuple[str, str, str], str] = {}
    duplicates = []
    for (aff, obj), paths in files.items():
        for p in paths:
            name = p.replace('\\', '/').rsplit('/', 1)[-1]
            key = (aff, obj, name.rsplit('.', 1)[0])
            if key in index:
                duplicates.append(p)
            else:
                index[key] = p
    return index, duplicates


def gt_key(path: str) -> Tuple[str, str, str]:
    """``(affordance, object, stem)`` of a file at ``.../<affordance>/<object>/<name>``."""
    parts = path.replace('\\', '/').rsplit('/', 3)[-3:]
    return parts[0], parts[1], parts[2].rsplit('.', 1)[0]


def flatten(files: Dict[FolderKey, List[str]]) -> Iterable[str]:
    """All paths of a ``files`` mapping."""
    for paths in files.values():
        yield from paths


# --------------------------------------------------------------------------- #
# pairing rules (the dataset raises / logs them, check_dataset.py reports them)
# --------------------------------------------------------------------------- #
def unknown_affordances(affordances: Sequence[str], classes: Sequence[str]) -> List[str]:
    """Affordance folders that are not in the class list (the dataset refuses them)."""
    return [a for a in affordances if a not in set(classes)]


@dataclass
class TrainPairing:
    """How the exocentric and egocentric folders of ``trainset/`` pair up.

    A training sample starts from an exocentric image of ``<affordance>/<object>`` and takes an egocentric
    image of the same object, else (the *fallback*) of another object of the same affordance.

    Attributes:
        missing_classes: Classes without an exocentric affordance folder (the dataset raises).
        empty_classes: Classes whose exocentric folder holds no image (logged; no training sample).
        no_egocentric: Affordances with exocentric images but no egocentric image at all (raises).
        fallbacks: Exocentric ``(affordance, object)`` folders without egocentric images of that object,
            whose affordance has some: their samples use the affordance's (logged).
        unused_egocentric: Egocentric ``(affordance, object)`` folders that no sample ever draws: their
            affordance has exocentric images, but not of this object, and has no fallback (logged).
        egocentric_by_affordance: Every egocentric image per affordance (the fallback pools).
    """

    missing_classes: List[str]
    empty_classes: List[str]
    no_egocentric: List[str]
    fallbacks: List[FolderKey]
    unused_egocentric: List[FolderKey]
    egocentric_by_affordance: Dict[str, Tuple[str, ...]]


def pair_train_folders(
    classes: Sequence[str],
    exo_affordances: Sequence[str],
    exo_files: Dict[FolderKey, List[str]],
    ego_files: Dict[FolderKey, List[str]],
) -> TrainPairing:
    """Apply the training rules to a listing (see :class:`TrainPairing`).

    Args:
        classes: The class list.
        exo_affordances: Affordance folders under ``trainset/exocentric`` (with or without images).
        exo_files / ego_files: Per ``(affordance, object)``, the images of ``trainset/exocentric`` /
            ``trainset/egocentric`` (:attr:`FolderScan.files`).
    """
    ego_by_aff: Dict[str, List[str]] = defaultdict(list)
    for (aff, _), paths in ego_files.items():
        ego_by_aff[aff].extend(paths)
    exo_affs = {aff for aff, _ in exo_files}
    fallbacks = [key for key in exo_files if key not in ego_files and key[0] in ego_by_aff]
    fallback_affs = {aff for aff, _ in fallbacks}
    return TrainPairing(
        missing_classes=[c for c in classes if c not in exo_affordances],
        empty_classes=[c for c in classes if c in exo_affordances and c not in exo_affs],
        no_egocentric=sorted(exo_affs - set(ego_by_aff)),
        fallbacks=fallbacks,
        unused_egocentric=[
            key for key in ego_files if key[0] in exo_affs and key not in exo_files and key[0] not in fallback_affs
        ],
        egocentric_by_affordance={k: tuple(v) for k, v in ego_by_aff.items()},
    )


@dataclass
class GTPairing:
    """Test images paired with their GT heatmaps by ``(affordance, object, stem)``.

    Attributes:
        images / gts: The first file of each key (:func:`stems`).
        duplicate_images: Images sharing their key with an earlier image (logged; not evaluated).
        duplicate_gts: GT files sharing their key with an earlier GT (the dataset raises: which one is the
            GT of the image is ambiguous).
    """

    images: Dict[StemKey, str]
    gts: Dict[StemKey, str]
    duplicate_images: List[str]
    duplicate_gts: List[str]

    @property
    def pairs(self) -> List[StemKey]:
        """Keys with both an image and a GT, sorted."""
        return [key for key in sorted(self.images) if key in self.gts]

    @property
    def without_gt(self) -> Dict[StemKey, str]:
        """Test images without a GT heatmap (logged; not evaluated)."""
        return {key: p for key, p in self.images.items() if key not in self.gts}

    @property
    def without_image(self) -> Dict[StemKey, str]:
        """GT heatmaps without a test image (logged; not used)."""
        return {key: p for key, p in self.gts.items() if key not in self.images}


def pair_test_files(img_files: Dict[FolderKey, List[str]], gt_files: Dict[FolderKey, List[str]]) -> GTPairing:
    """Pair the listings of ``testset/egocentric`` and ``testset/GT`` (see :class:`GTPairing`)."""
    (images, dup_images), (gts, dup_gts) = stems(img_files), stems(gt_files)
    return GTPairing(images, gts, dup_images, dup_gts)
