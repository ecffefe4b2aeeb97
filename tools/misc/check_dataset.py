"""Check an AGD20K / HICO-IIF tree before training: every problem at once.

Examples::

    python tools/misc/check_dataset.py --data-root data/AGD20K --dataset AGD20K --split Seen
    python tools/misc/check_dataset.py --data-root data/HICO-IIF --dataset HICO-IIF --nproc 8
    python tools/misc/check_dataset.py --config configs/looptrans_synthetic.py --json report.json

Lists the problems by kind with their paths (what the datasets do with each
and the fix), counts the files per affordance/object (exocentric,
egocentric, test images, GT) and decodes every image and GT file with the
training decoder, with a progress bar. Exit code 1 when there is an error
(the dataset would refuse the tree, a file cannot be read), 0 when there are
only warnings. The catalogue of problems is ``docs/bad_inputs.md``.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from looptrans.datasets import AffordanceFolderDataset, checks
from looptrans.datasets.agd20k import AGD20KDataset
from looptrans.datasets.classes import default_split
from looptrans.datasets.hico_iif import HICOIIFDataset

#: ``--dataset`` names (case-insensitive) -> dataset class.
DATASET_NAMES = {'agd20k': AGD20KDataset, 'hico-iif': HICOIIFDataset,
                 'hico_iif': HICOIIFDataset, 'hicoiif': HICOIIFDataset}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('--config', help='take dataset type, data_root, '
                        'split and classes from this config '
                        '(train_dataloader / test_dataloader)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries (key=value)')
    parser.add_argument('--data-root', help='dataset root (overrides the '
                        "config's)")
    parser.add_argument('--dataset', help='AGD20K or HICO-IIF (default: '
                        'from --config, else AGD20K)')
    parser.add_argument('--split', help='folder under data_root holding '
                        'trainset/ and testset/ (default: the config\'s, else '
                        'the dataset\'s: AGD20K Seen, HICO-IIF none); "none" '
                        'for no split folder')
    parser.add_argument('--classes', nargs='+', help='class list (default: '
                        "the config's, else the dataset's published one)")
    parser.add_argument('--mode', choices=['train', 'test', 'both'],
                        default='both', help='which part of the tree')
    parser.add_argument('--decode', choices=['full', 'header', 'none'],
                        default='full', help='decode every file (full), '
                        'parse headers only (header), or check the layout '
                        'only (none)')
    parser.add_argument('--exif-orientation', choices=['ignore', 'apply'],
                        help='how the pipeline treats EXIF-rotated images: '
                        'read as stored (ignore, LoadAffordanceViews\' '
                        'default) or turned upright (apply); default: the '
                        "config's LoadAffordanceViews, else ignore. Image "
                        'sizes (and GT size checks) follow it')
    parser.add_argument('--nproc', type=int, default=1,
                        help='processes used to decode')
    parser.add_argument('--min-size', type=int, default=224,
                        help='report images with a side below this (info)')
    parser.add_argument('--counts', choices=['object', 'affordance', 'none'],
                        default='object', help='rows of the count table')
    parser.add_argument('--max-paths', type=int, default=20,
                        help='paths printed per problem kind (-1: all)')
    parser.add_argument('--json', metavar='OUT',
                        help='also write the full report as JSON')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
    return parser.parse_args(argv)


def _dataset_cfg(cfg: Config) -> dict:
    """The affordance dataset config of a config's train (or test) loader,
    unwrapping dataset wrappers."""
    for loader in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        ds = cfg.get(loader, {}).get('dataset') if cfg.get(loader) else None
        while isinstance(ds, dict) and 'dataset' in ds and 'data_root' not in ds:
            ds = ds['dataset']
        if isinstance(ds, dict) and 'data_root' in ds:
            return dict(ds)
    raise SystemExit(f'error: no dataset with a data_root in the '
                     f'train/test dataloaders of {cfg.filename!r}.')


def _dataset_class(name: str) -> type:
    from mmseg.registry import DATASETS
    key = name.lower()
    if key in DATASET_NAMES:
        return DATASET_NAMES[key]
    init_default_scope('mmseg')
    cls = DATASETS.get(name)
    if cls is None or not issubclass(cls, AffordanceFolderDataset):
        raise SystemExit(
            f'error: unknown dataset {name!r}; use AGD20K or HICO-IIF (or '
            'the name of a registered AffordanceFolderDataset subclass).')
    return cls


def _loader_ignores_orientation(pipeline: Sequence[dict]) -> bool:
    """``ignore_orientation`` of the pipeline's ``LoadAffordanceViews``
    (its default, True, when the pipeline has none or does not set it)."""
    for t in pipeline:
        if isinstance(t, dict) and str(t.get('type', '')).split('.')[-1] \
                == 'LoadAffordanceViews':
            return bool(t.get('ignore_orientation', True))
    return True


def resolve(args: argparse.Namespace) -> dict:
    """Dataset class, data_root, split, classes, suffixes from the
    arguments and the optional config (arguments win)."""
    ds_cfg: dict = {}
    if args.config:
        if not osp.isfile(args.config):
            raise SystemExit(f'error: config {args.config!r} does not exist.')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        ds_cfg = _dataset_cfg(cfg)
    cls = _dataset_class(args.dataset or ds_cfg.get('type') or 'AGD20K')
    data_root = args.data_root or ds_cfg.get('data_root')
    if not data_root:
        raise SystemExit('error: give --data-root (or --config).')
    if args.split is not None:
        split = None if args.split.lower() == 'none' else args.split
    elif 'split' in ds_cfg:
        split = ds_cfg['split']
    else:  # the dataset class's own default (AGD20K: 'Seen', HICO-IIF: None)
        split = default_split(cls)
    metainfo = ds_cfg.get('metainfo') or {}
    if args.classes:
        classes = tuple(args.classes)
    elif metainfo.get('classes'):
        classes = tuple(metainfo['classes'])
    else:
        try:
            classes = cls.default_classes(split)
        except ValueError as err:
            raise SystemExit(f'error: {err} (CLI: --classes a b c)')
    if args.exif_orientation is not None:
        ignore_orientation = args.exif_orientation == 'ignore'
    else:
        ignore_orientation = _loader_ignores_orientation(
            ds_cfg.get('pipeline') or [])
    return dict(
        cls=cls, data_root=data_root, split=split, classes=classes,
        ignore_orientation=ignore_orientation,
        img_suffixes=tuple(ds_cfg.get('img_suffixes', checks.IMG_SUFFIXES)),
        gt_suffix=ds_cfg.get('gt_suffix', '.png'),
        backend_args=ds_cfg.get('backend_args'))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the check, print the report; return the exit code."""
    args = parse_args(argv)
    r = resolve(args)
    modes: Tuple[str, ...] = (('train', 'test') if args.mode == 'both' else
                              (args.mode, ))
    decode = None if args.decode == 'none' else args.decode
    name = r['cls'].LAYOUT_NAME
    exif = 'ignore' if r['ignore_orientation'] else 'apply'
    print(f'Checking {name} at {r["data_root"]!r} (split={r["split"]!r}, '
          f'{len(r["classes"])} classes, {"+".join(modes)}, '
          f'decode={args.decode}, exif-orientation={exif})', flush=True)
    report = checks.check_tree(
        r['data_root'], r['classes'], split=r['split'], modes=modes,
        decode=decode, dataset=name, img_suffixes=r['img_suffixes'],
        gt_suffix=r['gt_suffix'], min_size=args.min_size,
        backend_args=r['backend_args'], nproc=args.nproc,
        progress=not args.no_progress, progress_file=sys.stderr,
        ignore_orientation=r['ignore_orientation'])
    out: List[str] = []
    if args.counts != 'none' and report.counts:
        out += ['', 'Files per ' + args.counts + ':',
                report.format_counts(args.counts)]
    out += ['', 'Problems:', report.format_problems(args.max_paths), '',
            report.format_summary()]
    print('\n'.join(out), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report.to_dict(), f, indent=1)
        print(f'Wrote the report to {args.json}')
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
