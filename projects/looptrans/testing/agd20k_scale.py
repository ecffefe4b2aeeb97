"""AGD20K Seen at its real size (or a fraction of it), drawn fast, to measure what the data code costs.

The small generated trees of :mod:`.synthetic_agd20k` have tens of images; the real AGD20K Seen split has
tens of thousands. This module writes a tree with AGD20K's counts, its 36 Seen affordance names, 50 object
folders and 640x480 JPEG images, so that dataset indexing, ``tools/misc/check_dataset.py``, the data
loader, the test pass and the metric can be timed at that size before a user meets it
(``tools/analysis_tools/scale_study.py``). The images carry no learnable signal: a plain background with
a fixed noise texture (so the JPEGs have a photo-like size), a few shapes, an "object" ellipse and, in
exocentric images, a stick figure. Each test image has a grayscale GT PNG of the same size (a Gaussian
blob on the object), 0..255 with a maximum of 255.

Counts (``AGD20K_EXOCENTRIC`` / ``AGD20K_EGOCENTRIC``) are those of Luo et al., "Learning Affordance
Grounding from Exocentric Images", CVPR 2022: 20,061 exocentric and 3,755 egocentric images in 36
affordances and 50 objects (its abstract says "over 20K images from 36 affordance categories"; the exact
figures are those of its dataset section, see ``docs/scale_study.md``). How the egocentric images split
between training and test (:data:`AGD20K_TEST_SHARE`) and which objects go with which affordance
(:data:`AGD20K_SEEN_PAIRS`) are assumptions of this module (plausible, not the published lists): the costs
measured depend on the numbers of files and folders, not on their names.

Files are byte-identical for a seed, whatever ``nproc``: each image has its own generator seeded from
(seed, set, affordance, object, index); the noise texture depends on the seed only.
"""

import json
import os
import os.path as osp
import shutil
from multiprocessing import get_context
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..datasets.agd20k import AGD20K_SEEN_CLASSES
from .synthetic_agd20k import make_rng

