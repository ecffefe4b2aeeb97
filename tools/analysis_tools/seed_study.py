"""The paper's claims on the generated data, across seeds: LOCATE and the six LoopTrans ablation rows.

Trains and tests every (row, seed) through ``tools/train.py`` / ``tools/test.py`` (a run that finished before is
reused), scores each model's pointing game (``eval_cam_pointing.py``: is the heatmap's maximum on the object?) and
pseudo-masks (``eval_pseudo_masks.py``: IoU with the true part), loading each checkpoint once, and prints one
table of mean ± sample standard deviation over the seeds, with each row's difference to the full model and whether
it is beyond the noise (|Δ| greater than twice the standard error of the difference):

    python tools/analysis_tools/seed_study.py [--root work_dirs/seed_study] [--seeds 0 1 2] [--rows locate none all]

Rows: ``locate`` (``configs/baselines/locate_synthetic.py``) and the ablation rows
``configs/ablations/looptrans_synthetic_<row>.py`` (``all`` is the full model). ``--cfg-options`` go to every run
(the tests shrink the model with them). Each run takes about 3-4 minutes on an idle 2-core CPU.

``--max-iters N`` stretches every row's iteration schedule to ``N`` iterations (see
:func:`stretched_schedule_options`): the quick configs' 200 iterations end before the CAM has learnt to classify
(``docs/generated_benchmark.md``, section 9), so the study of a localising CAM runs, for example,

    python tools/analysis_tools/seed_study.py --root work_dirs/seed_study_1k --max-iters 1000

Each root holds one schedule: a run found there that ended at another iteration is refused, not reused.

``--ego-norm-stats`` tests and scores each checkpoint's copy with the CAM projection's BatchNorm statistics
re-estimated on the egocentric training images (``tools/misc/reestimate_norm_stats.py``): the rows scored with the
CAM, and the pointing and pseudo-mask columns, without the blend of both views' statistics a shared projection
keeps (``docs/generated_benchmark.md``, section 11); the exocentric columns then use egocentric statistics too,
so read them from the study without it. Run it on a finished study's root: training is reused.
"""

from __future__ import annotations

import argparse
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ABLATION_ROWS = ('none', 'shared_cam', 'denoising', 'shared_cam_pixel', 'shared_cam_denoising', 'all')
ROWS = ('locate',) + ABLATION_ROWS
METRICS = ('KLD', 'SIM', 'NSS')
#: The full model, the reference of the differences.
FULL = 'all'
#: What ``--ego-norm-stats`` appends to a checkpoint's name for its copy with egocentric statistics.
EGO_STATS_SUFFIX = '_ego_stats.pth'


def config_of(row: str) -> str:
    """The config file of a row."""
    if row == 'locate':
        return osp.join(REPO, 'configs', 'baselines', 'locate_synthetic.py')
    if row not in ABLATION_ROWS:
        raise ValueError(f'unknown row {row!r}; choose from {ROWS}')
    return osp.join(REPO, 'configs', 'ablations', f'looptrans_synthetic_{row}.py')


