"""Finding bad input early: listing, reading and probing the files of a tree.

One place for the rules that decide whether a file of an affordance dataset
is usable, shared by

* the datasets (:class:`~.AffordanceFolderDataset` lists its folders with
  :func:`scan_folder` and, with ``verify_images``, drops unreadable files at
  construction with :func:`find_unreadable`),
* the loading transforms (:func:`read_file`, :func:`decode_image` and
  :func:`decode_gt` raise :class:`BadFileError`, which names the file, so the
  dataset can skip the item and draw another one), and
* ``tools/misc/check_dataset.py`` (:func:`probe_file` never raises on bad
  content: it returns what is wrong, so a whole tree is reported at once).

See ``docs/bad_inputs.md`` for the catalogue of bad inputs and what each one
does.
"""
import contextlib
import errno
import io
import logging
import os
import os.path as osp
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import (Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

import cv2
import mmcv
import numpy as np
from mmengine import fileio
from mmengine.fileio import LocalBackend, get_file_backend, join_path, list_dir_or_file
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image, UnidentifiedImageError

FolderKey = Tuple[str, str]  # (affordance, object)

#: Image suffixes the datasets read (compared case-insensitively).
IMG_SUFFIXES: Tuple[str, ...] = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
#: Levels of ``verify_images``: ``'header'`` reads each file and parses its
#: header (and checks that a JPEG / PNG is not cut short); ``'full'`` also
#: decodes every pixel with the decoder the training pipeline uses.
VERIFY_LEVELS: Tuple[str, ...] = ('header', 'full')
#: Folder names that file managers and archivers create; never data.
JUNK_DIRS: Tuple[str, ...] = ('__MACOSX', )
#: Visible file names that file managers create; never data.
JUNK_FILES: Tuple[str, ...] = ('thumbs.db', 'desktop.ini')

_JPEG_SOI = b'\xff\xd8\xff'
_JPEG_EOI = b'\xff\xd9'
_JPEG_SOS = b'\xff\xda'
_PNG_SIG = b'\x89PNG\r\n\x1a\n'

FIX_IMAGE = 're-download or re-extract it, or delete it'
FIX_GT = 're-download or re-extract the GT folder'


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
class BadFileError(OSError):
    """A file of the dataset cannot be read or decoded.

    ``str(err)`` names the file and the fix; ``err.path`` is the file, so a
    dataset can skip it (and stop drawing it) instead of crashing mid-epoch.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # keep ``path`` through pickling (worker -> main)
        return type(self), (str(self), self.path)


class MissingFileError(BadFileError, FileNotFoundError):
    """A file the dataset listed has disappeared."""


class SymlinkLoopError(OSError):
    """A symbolic link in a dataset tree points back to one of its own ancestors (or to itself).

    Listing such a tree never ends (the OS stops it with a bare ``OSError: Too many levels of symbolic
    links`` naming a path dozens of links deep); this error names the link and where it points.
    """

    def __init__(self, link: str, target: str, ancestor: Optional[str] = None) -> None:
        where = (f'back to its own ancestor folder {ancestor!r}' if ancestor else
                 'to itself (or into a chain of links that never ends)')
        super().__init__(
            f'symlink loop in the dataset tree: {link!r} -> {target!r} points {where}, so the tree has no '
            'end. Remove the link (or point it at a folder outside its own ancestors); '
            'tools/misc/check_dataset.py reports every such link.')
        self.link = link
        self.target = target


def preview(items: Sequence, k: int = 3) -> str:
    """Render the first ``k`` items of a list for a log or error message."""
    items = list(items)
    shown = ', '.join(repr(str(i)) for i in items[:k])
    more = f', ... ({len(items) - k} more)' if len(items) > k else ''
    return f'[{shown}{more}]'


# --------------------------------------------------------------------------- #
# reading and decoding (used by the loading transforms)
# --------------------------------------------------------------------------- #
def read_file(path: str, backend_args: Optional[dict], owner: str) -> bytes:
    """Read a file through the MMEngine file backend, naming it on failure.

    Raises:
        MissingFileError: the file does not exist (the tree changed after
            the dataset listed it).
        BadFileError: any other read error (permissions, I/O, a remote
            backend's failure).
    """
    try:
        return fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise MissingFileError(
            f'{owner}: file {path!r} does not exist; the dataset listed it, '
            'so the tree changed after the dataset was built. Rebuild the '
            'dataset or restore the file.', path) from err
    except OSError as err:
        raise BadFileError(f'{owner}: cannot read {path!r}: {err}. Check the '
                           'file and its permissions.', path) from err


def truncation(data: bytes) -> Optional[str]:
    """Why ``data`` looks like a cut-short JPEG or PNG, or None.

    Cheap byte checks, independent of the decoder (OpenCV 4 decodes a
    truncated JPEG with only a printed warning, filling the missing rows
    with grey): a JPEG must have an end-of-image marker after its last
    start-of-scan marker (entropy-coded data never contains ``FF D9``); a PNG
    must have its ``IEND`` chunk.
    """
    if data.startswith(_JPEG_SOI):
        if data.rfind(_JPEG_EOI) < data.rfind(_JPEG_SOS):
            return 'JPEG data ends before its end-of-image marker (truncated)'
    elif data.startswith(_PNG_SIG):
        if data.rfind(b'IEND') < 0:
            return 'PNG data ends before its IEND chunk (truncated)'
    return None


def _bad_content(data: bytes) -> Optional[str]:
    if not data:
        return 'the file is empty (0 bytes)'
    return truncation(data)


def ensure_bgr3(img: np.ndarray) -> np.ndarray:
    """Return a 3-channel BGR image from a gray, BGR or BGRA array."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def _decode_image(data: bytes, backend: str, ignore_orientation: bool = False
                  ) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(BGR image, None)`` or ``(None, why it cannot be decoded)``; with
    ``ignore_orientation`` the pixels as stored (EXIF rotation not applied)."""
    problem = _bad_content(data)
    if problem is not None:
        return None, problem
    flag = 'color_ignore_orientation' if ignore_orientation else 'color'
    try:
        img = mmcv.imfrombytes(data, flag=flag, channel_order='bgr',
                               backend=backend)
    except Exception as err:  # decoders raise many types on bad bytes
        return None, f'{type(err).__name__}: {err}'.strip()
    if img is None or img.size == 0:
        return None, 'the decoder returned no pixels'
    return np.ascontiguousarray(ensure_bgr3(img)), None


def decode_image(data: bytes, path: str, owner: str,
                 backend: str = 'cv2') -> np.ndarray:
    """Decode an image to 3-channel BGR uint8 (gray and CMYK are converted).

    Raises:
        BadFileError: the bytes are empty, cut short, or not an image; the
            message names ``path`` and the fix.
    """
    img, problem = _decode_image(data, backend)
    if problem is not None:
        raise BadFileError(
            f'{owner}: cannot decode image {path!r} ({len(data)} bytes): '
            f'{problem}. The file is corrupt or not an image; {FIX_IMAGE}. '
            'tools/misc/check_dataset.py lists every such file.', path)
    return img


def _decode_gt(data: bytes) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(GT as stored, None)`` or ``(None, why it cannot be used)``."""
    problem = _bad_content(data)
    if problem is not None:
        return None, problem
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        return None, 'not a decodable image'
    if raw.dtype not in (np.uint8, np.uint16):
        return None, f'pixel type {raw.dtype}; expected an 8-bit or 16-bit PNG'
    return raw, None


def decode_gt(data: bytes, path: str, owner: str) -> np.ndarray:
    """Decode a GT heatmap file as stored (uint8 / uint16, 1, 3 or 4 channels).

    Raises:
        BadFileError: empty, cut short, undecodable, or not 8/16-bit.
    """
    raw, problem = _decode_gt(data)
    if problem is not None:
        raise BadFileError(
            f'{owner}: cannot decode GT heatmap {path!r} ({len(data)} bytes): '
            f'{problem}. The file is corrupt or not a heatmap; {FIX_GT}.',
            path)
    return raw


def gt_is_color(raw: np.ndarray) -> bool:
    """Whether a decoded GT has colour channels that differ (a colour
    rendering, not a gray heatmap stored as RGB)."""
    if raw.ndim != 3 or raw.shape[2] < 3:
        return False
    bgr = raw[..., :3]
    return bool((bgr[..., 0] != bgr[..., 1]).any()
                or (bgr[..., 0] != bgr[..., 2]).any())


# --------------------------------------------------------------------------- #
# probing (never raises on bad content)
# --------------------------------------------------------------------------- #
@dataclass
class FileProbe:
    """What :func:`probe_file` found out about one file.

    Attributes:
        path: The file.
        kind: ``'image'`` or ``'gt'``.
        error: Why the file cannot be used (None when it can).
        shape: ``(h, w)`` from the header.
        mode: PIL mode from the header (``'RGB'``, ``'L'``, ``'CMYK'``,
            ``'I;16'``, ...).
        channels: GT channels after decoding (``'full'`` level only).
        bit_depth: GT bits per channel, 8 or 16 (``'full'`` level only).
        gt_max: GT maximum as stored (``'full'`` level only).
        gt_color: GT colour channels differ (``'full'`` level only).
        exif_orientation: EXIF orientation tag of an image (1: none).
    """
    path: str
    kind: str
    error: Optional[str] = None
    shape: Optional[Tuple[int, int]] = None
    mode: Optional[str] = None
    channels: Optional[int] = None
    bit_depth: Optional[int] = None
    gt_max: Optional[float] = None
    gt_color: Optional[bool] = None
    exif_orientation: int = 1


#: EXIF orientations (tag 0x0112) that rotate by 90 or 270 degrees, i.e. swap height and width.
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


@contextlib.contextmanager
def _no_pixel_limit():
    """Parse headers without PIL's decompression-bomb limit.

    PIL refuses images above ``2 * Image.MAX_IMAGE_PIXELS`` (~179 M pixels, e.g. a 15000 x 12500 photo) with
    ``DecompressionBombError``, although only the header is read here and the training decoder (OpenCV,
    limit 2^30 pixels) reads such an image fine; a valid file must not be reported unreadable for it.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation of an opened image (1 = none), 1 when it has no readable EXIF."""
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not our concern here
        return 1


def probe_file(path: str, kind: str = 'image', level: str = 'full',
               backend_args: Optional[dict] = None,
               ignore_orientation: bool = True) -> FileProbe:
    """Read ``path`` and check it at ``level`` (see :data:`VERIFY_LEVELS`).

    ``'header'`` reads the bytes, checks they are not empty or cut short and
    parses the header with PIL (size, mode, EXIF orientation; without PIL's
    decompression-bomb limit). ``'full'`` also decodes the file with the
    decoder the pipeline uses (cv2 for images, :func:`decode_gt` for GT), so
    a file that passes will load in training.

    ``ignore_orientation`` must be that of the pipeline's
    ``LoadAffordanceViews`` (default True: the pixels as stored, as the
    published PIL loading); with False the decoder turns EXIF-rotated images
    upright. Both levels then report the size the pipeline will see.
    """
    if level not in VERIFY_LEVELS:
        raise ValueError(f'probe_file: level must be one of {VERIFY_LEVELS}, '
                         f'got {level!r}.')
    if kind not in ('image', 'gt'):
        raise ValueError(f"probe_file: kind must be 'image' or 'gt', got "
                         f'{kind!r}.')
    probe = FileProbe(path=path, kind=kind)
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        probe.error = 'the file does not exist'
        return probe
    except OSError as err:
        probe.error = f'cannot read the file ({err})'
        return probe
    problem = _bad_content(data)
    if problem is not None:
        probe.error = problem
        return probe
    try:
        with _no_pixel_limit(), Image.open(io.BytesIO(data)) as im:
            probe.shape = (int(im.height), int(im.width))
            probe.mode = im.mode
            if kind == 'image':
                probe.exif_orientation = _exif_orientation(im)
                if (not ignore_orientation and probe.exif_orientation
                        in _TRANSPOSING_ORIENTATIONS):
                    # the decoder turns it upright: report the size it gives
                    probe.shape = probe.shape[::-1]
    except UnidentifiedImageError:
        probe.error = 'not an image (unknown format)'
        return probe
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        probe.error = f'not a readable image ({err})'
        return probe
    if level == 'header':
        return probe
    if kind == 'image':
        img, probe.error = _decode_image(data, 'cv2', ignore_orientation)
        if img is not None:
            probe.shape = tuple(img.shape[:2])
        return probe
    raw, probe.error = _decode_gt(data)
    if raw is not None:
        probe.shape = tuple(raw.shape[:2])
        probe.channels = 1 if raw.ndim == 2 else int(raw.shape[2])
        probe.bit_depth = 8 * raw.dtype.itemsize
        probe.gt_max = float(raw.max())
        probe.gt_color = gt_is_color(raw)
    return probe


def _probe_task(args: tuple) -> FileProbe:
    return probe_file(*args)


def probe_files(items: Sequence[Tuple[str, str]], level: str = 'full',
                backend_args: Optional[dict] = None, nproc: int = 1,
                progress: bool = False,
                progress_file=None,
                ignore_orientation: bool = True) -> List[FileProbe]:
    """Probe many ``(path, kind)`` items, in order, optionally in parallel.

    Args:
        items: ``(path, 'image' | 'gt')`` pairs.
        level: ``'header'`` or ``'full'``.
        backend_args: MMEngine file backend arguments.
        nproc: Worker processes (1 = in this process).
        progress: Show an MMEngine progress bar.
        progress_file: Stream of the progress bar (stdout by default).
        ignore_orientation: As for :func:`probe_file`.
    """
    tasks = [(p, k, level, backend_args, ignore_orientation)
             for p, k in items]
    bar = None
    if progress and tasks:
        kwargs = {} if progress_file is None else dict(file=progress_file)
        bar = ProgressBar(len(tasks), **kwargs)
    results: List[FileProbe] = []
    if nproc > 1 and len(tasks) > 1:
        with Pool(nproc) as pool:
            for res in pool.imap(_probe_task, tasks, chunksize=16):
                results.append(res)
                if bar is not None:
                    bar.update()
    else:
        for task in tasks:
            results.append(_probe_task(task))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.file.write('\n')
    return results


def find_unreadable(items: Sequence[Tuple[str, str]], level: str,
                    backend_args: Optional[dict] = None,
                    owner: str = 'dataset') -> Dict[str, str]:
    """``{path: problem}`` of the items that fail :func:`probe_file`.

    Logs how many files were checked and how long it took (INFO).
    """
    start = time.perf_counter()
    bad = {p.path: p.error for p in probe_files(items, level, backend_args)
           if p.error is not None}
    print_log(f'{owner}: verify_images={level!r} checked {len(items)} '
              f'file(s) in {time.perf_counter() - start:.1f} s; '
              f'{len(bad)} unreadable.', logger='current', level=logging.INFO)
    return bad


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

    def objects_of(self, affordance: str) -> List[str]:
        """Object folders of ``affordance`` (with or without files)."""
        return [o for a, o in self.folders if a == affordance]


def _is_junk(part: str) -> bool:
    return part.startswith('.') or part in JUNK_DIRS


def _is_local(root: str, backend_args: Optional[dict]) -> bool:
    try:
        return isinstance(get_file_backend(root, backend_args=backend_args), LocalBackend)
    except (ValueError, TypeError):
        return False


def _walk_local(root: str, loops: Optional[List[SymlinkLoopError]] = None
                ) -> Tuple[List[str], List[str]]:
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
                if _is_junk(entry.name):
                    continue
                real = osp.realpath(entry.path)
                if entry.is_symlink() and real in ancestors:
                    found_loop(SymlinkLoopError(
                        entry.path, os.readlink(entry.path),
                        osp.join(root, *sub.split('/')[:ancestors.index(real)])))
                    continue
                visit(entry.path, sub, ancestors + (real, ))

    try:
        visit(root, '', (osp.realpath(root), ))
    except OSError as err:
        if isinstance(err, SymlinkLoopError) or err.errno != errno.ELOOP:
            raise
        raise SymlinkLoopError(getattr(err, 'filename', None) or root, '?') from err
    return dirs, files


def list_tree(root: str, backend_args: Optional[dict] = None,
              loops: Optional[List[SymlinkLoopError]] = None) -> Tuple[List[str], List[str]]:
    """``(folders, files)`` under ``root``, relative and ``/``-separated: :func:`_walk_local` on a local
    disk (symlink loops are raised, or collected in ``loops``), MMEngine's recursive listing otherwise."""
    if _is_local(root, backend_args):
        return _walk_local(root, loops)
    dirs = [rel.replace('\\', '/').strip('/') for rel in list_dir_or_file(
        root, list_dir=True, list_file=False, recursive=True, backend_args=backend_args)]
    files = [rel.replace('\\', '/') for rel in list_dir_or_file(
        root, list_dir=False, list_file=True, recursive=True, backend_args=backend_args)]
    return dirs, files


def scan_folder(root: str, suffixes: Sequence[str],
                backend_args: Optional[dict] = None,
                collect_loops: bool = False) -> FolderScan:
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
    all_dirs, all_files = list_tree(root, backend_args,
                                    scan.loops if collect_loops else None)
    for rel in all_dirs:
        parts = rel.split('/')
        if any(_is_junk(p) for p in parts):
            if not any(_is_junk(p) for p in parts[:-1]):
                scan.hidden.append('/'.join(parts) + '/')
            continue
        if len(parts) == 1:
            affs.add(parts[0])
        elif len(parts) == 2:
            folders.add((parts[0], parts[1]))
    files: Dict[FolderKey, List[str]] = defaultdict(list)
    for rel in all_files:
        parts = rel.split('/')
        if any(_is_junk(p) for p in parts[:-1]):
            continue  # inside a junk folder, already counted
        name = parts[-1]
        if _is_junk(name) or name.lower() in JUNK_FILES:
            scan.hidden.append(rel)
            continue
        if not name.lower().endswith(suffixes):
            scan.ignored.append(rel)
            continue
        if len(parts) != 3:
            scan.misplaced.append(rel)
            continue
        files[(parts[0], parts[1])].append(
            join_path(root, rel, backend_args=backend_args))
    scan.affordances = sorted(affs)
    scan.folders = sorted(folders)
    scan.files = {k: sorted(v) for k, v in sorted(files.items())}
    scan.ignored.sort()
    scan.misplaced.sort()
    scan.hidden.sort()
    return scan


def log_scan_notes(scan: FolderScan, owner: str,
                   log: Callable[..., None] = print_log) -> None:
    """Log (one line each, with a count) what a scan skipped."""
    if scan.misplaced:
        log(f'{owner}: ignored {len(scan.misplaced)} file(s) in '
            f'{scan.root!r} that are not at <affordance>/<object>/<file>: '
            f'{preview(scan.misplaced)}', logger='current',
            level=logging.WARNING)
    if scan.ignored:
        log(f'{owner}: ignored {len(scan.ignored)} file(s) in {scan.root!r} '
            f'whose suffix is not an image suffix: {preview(scan.ignored)}',
            logger='current', level=logging.WARNING)
    if scan.hidden:
        log(f'{owner}: skipped {len(scan.hidden)} hidden or junk '
            f'file(s)/folder(s) in {scan.root!r}: {preview(scan.hidden)}',
            logger='current', level=logging.INFO)
    empty = scan.empty_folders
    if empty:
        log(f'{owner}: {len(empty)} affordance/object folder(s) in '
            f'{scan.root!r} have no image: '
            f'{preview("/".join(k) for k in empty)}; they give no sample.',
            logger='current', level=logging.WARNING)


def stems(files: Dict[FolderKey, List[str]]
          ) -> Tuple[Dict[Tuple[str, str, str], str], List[str]]:
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
# whole-tree report (tools/misc/check_dataset.py)
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
        'error', 'folder does not exist',
        'the dataset raises FileNotFoundError at construction',
        'check data_root and split (the folder under data_root holding '
        'trainset/ and testset/)'),
    symlink_loop=ProblemKind(
        'error', 'symbolic link that leads back to its own folder (a loop)',
        'the dataset raises SymlinkLoopError at construction (listing the '
        'tree would never end); the link is not followed here',
        'remove the link, or point it at a folder outside its own ancestors'),
    unknown_affordance=ProblemKind(
        'error', 'affordance folder not in the class list',
        'the dataset raises ValueError at construction',
        'pass metainfo=dict(classes=(...)) listing every affordance folder, '
        'or remove the folder'),
    missing_class=ProblemKind(
        'error', 'class of the class list without an exocentric folder',
        'the training dataset raises FileNotFoundError at construction',
        'complete the tree, or pass metainfo=dict(classes=(...)) with only '
        'the affordances present'),
    no_egocentric=ProblemKind(
        'error', 'affordance with exocentric images but no egocentric image',
        'the training dataset raises FileNotFoundError at construction',
        'add egocentric images, or drop the class and its exocentric folder'),
    unreadable_image=ProblemKind(
        'error', 'image cannot be read or decoded',
        'training skips the item with a warning and draws another; testing '
        'stops with BadFileError; verify_images=True drops it at '
        'construction', FIX_IMAGE),
    unreadable_gt=ProblemKind(
        'error', 'GT heatmap cannot be read or decoded',
        'testing stops with BadFileError; verify_images=True drops the pair '
        'at construction', FIX_GT),
    duplicate_gt=ProblemKind(
        'error', 'GT heatmaps sharing a stem (e.g. a.png and a.PNG)',
        'the test dataset raises ValueError at construction: which file is '
        'the GT of the image is ambiguous (the scores change with the choice)',
        'keep exactly one GT file per test image'),
    empty_class=ProblemKind(
        'warning', 'class whose exocentric folder has no image',
        'logged; the class gets no training sample',
        'add images, or drop the class from metainfo["classes"]'),
    empty_folder=ProblemKind(
        'warning', 'affordance/object folder without images',
        'logged with a count; it gives no sample', 'add images or delete '
        'the folder'),
    ego_fallback=ProblemKind(
        'warning', 'exocentric affordance/object without egocentric images',
        'logged; its samples use egocentric images of other objects of the '
        'same affordance', 'add egocentric images of that object'),
    ego_unused=ProblemKind(
        'warning', 'egocentric affordance/object folder without an exocentric '
        'folder',
        'logged; its images are never used (a training sample starts from an '
        'exocentric image and takes the egocentric images of its own object)',
        'add exocentric images of that object, or move the folder to the right '
        'affordance / object name'),
    missing_test_class=ProblemKind(
        'warning', 'class without a test folder',
        'logged; the class is not evaluated',
        'complete testset/ or pass metainfo=dict(classes=(...))'),
    missing_gt=ProblemKind(
        'warning', 'test image without its GT heatmap',
        'logged with a count; the image is not evaluated',
        'add testset/GT/<affordance>/<object>/<stem>.png or delete the image'),
    orphan_gt=ProblemKind(
        'warning', 'GT heatmap without its test image',
        'logged with a count; the GT is not used',
        'add the image or delete the GT file'),
    duplicate_stem=ProblemKind(
        'warning', 'test image sharing its stem with another image',
        'logged with a count; only the first is evaluated',
        'rename or delete one of them'),
    gt_color=ProblemKind(
        'warning', 'GT heatmap in colour (channels differ)',
        'converted to gray with ITU-R 601 weights and logged once: wrong '
        'scores if it is a colour-mapped rendering',
        'store GT heatmaps as single-channel PNGs'),
    gt_empty=ProblemKind(
        'warning', 'GT heatmap is all zero',
        'left out of the KLD / SIM / NSS means and counted as num_empty_gt',
        'check the annotation; delete the pair if it has no affordance'),
    gt_size_mismatch=ProblemKind(
        'warning', 'GT heatmap size differs from its image',
        'both are resized to 224x224 by the metric, as published; a '
        'different aspect ratio usually means a wrong pairing',
        'check that the GT belongs to the image'),
    misplaced_file=ProblemKind(
        'warning', 'image not at <affordance>/<object>/<file>',
        'logged with a count; the file is ignored',
        'move it into an <affordance>/<object>/ folder or delete it'),
    non_image_file=ProblemKind(
        'warning', 'file whose suffix is not an image suffix',
        'logged with a count; the file is ignored',
        'delete it, or add its suffix to img_suffixes if it is an image'),
    hidden_file=ProblemKind(
        'info', 'hidden or junk file / folder (.DS_Store, __MACOSX, ...)',
        'skipped', 'nothing to do (or delete it)'),
    converted_image=ProblemKind(
        'info', 'image not stored as RGB (grayscale, CMYK, palette, alpha)',
        'converted to 3-channel BGR when loaded', 'nothing to do'),
    gt_converted=ProblemKind(
        'info', 'GT heatmap stored as gray RGB(A) or 16-bit',
        'converted to gray float in [0, 1] (16-bit divided by 65535)',
        'nothing to do'),
    exif_rotated=ProblemKind(
        'info', 'image with an EXIF orientation tag (viewers rotate it)',
        'LoadAffordanceViews reads the pixels as stored by default '
        '(ignore_orientation=True, as the published PIL loading), so the '
        'model sees it as stored, not as viewers show it; the sizes in this '
        'report follow the setting checked (--exif-orientation)',
        'nothing to do for the published trees; if its GT was drawn on the '
        'upright view, re-save the image upright (PIL ImageOps.exif_transpose)'
        ' or set ignore_orientation=False'),
    small_image=ProblemKind(
        'info', 'image smaller than the network input',
        'upsampled by the pipeline (Resize to 256 / 224)', 'nothing to do'),
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
        return {c: sum(v[c] for v in self.counts.values())
                for c in COUNT_COLUMNS}

    def to_dict(self) -> dict:
        """A JSON-serialisable form (every path of every problem)."""
        return dict(
            dataset=self.dataset, data_root=self.data_root, split=self.split,
            split_root=self.split_root, classes=list(self.classes),
            modes=list(self.modes), decode=self.decode,
            counts=[dict(affordance=a, object=o, **v)
                    for (a, o), v in sorted(self.counts.items())],
            totals=self.totals(),
            problems={
                code: dict(severity=PROBLEM_KINDS[code].severity,
                           title=PROBLEM_KINDS[code].title,
                           effect=PROBLEM_KINDS[code].effect,
                           fix=PROBLEM_KINDS[code].fix, count=len(items),
                           items=[dict(path=p.path, detail=p.detail)
                                  for p in items])
                for code, items in self.by_code().items()},
            summary=dict(errors=self.num('error'),
                         warnings=self.num('warning'),
                         infos=self.num('info'),
                         files_checked=self.files_checked,
                         seconds=round(self.seconds, 3), ok=self.ok))

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
        lines = [f'{head:<{width}}  ' + '  '.join(
            f'{c:>10}' for c in COUNT_COLUMNS)]
        for name, row in rows.items():
            lines.append(f'{name:<{width}}  ' + '  '.join(
                f'{row[c]:>10}' for c in COUNT_COLUMNS))
        tot = self.totals()
        label = f'total ({len(rows)})'
        lines.append(f'{label:<{width}}  ' + '  '.join(
            f'{tot[c]:>10}' for c in COUNT_COLUMNS))
        return '\n'.join(lines)

    def format_problems(self, max_paths: int = 20) -> str:
        """Every problem kind with its count, effect, fix and paths."""
        if not self.problems:
            return 'No problem found.'
        lines = []
        for code, items in self.by_code().items():
            kind = PROBLEM_KINDS[code]
            lines.append(f'{kind.severity.upper()} [{code}] {len(items)} x '
                         f'{kind.title}')
            lines.append(f'    what happens: {kind.effect}')
            lines.append(f'    fix: {kind.fix}')
            shown = items if max_paths < 0 else items[:max_paths]
            for p in shown:  # quoted: a trailing space must be visible
                lines.append(f'    {p.path!r}' + (f'  ({p.detail})'
                                                  if p.detail else ''))
            if len(shown) < len(items):
                lines.append(f'    ... {len(items) - len(shown)} more '
                             '(all of them with --max-paths -1 or --json)')
        return '\n'.join(lines)

    def format_summary(self) -> str:
        kinds = {s: sorted({p.code for p in self.problems
                            if p.severity == s}) for s in SEVERITIES}
        parts = [f'{self.num(s)} {s}(s)' +
                 (f' {kinds[s]}' if kinds[s] else '') for s in SEVERITIES]
        verdict = ('OK: the tree can be used' if self.ok else
                   'FAILED: fix the errors before training or testing')
        return (f'{verdict}. {", ".join(parts)}; {self.files_checked} '
                f'file(s) decoded ({self.decode or "no decoding"}) in '
                f'{self.seconds:.1f} s.')


