"""Score trivial predictors on a config's test set with the config's own evaluator.

The bar any trained model must clear: a uniform map (every pixel equal) and a centred Gaussian (the
"centre bias" of object-centric photos). Both go through the same dataset, pipeline and metric as
``tools/test.py``, so the figures are directly comparable with a model's.

    python tools/analysis_tools/eval_trivial_baselines.py configs/looptrans_synthetic.py
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmengine.utils import ProgressBar
from mmseg.registry import DATASETS, METRICS


def uniform_map(h: int, w: int) -> np.ndarray:
    """Every pixel equal."""
    return np.ones((h, w), np.float32)


def centred_gaussian(h: int, w: int, sigma_frac: float = 0.25) -> np.ndarray:
    """An isotropic Gaussian at the image centre, sigma = ``sigma_frac`` x the shorter side."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    sigma = sigma_frac * min(h, w)
    return np.exp(-(((ys - (h - 1) / 2) ** 2 + (xs - (w - 1) / 2) ** 2) / (2 * sigma**2))).astype(np.float32)


BASELINES: Dict[str, Callable[[int, int], np.ndarray]] = {
    'uniform': uniform_map,
    'centred_gaussian': centred_gaussian,
}


def evaluate_baselines(cfg: Config) -> Dict[str, Dict[str, float]]:
    """Metric results of each baseline on ``cfg``'s test set."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import looptrans  # noqa: F401

    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    metrics = {name: METRICS.build(evaluators[0]) for name in BASELINES}
    for metric in metrics.values():
        metric.dataset_meta = dataset.metainfo
    progress = ProgressBar(len(dataset))
    for idx in range(len(dataset)):
        sample = dataset[idx]['data_samples']
        h, w = sample.metainfo['img_shape'][:2]
        for name, make in BASELINES.items():
            out = sample.clone()
            out.pred_heatmap = PixelData(data=torch.from_numpy(make(h, w))[None])
            metrics[name].process({}, [out.to_dict()])
        progress.update()
    print()
    return {name: metric.evaluate(len(dataset)) for name, metric in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description='Score trivial heatmap predictors on a test set')
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    results = evaluate_baselines(cfg)
    for name, figures in results.items():
        print(f'{name:<18}' + '  '.join(f'{k}: {v:.4f}' for k, v in figures.items()))


if __name__ == '__main__':
    main()
