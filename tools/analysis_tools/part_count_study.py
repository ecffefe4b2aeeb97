"""How many parts? Fixed K in {3, 4, 5} against K chosen per image (``num_parts='auto'``) on generated data.

For each split (Seen, Unseen) and each K this trains the quick config with
``model.part_discovery.num_parts=K`` (skipped when ``<root>/<split>_k<K>/last_checkpoint`` exists, so a run
can be resumed or an existing K = 4 run linked in), tests it, and measures its pseudo-masks against the
generator's true affordance parts (``eval_pseudo_masks.py``): with the true part as an oracle CAM (the
clustering alone) and with the trained CAM (what training used at its end). It prints one table (the one in
docs/results.md, "Pseudo-mask quality and the number of parts K"):

    python tools/analysis_tools/part_count_study.py [--root work_dirs/part_count] [--ks 3 4 5 auto]
        [--splits Seen Unseen]

Each training run takes as long as the quick start (about 5-10 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = dict(Seen='configs/looptrans_synthetic.py', Unseen='configs/looptrans_synthetic_unseen.py')
# numbers as MMEngine logs them, NaN / inf included (a NaN figure is a result to report, not a missing line)
METRIC_RE = re.compile(r'Iter\(test\).*?KLD: ([-\d.naif]+)\s+SIM: ([-\d.naif]+)\s+NSS: ([-\d.naif]+)')
PM_RE = re.compile(r'pm_true_iou: ([-0-9.]+)')


def _run(args: List[str], log: str) -> None:
    """``python <args>`` from the repo root, output to ``log``; raises with the log's tail on failure."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log, 'w') as f:
        proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'`python {" ".join(args)}` failed ({proc.returncode}); end of {log}:\n{tail}')


def test_metrics(log: str) -> Dict[str, float]:
    """KLD / SIM / NSS of the last test line of a ``tools/test.py`` log."""
    with open(log) as f:
        found = METRIC_RE.findall(f.read())
    if not found:
        raise ValueError(f'no test metrics: no "Iter(test) ... KLD: ... SIM: ... NSS: ..." line in {log}')
    kld, sim, nss = map(float, found[-1])
    return dict(KLD=kld, SIM=sim, NSS=nss)


def _has_metrics(log: str) -> bool:
    """Whether ``log`` exists and holds a test line (a finished ``tools/test.py`` run)."""
    if not osp.isfile(log):
        return False
    with open(log) as f:
        return METRIC_RE.search(f.read()) is not None


def train_pm_true_iou(log: str, last: int = 5) -> Optional[float]:
    """Mean ``pm_true_iou`` of the last ``last`` logged training lines (None when never logged)."""
    if not osp.isfile(log):
        return None
    with open(log) as f:
        values = [float(v) for v in PM_RE.findall(f.read())]
    return sum(values[-last:]) / len(values[-last:]) if values else None


def _find_train_log(work_dir: str) -> Optional[str]:
    """The newest ``<timestamp>/<timestamp>.log`` MMEngine wrote for the training run."""
    logs = []
    for stamp in os.listdir(work_dir):
        path = osp.join(work_dir, stamp, f'{stamp}.log')
        if osp.isfile(path) and osp.isfile(osp.join(work_dir, stamp, 'vis_data', 'scalars.json')):
            logs.append(path)
    return sorted(logs)[-1] if logs else None


def study(root: str, ks: List[str], splits: List[str], on_row=None) -> List[dict]:
    """One row per split and K (see the module docstring); ``on_row(row)`` is called as each completes."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    import eval_pseudo_masks

    rows = []
    for split in splits:
        config = CONFIGS[split]
        for k in ks:
            option = f'model.part_discovery.num_parts={k}'
            work_dir = osp.join(root, f'{split}_k{k}')
            os.makedirs(work_dir, exist_ok=True)
            if not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
                _run(
                    ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options', option],
                    osp.join(work_dir, 'train.out'),
                )
            with open(osp.join(work_dir, 'last_checkpoint')) as f:
                ckpt = f.read().strip()
            test_log = osp.join(work_dir, 'test.out')
            if not _has_metrics(test_log):
                _run(
                    ['tools/test.py', config, ckpt, '--work-dir', osp.join(work_dir, 'test'), '--cfg-options', option],
                    test_log,
                )
            oracle = eval_pseudo_masks.main([config, '--cfg-options', option])['overall']
            trained = eval_pseudo_masks.main([config, ckpt, '--cfg-options', option])['overall']
            train_log = _find_train_log(work_dir)
            rows.append(
                dict(
                    split=split,
                    k=k,
                    oracle=oracle,
                    trained=trained,
                    pm_true_iou=train_pm_true_iou(train_log) if train_log else None,
                    **test_metrics(test_log),
                )
            )
            if on_row is not None:
                on_row(rows[-1])
    return rows


TABLE_HEADER = (
    '| split | K | oracle-CAM mIoU (valid) | trained-CAM mIoU (valid) | pm_true_iou, end of training '
    '| KLD (lower is better) | SIM | NSS |\n| --- | --- | --- | --- | --- | --- | --- | --- |'
)


def format_row(r: dict) -> str:
    pm = 'n/a' if r['pm_true_iou'] is None else f'{r["pm_true_iou"]:.3f}'
    return (
        f'| {r["split"]} | {r["k"]} | {r["oracle"]["miou"]:.3f} ({r["oracle"]["valid"]:.2f}) '
        f'| {r["trained"]["miou"]:.3f} ({r["trained"]["valid"]:.2f}) | {pm} '
        f'| {r["KLD"]:.3f} | {r["SIM"]:.3f} | {r["NSS"]:.3f} |'
    )


def format_table(rows: List[dict]) -> str:
    return '\n'.join([TABLE_HEADER] + [format_row(r) for r in rows])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='work_dirs/part_count', help='one work dir per split and K under it')
    parser.add_argument('--ks', nargs='+', default=['3', '4', '5', 'auto'], help="fixed K values and/or 'auto'")
    parser.add_argument('--splits', nargs='+', default=['Seen', 'Unseen'], choices=sorted(CONFIGS))
    args = parser.parse_args(argv)
    for k in args.ks:
        if k != 'auto' and not (k.isdigit() and int(k) >= 2):
            parser.error(f"--ks: each value is an integer >= 2 or 'auto', got {k!r}")
    return args


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    root = osp.abspath(args.root)
    os.chdir(REPO)  # the configs' data roots are relative to the repository
    done = []

    def on_row(row: dict) -> None:  # a table row as soon as its runs are done (each takes minutes)
        done.append(format_row(row))
        print(f'done: {done[-1]}', flush=True)

    rows = study(root, args.ks, args.splits, on_row)
    print(format_table(rows))
    return rows


if __name__ == '__main__':
    main()
