"""QuietLogHook: MMEngine's log lines that say nothing about a LoopTrans run are dropped from it
(:mod:`looptrans.utils.log_noise`)."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.log_noise import quiet_logger


@HOOKS.register_module()
class QuietLogHook(Hook):
    """Attaches :class:`KnownNoiseFilter` to the runner's logger before anything else runs.

    One of the run checks every LoopTrans config registers in ``default_hooks`` (``quiet_log``; see
    :mod:`looptrans.engine.hooks.run_checks`).
    """

    priority = 'HIGHEST'

    def before_run(self, runner: Any) -> None:
        quiet_logger(runner.logger)
