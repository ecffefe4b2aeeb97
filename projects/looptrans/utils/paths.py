"""Output folders checked at start-up, so a run does not fail after the model has run."""

from __future__ import annotations

import errno
import os
import os.path as osp
import tempfile


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
