"""Prepare and check an OPRA or EPIC-Hotspots tree before training.

Builds the dataset in test mode, which renders every GT heatmap from the annotated points once into
``<data_root>/gt_cache/`` (progress bar on large test sets; later runs reuse the files), and in train mode,
which finds the clips, frames and static / inactive images on disk. Missing data is logged with counts and
examples (the same messages training prints), then a table gives, per verb, the usable training clips and
test images.

    python tools/misc/prepare_hotspots.py --dataset OPRA --data-root data/opra
    python tools/misc/prepare_hotspots.py --config configs/looptrans_epic.py
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

DATASET_TYPES = {'OPRA': 'OPRADataset', 'EPIC': 'EPICHotspotsDataset'}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Build the GT cache and check an OPRA / EPIC tree')
    parser.add_argument('--dataset', choices=sorted(DATASET_TYPES), help='which benchmark')
    parser.add_argument('--data-root', help='root of the tree (holds annotations.json)')
    parser.add_argument('--config', help='take dataset type, data_root and options from this config instead')
    args = parser.parse_args()
    if not args.config and not (args.dataset and args.data_root):
        parser.error('give --config, or both --dataset and --data-root')
    return args


def dataset_cfgs(args: argparse.Namespace) -> Dict[str, dict]:
    """Train and test dataset configs (pipelines dropped: only the file lists are needed)."""
    if args.config:
        cfg = Config.fromfile(args.config)
        train = dict(cfg.train_dataloader.dataset)
        test = dict(cfg.test_dataloader.dataset)
    else:
        base = dict(type=DATASET_TYPES[args.dataset], data_root=args.data_root)
        train, test = dict(base, mode='train'), dict(base, mode='test')
    for cfg in (train, test):
        cfg['pipeline'] = []
        if args.data_root:
            cfg['data_root'] = args.data_root
    return dict(train=train, test=test)


def count_by_verb(dataset) -> Counter:
    return Counter(dataset.get_data_info(i)['verb'] for i in range(len(dataset)))


def main() -> Optional[int]:
    args = parse_args()
    init_default_scope('mmseg')
    import looptrans  # noqa: F401
    from looptrans.datasets import HotspotsVideoDataset

    counts = {}
    for mode, cfg in dataset_cfgs(args).items():
        dataset_cls = DATASETS.get(cfg['type'])
        if dataset_cls is None or not issubclass(dataset_cls, HotspotsVideoDataset):
            raise SystemExit(
                f'{cfg["type"]} is not an OPRA / EPIC-Hotspots dataset; '
                'use tools/misc/check_dataset.py for AGD20K / HICO-IIF'
            )
        dataset = DATASETS.build(cfg)
        counts[mode] = count_by_verb(dataset)
        print(f'{mode}: {len(dataset)} usable items')
    verbs = sorted(set(counts['train']) | set(counts['test']))
    print(f'\n{"verb":<20}{"train clips":>12}{"test images":>13}')
    for verb in verbs:
        print(f'{verb:<20}{counts["train"][verb]:>12}{counts["test"][verb]:>13}')
    print(f'{"total":<20}{sum(counts["train"].values()):>12}{sum(counts["test"].values()):>13}')
    empty = [v for v in verbs if not counts['train'][v] or not counts['test'][v]]
    if empty:
        print(f'\nwarning: verbs without training clips or test images: {", ".join(empty)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
