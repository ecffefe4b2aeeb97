"""ConfigKeyCheckHook: top-level config keys the Runner ignores are named before anything runs."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.config_check import check_runner_config


@HOOKS.register_module()
class ConfigKeyCheckHook(Hook):
    """Warns, once per Runner and before the first iteration, about top-level config keys that have no effect.

    MMEngine's Runner ignores every top-level key it does not read, so ``--cfg-options trian_cfg.max_iters=2``
    or ``cfg.trian_cfg = ...`` in a notebook trains the full schedule without a word, and ``cfg.data_root =
    ...`` after ``Config.fromfile`` changes nothing (the file's variables were substituted when it was read).
    The hook runs :func:`looptrans.utils.config_check.check_runner_config` on ``runner.cfg``: each such key is
    named with the closest key the Runner reads, or the fields to override instead. Warnings only: a plug-in
    may read top-level keys of its own.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._checked = False

    def before_run(self, runner: Any) -> None:
        if self._checked:  # before_run comes once per train() / val() / test() call
            return
        self._checked = True
        cfg = getattr(runner, 'cfg', None)
        if cfg is not None:
            check_runner_config(cfg)
