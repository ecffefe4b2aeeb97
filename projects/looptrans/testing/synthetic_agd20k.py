"""A small synthetic dataset in the exact AGD20K layout, with a learnable signal.

Objects are drawn from coloured parts. Each affordance is tied to one *kind*
of part whose look is shared across objects (``hold`` -> a striped brown
handle on a cup, kettle, knife or scissors; ``cut_with`` -> a silver blade;
``sit_on``/``ride`` -> a purple seat; ``drink_with`` -> a gold rim;
``pour`` -> a teal spout; ``push`` -> red grips), so a model can learn where
an affordance is from the part's appearance and transfer it to objects it
has not seen (the Unseen split).

* exocentric images: a person-like figure (head, torso, arms in skin tones
  and clothes) whose hand (or hips, for ``sit_on``/``ride``) touches the
  affordance part, over random clutter;
* egocentric images: the object alone on a plain or lightly textured
  background;
* GT heatmaps: the Gaussian-blurred mask of the affordance part in the
  egocentric test image, grayscale PNG scaled to a maximum of 255;
* part masks: the affordance part's own pixels in every egocentric training
  image (``<split>/part_masks/...``), to measure pseudo-mask quality, and
  the whole object's pixels (``<split>/object_masks/...``); the same two
  masks for every exocentric training image (``<split>/exo_masks/...``) and
  every test image (``<split>/test_masks/...``).

Every object is drawn at a random position, scale and slight rotation. Files
are byte-identical for a seed: each image has its own generator seeded from
(seed, split, set, affordance, object, index) and is encoded by OpenCV with a
fixed JPEG quality / PNG compression.
"""

import argparse
import os
import os.path as osp
import shutil
import zlib
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmseg.registry import DATASETS

from ..datasets.agd20k import AGD20KDataset

Color = Tuple[int, int, int]  # BGR
Point = Tuple[float, float]

# --------------------------------------------------------------------------- #
# Vocabulary
# --------------------------------------------------------------------------- #
#: Look of each part kind, shared by every object that has such a part (BGR).
PART_KIND_COLORS: Dict[str, Color] = dict(
    handle=(35, 65, 115),  # dark brown, striped
    blade=(205, 200, 195),  # silver
    rim=(0, 205, 250),  # gold
    spout=(170, 150, 20),  # teal
    seat=(150, 40, 130),  # purple
    grip=(40, 30, 200),  # red
)

#: Colours of the plain object bodies (chosen per image), away from the kinds.
BODY_COLORS: Tuple[Color, ...] = (
    (235, 235, 235),
    (220, 170, 120),
    (60, 140, 235),
    (90, 170, 80),
    (190, 160, 240),
    (170, 200, 215),
)
DARK_GREY: Color = (55, 55, 60)
WOOD: Color = (70, 135, 200)
LABEL_WHITE: Color = (225, 235, 240)
CHAIN_SILVER: Color = (150, 150, 140)
PEDAL_ORANGE: Color = (20, 120, 240)

#: Objects span 2 (chair) to 6 (bicycle) visible parts, so the number of parts K of part discovery matters
#:: K = 4 is too many for the chair and too few for the bicycle.

#: affordance -> object -> name of the part it is grounded on.
AFFORDANCE_PARTS: Dict[str, Dict[str, str]] = {
    'cut_with': dict(knife='blade', scissors='blade'),
    'drink_with': dict(cup='rim', bottle='mouth'),
    'hold': dict(cup='handle', kettle='handle', knife='handle', scissors='handle'),
    'pour': dict(bottle='neck', kettle='spout'),
    'push': dict(bicycle='grip'),
    'ride': dict(bicycle='saddle'),
    'sit_on': dict(bicycle='saddle', chair='seat'),
}
#: Affordances where the person touches the part with the hips, not a hand.
HIPS_CONTACT = ('ride', 'sit_on')
#: Size of the object in an egocentric image, as a share of the shorter side (then shrunk to fit).
EGO_REL_SCALE: Tuple[float, float] = (0.32, 0.42)

