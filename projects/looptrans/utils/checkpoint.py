"""Safe checkpoint loading for MMEngine 0.10.x under torch >= 2.6.

torch >= 2.6 loads checkpoints with ``weights_only=True``: only tensors, containers and an explicit allow-list
of Python types are unpickled. MMEngine 0.10.7 writes a few non-tensor objects into its checkpoints (the
:class:`~mmengine.logging.HistoryBuffer` of every logged scalar and the numpy arrays/scalars inside them), so
``--resume`` and ``tools/test.py`` fail with ``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``.

This module fixes that *without* falling back to unrestricted pickle:

* :func:`allowed_checkpoint_globals` lists exactly the types MMEngine writes;
* :func:`register_safe_globals` adds them to torch's ``weights_only`` allow-list;
* :func:`safe_torch_load` always loads with ``weights_only=True`` and turns torch's refusal of anything else
  (a pickle that would run code, or a foreign object) into an error that names the file and the object;
  a file that is not a checkpoint at all (empty, cut short, an HTML page saved as ``.pth``) is reported as
  such (:class:`BrokenCheckpointError`), before torch tries to unpickle it;
* :func:`install_safe_checkpoint_loading` makes MMEngine's loader for local paths, ``http(s)://`` and
  in-memory buffers use it, and makes ``HistoryBuffer`` pickle without references to its statistics
  functions (MMEngine stores them as ``getattr(HistoryBuffer, 'mean')``; ``builtins.getattr`` cannot be
  allow-listed safely). Checkpoints written by MMEngine without this fix are still read: their ``getattr``
  calls are resolved for exactly ``HistoryBuffer``'s registered statistics and nothing else
  (:func:`_load_legacy_history_buffers`).

``looptrans/__init__.py`` calls :func:`install_safe_checkpoint_loading` once, in plain sight, so that every
way into a LoopTrans run (the tools, ``custom_imports=['looptrans']`` of a config, ``import looptrans`` in
a notebook) loads checkpoints the same safe way; docs/reliability.md says what it patches and why.
"""

from __future__ import annotations

import _compat_pickle
import io
import logging
import os
import os.path as osp
import pickle
import re
import struct
from typing import Any, BinaryIO, Callable, List, Optional, Tuple, Union

import numpy as np
import torch

logger = logging.getLogger(__name__)

_NUMPY_DTYPE_NAMES = (
    'bool_',
    'int8',
    'int16',
    'int32',
    'int64',
    'uint8',
    'uint16',
    'uint32',
    'uint64',
    'float16',
    'float32',
    'float64',
    'complex64',
    'complex128',
)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """Raised when a checkpoint holds an object outside the allow-list."""


class BrokenCheckpointError(RuntimeError):
    """Raised when a checkpoint file is empty, cut short, corrupt, or not a PyTorch file at all.

    Torch's own errors for these cases are ``EOFError: Ran out of input``, ``Expected hasRecord("version")``
    or a misleading "unsupported global" (for an HTML page), none of which names the file or says what it
    is; this error does both.
    """


#: torch's errors for a zip archive or pickle stream that is cut short or corrupt (RuntimeError texts).
_CORRUPT_RE = re.compile(
    r'PytorchStreamReader|hasRecord|central directory|zip archive|magic number|'
    r'unexpected EOF|corrupt|truncated',
    re.IGNORECASE,
)
#: unpickler errors for a byte stream that ends early or is not a pickle (not a refused object). torch's
#: "Unsupported operand" is not among them: a code-running pickle can trigger it, so it stays a refusal.
_PICKLE_BROKEN_RE = re.compile(
    r'truncated|ran out of input|invalid load key|stack underflow|'
    r'could not find MARK|unexpected EOF',
    re.IGNORECASE,
)
_REDOWNLOAD = (
    'Re-download or re-copy it, or use another checkpoint (an interrupted save leaves such a '
    'file; the atomic_local checkpoint backend never does).'
)


