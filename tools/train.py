"""Train a LoopTrans (or any registered mmseg) model from a config.

Examples::

    python tools/train.py configs/looptrans_agd20k.py
    python tools/train.py configs/looptrans_agd20k.py --amp --work-dir work_dirs/run1
    python tools/train.py configs/looptrans_agd20k.py --resume          # latest checkpoint in work_dir
    torchrun --nproc_per_node=8 tools/train.py CONFIG --launcher pytorch  # or tools/dist_train.sh

As mmseg's tools/train.py: the arguments become config settings, then ``Runner.from_cfg(cfg).train()``.
The checks of a run are the Runner's, so ``Runner.from_cfg(cfg)`` in a notebook gets the same ones: the
``default_hooks`` of every LoopTrans config (:mod:`looptrans.engine.hooks.run_checks`) warn on top-level
config keys that have no effect, fall back to the newest checkpoint when ``last_checkpoint`` names a
deleted one (and say at once when the run is already finished: status 0), stop heads whose ``num_classes``
differs from the training dataset's, and warn on a resume with another number of processes. This tool adds
what belongs to a process: a clean ``error:`` line for a config that does not exist or an option value of
the wrong type, the work dir (writable; locked against a second live run; temporary files of interrupted
checkpoint saves removed), ``--amp``, ``--resume``, the launcher, and the process group destroyed at the end.
"""

import argparse
import logging
import os
import os.path as osp
import sys
from typing import IO, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import looptrans  # noqa: F401  (registers modules, installs safe checkpoint loading)
from looptrans.engine.hooks import add_run_check_hooks
from looptrans.utils import (
    BrokenCheckpointError,
    ClassListMismatchError,
    TrainingFinishedError,
    UnsafeCheckpointError,
    WorkDirBusyError,
    ensure_writable_dir,
    lock_work_dir,
    remove_stale_temp_files,
)
from looptrans.utils.config_check import ConfigOptionError, load_tool_config
from looptrans.utils.dist import exit_finished_run, prepare_cpu_distributed, process_group_closed_on_exit


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an affordance grounding model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume training: with no value, from the latest checkpoint in the work dir; '
        'with a path, from that checkpoint',
    )
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=100 model.backbone.frozen=True',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides (one clean ``error:`` line for a config that
    does not exist or an override of the wrong type)."""
    try:
        # top-level keys are checked by the Runner (ConfigKeyCheckHook), once
        cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir, check_keys=False)
    except (FileNotFoundError, ConfigOptionError) as err:
        raise SystemExit(f'error: {err}')
    if args.amp and not torch.cuda.is_available():
        raise SystemExit(
            '--amp needs a GPU: MMEngine\'s AmpOptimWrapper only runs on CUDA (or NPU/MLU/MUSA) '
            'devices. On this machine train in fp32 (drop --amp).'
        )
    if args.amp:
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.', logger='current', level=logging.WARNING)
        else:
            assert optim_type == 'OptimWrapper', f'--amp only works with OptimWrapper, got {optim_type}'
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
            if cfg.optim_wrapper.get('dtype') is None:
                # bf16 where the GPU has it (Ampere and newer: fp32's range, no overflow); fp16 before.
                cfg.optim_wrapper.dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
            print_log(f'AMP training in {cfg.optim_wrapper.dtype}', logger='current')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        args.resume = osp.expanduser(args.resume)
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: --resume {args.resume!r}: no such checkpoint file.')
        cfg.resume = True
        cfg.load_from = args.resume
    add_run_check_hooks(cfg)  # a config of one's own that does not inherit them from the LoopTrans bases
    return cfg


def _is_main_process() -> bool:
    return int(os.environ.get('RANK', '0')) == 0


def prepare_work_dir(cfg: Config, args: argparse.Namespace) -> Optional[IO[str]]:
    """Start-up checks of the work dir: writable, not in use by another live run (locked for this one: keep
    the returned file open while training), temporary files of interrupted checkpoint saves removed.

    Raises SystemExit with the reason for an unwritable or busy work dir.
    """
    lock = None
    try:
        ensure_writable_dir(cfg.work_dir, '--work-dir' if args.work_dir else 'work_dir')
        if _is_main_process():
            lock = lock_work_dir(cfg.work_dir)
    except (OSError, WorkDirBusyError) as err:
        raise SystemExit(f'error: {err}')
    if _is_main_process():  # only under the lock: a live run's temporary file is not stale
        for path in remove_stale_temp_files(cfg.work_dir):
            print_log(
                f'Removed {path!r}: the temporary file of a checkpoint save that was interrupted '
                '(killed mid-save); the checkpoint it was for was never written.',
                logger='current',
                level=logging.WARNING,
            )
    return lock


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    lock = prepare_work_dir(cfg, args)  # noqa: F841  (held until the process ends)
    with process_group_closed_on_exit():  # a live gloo group at interpreter exit can abort a rank
        cpu_ranks = prepare_cpu_distributed(cfg)
        runner = Runner.from_cfg(cfg)
        try:
            runner.train()
        except TrainingFinishedError as done:  # ResumeCheckHook: the checkpoint is at the end of the schedule
            print_log(str(done), logger='current', level=logging.WARNING)
            sys.exit(0)
        except (BrokenCheckpointError, ClassListMismatchError, UnsafeCheckpointError) as err:  # before iteration 1
            raise SystemExit(f'error: {err}')
    if cpu_ranks:  # a gloo rank can still abort in the interpreter's finalisation, after the checkpoints are out
        exit_finished_run(0)


if __name__ == '__main__':
    main()
