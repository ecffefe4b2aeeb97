"""One table from the outputs of tools/analysis_tools/gpu_check.sh.

Reads, from the check's output folder:

- ``env.json``: the GPU, torch, CUDA, whether bf16 is supported and mmcv's ops' CUDA build,
- ``bench_fp32.txt`` / ``bench_amp.txt``: tools/analysis_tools/benchmark.py without and with ``--amp``,
- ``train.log``: tools/train.py ``--amp`` on the generated data (every iteration logged),
- ``test_b<N>.log``: tools/test.py at test batch size N,
- ``metric.txt``: tools/analysis_tools/benchmark_metric.py (the AGD20K metric against the published code),
- ``status.txt``: ``<part> <exit status>`` per part run,

and prints one Markdown table (also written to ``gpu_check.md``, the figures to ``gpu_check.json``).
Exits 1 when a part failed, a training loss is not finite, or an expected output is missing.

    python tools/analysis_tools/gpu_check_table.py work_dirs/gpu_check
"""

from __future__ import annotations

import argparse
import json
import math
import os.path as osp
import re
import statistics
import sys
from typing import Dict, List, Optional

NUM = r'([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))'


def parse_benchmark(text: str) -> Dict:
    """Figures of one benchmark.py run (see its ``print`` calls); missing ones are absent."""
    out: Dict = {}
    m = re.search(r'^training step\s+' + NUM + r'\s+' + NUM + r'\s+' + NUM, text, re.M)
    if m:
        out.update(train_step_s=float(m.group(1)), train_images_s=float(m.group(2)), train_peak_gib=float(m.group(3)))
    m = re.search(r'^frozen backbone forward alone\s+' + NUM + r'\s+' + NUM + r'\s+' + NUM, text, re.M)
    if m:
        out.update(
            backbone_s=float(m.group(1)), backbone_images_s=float(m.group(2)), backbone_peak_gib=float(m.group(3))
        )
    m = re.search(r'training step / backbone forward:\s*' + NUM + 'x', text)
    if m:
        out['step_over_backbone'] = float(m.group(1))
    m = re.search(r'^batch:\s*(\d+) samples.*?\((\d+) images\)', text, re.M)
    if m:
        out.update(batch_samples=int(m.group(1)), batch_images=int(m.group(2)))
    infer = {
        int(b): float(v)
        for b, v in re.findall(r'inference \(heatmaps of all classes\), batch (\d+):\s*' + NUM + ' images/s', text)
    }
    if infer:
        out['inference_images_s'] = infer
    m = re.search(r'^device: (.*)$', text, re.M)
    if m:
        out['device'] = m.group(1).strip()
    return out


def parse_train_log(text: str) -> Dict:
    """Iterations, total losses, s/iter and data s/iter of a tools/train.py log (MMEngine ``Iter(train)`` lines)."""
    iters, losses, times, data_times = [], [], [], []
    for line in text.splitlines():
        m = re.search(r'Iter\(train\)\s*\[\s*(\d+)/\s*(\d+)\]', line)
        if not m:
            continue
        loss = re.search(r'\sloss: ' + NUM, line)
        if loss is None:
            continue
        iters.append(int(m.group(1)))
        losses.append(float(loss.group(1)))
        t = re.search(r'\stime: ' + NUM, line)
        if t:
            times.append(float(t.group(1)))
        d = re.search(r'\sdata_time: ' + NUM, line)
        if d:
            data_times.append(float(d.group(1)))
    dtype = re.search(r'AMP training in (\w+)', text)
    return dict(
        iters=iters,
        losses=losses,
        times=times,
        data_times=data_times,
        amp_dtype=dtype.group(1) if dtype else None,
        finite=bool(losses) and all(math.isfinite(x) for x in losses),
    )


def parse_test_log(text: str) -> Dict:
    """Metrics and s/iter of a tools/test.py log.

    ``time_s`` is the last windowed ``time`` MMEngine logs during the test loop (steady state, after the
    first iterations' warm-up), else the loop's mean from its final line.
    """
    out: Dict = {}
    lines = [ln for ln in text.splitlines() if 'Iter(test)' in ln]
    windowed = [ln for ln in lines if 'eta:' in ln]
    final = [ln for ln in lines if 'eta:' not in ln and re.search(r'\stime: ', ln)]
    if final:
        out['metrics'] = {k: float(v) for k, v in re.findall(r'\b(KLD|SIM|NSS|AUC-J|AUCJ): ' + NUM, final[-1])}
        out['mean_time_s'] = float(re.search(r'\stime: ' + NUM, final[-1]).group(1))
    if windowed:
        out['time_s'] = float(re.search(r'\stime: ' + NUM, windowed[-1]).group(1))
    elif 'mean_time_s' in out:
        out['time_s'] = out['mean_time_s']
    m = re.search(r'Iter\(test\)\s*\[\s*\d+/\s*(\d+)\]', text)
    if m:
        out['iters'] = int(m.group(1))
    return out