def _read_head(source: Union[str, BinaryIO], n: int = 512) -> Tuple[bytes, Optional[int]]:
    """The first ``n`` bytes of a path or a seekable file object, and its size (None if unknown)."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, 'rb') as f:
            return f.read(n), os.fstat(f.fileno()).st_size
    try:
        pos = source.tell()
        head = source.read(n)
        source.seek(0, io.SEEK_END)
        size = source.tell() - pos
        source.seek(pos)
        return head, size
    except (AttributeError, OSError, ValueError):
        return b'', None


def _corrupt_message(label: str, size: Optional[int], head: bytes, err: BaseException) -> str:
    kind = 'zip archive' if head.startswith(b'PK') else 'pickle stream'
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or ['']
    reason = next((line for line in lines if _PICKLE_BROKEN_RE.search(line) or _CORRUPT_RE.search(line)), lines[0])
    return (
        f'Cannot load checkpoint {label!r} ({size} bytes): the file is a truncated or corrupt {kind}, or was '
        f'not written by torch.save ({type(err).__name__}: {reason[:200]}). {_REDOWNLOAD}'
    )


def looks_like_onnx(head: bytes) -> bool:
    """Whether bytes start like an ONNX ``ModelProto``: field 1 (``ir_version``, varint tag 0x08) then the
    producer's name (field 2, tag 0x12) within the first bytes, as every exporter writes them."""
    return head[:1] == b'\x08' and b'\x12' in head[:8] and any(p in head[:64] for p in (b'pytorch', b'onnx'))


def describe_non_checkpoint(head: bytes, size: Optional[int]) -> Optional[str]:
    """Why bytes starting with ``head`` cannot be a PyTorch checkpoint, or None when they might be one.

    A checkpoint written by ``torch.save`` is a zip archive (``PK``, torch >= 1.6) or a pickle stream
    (``0x80`` + protocol byte, the legacy format and plain pickles). Anything else is named: an empty file,
    an HTML page (a download that returned an error or login page), a Git LFS pointer, text, or bytes
    shown in hex.
    """
    if size == 0 or (size is None and not head):
        return 'the file is empty (0 bytes)'
    if head.startswith(b'PK\x03\x04') or head.startswith(b'PK\x05\x06'):
        return None
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return None
    if looks_like_onnx(head):
        return (
            'it is an ONNX model, not a PyTorch checkpoint: tools/infer.py runs it with --backend onnxruntime; '
            'tools/test.py and the Python API take the .pth checkpoint it was exported from'
        )
    text = head.lstrip(b'\xef\xbb\xbf \t\r\n').lower()
    if text.startswith((b'<!doctype html', b'<html', b'<head', b'<?xml', b'<body')):
        what = 'an HTML page (typically a download that returned an error or login page instead of the file)'
    elif text.startswith(b'version https://git-lfs'):
        what = 'a Git LFS pointer file (run `git lfs pull` to fetch the real file)'
    elif text.startswith((b'{', b'[')):
        what = 'a JSON / text file'
    elif head and all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        what = f'a text file (starts with {head[:40].decode("ascii", "replace")!r})'
    else:
        what = f'not a PyTorch file (its first bytes are {head[:8].hex(" ")}, neither a zip archive nor a pickle)'
    return f'it is {what}, not a PyTorch checkpoint'


def _numpy_reconstructors() -> List[Callable]:
    """The numpy functions that unpickle ndarrays and scalars (numpy 1.x and 2.x module paths)."""
    found = []
    for module_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            module = __import__(module_name, fromlist=['_reconstruct'])
        except ImportError:
            continue
        for name in ('_reconstruct', 'scalar'):
            fn = getattr(module, name, None)
            if fn is not None and fn not in found:
                found.append(fn)
    return found


