"""Multi-process runs on machines without CUDA (CPU clusters, laptops, CI) under MMEngine's launcher."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator, NoReturn

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def prepare_cpu_distributed(cfg: Config) -> bool:
    """Make ``--launcher pytorch`` work without CUDA; returns True when it changed something.

    MMEngine 0.10.x calls ``torch.cuda.set_device`` while initialising the process group and wraps the model
    in DDP with ``device_ids=[LOCAL_RANK]``; both fail without a GPU. On such machines this initialises the
    process group with the gloo backend itself (MMEngine then skips its own initialisation) and wraps the model
    in a CPU DDP (no ``device_ids``). With CUDA available it does nothing.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False, find_unused_parameters=False
        )
    return True


@contextmanager
def process_group_closed_on_exit() -> Iterator[None]:
    """Destroy the default process group (if one was initialised inside) when the block ends, however it ends.

    A process that leaves the interpreter with a live gloo group can die with SIGABRT during finalisation:
    gloo's worker threads still hold work objects whose tensors need the GIL, which is gone by then (seen
    under load as ``exitcode -6`` of one rank after a run that finished). Destroying the group while the
    interpreter is whole takes gloo's part out of that teardown; it does not make finalisation abort-proof: a
    2-process test that destroyed its group still saw one rank abort ('terminate called without an active
    exception') once in CI, and its workers now leave by :func:`exit_finished_run` after writing their results
    (``tests/test_metric_dist.py``). MMEngine's Runner never destroys the group it initialises, so the tools
    wrap their whole run in this, and a multi-process CPU run that finished leaves by :func:`exit_finished_run`.
    """
    try:
        yield
    finally:
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def exit_finished_run(status: int = 0) -> NoReturn:
    """End a process whose work is done and written, skipping the interpreter's finalisation.

    For the rank of a multi-process CPU (gloo) run after its process group is destroyed: even then a rank can
    abort during finalisation ('terminate called without an active exception', ``exitcode -6``; seen once in a
    few dozen 2-process runs of ``tools/test.py`` after the metrics were printed), and torchrun reports the whole
    job as failed. Everything the run produced is out of the process by then (checkpoints and logs are written
    file by file; MMEngine's LoggerHook closes the visualizer's backends in ``after_run``), so the logging
    handlers and the standard streams are flushed and the process ends with ``status`` through ``os._exit``.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to save
            pass
    os._exit(status)