SYNTHETIC_SEEN_CLASSES: Tuple[str, ...] = tuple(sorted(AFFORDANCE_PARTS))
#: Where, under ``<out_dir>/<split>/``, the true affordance-part mask (0 / 255 PNG) of every egocentric
#: training image is written, as ``<affordance>/<object>/<same stem>.png``: the reference that measures
#: pseudo-mask quality (tools/analysis_tools/eval_pseudo_masks.py). Outside trainset/ and testset/, so
#: the datasets never read it.
PART_MASK_DIR = 'part_masks'
#: Where, under ``<out_dir>/<split>/``, the whole object's mask (0 / 255 PNG) of every egocentric training image
#: is written, in the layout of :data:`PART_MASK_DIR`: what a CAM that marks the object but not its part would be
#: (the object oracle of tools/analysis_tools/eval_pseudo_masks.py). Outside trainset/ and testset/, so the
#: datasets never read it.
OBJECT_MASK_DIR = 'object_masks'
#: Where, under ``<out_dir>/<split>/``, the true masks of every egocentric *test* image are written:
#: ``<TEST_MASK_DIR>/part/<affordance>/<object>/<stem>.png`` (the affordance part, whose blur is the GT
#: heatmap) and ``<TEST_MASK_DIR>/object/...`` (the whole object), for the pointing game of
#: tools/analysis_tools/eval_cam_pointing.py. Outside testset/, so the datasets never read them.
TEST_MASK_DIR = 'test_masks'
#: The same two masks, ``<EXO_MASK_DIR>/{part,object}/<affordance>/<object>/<stem>.png``, for every *exocentric*
#: training image: the object and its affordance part as drawn before the person, whose hand (or hips) then covers
#: the part's centre. For the exocentric CAM's pointing game (``eval_cam_pointing.py --exo``): does the view the
#: method transfers from localise the part? Outside trainset/, so the datasets never read them.
EXO_MASK_DIR = 'exo_masks'
#: Unseen test objects; they never appear in Unseen training.
SYNTHETIC_UNSEEN_TEST_OBJECTS: Tuple[str, ...] = ('bottle', 'chair', 'scissors')
#: Affordances that have both a training and a test object in Unseen.
SYNTHETIC_UNSEEN_CLASSES: Tuple[str, ...] = tuple(
    aff
    for aff, objs in sorted(AFFORDANCE_PARTS.items())
    if set(objs) - set(SYNTHETIC_UNSEEN_TEST_OBJECTS) and set(objs) & set(SYNTHETIC_UNSEEN_TEST_OBJECTS)
)


@DATASETS.register_module()
class SyntheticAGD20KDataset(AGD20KDataset):
    """The generated tree as an :class:`~looptrans.datasets.AGD20KDataset`, with its own class lists.

    Same layout, sampling and pipelines as AGD20K; only the default classes differ: the
    :data:`SYNTHETIC_SEEN_CLASSES` / :data:`SYNTHETIC_UNSEEN_CLASSES` of ``split`` (so no config restates
    them; ``metainfo=dict(classes=(...))`` still overrides them).
    """

    METAINFO = dict(classes=SYNTHETIC_SEEN_CLASSES)
    SPLIT_CLASSES = dict(Seen=SYNTHETIC_SEEN_CLASSES, Unseen=SYNTHETIC_UNSEEN_CLASSES)

    @classmethod
    def _resolve_metainfo(cls, split: Optional[str], metainfo: Optional[dict]) -> dict:
        """The folder dataset's metainfo plus ``generated_data=True``: it reaches the checkpoints'
        ``meta.dataset_meta``, so that inference on a user's photos warns that the model knows only shapes."""
        metainfo = super()._resolve_metainfo(split, metainfo)
        metainfo.setdefault('generated_data', True)
        return metainfo

    def get_data_info(self, idx: int) -> dict:
        """AGD20K's item, plus in training ``part_mask_path`` (the true affordance part of the drawn
        egocentric image, ``<split>/part_masks/<aff>/<obj>/<stem>.png``) when the generator wrote it, for
        :class:`~looptrans.datasets.LoadEgoPartMask` and the ``pm_true_iou`` training log."""
        info = super().get_data_info(idx)
        if self.mode == 'train':
            stem = osp.splitext(osp.basename(info['img_path']))[0]
            path = osp.join(self.split_root, PART_MASK_DIR, info['affordance'], info['object'], stem + '.png')
            if osp.isfile(path):
                info['part_mask_path'] = path
        return info


# --------------------------------------------------------------------------- #
# Object models: parts made of primitives in a local frame (~[-1, 1]^2, y down)
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Prim:
    """A drawing primitive in object units.

    kind: 'poly' (pts), 'ellipse' (center, axes, angle), 'line' (pts[0] to
    pts[1]); ``thickness`` in object units, negative for filled shapes.
    """

    kind: str
    pts: Tuple[Point, ...] = ()
    center: Point = (0.0, 0.0)
    axes: Point = (0.0, 0.0)
    angle: float = 0.0
    thickness: float = -1.0


@dataclass(frozen=True)
class Part:
    """A named part; ``kind`` (affordance look) or ``color`` ('body' = the
    per-image body colour) sets its colour."""

    name: str
    prims: Tuple[Prim, ...]
    kind: Optional[str] = None
    color: object = 'body'


def _poly(*pts: Point) -> Prim:
    return Prim('poly', pts=tuple(pts))


def _ellipse(center: Point, axes: Point, thickness: float = -1.0, angle: float = 0.0) -> Prim:
    return Prim('ellipse', center=center, axes=axes, angle=angle, thickness=thickness)


def _line(p: Point, q: Point, thickness: float) -> Prim:
    return Prim('line', pts=(p, q), thickness=thickness)


def _rect(x0: float, y0: float, x1: float, y1: float) -> Prim:
    return _poly((x0, y0), (x1, y0), (x1, y1), (x0, y1))


