"""Small synthetic OPRA and EPIC-Hotspots trees, in the published file formats, with a learnable signal.

The pictures come from :mod:`looptrans.testing.synthetic_agd20k` (the synthetic AGD20K drawing code): objects
made of coloured parts, each affordance tied to one kind of part. Here

* a **clip** shows a person walking in from the bottom of a cluttered scene until the hand (or the hips, for
  ``ride`` / ``sit``) reaches the verb's part, then holding it there; the scene and the person's look are
  fixed over the clip, only the person moves;
* a **static / inactive image** is the object alone (the synthetic egocentric image);
* the annotated **points** of a test image are drawn from the verb's part (pixels above half the peak of the
  part's blurred mask), written in each benchmark's convention: OPRA ``[row, col]`` with ``shape = [H, W]``,
  EPIC ``[x, y]`` with ``shape = [W, H]`` (transposed after rendering, see
  :mod:`looptrans.datasets.hotspots_gt`).

The verbs are named differently from the synthetic AGD20K affordances on purpose
(:data:`SYNTHETIC_OPRA_VERB_MAP`, :data:`SYNTHETIC_EPIC_VERB_MAP`), so the image-to-video configs exercise
the verb -> affordance mapping. Files are byte-identical for a seed.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import shutil
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

# The drawing code of the synthetic AGD20K generator (scene, person, noise, seeding, writing).
from .synthetic_agd20k import (
    AFFORDANCE_PARTS,
    HIPS_CONTACT,
    add_noise,
    clutter_background,
    clutter_scene,
    draw_person,
    make_rng,
    render_egocentric,
    write_image,
)

#: OPRA-style verb -> synthetic AGD20K affordance (the image-to-video mapping of the synthetic trees).
SYNTHETIC_OPRA_VERB_MAP: Dict[str, str] = OrderedDict(
    [
        ('cut', 'cut_with'),
        ('drink', 'drink_with'),
        ('hold', 'hold'),
        ('pour', 'pour'),
        ('push', 'push'),
        ('ride', 'ride'),
        ('sit', 'sit_on'),
    ]
)
#: EPIC-style verb -> synthetic AGD20K affordance.
SYNTHETIC_EPIC_VERB_MAP: Dict[str, str] = OrderedDict(
    [
        ('cut', 'cut_with'),
        ('drink', 'drink_with'),
        ('pour', 'pour'),
        ('push', 'push'),
        ('ride', 'ride'),
        ('sit-on', 'sit_on'),
        ('take', 'hold'),
    ]
)
SYNTHETIC_OPRA_VERBS: Tuple[str, ...] = tuple(SYNTHETIC_OPRA_VERB_MAP)
SYNTHETIC_EPIC_VERBS: Tuple[str, ...] = tuple(SYNTHETIC_EPIC_VERB_MAP)
#: Object names (the ``nouns`` of both trees).
SYNTHETIC_NOUNS: Tuple[str, ...] = tuple(sorted({o for objs in AFFORDANCE_PARTS.values() for o in objs}))

JPEG = [cv2.IMWRITE_JPEG_QUALITY, 90]


def verb_pairs(verb_map: Dict[str, str]) -> List[Tuple[int, str, str]]:
    """``(verb index, affordance, object)`` for every object of every verb's affordance."""
    return [(v, aff, obj) for v, aff in enumerate(verb_map.values()) for obj in sorted(AFFORDANCE_PARTS[aff])]


def render_clip(
    aff: str, obj: str, rng: np.random.Generator, num_frames: int, size: Tuple[int, int] = (256, 256)
) -> List[np.ndarray]:
    """Frames (BGR uint8, ``size = (h, w)``) of a person reaching ``obj``'s part for ``aff``.

    The contact point moves from below the scene to the part's centre over the first 60% of the clip and
    stays there; every frame has its own sensor noise.
    """
    h, w = size
    scene, contact = clutter_scene(aff, obj, h, w, rng)
    start = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.8, 1.0) * h])
    person_seed = int(rng.integers(2**31))
    reach = max(1, int(round(0.6 * (num_frames - 1))))
    frames = []
    for t in range(num_frames):
        progress = 1.0 if num_frames == 1 else min(1.0, t / reach)
        img = scene.copy()
        # the same generator state every frame: the same person, moved
        draw_person(img, start + progress * (contact - start), aff in HIPS_CONTACT, np.random.default_rng(person_seed))
        frames.append(add_noise(img, 4.0, rng))
    return frames


