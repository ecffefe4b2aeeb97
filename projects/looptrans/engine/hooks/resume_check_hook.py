"""ResumeCheckHook: a resumed run continues from a checkpoint that exists, and a finished run says so."""

from __future__ import annotations

import logging
from typing import Any

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ...utils.resume import resolve_resume


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """Decides, before MMEngine loads anything, which checkpoint ``resume=True`` continues from.

    MMEngine's auto-resume loads the file named by ``<work_dir>/last_checkpoint`` and dies with
    ``FileNotFoundError`` when it was deleted (disk clean-up, ``max_keep_ckpts``, a copied work dir), although
    older checkpoints are there; on a finished run it replays every dataloader step of the schedule before
    noticing that there is nothing to do. In ``before_run`` of ``Runner.train()`` (which precedes MMEngine's
    ``load_or_resume``) this hook sets the checkpoint with :func:`looptrans.utils.resume.resolve_resume`:

    * ``last_checkpoint`` names a missing file: the newest checkpoint of the work dir, with a warning;
    * no checkpoint at all: training starts from scratch, with a warning;
    * the checkpoint has reached ``train_cfg.max_iters`` / ``max_epochs``: ``TrainingFinishedError``, whose
      message says so and how to train longer (``tools/train.py`` logs it and exits with status 0).

    It reads the Runner's ``_resume`` / ``_load_from`` / ``_has_loaded`` / ``_train_loop`` (MMEngine 0.10.x),
    the state ``load_or_resume`` acts on. ``val()`` / ``test()`` and a Runner that has loaded already are
    left alone.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner: Any) -> None:
        training = isinstance(getattr(runner, '_train_loop', None), BaseLoop)
        if not training or not getattr(runner, '_resume', False) or getattr(runner, '_has_loaded', False):
            return
        path, warnings = resolve_resume(runner.work_dir, runner._load_from, runner.cfg.get('train_cfg'))
        for message in warnings:
            print_log(message, logger='current', level=logging.WARNING)
        if path is None:
            runner._resume = False  # nothing to resume from: MMEngine starts from scratch
        else:
            runner._load_from = path
