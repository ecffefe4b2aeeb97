"""WorldSizeCheckHook: a resumed run says when its number of processes differs from the checkpoint's."""

from __future__ import annotations

import logging
from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


def _batch_size(runner: Any) -> Optional[int]:
    """The training loader's batch size per process, from the runner's config (None when unknown)."""
    loader_cfg = (getattr(runner, 'cfg', None) or {}).get('train_dataloader') or {}
    size = loader_cfg.get('batch_size')
    return size if isinstance(size, int) else None


def world_size_message(saved: int, saved_batch: Optional[int], current: int, batch: Optional[int]) -> Optional[str]:
    """What changes when a run saved with ``saved`` processes is resumed with ``current``, and how to keep the
    recipe; None when nothing changes."""
    if saved == current:
        return None
    lines = [f'Resuming with {current} process(es); the checkpoint was trained with {saved}.']
    if batch is not None and saved_batch is not None:
        old, new = saved * saved_batch, current * batch
        lines.append(
            f'The effective batch size changes from {old} ({saved} x {saved_batch}) to {new} ({current} x {batch}), '
            'and with it the recipe (gradient noise, the learning rate per image, the iterations per epoch).'
        )
        if old % current == 0:
            lines.append(
                f'To keep the recipe, resume with --cfg-options train_dataloader.batch_size={old // current}, '
                f'or with {saved} process(es).'
            )
        else:
            lines.append(f'To keep the recipe, resume with {saved} process(es).')
    return ' '.join(lines)


@HOOKS.register_module()
class WorldSizeCheckHook(Hook):
    """Records the number of processes and the per-process batch size in every checkpoint
    (``meta.world_size``, ``meta.train_batch_size``) and, when a run resumes from one with another number of
    processes, says so with both figures and how to keep the effective batch size.

    Why: ``dist_train.sh CONFIG 2 --resume`` on a run started with one process trains on with twice the
    effective batch size and no word about it. One of the run checks every LoopTrans config registers in
    ``default_hooks`` (``world_size``; see :mod:`looptrans.engine.hooks.run_checks`).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        meta = checkpoint.setdefault('meta', {})
        meta['world_size'] = int(runner.world_size)
        batch = _batch_size(runner)
        if batch is not None:
            meta['train_batch_size'] = batch

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from (fine-tuning) starts a new schedule
        meta = checkpoint.get('meta') or {}
        saved = meta.get('world_size')
        if not isinstance(saved, int):
            return  # written before the world size was recorded
        message = world_size_message(saved, meta.get('train_batch_size'), int(runner.world_size), _batch_size(runner))
        if message is not None:
            print_log(message, logger='current', level=logging.WARNING)