def sample_points(heat: np.ndarray, rng: np.random.Generator, num: Tuple[int, int] = (3, 9)) -> np.ndarray:
    """``(N, 2)`` float ``(row, col)`` points inside the part: pixels of ``heat`` >= half its peak, each
    moved by a sub-pixel offset."""
    rows, cols = np.nonzero(heat >= 0.5 * heat.max())
    picks = rng.integers(len(rows), size=int(rng.integers(num[0], num[1] + 1)))
    return np.stack([rows[picks], cols[picks]], axis=1) + rng.random((len(picks), 2))


def _prepare(out_dir: str, overwrite: bool) -> None:
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(
                f'{out_dir!r} exists and is not empty; pass overwrite=True (CLI: '
                '--overwrite) or choose another output folder.'
            )
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)


def _check_counts(**counts: int) -> None:
    bad = {k: v for k, v in counts.items() if not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f'{", ".join(bad)} must be ints >= 1, got {bad}')


def _write_json(path: str, data: dict) -> int:
    text = json.dumps(data, indent=1)
    with open(path, 'w') as f:
        f.write(text)
    return len(text)


def generate_synthetic_opra(
    out_dir: str,
    seed: int = 0,
    num_clips: int = 2,
    num_frames: int = 8,
    num_test: int = 2,
    frame_size: Tuple[int, int] = (256, 256),
    size_range: Tuple[int, int] = (224, 320),
    overwrite: bool = False,
) -> dict:
    """Write a synthetic OPRA tree (see :class:`~looptrans.datasets.OPRADataset`).

    ::

        <out_dir>/annotations.json
        <out_dir>/data/frames/synthetic/<verb>/<object>/<k>.0_0.0.mp4/image-%08d.jpg
        <out_dir>/data/images/synthetic/<verb>/<object>/{static,test_NNN}.jpg

    Every (verb, object) pair gets ``num_clips`` clips of ``num_frames`` frames (``frame_size``, OPRA's
    frames are 256x256), one static product image (the clips' egocentric view; also a ``train_images``
    entry) and ``num_test`` test images with points.

    Returns:
        dict: ``out_dir``, ``seed``, ``verbs``, ``nouns``, ``num_clips``, ``num_frames``, ``num_test``,
        ``num_files`` and ``num_bytes``.
    """
    _check_counts(num_clips=num_clips, num_frames=num_frames, num_test=num_test)
    _prepare(out_dir, overwrite)
    verbs = SYNTHETIC_OPRA_VERBS
    ann = OrderedDict(
        verbs=list(verbs), nouns=list(SYNTHETIC_NOUNS), train_clips=[], test_clips=[], train_images=[], test_images=[]
    )
    n_files = n_bytes = 0
    for v, aff, obj in verb_pairs(SYNTHETIC_OPRA_VERB_MAP):
        product = ['synthetic', verbs[v], obj]
        img_dir = osp.join(out_dir, 'data', 'images', *product)
        static, heat = render_egocentric(aff, obj, make_rng(seed, 'opra', 'static', aff, obj), size_range)
        n_bytes += write_image(osp.join(img_dir, 'static.jpg'), '.jpg', static, JPEG)
        n_files += 1
        ann['train_images'].append(
            dict(
                image=product + ['static.jpg'],
                verb=v,
                noun=SYNTHETIC_NOUNS.index(obj),
                points=sample_points(heat, make_rng(seed, 'opra', 'static_pts', aff, obj)).tolist(),
                shape=list(heat.shape),
            )
        )
        for k in range(num_clips):
            clip = product + [f'{k}.0', '0.0']
            clip_dir = osp.join(out_dir, 'data', 'frames', *product, f'{k}.0_0.0.mp4')
            frames = render_clip(aff, obj, make_rng(seed, 'opra', 'clip', aff, obj, index=k), num_frames, frame_size)
            for f, frame in enumerate(frames, start=1):
                n_bytes += write_image(osp.join(clip_dir, f'image-{f:08d}.jpg'), '.jpg', frame, JPEG)
            n_files += len(frames)
            ann['train_clips'].append(
                dict(
                    clip=clip,
                    verb=v,
                    noun=SYNTHETIC_NOUNS.index(obj),
                    nframes=num_frames,
                    image=product + ['static.jpg'],
                )
            )
        for i in range(num_test):
            rng = make_rng(seed, 'opra', 'test', aff, obj, index=i)
            img, heat = render_egocentric(aff, obj, rng, size_range)
            name = f'test_{i:03d}.jpg'
            n_bytes += write_image(osp.join(img_dir, name), '.jpg', img, JPEG)
            n_files += 1
            # OPRA convention: [row, col] points on an [H, W] shape, no transpose
            ann['test_images'].append(
                dict(
                    image=product + [name],
                    verb=v,
                    noun=SYNTHETIC_NOUNS.index(obj),
                    points=sample_points(heat, rng).tolist(),
                    shape=list(heat.shape),
                )
            )
    n_bytes += _write_json(osp.join(out_dir, 'annotations.json'), ann)
    return dict(
        out_dir=out_dir,
        seed=seed,
        verbs=verbs,
        nouns=SYNTHETIC_NOUNS,
        num_clips=len(ann['train_clips']),
        num_frames=num_frames,
        num_test=len(ann['test_images']),
        num_files=n_files + 1,
        num_bytes=n_bytes,
    )


