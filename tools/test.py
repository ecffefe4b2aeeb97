"""Evaluate a checkpoint on a config's test set (KLD / SIM / NSS, or AUC-J for the video benchmarks).

Examples::

    python tools/test.py configs/looptrans_agd20k.py work_dirs/looptrans_agd20k/iter_8000.pth
    python tools/test.py CONFIG CKPT --show-dir vis      # heatmap pictures, one per test image
    python tools/test.py CONFIG CKPT --out results.pkl   # dump per-image predictions

The checkpoint is loaded strictly (every weight, every shape: a checkpoint of another number of classes is
an error, not random class layers) and its class list (``meta.dataset_meta.classes``) must equal the test
dataset's, names and order; otherwise the run stops before any image is scored, naming both lists. Output
folders (``--work-dir``, ``--show-dir``, the folder of ``--out``) are checked for writing at start-up.
"""

import argparse
import logging
import os
import os.path as osp
import time

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import looptrans  # noqa: F401  (registers modules, enables safe checkpoint loading)
from looptrans.utils import (
    BrokenCheckpointError,
    CheckpointMismatchError,
    ClassListMismatchError,
    UnsafeCheckpointError,
    check_class_lists,
    checkpoint_classes,
    ensure_writable_dir,
    load_checkpoint_strictly,
)
from looptrans.utils.config_check import ConfigOptionError, add_custom_hook, load_tool_config
from looptrans.utils.dist import prepare_cpu_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) an affordance grounding model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation logs')
    parser.add_argument(
        '--out', help='file to dump the predictions to (pickle, via AtomicDumpResults: written when the run ends)'
    )
    parser.add_argument('--show', action='store_true', help='show prediction pictures in a window')
    parser.add_argument(
        '--show-dir',
        help='write one prediction picture per test image to this directory (relative: under the work dir)',
    )
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between shown pictures')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=32',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> Config:
    """Switch the config's visualization hook on for ``--show`` / ``--show-dir``."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            '--show/--show-dir need a "visualization" entry in default_hooks '
            '(e.g. dict(type="AffordanceVisualizationHook")); the config has none.'
        )
    hook = default_hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['show_dir'] = args.show_dir
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides (one clean ``error:`` line for a config that
    does not exist or an override of the wrong type); ``~`` in the path options is the home folder."""
    for option in ('checkpoint', 'out', 'show_dir'):
        if getattr(args, option):
            setattr(args, option, osp.expanduser(getattr(args, option)))
    try:
        cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    except (FileNotFoundError, ConfigOptionError) as err:
        raise SystemExit(f'error: {err}')
    # loaded strictly by load_and_check() (MMEngine's load_from would load non-strictly)
    cfg.load_from = None
    add_custom_hook(cfg, 'ClassListCheckHook')
    add_custom_hook(cfg, 'QuietLogHook')
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.out is not None:
        dump = dict(type='AtomicDumpResults', out_file_path=args.out)
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, (list, tuple)):
            cfg.test_evaluator = [*evaluator, dump]
        else:
            cfg.test_evaluator = [evaluator, dump]
    return cfg


def check_outputs(cfg: Config, args: argparse.Namespace) -> None:
    """Fail now, naming every output folder that cannot be written (not after the whole test set, and all of
    them at once, so that one fix-and-rerun is enough)."""
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint!r} does not exist.')
    folders = [('--work-dir' if args.work_dir else 'work_dir', cfg.work_dir)]
    if args.show_dir:
        show_dir = args.show_dir if osp.isabs(args.show_dir) else osp.join(cfg.work_dir, args.show_dir)
        folders.append(('--show-dir', show_dir))
    problems = []
    if args.out:
        folders.append(('--out', osp.dirname(osp.abspath(args.out))))
        if not args.out.endswith(('.pkl', '.pickle')):
            problems.append(f'error: --out {args.out!r}: the predictions are a pickle; name the file *.pkl')
    for what, folder in folders:
        try:
            ensure_writable_dir(folder, what)
        except OSError as err:
            problems.append(f'error: {err}')
    if problems:
        raise SystemExit('\n'.join(problems))
    if args.out and osp.exists(args.out):
        written = time.strftime('%Y-%m-%d %H:%M', time.localtime(osp.getmtime(args.out)))
        print_log(
            f'--out {args.out!r} exists (written {written} by an earlier run); it is replaced only when this run '
            'finishes: if this run stops early, that file is still the earlier run\'s.',
            logger='current',
            level=logging.WARNING,
        )


def load_and_check(runner: Runner, checkpoint: str) -> None:
    """Load ``checkpoint`` strictly and compare its class list with the test dataset's (names and order)."""
    ckpt = load_checkpoint_strictly(runner.model, checkpoint, map_location='cpu', runner=runner)
    dataset = runner.test_loop.dataloader.dataset  # built here, once; runner.test() reuses the loop
    dataset_classes = tuple((getattr(dataset, 'metainfo', None) or {}).get('classes') or ())
    classes = checkpoint_classes(ckpt)
    if classes is None:
        print_log(
            f'{checkpoint!r} records no class list (meta.dataset_meta.classes); the class order of the '
            f'test dataset ({list(dataset_classes)}) cannot be checked against it.',
            logger='current',
            level=logging.WARNING,
        )
    elif dataset_classes:
        check_class_lists(
            classes, dataset_classes, checkpoint, f'the test dataset ({type(dataset).__name__} of this config)'
        )


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    check_outputs(cfg, args)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        load_and_check(runner, args.checkpoint)
    except (BrokenCheckpointError, CheckpointMismatchError, ClassListMismatchError, UnsafeCheckpointError) as err:
        raise SystemExit(f'error: {err}')
    runner.test()


if __name__ == '__main__':
    main()
