"""Write small synthetic OPRA and EPIC-Hotspots trees (clips, static images, annotations.json).

Example::

    python tools/misc/generate_synthetic_video.py --out data --seed 0  # data/synthetic_{opra,epic}

The same seed writes byte-identical files. Train on them with ``configs/looptrans_synthetic_opra.py`` /
``configs/looptrans_synthetic_epic.py``; ``configs/looptrans_synthetic_to_opra.py`` tests a model trained on
the synthetic AGD20K tree (``tools/misc/generate_synthetic_agd20k.py``) on the OPRA one.
"""

import argparse
import sys

from looptrans.testing import generate_synthetic_video


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data', help='parent folder (gets synthetic_opra/, synthetic_epic/)')
    parser.add_argument('--datasets', nargs='+', default=['opra', 'epic'], choices=['opra', 'epic'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-clips', type=int, default=2, help='clips per verb/object pair')
    parser.add_argument('--num-frames', type=int, default=8, help='frames per clip')
    parser.add_argument('--num-test', type=int, default=2, help='test images per verb/object pair')
    parser.add_argument('--overwrite', action='store_true', help='replace existing output folders')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        summaries = generate_synthetic_video(
            args.out,
            datasets=args.datasets,
            seed=args.seed,
            overwrite=args.overwrite,
            num_clips=args.num_clips,
            num_frames=args.num_frames,
            num_test=args.num_test,
        )
    except (FileExistsError, ValueError) as err:
        sys.exit(f'error: {err}')
    for name, info in summaries.items():
        print(
            f'{name}: {len(info["verbs"])} verbs {list(info["verbs"])}, {info["num_clips"]} clips of '
            f'{info["num_frames"]} frames, {info["num_test"]} test images; wrote '
            f'{info["num_files"]} files, {info["num_bytes"] / 2**20:.1f} MiB, to {info["out_dir"]}'
        )
    return summaries


if __name__ == '__main__':
    main()