#: Exocentric / egocentric images of AGD20K (Luo et al., CVPR 2022, dataset section).
AGD20K_EXOCENTRIC: int = 20061
AGD20K_EGOCENTRIC: int = 3755
#: Share of the egocentric images that are test images (with GT); the rest are egocentric training
#: images. An assumption of this module (the split table of the paper was not available to it).
AGD20K_TEST_SHARE: float = 0.45
#: The 50 AGD20K object categories.
AGD20K_OBJECTS: Tuple[str, ...] = (
    'apple', 'axe', 'badminton_racket', 'banana', 'baseball', 'baseball_bat', 'basketball', 'bed', 'bench',
    'bicycle', 'binoculars', 'book', 'bottle', 'bowl', 'broccoli', 'camera', 'carrot', 'cell_phone', 'chair',
    'couch', 'cup', 'discus', 'drum', 'fork', 'frisbee', 'golf_clubs', 'hammer', 'hot_dog', 'javelin',
    'keyboard', 'knife', 'laptop', 'microwave', 'motorcycle', 'orange', 'oven', 'pen', 'punching_bag',
    'refrigerator', 'rugby_ball', 'scissors', 'skateboard', 'skis', 'snowboard', 'soccer_ball', 'suitcase',
    'surfboard', 'tennis_racket', 'toothbrush', 'wine_glass',
)  # fmt: skip
#: affordance -> its objects (every Seen affordance, every object at least once). Plausible, not published.
AGD20K_SEEN_PAIRS: Dict[str, Tuple[str, ...]] = {
    'beat': ('drum',),
    'boxing': ('punching_bag',),
    'brush_with': ('toothbrush',),
    'carry': ('skateboard', 'skis', 'snowboard', 'suitcase', 'surfboard'),
    'catch': ('baseball', 'basketball', 'frisbee', 'rugby_ball', 'soccer_ball'),
    'cut': ('apple', 'banana', 'broccoli', 'carrot', 'hot_dog', 'orange'),
    'cut_with': ('axe', 'knife', 'scissors'),
    'drag': ('suitcase',),
    'drink_with': ('bottle', 'cup', 'wine_glass'),
    'eat': ('apple', 'banana', 'broccoli', 'carrot', 'hot_dog', 'orange'),
    'hit': ('axe', 'badminton_racket', 'baseball_bat', 'hammer', 'tennis_racket'),
    'hold': (
        'axe',
        'badminton_racket',
        'baseball_bat',
        'book',
        'bottle',
        'bowl',
        'camera',
        'cell_phone',
        'cup',
        'fork',
        'golf_clubs',
        'hammer',
        'knife',
        'pen',
        'scissors',
        'tennis_racket',
        'toothbrush',
        'wine_glass',
    ),  # fmt: skip
    'jump': ('skateboard', 'skis', 'snowboard', 'surfboard'),
    'kick': ('punching_bag', 'soccer_ball'),
    'lie_on': ('bed', 'bench', 'couch'),
    'lift': ('fork',),
    'look_out': ('binoculars',),
    'open': ('book', 'bottle', 'microwave', 'oven', 'refrigerator', 'suitcase'),
    'pack': ('suitcase',),
    'peel': ('apple', 'banana', 'carrot', 'orange'),
    'pick_up': ('skis', 'suitcase'),
    'pour': ('bottle', 'cup', 'wine_glass'),
    'push': ('bicycle', 'motorcycle'),
    'ride': ('bicycle', 'motorcycle'),
    'sip': ('bottle', 'cup', 'wine_glass'),
    'sit_on': ('bed', 'bench', 'bicycle', 'chair', 'couch', 'motorcycle', 'skateboard', 'surfboard'),
    'stick': ('fork', 'knife'),
    'stir': ('bowl',),
    'swing': ('badminton_racket', 'baseball_bat', 'golf_clubs', 'tennis_racket'),
    'take_photo': ('camera', 'cell_phone'),
    'talk_on': ('cell_phone',),
    'text_on': ('cell_phone',),
    'throw': ('baseball', 'basketball', 'discus', 'frisbee', 'javelin', 'rugby_ball', 'soccer_ball'),
    'type_on': ('keyboard', 'laptop'),
    'wash': ('bowl', 'cup', 'fork', 'knife', 'wine_glass'),
    'write': ('pen',),
}
#: Image size (width, height) of every generated file.
IMAGE_SIZE: Tuple[int, int] = (640, 480)
#: Written last into ``<out_dir>/Seen``: the summary; its presence marks a complete tree.
SUMMARY_FILE = 'agd20k_scale.json'


def seen_pairs() -> List[Tuple[str, str]]:
    """The (affordance, object) folders of the tree, sorted."""
    return [(a, o) for a in AGD20K_SEEN_CLASSES for o in sorted(AGD20K_SEEN_PAIRS[a])]


