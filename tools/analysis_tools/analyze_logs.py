"""Plot training curves from MMEngine's JSON scalar logs (``<work_dir>/<timestamp>/vis_data/<timestamp>.json``).

Each line of such a log is one JSON object. Training lines carry ``iter`` (the global iteration), ``step`` and,
for epoch-based runs, ``epoch``, plus the logged losses and statistics (``loss``, ``loss_cls_ego``, ``pm_valid``...);
validation lines carry the metrics (``KLD``, ``SIM``, ``NSS``...) and ``step`` (the iteration, or the epoch when
the run logs metrics by epoch). This tool draws any of those keys, for one run or several, into one picture
(PNG, PDF or SVG; matplotlib's Agg backend, no display needed), one panel per key:

    python tools/analysis_tools/analyze_logs.py work_dirs/looptrans_synthetic \\
        --keys loss_cls_ego loss_pixel_dice pm_valid pm_true_iou --out curves.png
    # three seeds of two settings, each drawn as its mean with a +-1 standard deviation band
    python tools/analysis_tools/analyze_logs.py a0 a1 a2 b0 b1 b2 --group A A A B B B --keys loss KLD

A log argument is a JSON log file, a run's timestamp folder, or a work dir (its newest run is taken). A key is
read from the training lines when they have it, otherwise from the validation lines. ``--xaxis epoch`` gives one
point per epoch (the epoch's mean for training keys) and needs an epoch-based run.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Bookkeeping fields of every line, never plotted.
INDEX_KEYS = ('iter', 'epoch', 'step')
OUT_FORMATS = ('.png', '.pdf', '.svg')


class LogError(ValueError):
    """A log or an option that cannot be plotted; the message says why and what to do."""


# ---------------------------------------------------------------- reading
def resolve_log_path(path: str) -> str:
    """The JSON log for ``path``: the file itself, or the newest ``vis_data/<timestamp>.json`` of a run folder
    (``path/vis_data``) or of a work dir (``path/*/vis_data``). ``scalars.json`` (the same lines, written by
    MMEngine's LocalVisBackend) is not taken, so that a run is not counted twice."""
    if osp.isfile(path):
        return path
    if not osp.exists(path):
        raise LogError(f'log file not found: {path}')
    candidates = [
        p
        for pattern in ('vis_data/*.json', '*/vis_data/*.json')
        for p in glob.glob(osp.join(path, pattern))
        if osp.basename(p) != 'scalars.json'
    ]
    if not candidates:
        raise LogError(
            f'no JSON log under {path}: expected {path}/vis_data/<timestamp>.json or '
            f'{path}/<timestamp>/vis_data/<timestamp>.json (MMEngine writes them while training)'
        )
    return max(candidates, key=osp.basename)  # timestamps sort as text


def load_json_log(path: str) -> List[dict]:
    """The lines of one JSON log, in order (blank lines skipped)."""
    path = resolve_log_path(path)
    lines = []
    with open(path, encoding='utf-8') as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as e:
                raise LogError(f'{path} line {number} is not JSON ({e.msg}): {text.strip()[:80]!r}') from e
            if not isinstance(line, dict):
                raise LogError(f'{path} line {number} is not a JSON object: {text.strip()[:80]!r}')
            lines.append(line)
    if not lines:
        raise LogError(f'{path} holds no log lines (empty log): has the run logged an iteration yet?')
    return lines


def is_train_line(line: dict) -> bool:
    """Training lines carry the global ``iter``; validation and test lines only ``step``."""
    return 'iter' in line


def available_keys(lines: Sequence[dict]) -> List[str]:
    return sorted({k for line in lines for k in line if k not in INDEX_KEYS})


# ---------------------------------------------------------------- curves
def extract_curve(
    lines: Sequence[dict], key: str, xaxis: str = 'iter', name: str = 'log'
) -> Tuple[np.ndarray, np.ndarray, bool]:
    """``(xs, ys, from_train)`` of ``key`` in one log, sorted by x.

    ``xaxis='iter'``: training values at their iteration; validation values at their ``step``, or, in an
    epoch-based run, at the last logged training iteration of their epoch. ``xaxis='epoch'``: the mean of each
    epoch's training values at that epoch; validation values at their epoch.

    Raises:
        LogError: ``key`` is in no line (the message lists the available keys), or ``xaxis='epoch'`` on an
            iteration-based run.
    """
    train = [line for line in lines if is_train_line(line)]
    evals = [line for line in lines if not is_train_line(line)]
    from_train = any(key in line for line in train)
    source = train if from_train else [line for line in evals if key in line]
    if not source:
        raise LogError(f"key {key!r} is not in {name}; available keys: {', '.join(available_keys(lines))}")
    epoch_based = any('epoch' in line for line in train)
    if xaxis == 'epoch' and not epoch_based:
        raise LogError(
            f'{name} is an iteration-based run (no epoch in its training lines): use --xaxis iter'
            if train
            else f'{name} has no training lines, so no epochs: use --xaxis iter'
        )
    if from_train:
        pairs = [(line['epoch'] if xaxis == 'epoch' else line['iter'], line[key]) for line in source if key in line]
        if xaxis == 'epoch':  # one point per epoch: its mean
            per_epoch: Dict[float, List[float]] = OrderedDict()
            for x, y in pairs:
                per_epoch.setdefault(x, []).append(y)
            pairs = [(x, float(np.mean(ys))) for x, ys in per_epoch.items()]
    elif xaxis == 'iter' and epoch_based:

        def last_iter_of(epoch: float) -> float:
            return max((line['iter'] for line in train if line.get('epoch', 0) <= epoch), default=0)

        pairs = [(last_iter_of(line['step']), line[key]) for line in source]
    else:
        pairs = [(line['step'], line[key]) for line in source]
    pairs.sort(key=lambda p: p[0])
    xs = np.array([p[0] for p in pairs], dtype=float)
    ys = np.array([p[1] for p in pairs], dtype=float)
    return xs, ys, from_train


def smooth(ys: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (fewer at the start): point i is the mean of
    ``ys[max(0, i - window + 1) : i + 1]``. ``window <= 1`` returns ``ys``."""
    if window <= 1 or len(ys) == 0:
        return ys
    csum = np.concatenate([[0.0], np.cumsum(ys, dtype=float)])
    idx = np.arange(1, len(ys) + 1)
    start = np.maximum(0, idx - window)
    return (csum[idx] - csum[start]) / (idx - start)


def aggregate(curves: Sequence[Tuple[np.ndarray, np.ndarray]], name: str = 'group') -> Tuple[np.ndarray, ...]:
    """Mean and standard deviation over runs, at the x values every run has.

    The standard deviation is the sample one (``ddof=1``; 0 for a single run). Returns ``(xs, mean, std)``.

    Raises:
        LogError: the runs share no x value.
    """
    common = set(curves[0][0].tolist())
    for xs, _ in curves[1:]:
        common &= set(xs.tolist())
    if not common:
        raise LogError(
            f'the runs of {name} share no x value (e.g. other logging intervals or lengths): '
            'group only runs logged at the same iterations'
        )
    xs = np.array(sorted(common))
    stacked = np.stack([ys[np.searchsorted(cx, xs)] for cx, ys in curves])
    std = stacked.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(xs))
    return xs, stacked.mean(axis=0), std


# ---------------------------------------------------------------- plotting
def plot(
    logs: Sequence[str],
    keys: Sequence[str],
    out: str,
    xaxis: str = 'iter',
    legend: Optional[Sequence[str]] = None,
    groups: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    smooth_window: int = 1,
) -> Dict[str, Dict[str, Tuple[np.ndarray, ...]]]:
    """Draw ``keys`` of ``logs`` into ``out``, one panel per key and one line per run (or per group: its mean
    with a +-1 std band). Training curves are smoothed over ``smooth_window`` points (validation metrics are
    drawn as logged).

    Returns:
        ``{key: {label: (xs, ys, std)}}``, the numbers drawn (``std`` is None for a single run's line).
    """
    if osp.splitext(out)[1].lower() not in OUT_FORMATS:
        raise LogError(f'--out must end with one of {", ".join(OUT_FORMATS)}, got {out!r}')
    if groups is not None and len(groups) != len(logs):
        raise LogError(f'--group needs one label per log: {len(groups)} labels for {len(logs)} logs')
    names = [resolve_log_path(p) for p in logs]
    loaded = [load_json_log(p) for p in names]
    members: Dict[str, List[int]] = OrderedDict()
    for i, label in enumerate(groups if groups is not None else [None] * len(logs)):
        members.setdefault(label if label is not None else f'#{i}', []).append(i)
    if legend is not None and len(legend) != len(members):
        what = 'group' if groups is not None else 'log'
        raise LogError(f'--legend needs one label per {what}: {len(legend)} labels for {len(members)} {what}s')
    labels = list(legend) if legend is not None else [_default_label(names, idx, key) for key, idx in members.items()]

    drawn: Dict[str, Dict[str, Tuple[np.ndarray, ...]]] = OrderedDict()
    for key in keys:
        drawn[key] = OrderedDict()
        for label, (group, idx) in zip(labels, members.items()):
            curves = []
            for i in idx:
                xs, ys, from_train = extract_curve(loaded[i], key, xaxis, name=names[i])
                curves.append((xs, smooth(ys, smooth_window) if from_train else ys))
            if groups is None:
                drawn[key][label] = (*curves[0], None)
            else:
                drawn[key][label] = aggregate(curves, name=f'group {group!r} ({key})')
    _draw(drawn, out, xaxis, title, show_legend=len(labels) > 1 or legend is not None)
    return drawn


def _default_label(names: Sequence[str], idx: Sequence[int], group: str) -> str:
    if not group.startswith('#'):
        return f'{group} (n={len(idx)})'
    return osp.splitext(osp.basename(names[idx[0]]))[0]


def _draw(drawn: dict, out: str, xaxis: str, title: Optional[str], show_legend: bool) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ncols = min(2, len(drawn))
    nrows = math.ceil(len(drawn) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (key, series) in zip(axes.flat, drawn.items()):
        for label, (xs, ys, std) in series.items():
            (line,) = ax.plot(xs, ys, marker='.' if len(xs) <= 50 else None, label=label)
            if std is not None:
                ax.fill_between(xs, ys - std, ys + std, color=line.get_color(), alpha=0.25, linewidth=0)
        ax.set_title(key)
        ax.set_xlabel(xaxis)
        ax.grid(True, alpha=0.3)
        if show_legend:
            ax.legend(fontsize='small')
    for ax in list(axes.flat)[len(drawn) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- command line
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot keys of MMEngine JSON scalar logs (vis_data/*.json).')
    parser.add_argument('logs', nargs='+', help='JSON log files, run folders or work dirs (newest run)')
    parser.add_argument('--keys', nargs='+', default=['loss'], help='keys to plot, one panel each (default: loss)')
    parser.add_argument('--xaxis', choices=('iter', 'epoch'), default='iter', help='x axis (default: iter)')
    parser.add_argument('--legend', nargs='+', help='one label per log, or per group with --group / --band')
    parser.add_argument('--title', help='title of the figure')
    parser.add_argument(
        '--group',
        nargs='+',
        help='one group label per log; the runs of a group are drawn as their mean with a +-1 std band',
    )
    parser.add_argument('--band', action='store_true', help='all logs form one group (e.g. seeds): mean +-1 std')
    parser.add_argument(
        '--smooth', type=int, default=1, help='moving average over N logged points, training keys only (default: 1)'
    )
    parser.add_argument('--out', default='training_curves.png', help='picture to write: .png, .pdf or .svg')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    groups = args.group
    if args.band and groups is None:
        groups = ['all'] * len(args.logs)
    try:
        if args.smooth < 1:
            raise LogError(f'--smooth must be >= 1 (1: no smoothing), got {args.smooth}')
        drawn = plot(args.logs, args.keys, args.out, args.xaxis, args.legend, groups, args.title, args.smooth)
    except LogError as e:
        print(f'analyze_logs.py: error: {e}', file=sys.stderr)
        return 1
    for key, series in drawn.items():
        last = ', '.join(
            f'{label} {ys[-1]:.4g}' + (f' +- {std[-1]:.2g}' if std is not None else '')
            for label, (xs, ys, std) in series.items()
        )
        print(f'{key}: last {last}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