def parse_metric(text: str) -> Dict:
    """benchmark_metric.py's AGD20K figures: device, images, ms / image of the published code and of
    ``AffordanceMetric``, their ratio and the largest differences of the scores."""
    out: Dict = {}
    m = re.search(r'protocol=agd20k\s+N=(\d+).*device=(\S+)', text)
    if m:
        out['num_images'], out['device'] = int(m.group(1)), m.group(2)
    m = re.search(r'published per-image code\s*:\s*' + NUM + r' ms/image', text)
    if m:
        out['published_ms'] = float(m.group(1))
    m = re.search(r'AffordanceMetric, \d+ thread\(s\)\s*:\s*' + NUM + r' ms/image', text)
    if m:
        out['ours_ms'] = float(m.group(1))
    m = re.search(r'ratio published / ours\s*:\s*' + NUM + r'x', text)
    if m:
        out['ratio'] = float(m.group(1))
    m = re.search(r'max \|difference\|\s*:\s*(.*)', text)
    if m:
        out['max_diff'] = {k: float(v) for k, v in re.findall(r'(KLD|SIM|NSS) ' + NUM, m.group(1))}
    return out


def _read(path: str) -> Optional[str]:
    if not osp.isfile(path):
        return None
    with open(path, errors='replace') as f:
        return f.read()


def collect(out_dir: str, test_batches: List[int]) -> Dict:
    """All figures of a gpu_check output folder, plus the list of problems found."""
    problems: List[str] = []
    env = json.loads(_read(osp.join(out_dir, 'env.json')) or '{}')
    status = {}
    for line in (_read(osp.join(out_dir, 'status.txt')) or '').splitlines():
        part, _, code = line.partition(' ')
        status[part] = int(code)
    for part, code in status.items():
        if code != 0:
            problems.append(f'{part} exited with status {code} (see {part}.log/.txt in {out_dir})')
    result: Dict = dict(env=env, status=status)
    for kind in ('fp32', 'amp'):
        text = _read(osp.join(out_dir, f'bench_{kind}.txt'))
        result[f'bench_{kind}'] = parse_benchmark(text) if text else {}
        if not result[f'bench_{kind}'].get('train_step_s'):
            problems.append(f'benchmark ({kind}): no figures in bench_{kind}.txt')
    text = _read(osp.join(out_dir, 'train.log'))
    result['train'] = parse_train_log(text) if text else dict(iters=[], losses=[], finite=False)
    if not result['train']['losses']:
        problems.append('training: no loss in train.log')
    elif not result['train']['finite']:
        problems.append(f'training: non-finite loss {result["train"]["losses"]}')
    for b in test_batches:
        text = _read(osp.join(out_dir, f'test_b{b}.log'))
        result[f'test_b{b}'] = parse_test_log(text) if text else {}
        if not result[f'test_b{b}'].get('time_s'):
            problems.append(f'test (batch {b}): no timing in test_b{b}.log')
    text = _read(osp.join(out_dir, 'metric.txt'))
    result['metric'] = parse_metric(text) if text else {}
    if not result['metric'].get('ratio'):
        problems.append('metric: no figures in metric.txt')
    result['problems'] = problems
    return result


def _fmt(value, spec: str = '.4f', suffix: str = '') -> str:
    if value is None:
        return '—'
    return f'{value:{spec}}{suffix}'