def allowed_checkpoint_globals() -> List[Any]:
    """Every non-tensor type that MMEngine 0.10.x puts in a checkpoint.

    - ``mmengine.logging.HistoryBuffer``: the message hub's logged scalars (``message_hub.log_scalars``);
    - ``numpy.ndarray`` / ``numpy.dtype`` / the concrete dtype classes / numpy's reconstructors: the arrays
      inside those buffers and numpy scalars in ``message_hub.runtime_info``.
    Nothing that can execute code is listed.
    """
    from mmengine.logging import HistoryBuffer

    allowed: List[Any] = [HistoryBuffer, np.ndarray, np.dtype]
    allowed += _numpy_reconstructors()
    for name in _NUMPY_DTYPE_NAMES:
        dtype_cls = type(np.dtype(getattr(np, name)))
        if dtype_cls not in allowed:
            allowed.append(dtype_cls)
    return allowed


def register_safe_globals() -> bool:
    """Add :func:`allowed_checkpoint_globals` to torch's ``weights_only`` allow-list.

    Returns False on torch versions without ``torch.serialization.add_safe_globals`` (< 2.4), where
    ``weights_only`` is not the default and nothing needs registering.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    add(allowed_checkpoint_globals())
    return True


# torch words its refusals as "Unsupported global: GLOBAL getattr was not an allowed global ..." or
# "Trying to load unsupported GLOBAL posix.system whose module posix is blocked".
_UNSUPPORTED_RE = re.compile(r'(?:Unsupported global: |unsupported )GLOBAL ([\w.]+)')


def safe_torch_load(source: Union[str, BinaryIO], map_location: Any = None, name: Optional[str] = None) -> Any:
    """``torch.load`` with ``weights_only=True``, whatever torch's default.

    Args:
        source: a file path or a binary file-like object.
        map_location: as for :func:`torch.load`.
        name: how to name the source in errors (defaults to the path).

    Raises:
        UnsafeCheckpointError: the file holds an object outside the allow-list (for example a pickle
            that would call ``os.system``); nothing from it is executed.
        BrokenCheckpointError: the file is empty, cut short, a corrupt archive, or not a PyTorch file
            (an HTML page, text ...).
    """
    label = name or (source if isinstance(source, str) else '<buffer>')
    head, size = _read_head(source)
    problem = describe_non_checkpoint(head, size)
    if problem is not None:
        advice = '' if looks_like_onnx(head) else f' {_REDOWNLOAD}'
        raise BrokenCheckpointError(f'Cannot load checkpoint {label!r} ({size} bytes): {problem}.{advice}')
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except (EOFError, OSError, ValueError, IndexError, struct.error, RuntimeError) as err:
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)) or (
            isinstance(err, RuntimeError) and not _CORRUPT_RE.search(str(err))
        ):
            raise  # not about the bytes (e.g. a CUDA map_location without a GPU)
        raise BrokenCheckpointError(_corrupt_message(label, size, head, err)) from err
    except pickle.UnpicklingError as err:
        if _UNSUPPORTED_RE.search(str(err)) is None and _PICKLE_BROKEN_RE.search(str(err)):
            raise BrokenCheckpointError(_corrupt_message(label, size, head, err)) from err
        match = _UNSUPPORTED_RE.search(str(err))
        culprit = match.group(1) if match else 'an object outside the allow-list'
        if culprit in ('getattr', 'builtins.getattr', '__builtin__.getattr'):
            try:
                if not isinstance(source, str):
                    source.seek(0)
                return _load_legacy_history_buffers(source, map_location)
            except pickle.UnpicklingError as legacy_err:
                match = _UNSUPPORTED_RE.search(str(legacy_err))
                culprit = match.group(1) if match else str(legacy_err)
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {label!r}: it contains {culprit}, which is not a tensor, a '
            'container or one of the types MMEngine writes (see '
            'looptrans.utils.checkpoint.allowed_checkpoint_globals). Loading it would run arbitrary '
            'pickled code, so it was not loaded. If you produced this file yourself and trust it, '
            're-save its tensors with torch.save(state_dict) and load that instead.'
        ) from err


def _statistics_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to ``HistoryBuffer``'s registered statistics methods."""
    from mmengine.logging import HistoryBuffer

    if (
        obj is HistoryBuffer
        and isinstance(name, str)
        and (name in ('min', 'max', 'current', 'mean') or name in HistoryBuffer._statistics_methods)
    ):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'Unsupported global: GLOBAL builtins.getattr({obj!r}, {name!r})')


