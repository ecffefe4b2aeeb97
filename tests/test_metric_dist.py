"""AffordanceMetric under DDP: 2 CPU processes (gloo) give the 1-process result, each image once."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

DATASET_SIZE = 7  # not divisible by the world size: DefaultSampler pads rank 1 with sample 0
WORLD_SIZE = 2
BATCH_SIZE = 2


def make_samples() -> list:
    """The fake dataset: every process builds the same one (fixed seed)."""
    rng = np.random.default_rng(0)
    affordances = ['hold', 'cut_with', 'sit_on']
    samples = []
    for i in range(DATASET_SIZE):
        gt = rng.random((20, 30)) * (rng.random((20, 30)) < 0.3)
        if i == 4:
            gt[:] = 0  # an empty GT: left out (agd20k) / uniform (hotspots), counted once
        affordance = affordances[i % 3]
        samples.append(
            dict(
                pred_heatmap=dict(data=torch.from_numpy(rng.random((1, 14, 14)))),
                gt_heatmap=dict(data=torch.from_numpy(gt)[None]),
                sample_idx=i,
                img_path=f'ego/{affordance}/{i}.jpg',
                affordance=affordance,
            )
        )
    return samples


def build_metrics(collect_dir: str) -> dict:
    from looptrans.evaluation import AffordanceMetric

    return dict(
        agd20k=AffordanceMetric(eval_size=32, collect_dir=collect_dir),
        # batched over the images of each process() call with torch (the path used on an accelerator)
        agd20k_batched=AffordanceMetric(eval_size=32, compute_backend='torch', collect_dir=collect_dir),
        # the CPU path with the images of a batch spread over threads
        agd20k_threads=AffordanceMetric(eval_size=32, num_threads=2, collect_dir=collect_dir),
        hotspots=AffordanceMetric(protocol='hotspots', jitter_seed=1, collect_dir=collect_dir),
    )


def run_metrics(metrics: dict, indices: list, size: int) -> dict:
    """Feed ``indices`` of the fake dataset batch by batch, then ``evaluate(size)`` every metric."""
    samples = make_samples()
    out = {}
    for name, metric in metrics.items():
        for start in range(0, len(indices), BATCH_SIZE):
            metric.process({}, [samples[i] for i in indices[start : start + BATCH_SIZE]])
        out[name] = metric.evaluate(size)
    return out


def _worker(rank: int, tmpdir: str) -> None:
    # a rendezvous file, not a TCP port: a port found free can be taken by another test before the workers bind
    # it (tests run in parallel), which made this test fail now and then
    init_method = f'file://{os.path.join(tmpdir, "rendezvous")}'
    torch_dist.init_process_group('gloo', init_method=init_method, rank=rank, world_size=WORLD_SIZE)
    try:
        from mmengine.dataset import DefaultSampler
        from mmengine.dist import get_dist_info

        from looptrans.evaluation.metrics import affordance_metric

        assert get_dist_info() == (rank, WORLD_SIZE)
        logs = []
        affordance_metric.print_log = lambda msg, *a, **k: logs.append(str(msg))
        indices = list(DefaultSampler(list(range(DATASET_SIZE)), shuffle=False))
        collect_dir = os.path.join(tmpdir, 'collect')
        results = {
            # what MMEngine's loop passes: the dataset size
            'size': run_metrics(build_metrics(collect_dir), indices, DATASET_SIZE),
            # a size that keeps the sampler's padding: the metric must drop the repeat itself
            'padded': run_metrics(build_metrics(collect_dir), indices, len(indices) * WORLD_SIZE),
        }
        with open(os.path.join(tmpdir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(indices=indices, results=results, logs=logs), f)
    finally:
        torch_dist.destroy_process_group()
    # Reached only when the ranks finished (an exception above still reaches mp.spawn as a failure). The results
    # are on disk; leave without interpreter finalisation, where gloo's worker threads can abort the process
    # (seen once in CI: rank 1 'terminate called without an active exception', SIGABRT, after writing its file).
    # That teardown is torch's and outside what this test checks.
    from looptrans.utils.dist import exit_finished_run

    exit_finished_run(0)


@pytest.mark.skipif(not torch_dist.is_available(), reason='torch.distributed is not available')
def test_two_process_result_equals_one_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD_SIZE, join=True)
    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(WORLD_SIZE)]

    # DefaultSampler(shuffle=False): rank r gets r, r + 2, ..., padded by repeating from the start.
    assert ranks[0]['indices'] == [0, 2, 4, 6]
    assert ranks[1]['indices'] == [1, 3, 5, 0]

    single = run_metrics(build_metrics(str(tmp_path / 'single')), list(range(DATASET_SIZE)), DATASET_SIZE)
    for case in ('size', 'padded'):
        for rank in range(WORLD_SIZE):  # evaluate() broadcasts rank 0's result to every rank
            got = ranks[rank]['results'][case]
            assert got.keys() == single.keys()
            for protocol in single:
                assert got[protocol] == pytest.approx(single[protocol], rel=1e-12, abs=1e-12)

    # the three AGD20K computations agree
    for name in ('agd20k_batched', 'agd20k_threads'):
        assert single[name] == pytest.approx(single['agd20k'], rel=1e-12, abs=1e-12)

    counts = [m for m in ranks[0]['logs'] if 'num_images' in m]
    assert len(counts) == 8  # 4 metrics x 2 cases, logged on rank 0 only
    assert all(f'num_images={DATASET_SIZE}' in m and 'num_empty_gt=1' in m for m in counts)
    assert sum('duplicates_dropped=1' in m for m in counts) == 4  # the 'padded' case
    assert not any('num_images' in m for m in ranks[1]['logs'])