def _sibling(name: str):
    """The script ``tools/analysis_tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# running a tool into a log and reading a tools/test.py log: part_count_study.py's
_part_count_study = _sibling('part_count_study')
_run = _part_count_study._run
test_metrics = _part_count_study.test_metrics
train_pm_true_iou = _part_count_study.train_pm_true_iou


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def stretched_schedule_options(config: str, max_iters: int) -> List[str]:
    """``--cfg-options`` that stretch the iteration schedule of ``config`` to ``max_iters`` iterations.

    The synthetic configs derive several iteration counts from their ``max_iters`` when the file is read
    (``configs/_base_/schedules/schedule_synthetic.py``), so ``train_cfg.max_iters=N`` alone would leave the
    cosine decay, the pseudo-mask start and LOCATE's warm-up at the 200-iteration values. Stretched:

    * ``train_cfg.max_iters``, and ``train_cfg.val_interval`` where it equals the old length;
    * every ``param_scheduler`` ``end`` / ``T_max`` equal to the old length (the decay ends with training; the
      linear warm-up keeps its fixed length, as warm-ups are counted in iterations in the published configs);
    * ``default_hooks.checkpoint.interval``, and ``PseudoMaskHook``'s ``start_iter`` and ``dump_interval``, in
      proportion (rounded half up, at least 1 for the intervals);
    * LOCATE's ``model.train_cfg.warm_iter`` (the prototype loss is on in 0-based iterations ``> warm_iter``) so
      that the loss starts at the stretched iteration: ``round((warm_iter + 1) * N / old) - 1``.

    Raises:
        ValueError: ``max_iters`` < 1, or ``config`` has no iteration-based ``train_cfg.max_iters`` (the message
            names the file).
    """
    from mmengine.config import Config

    if max_iters < 1:
        raise ValueError(f'--max-iters must be >= 1, got {max_iters}')
    cfg = Config.fromfile(config)
    old = cfg.get('train_cfg', {}).get('max_iters')
    if cfg.get('train_cfg', {}).get('type') != 'IterBasedTrainLoop' or not old:
        raise ValueError(
            f'{config}: no iteration-based schedule to stretch (train_cfg is {cfg.get("train_cfg")!r}); '
            '--max-iters applies to the synthetic configs\' IterBasedTrainLoop'
        )
    scale = max_iters / old
    options = [f'train_cfg.max_iters={max_iters}']
    if cfg.train_cfg.get('val_interval') == old:
        options.append(f'train_cfg.val_interval={max_iters}')
    for i, scheduler in enumerate(cfg.get('param_scheduler') or []):
        options += [f'param_scheduler.{i}.{key}={max_iters}' for key in ('end', 'T_max') if scheduler.get(key) == old]
    interval = cfg.get('default_hooks', {}).get('checkpoint', {}).get('interval')
    if interval:
        options.append(f'default_hooks.checkpoint.interval={max(1, _round_half_up(interval * scale))}')
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if hook.get('type') != 'PseudoMaskHook':
            continue
        if hook.get('start_iter') is not None:
            options.append(f'custom_hooks.{i}.start_iter={_round_half_up(hook["start_iter"] * scale)}')
        if hook.get('dump_interval'):
            options.append(f'custom_hooks.{i}.dump_interval={max(1, _round_half_up(hook["dump_interval"] * scale))}')
    warm_iter = (cfg.model.get('train_cfg') or {}).get('warm_iter')
    if warm_iter is not None:
        options.append(f'model.train_cfg.warm_iter={_round_half_up((warm_iter + 1) * scale) - 1}')
    return options


def run_one(
    row: str,
    seed: int,
    root: str,
    cfg_options: Sequence[str],
    max_iters: Optional[int] = None,
    ego_norm_stats: bool = False,
) -> Dict[str, float]:
    """Train (unless done), test and score one (row, seed); returns its figures. ``max_iters``: stretch the
    row's schedule to that many iterations (:func:`stretched_schedule_options`); ``cfg_options`` come after and
    win. ``ego_norm_stats``: test and score, instead of the checkpoint, its copy with the CAM projection's
    BatchNorm statistics re-estimated on the egocentric training images (``tools/misc/reestimate_norm_stats.py``,
    written next to it as ``<name>_ego_stats.pth``; tested into ``test_ego_stats/``).

    Raises:
        ValueError: with ``max_iters``, the work dir holds a finished run that ended at another iteration.
    """
    config = config_of(row)
    work = osp.join(root, row, f'seed{seed}')
    os.makedirs(work, exist_ok=True)
    stretch = stretched_schedule_options(config, max_iters) if max_iters else []
    options = ['--cfg-options', f'randomness.seed={seed}', *stretch, *cfg_options]
    if not osp.isfile(osp.join(work, 'last_checkpoint')):
        _run(['tools/train.py', config, '--work-dir', work, *options], osp.join(work, 'train.log'))
    with open(osp.join(work, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    if max_iters and osp.basename(ckpt) != f'iter_{max_iters}.pth':
        raise ValueError(
            f'{work} holds a run that ended at {osp.basename(ckpt)}, not iter_{max_iters}.pth: it was trained with '
            'another schedule. Give this study another --root, or delete that folder to retrain it.'
        )
    test = 'test'
    if ego_norm_stats:
        trained, ckpt = ckpt, osp.splitext(ckpt)[0] + EGO_STATS_SUFFIX
        _run(['tools/misc/reestimate_norm_stats.py', config, trained, ckpt, *options], osp.join(work, 'norm_stats.log'))
        test += EGO_STATS_SUFFIX[:-4]
    log = osp.join(work, f'{test}.log')
    _run(['tools/test.py', config, ckpt, '--work-dir', osp.join(work, test), *options], log)
    figures = test_metrics(log)
    figures.update(checkpoint_figures(config, ckpt, [*stretch, *cfg_options]))
    # the pseudo-masks' IoU with the true part, last logged training lines; NaN for rows without part discovery
    logged = train_pm_true_iou(osp.join(work, 'train.log'))
    figures['pm_true_iou'] = float('nan') if logged is None else logged
    return figures


def checkpoint_figures(config: str, ckpt: str, cfg_options: Sequence[str]) -> Dict[str, float]:
    """What the trained model does, from one load of the checkpoint:

    * the test heatmap's pointing game (``eval_cam_pointing.py``, the config's own ``test_cfg.heatmap``):
      ``on_object`` / ``on_part``, the share of test images whose heatmap maximum is on the object / the part;
      ``rival_own`` / ``rival_other``, on the images whose object has another affordance on another part, the share
      where the labelled affordance's / that other affordance's heatmap maximum is on the labelled part (equal for
      a heatmap that does not tell an object's affordances apart);
    * ``exo_on_object`` / ``exo_on_part`` / ``exo_top1``: the same game for the exocentric CAM on the exocentric
      training images, and its classification accuracy on them (``--exo``: does the view the method transfers
      from localise, or has it memorised its images?), NaN with a printed note for a tree generated before it had
      their masks;
    * ``pm_eval_iou`` / ``pm_eval_valid``: the pseudo-masks the trained egocentric CAM chooses on the egocentric
      training images (``eval_pseudo_masks.py``): mean IoU with the true part over the valid ones, and the share
      valid; NaN for a model without part discovery (LOCATE). ``pm_true_iou`` (the training log's) averages the
      last logged batches; these are every image, once, with the final weights (named apart from the log's
      ``pm_iou``, the chosen part's IoU with the binarised CAM, and its per-batch ``pm_valid``).
    """
    import contextlib
    import io

    from looptrans.apis.inference import test_input_size

    tool = _sibling('eval_cam_pointing')
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    args = tool.parse_args([config, ckpt, *options])
    model, root = tool.load(args)
    source = model.test_cfg.get('heatmap', 'pixel')
    with contextlib.redirect_stdout(io.StringIO()):
        overall = tool.play(model, root, [source])[0][source]['overall']
    figures = dict(
        on_object=overall['object'],
        on_part=overall['part'],
        rival_own=overall['rival_own_part'],
        rival_other=overall[tool.RIVAL_KEY],
        exo_on_object=float('nan'),
        exo_on_part=float('nan'),
        exo_top1=float('nan'),
        pm_eval_iou=float('nan'),
        pm_eval_valid=float('nan'),
    )
    try:
        exo = tool.play(model, root, exo=True)[0]['exo_cam']['overall']
    except FileNotFoundError as err:
        print(f'{ckpt}: no exocentric pointing game ({err})')
    else:
        figures.update(exo_on_object=exo['object'], exo_on_part=exo['part'], exo_top1=exo[tool.TOP1_KEY])
    if hasattr(model, 'part_discovery'):
        masks = _sibling('eval_pseudo_masks')
        train_root, classes = masks.training_split(model.cfg, model)
        samples = masks.find_samples(train_root, classes)
        overall = masks.summarise(masks.evaluate(model, samples, test_input_size(model.cfg), None), classes)['overall']
        figures.update(pm_eval_iou=overall['miou'], pm_eval_valid=overall['valid'])
    return figures


def summarise(values: Sequence[float]) -> tuple:
    """(mean, sample std, n) of the finite values (a row without part discovery has NaN IoUs); std is NaN for
    one value, mean too for none."""
    arr = np.asarray(values, np.float64)
    arr = arr[np.isfinite(arr)]
    if not len(arr):
        return float('nan'), float('nan'), 0
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float('nan'), len(arr)


def beyond_noise(a: Sequence[float], b: Sequence[float]) -> Optional[bool]:
    """Whether mean(a) - mean(b) exceeds twice its standard error (Welch); None with fewer than 2 values each."""
    if len(a) < 2 or len(b) < 2:
        return None
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    diff = float(np.mean(a) - np.mean(b))
    return abs(diff) > 2 * se if se > 0 else diff != 0


COLUMNS = (
    *METRICS,
    'on_object',
    'on_part',
    'rival_own',
    'rival_other',
    'exo_on_object',
    'exo_on_part',
    'exo_top1',
    'pm_eval_iou',
    'pm_eval_valid',
    'pm_true_iou',
)


def table(results: Dict[str, List[Dict[str, float]]]) -> List[str]:
    """Markdown lines: per row, mean ± std of every column, and the difference to the full model with '*' when it
    is beyond the noise (see :func:`beyond_noise`)."""
    lines = [
        '| row | seeds | ' + ' | '.join(COLUMNS) + ' | Δ KLD vs full | Δ SIM vs full |',
        '| --- | --- | ' + ' | '.join('---' for _ in COLUMNS) + ' | --- | --- |',
    ]
    full = results.get(FULL)
    for row, runs in results.items():
        cells = []
        for col in COLUMNS:
            mean, std, n = summarise([r.get(col, float('nan')) for r in runs])
            if not n:
                cells.append('—')
                continue
            cells.append(f'{mean:.3f}' + ('' if math.isnan(std) else f' ± {std:.3f}'))
        deltas = []
        for col in ('KLD', 'SIM'):
            if full is None or row == FULL:
                deltas.append('—')
                continue
            a, b = [r[col] for r in runs], [r[col] for r in full]
            flag = beyond_noise(a, b)
            deltas.append(f'{np.mean(a) - np.mean(b):+.3f}' + ('*' if flag else ''))
        lines.append(f'| {row} | {len(runs)} | ' + ' | '.join(cells) + ' | ' + ' | '.join(deltas) + ' |')
    lines.append('(* = beyond twice the standard error of the difference; KLD lower is better)')
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='work_dirs/seed_study')
    parser.add_argument('--rows', nargs='+', default=list(ROWS), choices=ROWS)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument(
        '--max-iters',
        type=int,
        default=None,
        help="stretch every row's iteration schedule to this many iterations (default: the configs' own)",
    )
    parser.add_argument(
        '--ego-norm-stats',
        action='store_true',
        help="test and score each checkpoint's copy with the CAM projection's BatchNorm statistics re-estimated on "
        'the egocentric training images (tools/misc/reestimate_norm_stats.py); training is reused',
    )
    parser.add_argument('--cfg-options', nargs='+', default=[], help='key=value settings given to every run')
    args = parser.parse_args(argv)
    if args.max_iters is not None:
        if args.max_iters < 1:
            parser.error(f'--max-iters must be >= 1, got {args.max_iters}')
        if any(o.startswith('train_cfg.max_iters') for o in args.cfg_options):
            parser.error('give the schedule length once: --max-iters or --cfg-options train_cfg.max_iters, not both')
    return args


def main(argv=None) -> Dict[str, List[Dict[str, float]]]:
    args = parse_args(argv)
    os.makedirs(args.root, exist_ok=True)
    if not osp.isdir(osp.join(REPO, 'data', 'synthetic_agd20k', 'Seen', 'test_masks')) and not any(
        o.startswith('test_dataloader.dataset.data_root') for o in args.cfg_options
    ):
        _run(
            ['tools/misc/generate_synthetic_agd20k.py', '--out', 'data/synthetic_agd20k', '--overwrite'],
            osp.join(args.root, 'generate.log'),
        )
    results: Dict[str, List[Dict[str, float]]] = {}
    for row in args.rows:
        results[row] = [
            run_one(row, seed, args.root, args.cfg_options, args.max_iters, args.ego_norm_stats) for seed in args.seeds
        ]
        print(
            f'{row}: '
            + '; '.join(
                f'seed {s}: ' + ', '.join(f'{k} {v:.3f}' for k, v in r.items())
                for s, r in zip(args.seeds, results[row])
            ),
            flush=True,
        )
    print('\n'.join(table(results)))
    return results


if __name__ == '__main__':
    main()
