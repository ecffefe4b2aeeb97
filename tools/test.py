"""Evaluate a checkpoint on a config's test set (KLD / SIM / NSS, or AUC-J for the video benchmarks).

Examples::

    python tools/test.py configs/looptrans_agd20k.py work_dirs/looptrans_agd20k/iter_8000.pth
    python tools/test.py CONFIG CKPT --show-dir vis      # heatmap pictures, one per test image
    python tools/test.py CONFIG CKPT --out results.pkl   # dump per-image predictions

As mmseg's tools/test.py: the arguments become config settings (the checkpoint is ``load_from``), then
``Runner.from_cfg(cfg).test()``. The checks are the Runner's, so ``Runner.from_cfg(cfg)`` with
``cfg.load_from = CKPT`` in a notebook gets the same ones (``ClassListCheckHook``, a default hook of every
LoopTrans config): the checkpoint must hold every weight of the model with its shape (a checkpoint of
another number of classes is an error, not random class layers) and its class list
(``meta.dataset_meta.classes``) must equal the test dataset's, names and order; otherwise the run stops
before any image is scored, naming both lists. This tool adds a clean ``error:`` line for those and for a
config or checkpoint that does not exist, and checks the output folders (``--work-dir``, ``--show-dir``,
the folder of ``--out``) for writing at start-up.
"""

import argparse
import logging
import os
import os.path as osp
import time

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import looptrans  # noqa: F401  (registers modules, installs safe checkpoint loading)
from looptrans.engine.hooks import add_run_check_hooks
from looptrans.utils import (
    BrokenCheckpointError,
    CheckpointMismatchError,
    ClassListMismatchError,
    UnsafeCheckpointError,
    ensure_writable_dir,
)
from looptrans.utils.config_check import ConfigOptionError, load_tool_config
from looptrans.utils.dist import exit_finished_run, prepare_cpu_distributed, process_group_closed_on_exit


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
        # top-level keys are checked by the Runner (ConfigKeyCheckHook), once
        cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir, check_keys=False)
    except (FileNotFoundError, ConfigOptionError) as err:
        raise SystemExit(f'error: {err}')
    cfg.load_from = args.checkpoint  # checked against the model and the test set by ClassListCheckHook
    cfg.resume = False
    add_run_check_hooks(cfg)  # a config of one's own that does not inherit them from the LoopTrans bases
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


def main() -> None:
    args = parse_args()
    cfg = build_config(args)
    check_outputs(cfg, args)
    with process_group_closed_on_exit():  # a live gloo group at interpreter exit can abort a rank
        cpu_ranks = prepare_cpu_distributed(cfg)
        runner = Runner.from_cfg(cfg)
        try:
            runner.test()
        except (BrokenCheckpointError, CheckpointMismatchError, ClassListMismatchError, UnsafeCheckpointError) as err:
            raise SystemExit(f'error: {err}')  # raised while loading the checkpoint, before any image is scored
    if cpu_ranks:  # a gloo rank can still abort in the interpreter's finalisation, after the metrics are out
        exit_finished_run(0)


if __name__ == '__main__':
    main()