def build_table(result: Dict, test_batches: List[int]) -> str:
    """The Markdown table (with a header line on the machine) of ``collect``'s result."""
    env = result.get('env', {})
    fp32, amp = result.get('bench_fp32', {}), result.get('bench_amp', {})
    amp_name = 'amp (' + (result.get('train', {}).get('amp_dtype') or env.get('amp_dtype') or '?') + ')'
    head = (
        f'GPU check: {env.get("gpu", "?")}, torch {env.get("torch", "?")} (CUDA {env.get("cuda", "?")}), '
        f'bf16 supported: {env.get("bf16", "?")}, mmcv {env.get("mmcv", "?")} ops built with CUDA: '
        f'{env.get("mmcv_cuda_ops", "?")}'
    )
    rows = []
    samples = fp32.get('batch_samples') or amp.get('batch_samples')
    images = fp32.get('batch_images') or amp.get('batch_images')
    batch = f'batch {samples} ({images} images)' if samples else 'batch ?'

    def both(key, spec='.4f', suffix=''):
        return [_fmt(fp32.get(key), spec, suffix), _fmt(amp.get(key), spec, suffix)]

    rows.append([f'benchmark: training step, {batch}, s/iter', *both('train_step_s')])
    rows.append(['benchmark: training images/s', *both('train_images_s', '.1f')])
    rows.append(['benchmark: training peak memory, GiB', *both('train_peak_gib', '.2f')])
    rows.append(['benchmark: frozen backbone forward alone, s/iter', *both('backbone_s')])
    rows.append(['benchmark: training step / backbone forward', *both('step_over_backbone', '.2f', 'x')])
    for b in sorted(set(fp32.get('inference_images_s', {})) | set(amp.get('inference_images_s', {}))):
        rows.append(
            [
                f'benchmark: inference images/s, batch {b}',
                _fmt(fp32.get('inference_images_s', {}).get(b), '.1f'),
                _fmt(amp.get('inference_images_s', {}).get(b), '.1f'),
            ]
        )
    train = result.get('train', {})
    if train.get('losses'):
        losses = train['losses']
        verdict = 'finite' if train.get('finite') else 'NOT FINITE'
        # The median, not the last: with logger interval 1 each logged time is one iteration's, and the
        # iteration after an epoch boundary also pays the loader workers' restart.
        speed = f', median {statistics.median(train["times"]):.3f} s/iter' if train.get('times') else ''
        if train.get('data_times'):
            speed += f' (data {statistics.median(train["data_times"]):.3f})'
        cell = f'{len(losses)} iters, losses {verdict} ({losses[0]:.3f} → {losses[-1]:.3f}){speed}'
    else:
        cell = 'no losses logged'
    train_col = [cell, '—'] if train.get('amp_dtype') is None else ['—', cell]
    rows.append(['training on generated data (tools/train.py, quick config)', *train_col])
    for b in test_batches:
        t = result.get(f'test_b{b}', {})
        ips = (b / t['time_s']) if t.get('time_s') else None
        metrics = ', '.join(f'{k} {v:.3f}' for k, v in t.get('metrics', {}).items())
        rows.append(
            [
                f'test (tools/test.py, generated data), batch {b}: images/s',
                _fmt(ips, '.1f') + (f' ({metrics})' if metrics else ''),
                '—',
            ]
        )
    metric = result.get('metric', {})
    if metric.get('ratio'):
        diffs = ', '.join(f'{k} {v:.1e}' for k, v in metric.get('max_diff', {}).items())
        cell = (
            f'{_fmt(metric.get("ours_ms"), ".3f")} ms/image, {metric["ratio"]:.1f}x the published code '
            f'({_fmt(metric.get("published_ms"), ".2f")} ms/image); max |diff| {diffs}'
        )
    else:
        cell = 'no figures'
    where = f'{metric.get("num_images", "?")} maps on {metric.get("device", "?")}'
    rows.append([f'AGD20K metric (benchmark_metric.py, {where})', cell, '—'])
    width = [max(len(r[i]) for r in rows + [['what', 'fp32', amp_name]]) for i in range(3)]
    lines = [
        head,
        '',
        '| ' + ' | '.join(h.ljust(w) for h, w in zip(['what', 'fp32', amp_name], width)) + ' |',
        '|' + '|'.join('-' * (w + 2) for w in width) + '|',
    ]
    lines += ['| ' + ' | '.join(c.ljust(w) for c, w in zip(r, width)) + ' |' for r in rows]
    if result.get('problems'):
        lines += ['', 'PROBLEMS:'] + [f'- {p}' for p in result['problems']]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Table of a gpu_check.sh output folder')
    parser.add_argument('out_dir')
    parser.add_argument('--test-batches', type=int, nargs='+', default=[1, 64])
    args = parser.parse_args(argv)
    result = collect(args.out_dir, args.test_batches)
    table = build_table(result, args.test_batches)
    print(table)
    with open(osp.join(args.out_dir, 'gpu_check.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(result, f, indent=1, default=str)
    return 1 if result['problems'] else 0


if __name__ == '__main__':
    sys.exit(main())
