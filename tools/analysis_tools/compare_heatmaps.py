"""Score one checkpoint with every test-time heatmap source, to choose ``model.test_cfg.heatmap``.

The sources (see ``LoopTrans.decode_heatmaps``): ``pixel`` (pixel head sigmoid), ``pixel_logits``,
``cam`` (ego CAM) and ``fusion`` (pixel sigmoid x min-max CAM). Choose on a **validation** split, never on
the test split. On the generated data, a validation split is another seed of the generator::

    python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k_val --seed 1 --splits Seen
    python tools/analysis_tools/compare_heatmaps.py configs/looptrans_synthetic.py \\
        work_dirs/looptrans_synthetic/iter_200.pth --data-root data/synthetic_agd20k_val

It prints one Markdown table row per source (the config's test metric: KLD / SIM / NSS, or AUC-J).
"""

import argparse
import os.path as osp
from typing import Dict, List, Sequence

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import looptrans  # noqa: F401  (registers modules, enables safe checkpoint loading)
from looptrans.models.segmentors.looptrans import HEATMAP_SOURCES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', help="evaluate on this tree's test set (a validation split)")
    parser.add_argument('--sources', nargs='+', default=list(HEATMAP_SOURCES), choices=HEATMAP_SOURCES)
    parser.add_argument('--work-dir', help='logs go here (default: work_dirs/compare_heatmaps/<config>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def compare(cfg: Config, sources: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Test metrics of each heatmap source, from one runner (the checkpoint is loaded once)."""
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    results = {}
    for source in sources:
        model.test_cfg['heatmap'] = source
        results[source] = dict(runner.test())
    return results


def format_table(results: Dict[str, Dict[str, float]]) -> List[str]:
    keys = list(next(iter(results.values())))
    lines = ['| heatmap | ' + ' | '.join(keys) + ' |', '| --- |' + ' --- |' * len(keys)]
    for source, metrics in results.items():
        lines.append(f'| {source} | ' + ' | '.join(f'{metrics[k]:.4f}' for k in keys) + ' |')
    return lines


def main(argv=None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        cfg.test_dataloader.dataset.data_root = args.data_root
    cfg.work_dir = args.work_dir or osp.join(
        'work_dirs', 'compare_heatmaps', osp.splitext(osp.basename(args.config))[0]
    )
    cfg.load_from = args.checkpoint
    cfg.launcher = 'none'
    cfg.default_hooks.visualization = dict(type='AffordanceVisualizationHook', draw=False)
    results = compare(cfg, args.sources)
    print('\n'.join(format_table(results)))
    return results


if __name__ == '__main__':
    main()