# Parts are listed in drawing order (later parts occlude earlier ones).
OBJECTS: Dict[str, Tuple[Part, ...]] = {
    'cup': (
        Part('handle', (_ellipse((0.42, 0.1), (0.22, 0.27), 0.1),), kind='handle'),
        Part('body', (_poly((-0.45, -0.45), (0.35, -0.45), (0.27, 0.72), (-0.37, 0.72)),)),
        Part('inside', (_ellipse((-0.05, -0.45), (0.38, 0.08)),), color=DARK_GREY),
        Part('rim', (_ellipse((-0.05, -0.45), (0.4, 0.09), 0.07),), kind='rim'),
    ),
    'knife': (
        Part('handle', (_rect(-0.95, -0.11, -0.25, 0.11),), kind='handle'),
        Part('bolster', (_rect(-0.25, -0.15, -0.17, 0.15),), color=DARK_GREY),
        Part('blade', (_poly((-0.17, -0.13), (0.68, -0.13), (0.98, 0.1), (-0.17, 0.1)),), kind='blade'),
    ),
    'scissors': (
        Part(
            'handle',
            (
                _ellipse((-0.7, -0.24), (0.22, 0.15), 0.08),
                _ellipse((-0.7, 0.24), (0.22, 0.15), 0.08),
                _line((-0.5, -0.18), (-0.28, 0.0), 0.07),
                _line((-0.5, 0.18), (-0.28, 0.0), 0.07),
            ),
            kind='handle',
        ),
        Part(
            'blade',
            (
                _poly((-0.32, -0.07), (0.97, 0.03), (0.95, 0.08), (-0.3, 0.04)),
                _poly((-0.32, 0.07), (0.97, -0.03), (0.95, -0.08), (-0.3, -0.04)),
            ),
            kind='blade',
        ),
        Part('pivot', (_ellipse((-0.28, 0.0), (0.05, 0.05)),), color=DARK_GREY),
    ),
    'bottle': (
        Part(
            'body', (_rect(-0.3, -0.06, 0.3, 0.92), _poly((-0.3, -0.05), (-0.12, -0.36), (0.12, -0.36), (0.3, -0.05)))
        ),
        Part('label', (_rect(-0.3, 0.2, 0.3, 0.6),), color=LABEL_WHITE),
        Part('neck', (_rect(-0.11, -0.72, 0.11, -0.34),), kind='spout'),
        Part('mouth', (_rect(-0.15, -0.87, 0.15, -0.72),), kind='rim'),
    ),
    'kettle': (
        Part('handle', (_ellipse((0.0, -0.32), (0.38, 0.32), 0.09),), kind='handle'),
        Part('spout', (_poly((0.35, 0.35), (0.48, 0.02), (0.93, -0.38), (1.0, -0.3), (0.62, 0.42)),), kind='spout'),
        Part('body', (_ellipse((0.0, 0.28), (0.56, 0.48)),)),
        Part('lid', (_ellipse((0.0, -0.18), (0.22, 0.07)),), color=DARK_GREY),
    ),
    'chair': (
        Part(
            'frame',
            (
                _rect(-0.52, -0.95, -0.34, 0.0),
                _line((-0.43, 0.1), (-0.47, 0.95), 0.09),
                _line((0.45, 0.1), (0.48, 0.95), 0.09),
            ),
            color=WOOD,
        ),
        Part('seat', (_rect(-0.55, -0.06, 0.58, 0.17),), kind='seat'),
    ),
    'bicycle': (
        Part(
            'wheels',
            (_ellipse((-0.6, 0.45), (0.36, 0.36), 0.07), _ellipse((0.62, 0.45), (0.36, 0.36), 0.07)),
            color=DARK_GREY,
        ),
        Part(
            'frame',
            (
                _line((-0.6, 0.45), (-0.02, 0.45), 0.05),
                _line((-0.02, 0.45), (-0.2, -0.12), 0.05),
                _line((-0.2, -0.12), (0.42, -0.12), 0.05),
                _line((-0.02, 0.45), (0.46, 0.0), 0.05),
                _line((-0.6, 0.45), (-0.2, -0.12), 0.05),
                _line((0.46, 0.0), (0.62, 0.45), 0.05),
                _line((0.42, -0.12), (0.46, 0.0), 0.05),
                _line((0.42, -0.12), (0.4, -0.36), 0.05),
                _line((-0.2, -0.12), (-0.23, -0.26), 0.05),
            ),
        ),
        Part('chainring', (_ellipse((-0.02, 0.45), (0.14, 0.14), 0.06),), color=CHAIN_SILVER),
        Part('pedals', (_rect(-0.2, 0.58, 0.02, 0.66), _rect(-0.06, 0.24, 0.16, 0.32)), color=PEDAL_ORANGE),
        Part('saddle', (_ellipse((-0.26, -0.29), (0.21, 0.065)),), kind='seat'),
        Part('grip', (_rect(0.3, -0.45, 0.62, -0.34),), kind='grip'),
    ),
}


#: ``bold_parts``: the blade colour, steel blue. The default silver lies inside the range of the light plain
#: backgrounds (150-245 per channel), so on many egocentric images no feature can tell blade from background.
BOLD_BLADE_COLOR: Color = (120, 90, 60)
#: ``bold_parts``: knife and scissors drawn this many times as wide (across their long axis), so that blade and
#: handle each span more than one 16-pixel patch at the egocentric sizes.
BOLD_TOOL_WIDTH = 2.0


def _widened(prim: Prim, factor: float) -> Prim:
    """``prim`` stretched ``factor`` times along the object's y axis (strokes ``factor`` times as wide)."""
    return replace(
        prim,
        pts=tuple((x, y * factor) for x, y in prim.pts),
        center=(prim.center[0], prim.center[1] * factor),
        axes=(prim.axes[0], prim.axes[1] * factor),
        thickness=prim.thickness * factor if prim.thickness > 0 else prim.thickness,
    )


