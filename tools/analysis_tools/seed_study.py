"""The paper's claims on the generated data, across seeds: LOCATE and the six LoopTrans ablation rows.

Trains and tests every (row, seed) through ``tools/train.py`` / ``tools/test.py`` (a run that finished before is
reused), scores each model's pointing game (``eval_cam_pointing.py``: is the heatmap's maximum on the object?) and
prints one table of mean ± sample standard deviation over the seeds, with each row's difference to the full model
and whether it is beyond the noise (|Δ| greater than twice the standard error of the difference):

    python tools/analysis_tools/seed_study.py [--root work_dirs/seed_study] [--seeds 0 1 2] [--rows locate none all]

Rows: ``locate`` (``configs/baselines/locate_synthetic.py``) and the ablation rows
``configs/ablations/looptrans_synthetic_<row>.py`` (``all`` is the full model). ``--cfg-options`` go to every run
(the tests shrink the model with them). Each run takes about 3-4 minutes on an idle 2-core CPU.
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


def run_one(row: str, seed: int, root: str, cfg_options: Sequence[str]) -> Dict[str, float]:
    """Train (unless done), test and score one (row, seed); returns its figures."""
    config = config_of(row)
    work = osp.join(root, row, f'seed{seed}')
    os.makedirs(work, exist_ok=True)
    options = ['--cfg-options', f'randomness.seed={seed}', *cfg_options]
    if not osp.isfile(osp.join(work, 'last_checkpoint')):
        _run(['tools/train.py', config, '--work-dir', work, *options], osp.join(work, 'train.log'))
    with open(osp.join(work, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    _run(['tools/test.py', config, ckpt, '--work-dir', osp.join(work, 'test'), *options], osp.join(work, 'test.log'))
    figures = test_metrics(osp.join(work, 'test.log'))
    figures.update(pointing(config, ckpt, cfg_options))
    # the pseudo-masks' IoU with the true part, last logged training lines; NaN for rows without part discovery
    pm_iou = train_pm_true_iou(osp.join(work, 'train.log'))
    figures['pm_true_iou'] = float('nan') if pm_iou is None else pm_iou
    return figures


def pointing(config: str, ckpt: str, cfg_options: Sequence[str]) -> Dict[str, float]:
    """The test heatmap's pointing game (``eval_cam_pointing.py``, the config's own ``test_cfg.heatmap``):
    ``on_object`` / ``on_part``, the share of test images whose heatmap maximum is on the object / the part."""
    import contextlib
    import io

    from mmengine.config import Config

    tool = _sibling('eval_cam_pointing')
    source = Config.fromfile(config).model.get('test_cfg', {}).get('heatmap', 'pixel')
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    with contextlib.redirect_stdout(io.StringIO()):
        tables = tool.main([config, ckpt, '--heatmaps', source, *options])
    overall = tables[source]['overall']
    return dict(on_object=overall['object'], on_part=overall['part'])


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


COLUMNS = (*METRICS, 'on_object', 'on_part', 'pm_true_iou')


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
            mean, std, n = summarise([r[col] for r in runs])
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
    parser.add_argument('--cfg-options', nargs='+', default=[], help='key=value settings given to every run')
    return parser.parse_args(argv)


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
        results[row] = [run_one(row, seed, args.root, args.cfg_options) for seed in args.seeds]
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
