"""The benchmark scripts' tables: run their functions on tiny inputs and check what they print.

Wall times are never asserted (the machine may be shared); the tests check that each script prints
both figures and their ratio in its documented format, that the printed numbers are the returned
ones, and that the two things compared compute the same outputs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import load_tool

FLOAT = r'(\d+\.\d+)'


@pytest.fixture(scope='module')
def benchmark_metric():
    return load_tool('analysis_tools', 'benchmark_metric.py')


@pytest.fixture(scope='module')
def benchmark():
    return load_tool('analysis_tools', 'benchmark.py')


def test_published_agd20k_restatement_matches_the_metric(benchmark_metric):
    """The published per-image code (float32 prediction path) and the metric agree to 1e-6."""
    rng = np.random.default_rng(0)
    preds = rng.random((4, 14, 14)).astype(np.float32)
    args = benchmark_metric.parse_args(['--num-images', '4', '--gt-size', '60', '80'])
    _, gts = benchmark_metric.make_maps(args)
    published = [benchmark_metric.published_agd20k(p, g) for p, g in zip(preds, gts)]
    ours = benchmark_metric.run_metric(benchmark_metric.make_samples(preds, gts), 'agd20k', batch_size=3)
    for key, diff in benchmark_metric.max_differences(published, ours).items():
        assert diff < 1e-6, key
    # the published fixation loop is the plain threshold, pixel by pixel
    image = rng.random((5, 7))
    np.testing.assert_array_equal(benchmark_metric.published_binarize(image, 0.4), (image > 0.4).astype(float))


def test_benchmark_metric_prints_both_figures_and_the_ratio(benchmark_metric, capsys):
    figures = benchmark_metric.main(['--num-images', '3', '--gt-size', '48', '64', '--repeats', '1', '--threads', '1'])
    out = capsys.readouterr().out
    published = re.search(rf'published per-image code\s+:\s+{FLOAT} ms/image', out)
    ours = re.search(rf'AffordanceMetric, 1 thread\(s\)\s+:\s+{FLOAT} ms/image', out)
    ratio = re.search(rf'ratio published / ours\s+:\s+{FLOAT}x', out)
    assert published and ours and ratio, out
    assert float(published.group(1)) == pytest.approx(figures['published_ms'], abs=1e-3)
    assert float(ours.group(1)) == pytest.approx(figures['ours_ms'], abs=1e-3)
    assert float(ratio.group(1)) == pytest.approx(figures['ratio'], abs=0.05)
    assert figures['ratio'] == pytest.approx(figures['published_ms'] / figures['ours_ms'])
    assert max(figures[f'diff_{k}'] for k in ('KLD', 'SIM', 'NSS')) < 1e-6
    assert 'max |difference|' in out and 'GT resized in the loader' in out


def test_benchmark_metric_hotspots_protocol(benchmark_metric, capsys):
    figures = benchmark_metric.main(
        ['--protocol', 'hotspots', '--num-images', '2', '--gt-size', '30', '40', '--repeats', '1']
    )
    out = capsys.readouterr().out
    assert re.search(rf'ratio loop / metric\s+:\s+{FLOAT}x', out), out
    assert figures['ratio'] == pytest.approx(figures['loop_ms'] / figures['ours_ms'])


def test_backbone_comparison_table(benchmark, capsys):
    """Our DINO ViT and timm's ViT with the same weights: same features, both times and the ratio printed."""
    pytest.importorskip('timm')
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    figures = benchmark.compare_backbones(images, 'cpu', iters=1, warmup=0)
    out = capsys.readouterr().out
    assert figures['num_images'] == 2
    assert figures['max_abs_diff'] < 1e-4
    assert figures['ratio'] == pytest.approx(figures['ours_s'] / figures['timm_s'])
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('backbone vs timm: 2 images at 32x32'))
    assert lines[start + 1].split() == ['what', 's/iter', 'images/s']
    ours = re.fullmatch(rf'looptrans DINOVisionTransformer\.forward_descriptors\s+{FLOAT}\s+{FLOAT}', lines[start + 2])
    timm = re.fullmatch(rf'timm VisionTransformer\.forward_features\s+{FLOAT}\s+{FLOAT}', lines[start + 3])
    assert ours and timm, out
    assert float(ours.group(1)) == pytest.approx(figures['ours_s'], abs=1e-4)
    assert float(timm.group(1)) == pytest.approx(figures['timm_s'], abs=1e-4)
    assert float(ours.group(2)) == pytest.approx(2 / figures['ours_s'], rel=1e-3, abs=0.1)
    summary = re.fullmatch(
        rf'ours / timm time: {FLOAT}x \(ours (faster|slower)\); max \|feature difference\|: (\S+)', lines[start + 4]
    )
    assert summary, out
    assert float(summary.group(1)) == pytest.approx(figures['ratio'], abs=1e-3)
    assert (summary.group(2) == 'faster') == (figures['ratio'] < 1)
    assert float(summary.group(3)) == pytest.approx(figures['max_abs_diff'], rel=0.01, abs=1e-12)