def _bold_objects() -> Dict[str, Tuple[Part, ...]]:
    """:data:`OBJECTS` with the thin parts a 16-pixel patch grid cannot resolve made larger: knife and scissors
    :data:`BOLD_TOOL_WIDTH` times as wide, the bicycle's saddle and handlebar grip about twice as tall."""
    objects = dict(OBJECTS)
    for name in ('knife', 'scissors'):
        objects[name] = tuple(
            replace(p, prims=tuple(_widened(q, BOLD_TOOL_WIDTH) for q in p.prims)) for p in OBJECTS[name]
        )
    bigger = dict(saddle=(_ellipse((-0.26, -0.3), (0.23, 0.11)),), grip=(_rect(0.28, -0.5, 0.64, -0.31),))
    objects['bicycle'] = tuple(replace(p, prims=bigger.get(p.name, p.prims)) for p in OBJECTS['bicycle'])
    return objects


BOLD_OBJECTS: Dict[str, Tuple[Part, ...]] = _bold_objects()


def object_parts(obj: str, bold_parts: bool = False) -> Tuple[Part, ...]:
    """The parts of ``obj`` in drawing order: :data:`OBJECTS`, or :data:`BOLD_OBJECTS` with ``bold_parts``."""
    return (BOLD_OBJECTS if bold_parts else OBJECTS)[obj]


def part_kind_color(kind: str, bold_parts: bool = False) -> Color:
    """The colour of an affordance part kind (:data:`PART_KIND_COLORS`; the blade :data:`BOLD_BLADE_COLOR`
    with ``bold_parts``)."""
    return BOLD_BLADE_COLOR if bold_parts and kind == 'blade' else PART_KIND_COLORS[kind]


def _prim_points(prim: Prim, thickness_scale: float = 1.0) -> np.ndarray:
    """Points bounding a primitive, in object units (strokes ``thickness_scale`` times as wide)."""
    pad = max(prim.thickness * thickness_scale, 0) / 2
    if prim.kind == 'ellipse':
        (cx, cy), (ax, ay) = prim.center, prim.axes
        return np.array([(cx - ax - pad, cy - ay - pad), (cx + ax + pad, cy + ay + pad)])
    pts = np.array(prim.pts, dtype=np.float64)
    return np.concatenate([pts - pad, pts + pad])


def _object_extent(obj: str, part_thickness: float = 1.0, bold_parts: bool = False) -> np.ndarray:
    """Corners (4, 2) of the object's bounding box in object units (affordance strokes ``part_thickness``
    times as wide, the ``bold_parts`` shapes, as :func:`render_object` draws them)."""
    pts = np.concatenate(
        [
            _prim_points(p, part_thickness if part.kind is not None else 1.0)
            for part in object_parts(obj, bold_parts)
            for p in part.prims
        ]
    )
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #
@dataclass
class Pose:
    """Object-to-pixel similarity: p_px = R(angle) p * scale + center."""

    scale: float
    angle: float  # degrees, clockwise on screen (y points down)
    center: Point

    def apply(self, pts: np.ndarray) -> np.ndarray:
        t = np.deg2rad(self.angle)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        return np.asarray(pts, np.float64) @ rot.T * self.scale + self.center


def _jitter(color: Color, rng: np.random.Generator, amount: int) -> Color:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def _draw_prim(canvas: np.ndarray, prim: Prim, pose: Pose, color, line_type: int, thickness_scale: float = 1.0) -> None:
    thick = -1 if prim.thickness < 0 else max(1, int(round(prim.thickness * thickness_scale * pose.scale)))
    if prim.kind == 'poly':
        pts = np.round(pose.apply(prim.pts)).astype(np.int32)
        cv2.fillPoly(canvas, [pts], color, line_type)
    elif prim.kind == 'line':
        p, q = np.round(pose.apply(prim.pts)).astype(int)
        cv2.line(canvas, tuple(map(int, p)), tuple(map(int, q)), color, thick, line_type)
    elif prim.kind == 'ellipse':
        c = np.round(pose.apply([prim.center])[0]).astype(int)
        axes = tuple(max(1, int(round(a * pose.scale))) for a in prim.axes)
        cv2.ellipse(canvas, tuple(map(int, c)), axes, prim.angle + pose.angle, 0, 360, color, thick, line_type)
    else:
        raise ValueError(f'unknown primitive {prim.kind!r}')


