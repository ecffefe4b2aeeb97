"""Train a LoopTrans (or any registered mmseg) model from a config.

Examples::

    python tools/train.py configs/looptrans_agd20k.py
    python tools/train.py configs/looptrans_agd20k.py --amp --work-dir work_dirs/run1
    python tools/train.py configs/looptrans_agd20k.py --resume          # latest checkpoint in work_dir
    torchrun --nproc_per_node=8 tools/train.py CONFIG --launcher pytorch  # or tools/dist_train.sh
"""
import argparse
import logging
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import looptrans  # noqa: F401  (registers modules, enables safe checkpoint loading)
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
        'with a path, from that checkpoint')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=100 model.backbone.frozen=True')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp and not torch.cuda.is_available():
        raise SystemExit('--amp needs a GPU: MMEngine\'s AmpOptimWrapper only runs on CUDA (or NPU/MLU/MUSA) '
                         'devices. On this machine train in fp32 (drop --amp).')
    if args.amp:
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.', logger='current',
                      level=logging.WARNING)
        else:
            assert optim_type == 'OptimWrapper', (
                f'--amp only works with OptimWrapper, got {optim_type}')
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
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