def _load_legacy_history_buffers(source: Union[str, BinaryIO], map_location: Any = None) -> Any:
    """Load a checkpoint whose ``HistoryBuffer`` objects carry their statistics functions.

    A restricted unpickler: every global must be on torch's ``weights_only`` allow-list (plus
    :func:`allowed_checkpoint_globals`), and ``builtins.getattr`` resolves only
    ``HistoryBuffer.<statistics method>``. Anything else raises ``UnpicklingError`` before it is called.
    """
    import types

    from torch import _weights_only_unpickler as wou

    allowed = dict(wou._get_allowed_globals())
    allowed.update(wou._get_user_allowed_globals())

    class _RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            # protocol-2 pickles name Python 2 modules (__builtin__, copy_reg ...)
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            key = f'{module}.{name}'
            if key == 'builtins.getattr':
                return _statistics_getattr
            if key in allowed:
                return allowed[key]
            raise pickle.UnpicklingError(f'Unsupported global: GLOBAL {key}')

    restricted = types.ModuleType('looptrans_restricted_pickle')
    restricted.Unpickler = _RestrictedUnpickler
    restricted.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()
    return torch.load(source, map_location=map_location, pickle_module=restricted, weights_only=False)


def _history_buffer_getstate(self: Any) -> dict:
    """``HistoryBuffer.__getstate__`` without the statistics functions (restored from the class)."""
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    return safe_torch_load(filename, map_location=map_location)


def _load_from_http(filename: str, map_location: Any = None, model_dir: Optional[str] = None) -> Any:
    from mmengine.fileio import get

    return safe_torch_load(io.BytesIO(get(filename)), map_location=map_location, name=filename)


_INSTALLED = False


def safe_checkpoint_loading_installed() -> bool:
    """Whether :func:`install_safe_checkpoint_loading` has run in this process."""
    return _INSTALLED


def install_safe_checkpoint_loading() -> None:
    """Make MMEngine load checkpoints with ``torch.load(weights_only=True)`` and an exact allow-list.

    Why: under torch >= 2.6 (``weights_only=True`` by default) MMEngine 0.10.x cannot resume or test from its
    own checkpoints (``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``); the usual
    workaround, ``weights_only=False``, unpickles anything, and a downloaded checkpoint could run code.

    What it changes, for the whole process:

    * torch's ``weights_only`` allow-list gains :func:`allowed_checkpoint_globals` (``HistoryBuffer``,
      numpy arrays / scalars / dtypes; nothing that can run code) (:func:`register_safe_globals`);
    * ``mmengine.logging.HistoryBuffer.__getstate__`` leaves out the statistics functions (restored from
      the class on loading), so new checkpoints hold no ``getattr`` reference;
    * MMEngine's ``CheckpointLoader`` schemes for local paths (``''``) and ``http://`` / ``https://`` are
      replaced by loaders that call :func:`safe_torch_load` (other schemes, ``s3://`` ..., already call
      ``torch.load`` on a buffer and pick up the allow-list).

    Checkpoints are never unpickled with code execution: a file holding anything else is refused with
    :class:`UnsafeCheckpointError`. Idempotent: a second call changes nothing.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    register_safe_globals()
    from mmengine.logging import HistoryBuffer

    HistoryBuffer.__getstate__ = _history_buffer_getstate
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)(_load_from_http)
    _INSTALLED = True
