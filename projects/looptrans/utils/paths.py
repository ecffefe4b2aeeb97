"""Output folders checked at start-up, so a run does not fail after the model has run."""

from __future__ import annotations

import errno
import fcntl
import os
import os.path as osp
import socket
import sys
import tempfile
import time
from typing import IO


class UnwritableDirError(OSError):
    """An output folder cannot be created or written to (``str(err)`` names it and the reason)."""


def ensure_writable_dir(path: str, what: str) -> str:
    """Create ``path`` (with its parents) if needed and check that a file can be written in it.

    The check writes and deletes a small temporary file, which is what every later write needs (``os.access``
    is wrong for root, ACLs and read-only mounts).

    Args:
        path: the folder.
        what: the option it came from, for the message (``'--work-dir'``).

    Returns:
        ``path`` unchanged.

    Raises:
        UnwritableDirError: naming the option, the path and the reason (a parent is a file, permission
            denied, read-only file system ...).
    """
    if osp.exists(path) and not osp.isdir(path):
        raise UnwritableDirError(f'{what} {path!r} exists and is not a folder; give a folder')
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write_test_', dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno == errno.ENOTDIR or (err.errno in (errno.EEXIST, errno.ENOENT) and not osp.isdir(path)):
            parent = path
            while parent and not osp.exists(parent):
                parent = osp.dirname(parent)
            if parent and not osp.isdir(parent):
                reason = f'{parent!r} is a file, not a folder'
        raise UnwritableDirError(
            f'{what} {path!r} cannot be written to ({reason}); choose a folder you can write to'
        ) from err
    return path


class WorkDirBusyError(RuntimeError):
    """Another live training run holds the work dir (``str(err)`` names it, the other run and the fix)."""


#: The lock file a training run holds in its work dir (``tools/train.py``, main process).
LOCK_NAME = '.train.lock'


def lock_work_dir(work_dir: str) -> IO[str]:
    """Take the work dir for this training run; keep the returned file open for as long as the run lives.

    Two runs in one work dir write the same ``iter_N.pth`` names, and each one's log then claims checkpoints
    that hold the other's weights. The lock is an ``flock`` on ``<work_dir>/.train.lock``: the kernel drops it
    when the process ends, however it ends (a killed run leaves no stale lock behind), and the file says which
    process holds it.

    Raises:
        WorkDirBusyError: another live process holds the lock.
    """
    path = osp.join(work_dir, LOCK_NAME)
    handle = open(path, 'a+')
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            handle.close()
            raise
        handle.seek(0)
        holder = handle.read().strip() or 'another process'
        handle.close()
        raise WorkDirBusyError(
            f'work dir {work_dir!r} is in use by another training run ({holder}); two runs in one work dir '
            'overwrite each other\'s checkpoints. Wait for it to end, or give this run its own --work-dir.'
        ) from None
    handle.seek(0)
    handle.truncate()
    started = time.strftime('%Y-%m-%d %H:%M:%S')
    handle.write(f'pid {os.getpid()} on {socket.gethostname()}, started {started}: {" ".join(sys.argv)}\n')
    handle.flush()
    return handle
