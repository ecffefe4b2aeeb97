"""A local file backend whose writes are atomic, for checkpoints that survive a kill mid-save.

MMEngine's ``LocalBackend.put`` opens the target and writes into it, so a run killed (SIGKILL, OOM killer,
pre-empted node) while saving leaves a truncated ``iter_N.pth`` that ``--resume`` then fails on.
:class:`AtomicLocalBackend` writes to a temporary file in the same folder, flushes and fsyncs it, then
``os.replace``-s it over the target: readers see the old file or the complete new one, never a partial one.

Select it for checkpoints with ``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')`` (the
LoopTrans schedules do).
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.utils import mkdir_or_exist


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` atomically (temp file + fsync + rename in the same folder)."""
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    mkdir_or_exist(folder)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
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
