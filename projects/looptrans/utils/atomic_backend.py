"""A local file backend whose writes are atomic, for checkpoints that survive a kill mid-save.

MMEngine's ``LocalBackend.put`` opens the target and writes into it, so a run killed (SIGKILL, OOM killer,
pre-empted node) while saving leaves a truncated ``iter_N.pth`` that ``--resume`` then fails on.
:class:`AtomicLocalBackend` writes to a temporary file in the same folder, flushes and fsyncs it, then
``os.replace``-s it over the target: readers see the old file or the complete new one, never a partial one.

Select it for checkpoints with ``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')`` (the
LoopTrans schedules do).

The temporary file gets the permissions ``open()`` / ``torch.save`` would give the target (``0o666`` less the
process umask), not ``mkstemp``'s private ``0o600``. A run killed by SIGTERM / SIGKILL mid-save cannot remove
its temporary file (Python's default SIGTERM handling runs no cleanup), so :func:`remove_stale_temp_files`
deletes such leftovers when the next run starts in the same folder (``tools/train.py`` calls it).
"""

from __future__ import annotations

import os
import os.path as osp
import re
import tempfile
from pathlib import Path
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.utils import mkdir_or_exist

#: name of the temporary file of ``<name>``: ``.<name>.<8 random characters>.tmp`` (``tempfile.mkstemp``).
TEMP_NAME_RE = re.compile(r'^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$')


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the portable way: set and restore
    os.umask(mask)
    return mask


def remove_stale_temp_files(folder: Union[str, Path]) -> List[str]:
    """Delete the temporary files that interrupted atomic saves left in ``folder``; return their paths.

    Only files named like :func:`atomic_write_bytes`'s temporaries (``.<name>.<8 characters>.tmp``) are
    removed. Call it when a run starts, before anything saves into ``folder``: a temporary file that exists
    then belongs to a save that was killed (SIGTERM / SIGKILL / power loss) and will never be renamed.
    """
    folder = str(folder)
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if TEMP_NAME_RE.match(name) and osp.isfile(path) and not osp.islink(path):
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


#: Longest target name kept in a temporary file's name, so that a target name near the file system's limit
#: (255 bytes) still gets a temporary file (``.<name>.<8>.tmp`` adds 14 characters).
_TEMP_TARGET_CHARS = 200


def atomic_write_bytes(data: bytes, filepath: Union[str, Path], durable: bool = True) -> None:
    """Write ``data`` to ``filepath`` atomically (temp file + fsync + rename in the same folder).

    The file ends with the permissions a plain ``open(filepath, 'wb')`` would give it (``0o666`` less the
    umask), as ``torch.save`` does. ``durable=False`` skips the fsyncs: the file is still never seen torn
    (a killed process or a full disk leaves the old file or none), only a power loss could lose it; for the
    many small files of an inference run.
    """
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    mkdir_or_exist(folder)
    prefix = f'.{osp.basename(filepath)[:_TEMP_TARGET_CHARS]}.'
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix='.tmp', dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    if not durable:
        return
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
