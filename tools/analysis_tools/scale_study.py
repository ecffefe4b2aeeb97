"""What the data code costs at AGD20K's size: indexing, check_dataset.py, the loader, the test pass, the metric.

For each fraction of AGD20K Seen's real size (``--fractions``, default 1/16, 1/4 and 1) a tree made by
:func:`looptrans.testing.agd20k_scale.generate_agd20k_sized` (generated under ``--root`` if missing) is
measured:

* dataset construction (``AGD20KDataset`` train and test, as in ``configs/looptrans_agd20k.py``): wall
  time, and peak Python memory (tracemalloc, in a second construction so that it does not slow the timed
  one); plus the size of the Python objects the training dataset keeps *outside* MMEngine's
  ``serialize_data`` buffer (its per-folder path tuples), which forked loader workers copy as they read them;
* ``tools/misc/check_dataset.py`` run as a user runs it (a subprocess, ``--nproc 1``), at its default
  decode level (``full``) and with ``--decode header``;
* the training loader (the real train pipeline of the config, batch 8, ``--workers`` forked workers) over
  ``--batches`` batches: items per second per worker, and the growth of each worker's PSS and USS
  (``/proc/<pid>/smaps_rollup``) between the first batches and the last;
* a full test pass: the test loader (real test pipeline) over the whole test set, random predictions,
  ``AffordanceMetric.process`` per batch and ``compute_metrics`` at the end; wall time of the pass and of
  the metric's own calls, and the bytes of ``metric.results`` (deep ``sys.getsizeof``).

It prints one table: each figure per size, then its growth exponent between consecutive sizes,
``log(v2 / v1) / log(n2 / n1)`` with ``n`` the number of images of the tree (1 = linear; for a
throughput, 0 = constant per item). Example::

    OMP_NUM_THREADS=1 nice -n 10 python tools/analysis_tools/scale_study.py --root /tmp/agd20k_scale
    python tools/analysis_tools/scale_study.py --fractions 1/64 1/16 --batches 50 --json study.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
import tracemalloc
from fractions import Fraction
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'looptrans_agd20k.py')
CHECK_DATASET = osp.join(REPO, 'tools', 'misc', 'check_dataset.py')
DEFAULT_FRACTIONS = ('1/16', '1/4', '1')

#: Every figure of the table: key -> (label, unit, kind). ``kind`` says how its exponent is judged:
#: ``'cost'`` (time / memory; linear or better means exponent <= 1), ``'rate'`` (per-item throughput;
#: constant means exponent ~ 0) or ``'info'`` (shown, not judged).
FIGURES: Dict[str, Tuple[str, str, str]] = {
    'num_images': ('images in the tree', '', 'info'),
    'train_build_s': ('train dataset construction', 's', 'cost'),
    'train_build_peak_mib': ('train construction peak (tracemalloc)', 'MiB', 'cost'),
    'train_outside_serialized_mib': ('train lists outside serialize_data', 'MiB', 'cost'),
    'test_build_s': ('test dataset construction', 's', 'cost'),
    'test_build_peak_mib': ('test construction peak (tracemalloc)', 'MiB', 'cost'),
    'check_full_s': ('check_dataset.py (decode full)', 's', 'cost'),
    'check_header_s': ('check_dataset.py --decode header', 's', 'cost'),
    'loader_items_per_s_worker': ('train loader items/s per worker', '1/s', 'rate'),
    'worker_pss_growth_mib': ('worker PSS growth over the batches', 'MiB', 'cost'),
    'worker_uss_growth_mib': ('worker USS growth over the batches', 'MiB', 'cost'),
    'worker_uss_growth_2nd_half_mib': ('worker USS growth, 2nd half of the batches', 'MiB', 'cost'),
    'test_pass_s': ('test pass (load + metric), whole test set', 's', 'cost'),
    'metric_process_s': ('AffordanceMetric.process, all batches', 's', 'cost'),
    'metric_compute_s': ('AffordanceMetric.compute_metrics', 's', 'cost'),
    'metric_results_mib': ('metric.results held in memory', 'MiB', 'cost'),
}


# --------------------------------------------------------------------------------
# numbers and the table
# --------------------------------------------------------------------------------
def parse_fraction(text: str) -> float:
    """``'1/16'``, ``'0.25'`` or ``'1'`` as a float in (0, 1]."""
    value = float(Fraction(text))
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f'a fraction must be in (0, 1], got {text!r}')
    return value


def fraction_label(value: float) -> str:
    """``0.0625`` -> ``'1/16'``; ``1.0`` -> ``'1'`` (a short column title)."""
    return str(Fraction(value).limit_denominator(1024))


def growth_exponents(values: Sequence[Optional[float]], sizes: Sequence[float]) -> List[Optional[float]]:
    """``log(v[i+1] / v[i]) / log(n[i+1] / n[i])`` for consecutive sizes; None where it is undefined
    (a value missing or <= 0, or equal sizes)."""
    out: List[Optional[float]] = []
    for (v1, n1), (v2, n2) in zip(zip(values, sizes), zip(values[1:], sizes[1:])):
        if v1 is None or v2 is None or v1 <= 0 or v2 <= 0 or n1 <= 0 or n2 <= 0 or n1 == n2:
            out.append(None)
        else:
            out.append(math.log(v2 / v1) / math.log(n2 / n1))
    return out


def _cell(value: Optional[float]) -> str:
    if value is None:
        return '-'
    if abs(value) >= 1000 or float(value).is_integer():
        return f'{value:.0f}'
    return f'{value:.3g}' if abs(value) < 1 else f'{value:.2f}'


def format_table(results: Sequence[Dict[str, Any]], keys: Optional[Iterable[str]] = None) -> str:
    """A Markdown table: one row per figure, one column per size, then one exponent column per pair of
    consecutive sizes (sizes are ``results[i]['num_images']``)."""
    sizes = [r['num_images'] for r in results]
    labels = [fraction_label(r['fraction']) for r in results]
    header = ['figure'] + [f'{lab} ({n})' for lab, n in zip(labels, sizes)]
    header += [f'exp {a}->{b}' for a, b in zip(labels, labels[1:])]
    rows = [header, ['---'] * len(header)]
    for key in keys or FIGURES:
        if key == 'num_images' or not any(key in r for r in results):
            continue
        label, unit, _ = FIGURES[key]
        values = [r.get(key) for r in results]
        exps = growth_exponents(values, sizes)
        name = f'{label} [{unit}]' if unit else label
        rows.append([name] + [_cell(v) for v in values] + ['-' if e is None else f'{e:.2f}' for e in exps])
    return '\n'.join('| ' + ' | '.join(row) + ' |' for row in rows)


# --------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------
def deep_sizeof(obj: Any, seen: Optional[set] = None) -> int:
    """Bytes of ``obj`` and everything it refers to through dicts, lists, tuples and sets (each object
    once), by ``sys.getsizeof``; numpy arrays count their buffer."""
    seen = set() if seen is None else seen
    stack, total = [obj], 0
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += o.nbytes if isinstance(o, np.ndarray) else sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
    return total


def smaps_rollup(pid: int) -> Dict[str, int]:
    """PSS and USS (private clean + dirty) of a process in bytes, from ``/proc/<pid>/smaps_rollup``."""
    fields: Dict[str, int] = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(':') and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    return dict(pss=fields.get('Pss', 0), uss=fields.get('Private_Clean', 0) + fields.get('Private_Dirty', 0))


def _dataset_cfgs(data_root: str) -> Tuple[dict, dict]:
    """The train and test dataset configs of ``configs/looptrans_agd20k.py`` with ``data_root``."""
    from mmengine.config import Config

    cfg = Config.fromfile(CONFIG)
    train = cfg.train_dataloader.dataset.to_dict()
    test = cfg.test_dataloader.dataset.to_dict()
    train['data_root'] = test['data_root'] = data_root
    return train, test


def _build(cfg: dict):
    from mmseg.registry import DATASETS

    return DATASETS.build(cfg)


def measure_construction(data_root: str) -> Dict[str, float]:
    """Time and tracemalloc peak of building the train and test datasets, and the bytes the training
    dataset keeps outside ``serialize_data``. A lazy build first does the imports and builds the pipeline,
    so the timed build is the indexing of the tree."""
    out: Dict[str, float] = {}
    train_cfg, test_cfg = _dataset_cfgs(data_root)
    for name, cfg in (('train', train_cfg), ('test', test_cfg)):
        _build(dict(cfg, lazy_init=True))  # imports and pipeline first, so the timed build is the indexing
        gc.collect()
        start = time.perf_counter()
        ds = _build(dict(cfg))
        out[f'{name}_build_s'] = time.perf_counter() - start
        if name == 'train':
            kept = (ds._exo_folders, ds._ego_pools, ds._ego_aff_pools)
            out['train_outside_serialized_mib'] = deep_sizeof(kept) / 2**20
        del ds
        gc.collect()
        tracemalloc.start()
        ds = _build(dict(cfg))
        out[f'{name}_build_peak_mib'] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        del ds
    return out


def measure_check_dataset(data_root: str) -> Dict[str, float]:
    """Wall time of ``tools/misc/check_dataset.py`` at its default decode level and with ``--decode header``."""
    out: Dict[str, float] = {}
    for level, key in (('full', 'check_full_s'), ('header', 'check_header_s')):
        cmd = [sys.executable, CHECK_DATASET, '--data-root', data_root, '--dataset', 'AGD20K', '--split', 'Seen']
        cmd += ['--no-progress', '--counts', 'none', '--max-paths', '3']
        if level != 'full':
            cmd += ['--decode', level]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        out[key] = time.perf_counter() - start
        if proc.returncode != 0:
            tail = proc.stdout[-2000:] + proc.stderr[-2000:]
            raise RuntimeError(f'check_dataset.py failed (exit code {proc.returncode}):\n{tail}')
    return out


def _loader(dataset, batch_size: int, workers: int, shuffle: bool, seed: int):
    import torch
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    def init(worker_id: int) -> None:  # as MMEngine: a distinct numpy seed per worker
        np.random.seed(seed + worker_id)

    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=pseudo_collate,
        worker_init_fn=init if workers else None,
        persistent_workers=workers > 0,
        generator=gen,
    )


def measure_loader(data_root: str, batches: int, batch_size: int, workers: int, seed: int) -> Dict[str, float]:
    """Training-loader throughput per worker and the workers' PSS / USS growth over ``batches`` batches.

    The sampler cycles through epochs if the training set has fewer than ``batches`` batches. Memory is
    read after ``warmup`` batches (imports, first allocations done), half-way and after the last batch:
    growth that goes on in the second half is growth that goes on with the epoch, not a warm-up.
    """
    train_cfg, _ = _dataset_cfgs(data_root)
    ds = _build(train_cfg)
    loader = _loader(ds, batch_size, workers, shuffle=True, seed=seed)
    warmup = min(10, max(1, batches // 10))
    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    for _ in range(warmup):
        next_batch()
    pids = [w.pid for w in getattr(it, '_workers', [])] or [os.getpid()]
    before = [smaps_rollup(p) for p in pids]
    middle = before
    # USS of the workers (mean, MiB, growth since ``before``) at every tenth of the batches: a copy-on-read
    # of fixed-size data levels off, a leak keeps growing (kept in the JSON output, not in the table)
    marks = {max(1, round(batches * k / 10)) for k in range(1, 11)}
    curve: List[float] = []
    start = time.perf_counter()
    items = 0
    for i in range(1, batches + 1):
        items += len(next_batch()['inputs'])
        if i in marks or i == batches // 2:
            pause = time.perf_counter()
            now = [smaps_rollup(p) for p in pids]
            if i == batches // 2:
                middle = now
            if i in marks:
                curve.append(float(np.mean([(n['uss'] - b['uss']) / 2**20 for n, b in zip(now, before)])))
            start += time.perf_counter() - pause
    elapsed = time.perf_counter() - start
    after = [smaps_rollup(p) for p in pids]
    mib = 2**20
    return dict(
        loader_items_per_s_worker=items / elapsed / max(1, workers),
        worker_pss_growth_mib=float(np.mean([(a['pss'] - b['pss']) / mib for a, b in zip(after, before)])),
        worker_uss_growth_mib=float(np.mean([(a['uss'] - b['uss']) / mib for a, b in zip(after, before)])),
        worker_uss_growth_2nd_half_mib=float(np.mean([(a['uss'] - m['uss']) / mib for a, m in zip(after, middle)])),
        worker_uss_curve_mib=curve,
    )


def measure_test_pass(data_root: str, batch_size: int, workers: int, seed: int) -> Dict[str, float]:
    """A full test pass: every test image and GT through the test pipeline, a random 224x224 prediction
    each, ``AffordanceMetric.process`` per batch and ``compute_metrics`` at the end."""
    import torch
    from mmengine.logging import MMLogger
    from mmengine.structures import PixelData

    from looptrans.evaluation import AffordanceMetric

    _, test_cfg = _dataset_cfgs(data_root)
    ds = _build(test_cfg)
    loader = _loader(ds, batch_size, workers, shuffle=False, seed=seed)
    metric = AffordanceMetric()
    gen = torch.Generator().manual_seed(seed)
    process_s = 0.0
    start = time.perf_counter()
    for batch in loader:
        samples = batch['data_samples']
        for s in samples:
            s.pred_heatmap = PixelData(data=torch.rand(1, 224, 224, generator=gen))
        t = time.perf_counter()
        metric.process(batch, samples)
        process_s += time.perf_counter() - t
    results_bytes = deep_sizeof(metric.results)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # the per-affordance table is not part of the study's output
    try:
        t = time.perf_counter()
        metric.compute_metrics(metric.results)
        compute_s = time.perf_counter() - t
    finally:
        logger.setLevel(level)
    total = time.perf_counter() - start
    return dict(
        test_pass_s=total,
        metric_process_s=process_s,
        metric_compute_s=compute_s,
        metric_results_mib=results_bytes / 2**20,
        num_test_scored=len(metric.results),
    )


MEASURES: Dict[str, Callable[..., Dict[str, float]]] = dict(
    construction=lambda root, a: measure_construction(root),
    check=lambda root, a: measure_check_dataset(root),
    loader=lambda root, a: measure_loader(root, a.batches, a.batch_size, a.workers, a.seed),
    test=lambda root, a: measure_test_pass(root, a.batch_size, a.workers, a.seed),
)


# --------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='/tmp/agd20k_scale', help='where the trees are (generated if missing)')
    parser.add_argument(
        '--fractions', nargs='+', type=parse_fraction, default=[parse_fraction(f) for f in DEFAULT_FRACTIONS]
    )
    parser.add_argument('--batches', type=int, default=300, help='training batches timed per size (>= 2)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--workers', type=int, default=2, help='loader worker processes')
    parser.add_argument('--gen-nproc', type=int, default=2, help='processes generating a missing tree')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--only', nargs='+', choices=list(MEASURES), help='run only these measurements')
    parser.add_argument('--json', metavar='OUT', help='also write every figure as JSON')
    return parser.parse_args(argv)


def tree_dir(root: str, fraction: float) -> str:
    """``<root>/frac_<fraction>``, the tree of one size."""
    return osp.join(root, f'frac_{fraction:g}')


def ensure_tree(root: str, fraction: float, seed: int, nproc: int) -> dict:
    """The summary of the tree of ``fraction`` under ``root``, generated first if missing or incomplete."""
    from looptrans.testing.agd20k_scale import generate_agd20k_sized, read_summary

    out = tree_dir(root, fraction)
    summary = read_summary(out)
    if summary is None or summary.get('seed') != seed or summary.get('fraction') != fraction:
        print(f'generating the {fraction_label(fraction)} tree in {out} ...', flush=True)
        summary = generate_agd20k_sized(out, fraction, seed=seed, nproc=nproc, overwrite=True)
    return summary


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return f'{cpu}, {os.cpu_count()} CPU(s), {mem:.0f} GiB RAM, Python {platform.python_version()}, {platform.system()}'


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    args = parse_args(argv)
    from mmengine.registry import init_default_scope

    import looptrans  # noqa: F401  (registers the dataset, transforms and metric)

    init_default_scope('mmseg')
    results = []
    for fraction in sorted(set(args.fractions)):
        summary = ensure_tree(args.root, fraction, args.seed, args.gen_nproc)
        row: Dict[str, Any] = dict(fraction=fraction, num_images=summary['num_images'], summary=summary)
        for name in args.only or MEASURES:
            print(f'[{fraction_label(fraction)}] {name} ...', flush=True)
            row.update(MEASURES[name](tree_dir(args.root, fraction), args))
        results.append(row)
    print(f'\nMachine: {machine()}')
    print(f'Loader: batch {args.batch_size}, {args.workers} worker(s), {args.batches} batches timed per size.\n')
    print(format_table(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine(), args=vars(args), results=results), f, indent=1)
        print(f'\nWrote {args.json}')
    return results


if __name__ == '__main__':
    main()