def split_counts(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` spread over ``len(weights)`` folders in proportion to ``weights``, at least 1 each.

    Largest-remainder rounding, so the counts sum to exactly ``max(total, len(weights))``.
    """
    n = len(weights)
    total = max(int(total), n)
    share = np.asarray(weights, np.float64) / np.sum(weights) * (total - n)
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind='stable')
    counts[order[: total - n - int(counts.sum())]] += 1
    return counts + 1


def agd20k_counts(fraction: float, seed: int = 0) -> Dict[str, Dict[Tuple[str, str], int]]:
    """Images per folder of each set (``'exocentric'``, ``'egocentric'``, ``'test'``) at ``fraction`` of
    AGD20K's size. Folder sizes are uneven, as in AGD20K (log-normal weights drawn from ``seed``)."""
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must be in (0, 1], got {fraction!r}.')
    pairs = seen_pairs()
    rng = make_rng(seed, 'agd20k-scale', 'weights')
    n_test = round(AGD20K_EGOCENTRIC * AGD20K_TEST_SHARE)
    totals = dict(
        exocentric=AGD20K_EXOCENTRIC * fraction,
        egocentric=(AGD20K_EGOCENTRIC - n_test) * fraction,
        test=n_test * fraction,
    )
    out = {}
    for name, total in totals.items():
        weights = rng.lognormal(0.0, 0.6, size=len(pairs))
        out[name] = dict(zip(pairs, split_counts(round(total), weights).tolist()))
    return out


def _texture(seed: int) -> np.ndarray:
    """A blurred noise tile twice the image size (uint8, 0..~30), added to every image at a random offset."""
    w, h = IMAGE_SIZE
    rng = make_rng(seed, 'agd20k-scale', 'texture')
    noise = rng.integers(0, 40, size=(2 * h, 2 * w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 0.8)


def render_image(kind: str, rng: np.random.Generator, texture: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """A BGR 640x480 image of set ``kind`` and, for ``'test'``, its GT heatmap (uint8, max 255)."""
    w, h = IMAGE_SIZE
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(40, 200, size=3, dtype=np.uint8)
    ox, oy = int(rng.integers(0, w)), int(rng.integers(0, h))
    img = cv2.add(img, texture[oy : oy + h, ox : ox + w])
    for _ in range(int(rng.integers(3, 8))):
        color = rng.integers(0, 256, size=3).tolist()
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(10, 90))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x - r, y - r // 2), (x + r, y + r // 2), color, -1)
        else:
            cv2.circle(img, (x, y), r, color, -1, cv2.LINE_AA)
    cx, cy = int(rng.integers(160, w - 160)), int(rng.integers(120, h - 120))
    ax, ay = int(rng.integers(50, 140)), int(rng.integers(40, 100))
    cv2.ellipse(img, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, rng.integers(0, 256, 3).tolist(), -1)
    px, py = cx + int(rng.integers(-ax // 2, ax // 2 + 1)), cy + int(rng.integers(-ay // 2, ay // 2 + 1))
    cv2.circle(img, (px, py), max(ay // 3, 8), rng.integers(0, 256, 3).tolist(), -1, cv2.LINE_AA)
    if kind == 'exocentric':  # a stick figure touching the part
        head = (px + int(rng.integers(-120, 121)), max(40, py - int(rng.integers(120, 200))))
        hip = (head[0], min(h - 60, head[1] + 150))
        skin = rng.integers(60, 240, 3).tolist()
        cv2.circle(img, head, 28, skin, -1, cv2.LINE_AA)
        cv2.line(img, head, hip, skin, 16, cv2.LINE_AA)
        cv2.line(img, (head[0], head[1] + 50), (px, py), skin, 10, cv2.LINE_AA)
    if kind != 'test':
        return img, None
    # GT: a Gaussian on the part, computed at 1/8 resolution and upsampled (fast, smooth)
    s = 8
    yy, xx = np.mgrid[0 : h // s, 0 : w // s].astype(np.float32)
    sigma = max(ay / 2, 12.0) / s
    small = np.exp(-((xx - px / s) ** 2 + (yy - py / s) ** 2) / (2 * sigma**2))
    heat = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return img, np.round(heat / heat.max() * 255.0).astype(np.uint8)


_TEXTURE: Optional[np.ndarray] = None


def _init_worker(seed: int) -> None:
    global _TEXTURE
    _TEXTURE = _texture(seed)


def _write(buf: np.ndarray, path: str) -> int:
    with open(path, 'wb') as f:
        f.write(buf.tobytes())
    return len(buf)


def _render_task(task: Tuple[int, str, str, str, int, str, Optional[str], int]) -> int:
    """Render and write one image (and its GT); return the bytes written."""
    seed, kind, aff, obj, index, img_path, gt_path, quality = task
    img, heat = render_image(kind, make_rng(seed, 'agd20k-scale', kind, aff, obj, index=index), _TEXTURE)
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f'OpenCV could not encode {img_path!r}')
    n = _write(buf, img_path)
    if gt_path is not None:
        ok, buf = cv2.imencode('.png', heat, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        n += _write(buf, gt_path)
    return n


def generate_agd20k_sized(
    out_dir: str,
    fraction: float = 1.0,
    seed: int = 0,
    nproc: int = 1,
    jpeg_quality: int = 90,
    overwrite: bool = False,
) -> dict:
    """Write an AGD20K Seen tree (``<out_dir>/Seen/{trainset,testset}/...``) at ``fraction`` of its size.

    Args:
        out_dir: Output folder; ``<out_dir>/Seen`` is created.
        fraction: Share of AGD20K's image counts, in (0, 1]; every folder gets at least one image.
        seed: Seed; the same seed gives byte-identical files (whatever ``nproc``).
        nproc: Processes drawing and encoding the images.
        jpeg_quality: JPEG quality of the images.
        overwrite: Replace an existing ``Seen`` folder; otherwise a non-empty one raises ``FileExistsError``.

    Returns:
        The summary (also written to ``<out_dir>/Seen/agd20k_scale.json`` once the tree is complete):
        ``fraction``, ``seed``, ``classes``, ``num_objects``, ``num_folders``, ``num_exocentric``,
        ``num_egocentric``, ``num_test``, ``num_images``, ``num_files`` and ``num_bytes``.
    """
    counts = agd20k_counts(fraction, seed)
    root = osp.join(out_dir, 'Seen')
    if osp.isdir(root) and os.listdir(root):
        if not overwrite:
            raise FileExistsError(f'{root!r} exists and is not empty; pass overwrite=True (CLI: --overwrite).')
        shutil.rmtree(root)
    sets = dict(
        exocentric=('trainset', 'exocentric'), egocentric=('trainset', 'egocentric'), test=('testset', 'egocentric')
    )
    tasks = []
    for kind, parts in sets.items():
        for (aff, obj), n in counts[kind].items():
            folder = osp.join(root, *parts, aff, obj)
            os.makedirs(folder, exist_ok=True)
            gt_folder = osp.join(root, 'testset', 'GT', aff, obj) if kind == 'test' else None
            if gt_folder:
                os.makedirs(gt_folder, exist_ok=True)
            for i in range(n):
                stem = f'{obj}_{i:06d}'
                gt = osp.join(gt_folder, stem + '.png') if gt_folder else None
                tasks.append((seed, kind, aff, obj, i, osp.join(folder, stem + '.jpg'), gt, int(jpeg_quality)))
    if nproc > 1:
        with get_context('fork').Pool(nproc, initializer=_init_worker, initargs=(seed,)) as pool:
            num_bytes = sum(pool.imap_unordered(_render_task, tasks, chunksize=64))
    else:
        _init_worker(seed)
        num_bytes = sum(map(_render_task, tasks))
    n = {k: sum(v.values()) for k, v in counts.items()}
    summary = dict(
        fraction=fraction,
        seed=seed,
        classes=list(AGD20K_SEEN_CLASSES),
        num_objects=len({o for _, o in seen_pairs()}),
        num_folders=len(seen_pairs()),
        num_exocentric=n['exocentric'],
        num_egocentric=n['egocentric'],
        num_test=n['test'],
        num_images=sum(n.values()),
        num_files=sum(n.values()) + n['test'],
        num_bytes=int(num_bytes),
    )
    with open(osp.join(root, SUMMARY_FILE), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def read_summary(out_dir: str) -> Optional[dict]:
    """The summary of a complete tree written by :func:`generate_agd20k_sized`, or None."""
    path = osp.join(out_dir, 'Seen', SUMMARY_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


__all__: Sequence[str] = (
    'AGD20K_EXOCENTRIC',
    'AGD20K_EGOCENTRIC',
    'AGD20K_TEST_SHARE',
    'AGD20K_OBJECTS',
    'AGD20K_SEEN_PAIRS',
    'IMAGE_SIZE',
    'agd20k_counts',
    'generate_agd20k_sized',
    'read_summary',
    'render_image',
    'seen_pairs',
    'split_counts',
)