def _list_subdirs(path: str, backend_args: Optional[dict]) -> List[str]:
    try:
        return sorted(d for d in list_dir_or_file(
            path, list_dir=True, list_file=False, backend_args=backend_args)
            if not _is_junk(d))
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_tree(data_root: str,
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
               ignore_orientation: bool = True) -> TreeReport:
    """Report every problem of an AGD20K-layout tree at once.

    Applies the rules of :class:`~.AffordanceFolderDataset` without stopping
    at the first error, counts the files per affordance/object and, with
    ``decode``, reads every image and GT file (see :func:`probe_file`).

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
    split_root = (join_path(data_root, split, backend_args=backend_args)
                  if split else data_root)
    unknown = [m for m in modes if m not in ('train', 'test')]
    if unknown or not modes:
        raise ValueError(f"check_tree: modes must be 'train' and/or 'test', "
                         f'got {list(modes)}.')
    if decode not in (None, ) + VERIFY_LEVELS:
        raise ValueError(f'check_tree: decode must be None or one of '
                         f'{VERIFY_LEVELS}, got {decode!r}.')
    report = TreeReport(dataset=dataset, data_root=data_root, split=split,
                        split_root=split_root, classes=tuple(classes),
                        modes=tuple(modes), decode=decode)
    counts: Dict[FolderKey, Dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(COUNT_COLUMNS, 0))
    img_suffixes = tuple(s.lower() for s in img_suffixes)
    classes = tuple(classes)

    for root in (data_root, split_root):
        if not fileio.isdir(root, backend_args=backend_args):
            found = ''
            if root == split_root and root != data_root:
                found = (f'; sub-folders of data_root: '
                         f'{_list_subdirs(data_root, backend_args)}')
            report.add('missing_folder', root, f'not a folder{found}')
            report.seconds = time.perf_counter() - start
            return report

    def scan(*parts: str, suffixes=img_suffixes) -> Optional[FolderScan]:
        root = join_path(split_root, *parts, backend_args=backend_args)
        if not fileio.isdir(root, backend_args=backend_args):
            subs = _list_subdirs(split_root, backend_args)
            report.add('missing_folder', root,
                       f'expected by the layout; sub-folders of '
                       f'{split_root!r}: {subs}')
            return None
        s = scan_folder(root, suffixes, backend_args, collect_loops=True)
        for loop in s.loops:
            report.add('symlink_loop', loop.link, str(loop))
        for a in s.affordances:
            if a not in classes:
                report.add('unknown_affordance',
                           join_path(root, a, backend_args=backend_args))
        for rel in s.misplaced:
            report.add('misplaced_file', join_path(root, rel,
                                                   backend_args=backend_args))
        for rel in s.ignored:
            report.add('non_image_file', join_path(root, rel,
                                                   backend_args=backend_args))
        for rel in s.hidden:
            report.add('hidden_file', join_path(root, rel,
                                                backend_args=backend_args))
        for aff, obj in s.empty_folders:
            report.add('empty_folder', join_path(root, aff, obj,
                                                 backend_args=backend_args))
        return s

    to_probe: List[Tuple[str, str]] = []
    gt_of_img: Dict[str, str] = {}
    if 'train' in modes:
        exo, ego = scan('trainset', 'exocentric'), scan('trainset',
                                                        'egocentric')
        for s, col in ((exo, 'exocentric'), (ego, 'egocentric')):
            for key, paths in (s.files.items() if s else ()):
                counts[key][col] = len(paths)
                to_probe += [(p, 'image') for p in paths]
        if exo is not None:
            for c in classes:
                where = join_path(exo.root, c, backend_args=backend_args)
                if c not in exo.affordances:
                    report.add('missing_class', where)
                elif not any(k[0] == c for k in exo.files):
                    report.add('empty_class', where)
        if exo is not None and ego is not None:
            ego_affs = {a for a, _ in ego.files}
            for aff in sorted({a for a, _ in exo.files} - ego_affs):
                report.add('no_egocentric',
                           join_path(ego.root, aff, backend_args=backend_args),
                           'no egocentric image of this affordance at all')
            fallback_affs = set()
            for aff, obj in exo.files:
                if aff in ego_affs and (aff, obj) not in ego.files:
                    fallback_affs.add(aff)
                    report.add('ego_fallback',
                               join_path(ego.root, aff, obj,
                                         backend_args=backend_args))
            exo_affs = {a for a, _ in exo.files}
            for aff, obj in ego.files:
                # an affordance without exocentric images is reported above
                # (missing_class / empty_class); an ego-only object of an
                # affordance with exo objects lacking ego images is their
                # fallback, so it is used
                if (aff in exo_affs and (aff, obj) not in exo.files
                        and aff not in fallback_affs):
                    report.add('ego_unused',
                               join_path(ego.root, aff, obj,
                                         backend_args=backend_args),
                               f'{len(ego.files[(aff, obj)])} image(s); no '
                               + repr(join_path(exo.root, aff, obj,
                                                backend_args=backend_args)))
    if 'test' in modes:
        img = scan('testset', 'egocentric')
        gt = scan('testset', 'GT', suffixes=(gt_suffix.lower(), ))
        if img is not None:
            for c in classes:
                if c not in img.affordances:
                    report.add('missing_test_class',
                               join_path(img.root, c,
                                         backend_args=backend_args))
        imgs, dups = stems(img.files) if img else ({}, [])
        gts, gt_dups = stems(gt.files) if gt else ({}, [])
        for p in dups:
            report.add('duplicate_stem', p)
        for p in gt_dups:
            report.add('duplicate_gt', p,
                       f'same stem as {gts[gt_key(p)]!r}')
        for s, col in ((img, 'test'), (gt, 'gt')):
            for key, paths in (s.files.items() if s else ()):
                counts[key][col] = len(paths)
        if img is not None and gt is not None:
            for key, p in imgs.items():
                if key not in gts:
                    report.add('missing_gt', p, 'expected ' + repr(join_path(
                        gt.root, key[0], key[1], key[2] + gt_suffix,
                        backend_args=backend_args)))
            for key, p in gts.items():
                if key not in imgs:
                    report.add('orphan_gt', p)
        to_probe += [(p, 'image') for p in imgs.values()]
        to_probe += [(p, 'gt') for p in gts.values()]
        gt_of_img = {p: gts[k] for k, p in imgs.items() if k in gts}
    report.counts = dict(sorted(counts.items()))

    if decode:
        probes = probe_files(to_probe, decode, backend_args, nproc=nproc,
                             progress=progress, progress_file=progress_file,
                             ignore_orientation=ignore_orientation)
        report.files_checked = len(probes)
        by_path = {p.path: p for p in probes}
        for p in probes:
            _report_probe(report, p, min_size)
            if p.error is None and p.exif_orientation not in (None, 1):
                report.add('exif_rotated', p.path,
                           f'EXIF orientation {p.exif_orientation}; read ' +
                           ('as stored (ignore_orientation=True)'
                            if ignore_orientation else
                            'upright (ignore_orientation=False)'))
        for img_path, gt_path in gt_of_img.items():
            a, b = by_path[img_path], by_path[gt_path]
            if a.shape and b.shape and a.shape != b.shape:
                report.add('gt_size_mismatch', gt_path,
                           f'GT {b.shape[0]}x{b.shape[1]}, image '
                           f'{a.shape[0]}x{a.shape[1]} (h x w)')
    report.seconds = time.perf_counter() - start
    return report


def _report_probe(report: TreeReport, p: FileProbe, min_size: int) -> None:
    """Turn one probe into problems."""
    if p.error is not None:
        report.add('unreadable_image' if p.kind == 'image' else
                   'unreadable_gt', p.path, p.error)
        return
    if p.kind == 'image':
        if p.mode not in (None, 'RGB'):
            report.add('converted_image', p.path, f'mode {p.mode}')
        if p.shape and min(p.shape) < min_size:
            report.add('small_image', p.path,
                       f'{p.shape[0]}x{p.shape[1]} (h x w) < {min_size}')
        return
    if p.gt_color:
        report.add('gt_color', p.path, f'{p.channels} channels')
    elif (p.channels or 1) > 1 or (p.bit_depth or 8) > 8 or (
            p.channels is None and p.mode not in (None, 'L')):
        report.add('gt_converted', p.path,
                   f'mode {p.mode}' + (f', {p.channels} channel(s), '
                                       f'{p.bit_depth}-bit'
                                       if p.channels else ''))
    if p.gt_max == 0:
        report.add('gt_empty', p.path, 'every pixel is 0')
