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
import io
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import (Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

import cv2
import mmcv
import numpy as np
from mmengine import fileio
from mmengine.fileio import join_path, list_dir_or_file
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


def _decode_image(data: bytes, backend: str
                  ) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(BGR image, None)`` or ``(None, why it cannot be decoded)``."""
    problem = _bad_content(data)
    if problem is not None:
        return None, problem
    try:
        img = mmcv.imfrombytes(data, flag='color', channel_order='bgr',
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


def probe_file(path: str, kind: str = 'image', level: str = 'full',
               backend_args: Optional[dict] = None) -> FileProbe:
    """Read ``path`` and check it at ``level`` (see :data:`VERIFY_LEVELS`).

    ``'header'`` reads the bytes, checks they are not empty or cut short and
    parses the header with PIL (size, mode). ``'full'`` also decodes the file
    with the function the pipeline uses (:func:`decode_image` for images,
    :func:`decode_gt` for GT), so a file that passes will load in training.
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
        with Image.open(io.BytesIO(data)) as im:
            probe.shape = (int(im.height), int(im.width))
            probe.mode = im.mode
    except (UnidentifiedImageError, OSError, ValueError,
            Image.DecompressionBombError) as err:
        probe.error = f'not an image PIL can identify ({err})'
        return probe
    if level == 'header':
        return probe
    if kind == 'image':
        img, probe.error = _decode_image(data, 'cv2')
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
                progress_file=None) -> List[FileProbe]:
    """Probe many ``(path, kind)`` items, in order, optionally in parallel.

    Args:
        items: ``(path, 'image' | 'gt')`` pairs.
        level: ``'header'`` or ``'full'``.
        backend_args: MMEngine file backend arguments.
        nproc: Worker processes (1 = in this process).
        progress: Show an MMEngine progress bar.
        progress_file: Stream of the progress bar (stdout by default).
    """
    tasks = [(p, k, level, backend_args) for p, k in items]
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
    """
    root: str
    affordances: List[str] = field(default_factory=list)
    folders: List[FolderKey] = field(default_factory=list)
    files: Dict[FolderKey, List[str]] = field(default_factory=dict)
    misplaced: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    hidden: List[str] = field(default_factory=list)

    @property
    def empty_folders(self) -> List[FolderKey]:
        """``(affordance, object)`` folders without any accepted file."""
        return [k for k in self.folders if k not in self.files]

    def objects_of(self, affordance: str) -> List[str]:
        """Object folders of ``affordance`` (with or without files)."""
        return [o for a, o in self.folders if a == affordance]


def _is_junk(part: str) -> bool:
    return part.startswith('.') or part in JUNK_DIRS


def scan_folder(root: str, suffixes: Sequence[str],
                backend_args: Optional[dict] = None) -> FolderScan:
    """List ``root`` (which must exist) in two passes (folders, files).

    Hidden entries (``.DS_Store``, ``.ipynb_checkpoints/``, AppleDouble
    ``._x.jpg``) and ``__MACOSX/`` are skipped and counted in ``hidden``.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    scan = FolderScan(root=root)
    affs, folders = set(), set()
    for rel in list_dir_or_file(root, list_dir=True, list_file=False,
                                recursive=True, backend_args=backend_args):
        parts = rel.replace('\\', '/').strip('/').split('/')
        if any(_is_junk(p) for p in parts):
            if not any(_is_junk(p) for p in parts[:-1]):
                scan.hidden.append('/'.join(parts) + '/')
            continue
        if len(parts) == 1:
            affs.add(parts[0])
        elif len(parts) == 2:
            folders.add((parts[0], parts[1]))
    files: Dict[FolderKey, List[str]] = defaultdict(list)
    for rel in list_dir_or_file(root, list_dir=False, list_file=True,
                                recursive=True, backend_args=backend_args):
        rel = rel.replace('\\', '/')
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


def flatten(files: Dict[FolderKey, List[str]]) -> Iterable[str]:
    """All paths of a ``files`` mapping."""
    for paths in files.values():
        yield from paths
