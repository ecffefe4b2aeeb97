"""Write a copy of a checkpoint whose CAM projection's BatchNorm statistics are re-estimated on one view's images.

Example::

    python tools/misc/reestimate_norm_stats.py configs/looptrans_agd20k.py \\
        work_dirs/looptrans_agd20k/epoch_15.pth work_dirs/looptrans_agd20k/epoch_15_ego_stats.pth
    python tools/test.py configs/looptrans_agd20k.py work_dirs/looptrans_agd20k/epoch_15_ego_stats.pth \\
        --cfg-options model.test_cfg.heatmap=cam

Why: a shared CAM projection run once per view in training (the published code's call) keeps running statistics
that blend the exocentric and the egocentric batches; at test time the egocentric CAM is normalised with that blend,
which it never had in a training step (``looptrans.apis.norm_stats``). This matters where the CAM itself is scored
or read (``model.test_cfg.heatmap=cam``, the ablation rows without the pixel head, ``eval_cam_pointing.py``); the
full model's test map, the pixel decoder, skips the projection and does not change.

The images are the view's training images of the config's training tree (``--data-root`` / ``--split`` override
it), or every image under ``--images DIR`` (another layout, your own images); each is prepared as ``tools/test.py``
prepares a test image, in batches of the training batch size unless ``--batch-size`` says otherwise. Only the
statistics of that projection's BatchNorm layers change; every other tensor of the checkpoint, and its meta, are
copied as they are, and ``meta.norm_stats`` records what was done.
"""

from __future__ import annotations

import argparse
import io
import os
import os.path as osp
import pickle
from typing import List, Optional, Sequence

import torch
from mmengine.config import DictAction

from looptrans.apis import init_model, norm_stats_state, reestimate_cam_norm_stats, view_training_images
from looptrans.apis.images import IMAGE_EXTENSIONS
from looptrans.utils.atomic_backend import atomic_write_bytes
from looptrans.utils.checkpoint import safe_torch_load
from looptrans.utils.cli import positive_int
from looptrans.utils.config_check import innermost_dataset


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='the checkpoint to copy (never modified)')
    parser.add_argument('out', help='where to write the copy with re-estimated statistics')
    parser.add_argument('--view', choices=['ego', 'exo'], default='ego', help="the view's images (default: ego)")
    parser.add_argument('--data-root', help="the training tree (default: the config's training data_root)")
    parser.add_argument('--split', help="its split folder (default: the config's training split, e.g. Seen)")
    parser.add_argument('--images', help='every image under this folder instead of the training tree')
    parser.add_argument('--batch-size', type=positive_int, help="default: the config's training batch size")
    parser.add_argument('--max-images', type=positive_int, help='at most this many images, evenly spaced')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, help='override config keys')
    args = parser.parse_args(argv)
    if args.images and (args.data_root or args.split):
        parser.error('--images replaces the training tree; drop --data-root / --split')
    if osp.exists(args.out) and osp.exists(args.checkpoint) and osp.samefile(args.out, args.checkpoint):
        parser.error(f'OUT {args.out!r} is the checkpoint itself; write the copy to another file')
    return args


def folder_images(folder: str) -> List[str]:
    """Every image (by suffix) under ``folder``, recursively, sorted; a FileNotFoundError naming the folder
    when there are none."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'--images: no folder {folder!r}')
    found = sorted(
        osp.join(base, name)
        for base, dirs, names in os.walk(folder)
        for name in names
        if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not found:
        raise FileNotFoundError(f'--images: no image ({", ".join(IMAGE_EXTENSIONS)}) under {folder!r}')
    return found


def evenly_spaced(paths: Sequence[str], count: Optional[int]) -> List[str]:
    """``count`` of ``paths`` spread evenly over the sorted list (all of them without a count, or when fewer)."""
    if count is None or count >= len(paths):
        return list(paths)
    return [paths[(i * len(paths)) // count] for i in range(count)]


def choose_images(args: argparse.Namespace, cfg) -> List[str]:
    """The images the statistics are re-estimated on (see the module's docstring); a SystemExit naming the folder
    and the fix when there are none."""
    try:
        if args.images:
            paths = folder_images(args.images)
        else:
            dataset = innermost_dataset(cfg.train_dataloader.dataset)
            root = args.data_root or dataset.get('data_root')
            if not root:
                raise FileNotFoundError("the config's training dataset has no data_root; give --data-root")
            split = args.split if args.split is not None else dataset.get('split')
            paths = view_training_images(osp.expanduser(root), args.view, split)
    except FileNotFoundError as err:
        hint = '' if args.images else ' (a tree of another layout: give --images DIR)'
        raise SystemExit(f'error: {err}{hint}') from err
    return evenly_spaced(paths, args.max_images)


def write_checkpoint(source: str, out: str, stats: dict, record: dict) -> None:
    """Copy ``source`` to ``out`` with ``stats`` (state-dict key -> tensor) in its state dict and ``record`` in
    ``meta.norm_stats``; every other entry as it was. Written atomically (a kill leaves no half file)."""
    saved = safe_torch_load(source, map_location='cpu')
    state = saved.get('state_dict', saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise SystemExit(f'error: {source!r} holds no state dict')
    missing = [key for key in stats if key not in state]
    if missing:
        raise SystemExit(f'error: {source!r} has no entry {missing[0]!r}: is it a checkpoint of this config?')
    for key, value in stats.items():
        state[key] = value.detach().to(device='cpu', dtype=state[key].dtype).clone()
    if 'state_dict' in saved:
        meta = saved.get('meta')
        saved['meta'] = meta = meta if isinstance(meta, dict) else {}
        meta['norm_stats'] = record
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    atomic_write_bytes(buffer.getvalue(), out)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the tool; returns the ``meta.norm_stats`` record it wrote."""
    args = parse_args(argv)
    try:
        model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    except (ImportError, OSError, ValueError, RuntimeError, pickle.UnpicklingError) as err:
        # a missing, broken or unsafe file, weights or classes that do not fit the config
        raise SystemExit(f'error: {err}') from err
    paths = choose_images(args, model.cfg)
    batch_size = args.batch_size or int(model.cfg.train_dataloader.get('batch_size', 8))
    try:
        before = {k: v.clone() for k, v in norm_stats_state(model, args.view).items()}
        layers = reestimate_cam_norm_stats(model, paths, args.view, batch_size)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from err
    stats = norm_stats_state(model, args.view)
    shift = max(float((stats[k] - before[k]).abs().max()) for k in stats if k.endswith('running_mean'))
    projection = 'shared projection' if model.cam_head.shared else f'{args.view} projection'
    record = dict(
        view=args.view,
        images=len(paths),
        batch_size=batch_size,
        layers=layers,
        source=osp.abspath(args.checkpoint),
        images_from=osp.abspath(args.images) if args.images else osp.dirname(osp.dirname(osp.dirname(paths[0]))),
    )
    write_checkpoint(args.checkpoint, args.out, stats, record)
    print(
        f"the CAM's {projection}: {layers} BatchNorm layers re-estimated on {len(paths)} {args.view} images "
        f'(batches of {batch_size}; running means moved by up to {shift:.4g}); wrote {args.out}\n'
        f'score it with: python tools/test.py {args.config} {args.out}'
    )
    return record


if __name__ == '__main__':
    main()
