"""Which checkpoint a resumed run continues from, and whether there is anything left to train.

MMEngine's ``resume=True`` (``tools/train.py --resume``) reads ``<work_dir>/last_checkpoint`` and loads the
file it names. When that file was deleted (disk clean-up, ``max_keep_ckpts``, a copied work dir) the run dies
with ``FileNotFoundError`` although older checkpoints are there; after a finished run it replays every
dataloader step of the schedule before noticing there is nothing to do. :func:`find_resume_checkpoint`
falls back to the newest checkpoint that exists (with a warning) and :func:`finished_message` says at once
that a run is complete; :func:`resolve_resume` combines both for ``ResumeCheckHook``, which runs them inside
the Runner (so ``Runner.from_cfg(cfg).train()`` gets them as ``tools/train.py`` does).
"""

from __future__ import annotations

import os
import os.path as osp
import re
from typing import Any, List, Optional, Tuple

#: ``iter_<N>.pth`` / ``epoch_<N>.pth`` as written by MMEngine's CheckpointHook.
_NUMBERED = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def _checkpoints(work_dir: str) -> List[str]:
    """The visible ``*.pth`` files of ``work_dir``, newest first (by the number in ``iter_N`` / ``epoch_N``,
    then by modification time)."""
    if not osp.isdir(work_dir):
        return []
    found = []
    for name in os.listdir(work_dir):
        path = osp.join(work_dir, name)
        if name.endswith('.pth') and not name.startswith('.') and osp.isfile(path):
            match = _NUMBERED.match(name)
            found.append((1 if match else 0, int(match.group(1)) if match else 0, osp.getmtime(path), path))
    return [item[-1] for item in sorted(found, reverse=True)]


def find_resume_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The checkpoint ``--resume`` (without a path) should load, and the warnings to show.

    The file named by ``<work_dir>/last_checkpoint`` when it exists (also when the work dir was moved: a
    file of the same name in ``work_dir``); otherwise the newest checkpoint of ``work_dir`` with a warning;
    None (with a warning) when there is none, and training starts from scratch.
    """
    warnings: List[str] = []
    marker = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(marker):
        with open(marker) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named, warnings
        moved = osp.join(work_dir, osp.basename(named)) if named else None
        if moved and osp.isfile(moved):
            return moved, warnings
    candidates = _checkpoints(work_dir)
    if named:
        if candidates:
            warnings.append(
                f'--resume: {marker!r} names {named!r}, which does not exist (deleted or moved); resuming from '
                f'the newest checkpoint that exists instead: {candidates[0]!r}.'
            )
        else:
            warnings.append(
                f'--resume: {marker!r} names {named!r}, which does not exist, and {work_dir!r} has no other '
                'checkpoint (*.pth); training starts from scratch.'
            )
    elif candidates:
        warnings.append(
            f'--resume: {work_dir!r} has no last_checkpoint file; resuming from the newest '
            f'checkpoint there: {candidates[0]!r}.'
        )
    else:
        warnings.append(
            f'--resume: {work_dir!r} has no checkpoint (*.pth) to resume from; training starts from scratch.'
        )
    return (candidates[0] if candidates else None), warnings


def finished_message(meta: dict, train_cfg: dict, checkpoint: str) -> Optional[str]:
    """A message when the checkpoint's ``meta`` has reached the end of ``train_cfg``'s schedule, else None.

    Iteration-based loops compare ``meta['iter']`` with ``max_iters``; epoch-based ones ``meta['epoch']``
    with ``max_epochs`` (MMEngine stores the number of completed iterations / epochs).
    """
    train_cfg = dict(train_cfg or {})
    for key, unit in (('max_iters', 'iter'), ('max_epochs', 'epoch')):
        limit = train_cfg.get(key)
        done = meta.get(unit)
        if isinstance(limit, int) and isinstance(done, int) and done >= limit:
            word = 'iterations' if unit == 'iter' else 'epochs'
            return (
                f'Nothing to resume: {checkpoint!r} is at {unit} {done} and the schedule ends at '
                f'train_cfg.{key}={limit}, so this run is already finished. To train longer, raise '
                f'train_cfg.{key} (e.g. --cfg-options train_cfg.{key}={limit * 2}) and resume again; to '
                f'start over, use another --work-dir. ({done} {word} done.)'
            )
    return None


class TrainingFinishedError(RuntimeError):
    """The checkpoint to resume from has reached the end of the schedule: there is nothing left to train.

    ``str(err)`` is :func:`finished_message`'s text (the checkpoint, where it stands, how to train longer).
    ``tools/train.py`` logs it and exits with status 0; ``Runner.train()`` raises it before the dataloader is
    replayed.
    """


def resolve_resume(work_dir: str, load_from: Optional[str], train_cfg: Any) -> Tuple[Optional[str], List[str]]:
    """The checkpoint a resumed run should load, and the warnings to show.

    Args:
        work_dir: the run's work dir.
        load_from: the checkpoint named by the config / ``--resume PATH``; None to take the work dir's latest
            (:func:`find_resume_checkpoint`).
        train_cfg: the config's ``train_cfg`` (its ``max_iters`` / ``max_epochs``).

    Returns:
        ``(path, warnings)``; ``path`` is None when there is nothing to resume from (train from scratch).

    Raises:
        TrainingFinishedError: the checkpoint has reached the end of ``train_cfg``'s schedule.
        FileNotFoundError: ``load_from`` names no file.
        BrokenCheckpointError / UnsafeCheckpointError: the checkpoint cannot be read (the message names it).
    """
    from .checkpoint import safe_torch_load

    warnings: List[str] = []
    if load_from is None:
        load_from, warnings = find_resume_checkpoint(work_dir)
        if load_from is None:
            return None, warnings
    load_from = osp.expanduser(load_from)
    if not osp.isfile(load_from):
        raise FileNotFoundError(
            f'resume=True with load_from={load_from!r}: no such checkpoint file. Name an existing checkpoint, or '
            'set load_from=None to resume from the latest checkpoint of the work dir.'
        )
    checkpoint = safe_torch_load(load_from, map_location='cpu')
    meta = (checkpoint.get('meta') if isinstance(checkpoint, dict) else None) or {}
    message = finished_message(meta, train_cfg, load_from)
    if message is not None:
        raise TrainingFinishedError(message)
    return load_from, warnings