def render_object(
    img: np.ndarray,
    labels: np.ndarray,
    obj: str,
    pose: Pose,
    rng: np.random.Generator,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
) -> Dict[str, int]:
    """Draw ``obj`` on ``img`` and its part ids (1, 2, ...) on ``labels``.

    ``part_thickness`` multiplies the stroke width of the stroked affordance-kind parts (cup, kettle and
    scissors handles, the cup's rim); 1 draws the default objects. ``bold_parts`` draws the shapes of
    :data:`BOLD_OBJECTS` and the blade in :data:`BOLD_BLADE_COLOR`. Returns part name -> label id; the
    visible pixels of a part are ``labels == id`` because later parts overwrite earlier ones.
    """
    if part_thickness <= 0:
        raise ValueError(f'part_thickness must be > 0, got {part_thickness}.')
    body = _jitter(BODY_COLORS[rng.integers(len(BODY_COLORS))], rng, 12)
    ids = {}
    for i, part in enumerate(object_parts(obj, bold_parts), start=1):
        if part.kind is not None:
            color = _jitter(part_kind_color(part.kind, bold_parts), rng, 12)
        elif part.color == 'body':
            color = body
        else:
            color = _jitter(part.color, rng, 12)
        scale = part_thickness if part.kind is not None else 1.0
        for prim in part.prims:
            _draw_prim(img, prim, pose, color, cv2.LINE_AA, scale)
            _draw_prim(labels, prim, pose, i, cv2.LINE_8, scale)
        ids[part.name] = i
        if part.kind == 'handle':  # stripes across the handle's long axis
            h, w = labels.shape
            yy, xx = np.mgrid[0:h, 0:w]
            t = np.deg2rad(pose.angle)
            u = (xx * np.cos(t) + yy * np.sin(t)) / max(2.0, 0.07 * pose.scale)
            stripe = (labels == i) & (np.floor(u).astype(int) % 2 == 0)
            img[stripe] = (img[stripe] * 0.65).astype(np.uint8)
    return ids


def place_object(
    obj: str,
    h: int,
    w: int,
    rel_scale: Tuple[float, float],
    max_angle: float,
    rng: np.random.Generator,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
) -> Pose:
    """A random pose that keeps the whole object (affordance strokes ``part_thickness`` times as wide, the
    ``bold_parts`` shapes) inside the image."""
    extent = _object_extent(obj, part_thickness, bold_parts)
    scale = rng.uniform(*rel_scale) * min(h, w)
    angle = rng.uniform(-max_angle, max_angle)
    for _ in range(20):
        corners = Pose(scale, angle, (0.0, 0.0)).apply(extent)
        lo, hi = corners.min(0), corners.max(0)
        if hi[0] - lo[0] < w - 4 and hi[1] - lo[1] < h - 4:
            break
        scale *= 0.9
    cx = rng.uniform(2 - lo[0], w - 2 - hi[0])
    cy = rng.uniform(2 - lo[1], h - 2 - hi[1])
    return Pose(scale, angle, (cx, cy))


def plain_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A light plain colour, sometimes with a gentle gradient."""
    base = rng.integers(150, 246, size=3).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    if rng.random() < 0.5:
        ramp = np.linspace(-1, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        ramp = ramp[None, :, None] if ramp.size == w else ramp[:, None, None]
        img += ramp * rng.uniform(5, 20)
    return np.clip(img, 0, 255).astype(np.uint8)


def clutter_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Random desaturated shapes, slightly blurred, like a busy scene."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(60, 200, size=3)
    for _ in range(int(rng.integers(10, 19))):
        color = rng.integers(0, 256, size=3).astype(np.float32)
        color = (0.5 * color + 0.5 * color.mean()).astype(int).tolist()
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(8, max(9, min(h, w) // 4)))
        shape = rng.integers(3)
        if shape == 0:
            cv2.rectangle(img, (x - r, y - r // 2), (x + r, y + r // 2), color, -1)
        elif shape == 1:
            cv2.circle(img, (x, y), r, color, -1, cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(img, (x, y), (x2, y2), color, int(rng.integers(2, 8)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 1.2)


SKIN_TONES: Tuple[Color, ...] = ((140, 170, 225), (100, 140, 200), (60, 90, 150), (170, 200, 240), (80, 115, 175))


def draw_person(img: np.ndarray, contact: np.ndarray, hips: bool, rng: np.random.Generator) -> None:
    """Draw a person whose hand (or hips) is at ``contact`` (x, y)."""
    u = min(img.shape[:2])
    skin = _jitter(SKIN_TONES[rng.integers(len(SKIN_TONES))], rng, 8)
    shirt = tuple(int(c) for c in rng.integers(0, 256, size=3))
    pants = tuple(int(c) for c in rng.integers(0, 140, size=3))
    arm_w = max(2, int(0.035 * u))
    c = np.asarray(contact, np.float64)
    side = 1.0 if rng.random() < 0.5 else -1.0

    def pt(p) -> Tuple[int, int]:
        return int(round(p[0])), int(round(p[1]))

    if hips:
        hip = c
        torso = hip + (side * 0.02 * u, -0.13 * u)
    else:
        phi = np.deg2rad(rng.uniform(200, 340))  # the shoulder is above
        shoulder = c + rng.uniform(0.18, 0.26) * u * np.array([np.cos(phi), np.sin(phi)])
        side = float(np.sign(np.cos(phi)) or 1.0)
        torso = shoulder + (side * 0.06 * u, 0.12 * u)
        hip = torso + (0, 0.13 * u)
    head = torso + (0, -0.13 * u - 0.05 * u)
    # legs
    for s in (-1, 1):
        knee = hip + (s * 0.04 * u + side * 0.08 * u * hips, 0.12 * u)
        foot = knee + (s * 0.02 * u, 0.13 * u)
        cv2.line(img, pt(hip), pt(knee), pants, int(arm_w * 1.4), cv2.LINE_AA)
        cv2.line(img, pt(knee), pt(foot), pants, int(arm_w * 1.3), cv2.LINE_AA)
    cv2.ellipse(img, pt(torso), (int(0.075 * u), int(0.14 * u)), 0, 0, 360, shirt, -1, cv2.LINE_AA)
    if hips:
        cv2.ellipse(img, pt(hip), (int(0.07 * u), int(0.045 * u)), 0, 0, 360, pants, -1, cv2.LINE_AA)
    # the free arm(s) hang down
    free_sides = (-side, side) if hips else (-side,)
    for s in free_sides:
        sh = torso + (s * 0.07 * u, -0.1 * u)
        hand = sh + (s * 0.05 * u + side * 0.1 * u * hips, 0.2 * u)
        cv2.line(img, pt(sh), pt(hand), shirt, arm_w, cv2.LINE_AA)
        cv2.circle(img, pt(hand), int(0.025 * u), skin, -1, cv2.LINE_AA)
    cv2.circle(img, pt(head), int(0.055 * u), skin, -1, cv2.LINE_AA)
    cv2.ellipse(
        img,
        pt(head + (0, -0.03 * u)),
        (int(0.057 * u), int(0.035 * u)),
        0,
        180,
        360,
        tuple(int(x) for x in rng.integers(0, 80, 3)),
        -1,
        cv2.LINE_AA,
    )  # hair
    if not hips:  # the acting arm reaches the part
        normal = np.array([-(c - shoulder)[1], (c - shoulder)[0]])
        normal /= np.linalg.norm(normal) + 1e-9
        elbow = (shoulder + c) / 2 + normal * rng.uniform(-0.05, 0.05) * u
        cv2.line(img, pt(shoulder), pt(elbow), shirt, arm_w, cv2.LINE_AA)
        cv2.line(img, pt(elbow), pt(c), skin, arm_w, cv2.LINE_AA)
        cv2.ellipse(
            img, pt(c), (int(0.035 * u), int(0.028 * u)), float(rng.uniform(0, 180)), 0, 360, skin, -1, cv2.LINE_AA
        )


def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _image_size(rng: np.random.Generator, size_range: Tuple[int, int]) -> Tuple[int, int]:
    lo, hi = size_range
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


def render_visible_part(
    aff: str,
    obj: str,
    h: int,
    w: int,
    background: Callable[..., np.ndarray],
    rel_scale: Tuple[float, float],
    max_angle: float,
    rng: np.random.Generator,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``obj`` at a random pose over ``background(h, w, rng)`` (BGR uint8), the bool mask of the visible
    pixels of the part ``aff`` is grounded on and the bool mask of the whole object; re-drawn (at most 20
    times) until that part is visible."""
    part = AFFORDANCE_PARTS[aff][obj]
    for _ in range(20):
        img = background(h, w, rng)
        labels = np.zeros((h, w), np.uint8)
        pose = place_object(obj, h, w, rel_scale, max_angle, rng, part_thickness, bold_parts)
        ids = render_object(img, labels, obj, pose, rng, part_thickness, bold_parts)
        visible = labels == ids[part]
        if visible.any():
            break
    return img, visible, labels > 0


