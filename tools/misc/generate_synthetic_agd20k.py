"""Write a small synthetic dataset in the AGD20K layout (Seen and Unseen).

Example::

    python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0

The same seed writes byte-identical files. ``--ego-scale LO HI`` and ``--part-thickness F`` draw the egocentric
objects larger and the stroked affordance parts thicker, ``--bold-parts`` the knife and scissors wider, their
blade steel blue and the bicycle's saddle and grip larger (studies of the generated benchmark,
``docs/generated_benchmark.md``); their defaults write the tree every figure of the docs was measured on.
Train on it with ``configs/_base_/datasets/synthetic_agd20k.py``.

With ``--scale-to-agd20k FRACTION`` it writes instead an AGD20K Seen tree at that share of AGD20K's real
counts (1 = 20,061 exocentric + 3,755 egocentric images, 36 affordances, 50 objects, 640x480 JPEGs, GT PNGs
for the test images), with plain fast drawings and no learnable signal: for measuring what the data code
costs at that size (``tools/analysis_tools/scale_study.py``)::

    python tools/misc/generate_synthetic_agd20k.py --out /tmp/agd20k_full --scale-to-agd20k 1 --nproc 2
"""

import argparse
import sys

from looptrans.testing import generate_synthetic_agd20k
from looptrans.testing.agd20k_scale import generate_agd20k_sized
from looptrans.testing.synthetic_agd20k import add_drawing_arguments


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic_agd20k', help='output folder (gets Seen/ and Unseen/)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-exo', type=int, default=10, help='exocentric training images per affordance/object')
    parser.add_argument('--num-ego', type=int, default=4, help='egocentric training images per affordance/object')
    parser.add_argument('--num-test', type=int, default=3, help='test images (with GT) per affordance/object')
    parser.add_argument('--splits', nargs='+', default=['Seen', 'Unseen'], choices=['Seen', 'Unseen'])
    parser.add_argument('--overwrite', action='store_true', help='replace existing split folders')
    add_drawing_arguments(parser)
    parser.add_argument(
        '--scale-to-agd20k',
        type=float,
        metavar='FRACTION',
        help="write an AGD20K Seen tree at this share (0 < FRACTION <= 1) of AGD20K's real counts and image "
        'size instead (fast plain drawings, for scale measurements; --num-* and --splits are ignored)',
    )
    parser.add_argument('--nproc', type=int, default=1, help='processes drawing the images (--scale-to-agd20k)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.scale_to_agd20k is not None:
        try:
            summary = generate_agd20k_sized(
                args.out, args.scale_to_agd20k, seed=args.seed, nproc=args.nproc, overwrite=args.overwrite
            )
        except (FileExistsError, ValueError) as err:
            sys.exit(f'error: {err}')
        print(
            f'Seen at {summary["fraction"]:g} of AGD20K: {len(summary["classes"])} classes, '
            f'{summary["num_objects"]} objects, {summary["num_folders"]} affordance/object folders, '
            f'{summary["num_exocentric"]} exocentric / {summary["num_egocentric"]} egocentric training images, '
            f'{summary["num_test"]} test images'
        )
        print(f'wrote {summary["num_files"]} files, {summary["num_bytes"] / 2**20:.1f} MiB, to {args.out}')
        return summary
    try:
        summary = generate_synthetic_agd20k(
            args.out,
            seed=args.seed,
            num_exo=args.num_exo,
            num_ego=args.num_ego,
            num_test=args.num_test,
            splits=args.splits,
            overwrite=args.overwrite,
            ego_scale=tuple(args.ego_scale),
            part_thickness=args.part_thickness,
            bold_parts=args.bold_parts,
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
