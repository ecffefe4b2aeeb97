"""Train a LoopTrans (or any registered mmseg) model from a config.

Examples::

    python tools/train.py configs/looptrans_agd20k.py
    python tools/train.py configs/looptrans_agd20k.py --amp --work-dir work_dirs/run1
    python tools/train.py configs/looptrans_agd20k.py --resume          # latest checkpoint in work_dir
    torchrun --nproc_per_node=8 tools/train.py CONFIG --launcher pytorch  # or tools/dist_train.sh

Before the first iteration it checks what would otherwise fail late or silently: typos in top-level config
keys (a warning naming the closest known key), a work dir that cannot be written, a ``--resume`` target that
is gone (falls back to the newest checkpoint) or a run that is already finished (says so and exits 0),
temporary files of interrupted checkpoint saves (removed), another live run in the same work dir (refused:
the work dir is locked while training), heads whose ``num_classes`` differs from the training dataset's
(``ClassListCheckHook``), and a resume with another number of processes than the checkpoint's
(``WorldSizeCheckHook``: a warning with both effective batch sizes).
"""

import argparse
import logging
import os
import os.path as osp
import pickle
import sys
from typing import IO, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import looptrans  # noqa: F401  (registers modules, enables safe checkpoint loading)
from looptrans.utils import (
    ClassListMismatchError,
    WorkDirBusyError,
    ensure_writable_dir,
    find_resume_checkpoint,
    finished_message,
    lock_work_dir,
    remove_stale_temp_files,
    safe_torch_load,
)
from looptrans.utils.config_check import ConfigOptionError, add_custom_hook, load_tool_config
from looptrans.utils.dist import prepare_cpu_distributed


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
        cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
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
    add_custom_hook(cfg, 'ClassListCheckHook')
    add_custom_hook(cfg, 'QuietLogHook')
    add_custom_hook(cfg, 'WorldSizeCheckHook')
    return cfg


def _is_main_process() -> bool:
    return int(os.environ.get('RANK', '0')) == 0


def prepare_work_dir(cfg: Config, args: argparse.Namespace) -> Optional[IO[str]]:
    """Start-up checks of the work dir: writable, not in use by another live run (locked for this one: keep
    the returned file open while training), stale temp files removed, the resume target resolved.

    Raises SystemExit with the reason for an unwritable or busy work dir, and with status 0 when the
    checkpoint to resume from has already reached the end of the schedule.
    """
    lock = None
    try:
        ensure_writable_dir(cfg.work_dir, '--work-dir' if args.work_dir else 'work_dir')
        if _is_main_process():
            lock = lock_work_dir(cfg.work_dir)
    except (OSError, WorkDirBusyError) as err:
        raise SystemExit(f'error: {err}')
    if _is_main_process():
        for path in remove_stale_temp_files(cfg.work_dir):
            print_log(
                f'Removed {path!r}: the temporary file of a checkpoint save that was interrupted '
                '(killed mid-save); the checkpoint it was for was never written.',
                logger='current',
                level=logging.WARNING,
            )
    if not cfg.get('resume'):
        return lock
    if cfg.get('load_from') is None:  # --resume without a path: the work dir's latest checkpoint
        path, warnings = find_resume_checkpoint(cfg.work_dir)
        for message in warnings:
            print_log(message, logger='current', level=logging.WARNING)
        if path is None:
            cfg.resume = False
            return lock
        cfg.load_from = path
    try:
        meta = (safe_torch_load(cfg.load_from, map_location='cpu') or {}).get('meta') or {}
    except (RuntimeError, pickle.UnpicklingError) as err:  # broken or unsafe checkpoint, named in err
        raise SystemExit(f'error: --resume: {err}')
    message = finished_message(meta, cfg.get('train_cfg'), cfg.load_from)
    if message is not None:
        print_log(message, logger='current', level=logging.WARNING)
        sys.exit(0)
    return lock


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    lock = prepare_work_dir(cfg, args)  # noqa: F841  (held until the process ends)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except ClassListMismatchError as err:  # raised by ClassListCheckHook before the first iteration
        raise SystemExit(f'error: {err}')


if __name__ == '__main__':
    main()
