"""Write a small synthetic dataset in the AGD20K layout (Seen and Unseen).

Example::

    python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0

The same seed writes byte-identical files. Train on it with
``configs/_base_/datasets/synthetic_agd20k.py``.
"""

import argparse
import sys

from looptrans.testing import generate_synthetic_agd20k


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic_agd20k', help='output folder (gets Seen/ and Unseen/)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-exo', type=int, default=10, help='exocentric training images per affordance/object')
    parser.add_argument('--num-ego', type=int, default=4, help='egocentric training images per affordance/object')
    parser.add_argument('--num-test', type=int, default=3, help='test images (with GT) per affordance/object')
    parser.add_argument('--splits', nargs='+', default=['Seen', 'Unseen'], choices=['Seen', 'Unseen'])
    parser.add_argument('--overwrite', action='store_true', help='replace existing split folders')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        summary = generate_synthetic_agd20k(
            args.out,
            seed=args.seed,
            num_exo=args.num_exo,
            num_ego=args.num_ego,
            num_test=args.num_test,
            splits=args.splits,
            overwrite=args.overwrite,
        )
    except (FileExistsError, ValueError) as err:
        sys.exit(f'error: {err}')
    for split, info in summary['splits'].items():
        print(
            f'{split}: {len(info["classes"])} classes {list(info["classes"])}, '
            f'{info["num_exocentric"]} exocentric / {info["num_egocentric"]} '
            f'egocentric training images, {info["num_test"]} test images; '
            f'test objects {info["test_objects"]}'
        )
    print(f'wrote {summary["num_files"]} files, {summary["num_bytes"] / 2**20:.1f} MiB, to {summary["out_dir"]}')
    return summary


if __name__ == '__main__':
    main()