def _paste(canvas: np.ndarray, img: np.ndarray, rng: np.random.Generator) -> List[int]:
    """Paste ``img`` at a random place of ``canvas``; return its box ``[x0, y0, x1, y1]``."""
    ch, cw = canvas.shape[:2]
    scale = min(1.0, 0.6 * ch / img.shape[0], 0.6 * cw / img.shape[1])
    if scale < 1.0:
        img = cv2.resize(
            img, (max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))), interpolation=cv2.INTER_AREA
        )
    h, w = img.shape[:2]
    x0, y0 = int(rng.integers(0, cw - w + 1)), int(rng.integers(0, ch - h + 1))
    canvas[y0 : y0 + h, x0 : x0 + w] = img
    return [x0, y0, x0 + w, y0 + h]


def generate_synthetic_epic(
    out_dir: str,
    seed: int = 0,
    num_clips: int = 2,
    num_frames: int = 8,
    num_inactive: int = 2,
    num_test: int = 2,
    frame_size: Tuple[int, int] = (256, 320),
    size_range: Tuple[int, int] = (160, 224),
    overwrite: bool = False,
) -> dict:
    """Write a synthetic EPIC-Hotspots tree (see :class:`~looptrans.datasets.EPICHotspotsDataset`).

    ::

        <out_dir>/annotations.json
        <out_dir>/frames_rgb_flow/rgb/train/P01/P01_NN/frame_%010d.jpg      # clips (every 10th frame)
        <out_dir>/object_detection_images/train/P02/P02_NN/%010d.jpg        # inactive objects + boxes
        <out_dir>/images/P03_NN_MMM.jpg                                     # test crops

    Every (verb, object) pair gets a video ``P01_NN`` with ``num_clips`` clips; only the frames the dataset
    reads (``start, start + 10, ..., stop``) are written. Every object gets ``num_inactive`` detection frames
    (``frame_size``) showing it alone in a box; every pair gets ``num_test`` inactive crops with points.

    Returns:
        dict: ``out_dir``, ``seed``, ``verbs``, ``nouns``, ``num_clips``, ``num_frames``, ``num_inactive``,
        ``num_test``, ``num_files`` and ``num_bytes``.
    """
    _check_counts(num_clips=num_clips, num_frames=num_frames, num_inactive=num_inactive, num_test=num_test)
    _prepare(out_dir, overwrite)
    verbs = SYNTHETIC_EPIC_VERBS
    ann = OrderedDict(
        verbs=list(verbs),
        nouns=list(SYNTHETIC_NOUNS),
        train_clips=[],
        test_clips=[],
        train_images=[],
        test_images=[],
        inactive_images=OrderedDict(),
    )
    frames_root = osp.join(out_dir, 'frames_rgb_flow', 'rgb', 'train')
    det_root = osp.join(out_dir, 'object_detection_images', 'train')
    n_files = n_bytes = 0
    pairs = verb_pairs(SYNTHETIC_EPIC_VERB_MAP)
    for p, (v, aff, obj) in enumerate(pairs, start=1):
        v_id = f'P01_{p:02d}'
        for k in range(num_clips):
            start = 1 + 1000 * k
            stop = start + 10 * (num_frames - 1)
            frames = render_clip(aff, obj, make_rng(seed, 'epic', 'clip', aff, obj, index=k), num_frames, frame_size)
            for j, frame in enumerate(frames):
                n_bytes += write_image(
                    osp.join(frames_root, 'P01', v_id, f'frame_{start + 10 * j:010d}.jpg'), '.jpg', frame, JPEG
                )
            n_files += len(frames)
            ann['train_clips'].append(dict(v_id=v_id, start=start, stop=stop, verb=v, noun=SYNTHETIC_NOUNS.index(obj)))
        for i in range(num_test):
            rng = make_rng(seed, 'epic', 'test', aff, obj, index=i)
            img, heat = render_egocentric(aff, obj, rng, size_range)
            name = f'P03_{p:02d}_{i:03d}.jpg'
            n_bytes += write_image(osp.join(out_dir, 'images', name), '.jpg', img, JPEG)
            n_files += 1
            # EPIC convention: [x, y] points on a [W, H] shape, transposed after rendering
            points = sample_points(heat, rng)[:, ::-1]
            ann['test_images'].append(
                dict(
                    image=[name],
                    verb=v,
                    noun=SYNTHETIC_NOUNS.index(obj),
                    points=points.tolist(),
                    shape=[heat.shape[1], heat.shape[0]],
                )
            )
    for n, obj in enumerate(SYNTHETIC_NOUNS, start=1):
        aff = next(a for _, a, o in pairs if o == obj)  # any affordance of the object: only the image is used
        v_id = f'P02_{n:02d}'
        ann['inactive_images'][obj] = []
        for i in range(num_inactive):
            rng = make_rng(seed, 'epic', 'inactive', obj, index=i)
            canvas = clutter_background(frame_size[0], frame_size[1], rng)
            img, _ = render_egocentric(aff, obj, rng, size_range)
            box = _paste(canvas, img, rng)
            f_id = 100 * (i + 1)
            n_bytes += write_image(osp.join(det_root, 'P02', v_id, f'{f_id:010d}.jpg'), '.jpg', canvas, JPEG)
            n_files += 1
            ann['inactive_images'][obj].append(dict(v_id=v_id, f_id=f_id, box=box))
    n_bytes += _write_json(osp.join(out_dir, 'annotations.json'), ann)
    return dict(
        out_dir=out_dir,
        seed=seed,
        verbs=verbs,
        nouns=SYNTHETIC_NOUNS,
        num_clips=len(ann['train_clips']),
        num_frames=num_frames,
        num_inactive=num_inactive * len(SYNTHETIC_NOUNS),
        num_test=len(ann['test_images']),
        num_files=n_files + 1,
        num_bytes=n_bytes,
    )


def generate_synthetic_video(
    out_dir: str, datasets: Sequence[str] = ('opra', 'epic'), seed: int = 0, overwrite: bool = False, **kwargs
) -> Dict[str, dict]:
    """Write ``<out_dir>/synthetic_opra`` and / or ``<out_dir>/synthetic_epic``; ``kwargs`` (``num_clips``,
    ``num_frames``, ``num_test``) go to both generators."""
    makers = dict(opra=generate_synthetic_opra, epic=generate_synthetic_epic)
    unknown = sorted(set(datasets) - set(makers))
    if unknown:
        raise ValueError(f'unknown dataset(s) {unknown}; choose from {sorted(makers)}')
    return {
        name: makers[name](osp.join(out_dir, f'synthetic_{name}'), seed=seed, overwrite=overwrite, **kwargs)
        for name in datasets
    }