def clutter_scene(
    aff: str,
    obj: str,
    h: int,
    w: int,
    rng: np.random.Generator,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
    return_masks: bool = False,
) -> Tuple[np.ndarray, ...]:
    """``obj`` at a random pose over clutter (BGR uint8, h x w), and the (x, y) centre of the part ``aff``
    is grounded on: the point a person touches. Re-drawn (at most 20 times) until the part is visible. With
    ``return_masks`` also the bool masks of the visible part and of the whole object (no extra random draw)."""
    img, visible, whole = render_visible_part(
        aff, obj, h, w, clutter_background, (0.2, 0.28), 15.0, rng, part_thickness, bold_parts
    )
    ys, xs = np.nonzero(visible)
    contact = np.array([xs.mean(), ys.mean()])
    return (img, contact, visible, whole) if return_masks else (img, contact)


def render_exocentric(
    aff: str,
    obj: str,
    rng: np.random.Generator,
    size_range: Tuple[int, int] = (224, 320),
    part_thickness: float = 1.0,
    bold_parts: bool = False,
    return_masks: bool = False,
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A person using ``obj`` for ``aff`` over clutter (BGR uint8); ``part_thickness`` and ``bold_parts`` as
    in :func:`render_object`. With ``return_masks`` also the uint8 masks (0 / 255) of the affordance part and of
    the whole object as drawn before the person (:data:`EXO_MASK_DIR`); the image is the same with or without."""
    h, w = _image_size(rng, size_range)
    img, contact, part, whole = clutter_scene(aff, obj, h, w, rng, part_thickness, bold_parts, return_masks=True)
    draw_person(img, contact, aff in HIPS_CONTACT, rng)
    img = add_noise(img, 4.0, rng)
    if not return_masks:
        return img
    return img, part.astype(np.uint8) * 255, whole.astype(np.uint8) * 255


def render_egocentric(
    aff: str,
    obj: str,
    rng: np.random.Generator,
    size_range: Tuple[int, int] = (224, 320),
    return_part_mask: bool = False,
    return_object_mask: bool = False,
    ego_scale: Tuple[float, float] = EGO_REL_SCALE,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
) -> Tuple[np.ndarray, ...]:
    """``obj`` alone on a plain background, and the GT heatmap of ``aff``.

    ``ego_scale`` is the object's size range as a share of the image's shorter side (then shrunk to fit),
    ``part_thickness`` the stroke-width factor of the affordance parts, ``bold_parts`` the larger thin parts
    and the steel-blue blade (:func:`render_object`).

    Returns the BGR uint8 image and the uint8 heatmap (0..255, max 255):
    the visible pixels of the affordance part blurred with a Gaussian whose
    sigma grows with the part's size; with ``return_part_mask`` also the
    uint8 mask (0 / 255) of those visible pixels, the true affordance part,
    and with ``return_object_mask`` then the uint8 mask of the whole object.
    The masks change no random draw: the image is the same with or without.
    """
    h, w = _image_size(rng, size_range)
    img, visible, whole = render_visible_part(
        aff, obj, h, w, plain_background, tuple(ego_scale), 12.0, rng, part_thickness, bold_parts
    )
    mask = visible.astype(np.float32)
    sigma = max(2.0, 0.15 * float(np.sqrt(mask.sum())))
    heat = cv2.GaussianBlur(mask, (0, 0), sigma)
    heat = np.round(heat / heat.max() * 255.0).astype(np.uint8)
    img = add_noise(img, 2.0, rng)
    out = (img, heat)
    if return_part_mask:
        out += ((mask * 255).astype(np.uint8),)
    if return_object_mask:
        out += (whole.astype(np.uint8) * 255,)
    return out


# --------------------------------------------------------------------------- #
# Writing the tree
# --------------------------------------------------------------------------- #
def make_rng(seed: int, *names, index: int = 0) -> np.random.Generator:
    words = [seed] + [zlib.crc32(str(n).encode()) for n in names] + [index]
    return np.random.default_rng(np.random.SeedSequence(words))


def write_image(path: str, ext: str, img: np.ndarray, params: List[int]) -> int:
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise OSError(f'OpenCV could not encode {path!r}')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(buf.tobytes())
    return len(buf)


def split_pairs(split: str) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]], Tuple[str, ...]]:
    """(train pairs, test pairs, classes) of a split; pairs are (aff, obj)."""
    if split == 'Seen':
        pairs = [(a, o) for a in SYNTHETIC_SEEN_CLASSES for o in sorted(AFFORDANCE_PARTS[a])]
        return pairs, pairs, SYNTHETIC_SEEN_CLASSES
    if split == 'Unseen':
        held_out = set(SYNTHETIC_UNSEEN_TEST_OBJECTS)
        train, test = [], []
        for a in SYNTHETIC_UNSEEN_CLASSES:
            for o in sorted(AFFORDANCE_PARTS[a]):
                (test if o in held_out else train).append((a, o))
        return train, test, SYNTHETIC_UNSEEN_CLASSES
    raise ValueError(f'unknown split {split!r}; use "Seen" or "Unseen".')


def check_drawing_options(ego_scale: Sequence[float], part_thickness: float) -> None:
    """Raise ``ValueError`` naming the option unless ``ego_scale`` is ``(lo, hi)`` with ``0 < lo <= hi <= 1`` and
    ``part_thickness > 0``; called before anything is drawn or written."""
    if len(ego_scale) != 2 or not 0 < ego_scale[0] <= ego_scale[1] <= 1:
        raise ValueError(f'ego_scale must be (lo, hi) with 0 < lo <= hi <= 1, got {tuple(ego_scale)}.')
    if not part_thickness > 0:
        raise ValueError(f'part_thickness must be > 0, got {part_thickness}.')


def add_drawing_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--ego-scale LO HI``, ``--part-thickness F`` and ``--bold-parts`` (defaults: the documented tree) to
    a tool's parser: the generator and the DINO pretraining draw with the same options; check the parsed values
    with :func:`check_drawing_options`."""
    parser.add_argument(
        '--ego-scale',
        nargs=2,
        type=float,
        metavar=('LO', 'HI'),
        default=EGO_REL_SCALE,
        help='object size in the egocentric images, as a share of the shorter side (default: %(default)s)',
    )
    parser.add_argument(
        '--part-thickness',
        type=float,
        default=1.0,
        help='stroke-width factor of the stroked affordance parts, handles and rims (default: 1)',
    )
    parser.add_argument(
        '--bold-parts',
        action='store_true',
        help='knife and scissors twice as wide, a steel-blue blade (the default silver matches the light '
        'backgrounds), a larger bicycle saddle and grip: parts a 16-pixel patch grid can resolve',
    )


def generate_synthetic_agd20k(
    out_dir: str,
    seed: int = 0,
    num_exo: int = 10,
    num_ego: int = 4,
    num_test: int = 3,
    splits: Sequence[str] = ('Seen', 'Unseen'),
    size_range: Tuple[int, int] = (224, 320),
    jpeg_quality: int = 90,
    overwrite: bool = False,
    ego_scale: Tuple[float, float] = EGO_REL_SCALE,
    part_thickness: float = 1.0,
    bold_parts: bool = False,
) -> dict:
    """Write a synthetic AGD20K tree (``<out_dir>/<split>/...``).

    Args:
        out_dir (str): Output folder; ``<out_dir>/Seen`` and
            ``<out_dir>/Unseen`` are created.
        seed (int): Seed; the same seed gives byte-identical files.
        num_exo (int): Exocentric training images per affordance/object.
        num_ego (int): Egocentric training images per affordance/object.
        num_test (int): Egocentric test images (with GT) per
            affordance/object.
        splits (Sequence[str]): Splits to write.
        size_range (tuple[int, int]): Min and max image side in pixels.
        jpeg_quality (int): JPEG quality of the images.
        overwrite (bool): Replace existing split folders. Otherwise an
            existing non-empty split folder raises ``FileExistsError``.
        ego_scale (tuple[float, float]): Size range of the object in the
            egocentric training and test images, as a share of the shorter
            side (then shrunk to fit). Default: :data:`EGO_REL_SCALE`.
        part_thickness (float): Stroke-width factor of the stroked
            affordance parts (handles, rims), in every image. Default: 1.
        bold_parts (bool): Draw knife and scissors twice as wide, the
            blade steel blue and the bicycle's saddle and grip larger, in
            every image (:data:`BOLD_OBJECTS`). Default: False.
        The defaults write the tree every figure of the docs was measured on.

    Returns:
        dict: ``out_dir``, ``seed``, ``num_files``, ``num_bytes`` and, per
        split, its ``classes``, ``train_pairs``, ``test_pairs`` and image
        counts (``num_exocentric``, ``num_egocentric``, ``num_test``).
    """
    if min(num_exo, num_ego, num_test) < 1:
        raise ValueError(f'num_exo, num_ego and num_test must be >= 1, got {num_exo}, {num_ego}, {num_test}.')
    if not 32 <= size_range[0] <= size_range[1]:
        raise ValueError(f'size_range must be (lo, hi) with 32 <= lo <= hi, got {size_range}.')
    check_drawing_options(ego_scale, part_thickness)
    for split in splits:
        split_pairs(split)  # validate names before touching the disk
        root = osp.join(out_dir, split)
        if osp.isdir(root) and os.listdir(root):
            if not overwrite:
                raise FileExistsError(
                    f'{root!r} exists and is not empty; pass overwrite=True '
                    '(CLI: --overwrite) or choose another output folder.'
                )
            shutil.rmtree(root)

    jpg = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    png = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    summary = dict(out_dir=out_dir, seed=seed, num_files=0, num_bytes=0, splits={})
    for split in splits:
        train, test, classes = split_pairs(split)
        root = osp.join(out_dir, split)
        n_bytes = 0
        for aff, obj in train:
            for i in range(num_exo):
                img, part, whole = render_exocentric(
                    aff,
                    obj,
                    make_rng(seed, split, 'exo', aff, obj, index=i),
                    size_range,
                    part_thickness,
                    bold_parts,
                    return_masks=True,
                )
                n_bytes += write_image(
                    osp.join(root, 'trainset', 'exocentric', aff, obj, f'{obj}_{i:06d}.jpg'), '.jpg', img, jpg
                )
                for kind, mask in (('part', part), ('object', whole)):
                    n_bytes += write_image(
                        osp.join(root, EXO_MASK_DIR, kind, aff, obj, f'{obj}_{i:06d}.png'), '.png', mask, png
                    )
            for i in range(num_ego):
                img, _, part, whole = render_egocentric(
                    aff,
                    obj,
                    make_rng(seed, split, 'ego', aff, obj, index=i),
                    size_range,
                    return_part_mask=True,
                    return_object_mask=True,
                    ego_scale=ego_scale,
                    part_thickness=part_thickness,
                    bold_parts=bold_parts,
                )
                n_bytes += write_image(
                    osp.join(root, 'trainset', 'egocentric', aff, obj, f'{obj}_{i:06d}.jpg'), '.jpg', img, jpg
                )
                for mask_dir, mask in ((PART_MASK_DIR, part), (OBJECT_MASK_DIR, whole)):
                    n_bytes += write_image(osp.join(root, mask_dir, aff, obj, f'{obj}_{i:06d}.png'), '.png', mask, png)
        for aff, obj in test:
            for i in range(num_test):
                img, heat, part, whole = render_egocentric(
                    aff,
                    obj,
                    make_rng(seed, split, 'test', aff, obj, index=i),
                    size_range,
                    return_part_mask=True,
                    return_object_mask=True,
                    ego_scale=ego_scale,
                    part_thickness=part_thickness,
                    bold_parts=bold_parts,
                )
                stem = f'{obj}_{i:06d}'
                n_bytes += write_image(
                    osp.join(root, 'testset', 'egocentric', aff, obj, stem + '.jpg'), '.jpg', img, jpg
                )
                n_bytes += write_image(osp.join(root, 'testset', 'GT', aff, obj, stem + '.png'), '.png', heat, png)
                for kind, mask in (('part', part), ('object', whole)):
                    n_bytes += write_image(
                        osp.join(root, TEST_MASK_DIR, kind, aff, obj, stem + '.png'), '.png', mask, png
                    )
        counts = dict(
            num_exocentric=len(train) * num_exo, num_egocentric=len(train) * num_ego, num_test=len(test) * num_test
        )
        summary['splits'][split] = dict(
            classes=classes,
            train_pairs=train,
            test_pairs=test,
            train_objects=sorted({o for _, o in train}),
            test_objects=sorted({o for _, o in test}),
            **counts,
        )
        # every image with its part and object masks, and a GT per test image
        summary['num_files'] += 3 * sum(counts.values()) + counts['num_test']
        summary['num_bytes'] += n_bytes
    return summary
