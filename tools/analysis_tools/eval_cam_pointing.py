"""Pointing game on the generated test split: does a heatmap's maximum fall on the object, on its part?

KLD / SIM / NSS say how well a heatmap matches the blurred GT, not whether the model looks at the object at all.
The generator knows every test image's object and affordance part (``<split>/test_masks/{object,part}/...``),
so this tool asks the question a reader asks of a CAM picture: for the labelled affordance, is the heatmap's
maximum on the object (``object``), on the true affordance part (``part``)? The same within ``--tolerance``
pixels (``object_near`` / ``part_near``; 15 by default, the standard pointing game of Zhang et al. 2016): the
generated objects are drawn in strokes a few pixels wide, so a 14 x 14 map's maximum in the middle of a stroked
object (a bicycle's wheel, a cup's bowl) can lie between strokes. It also reports the share of the min-max
normalised heatmap's mass that lies on the object (``mass``), and, as the chance level, the same figures for a
heatmap that is a centred Gaussian (objects are placed at random positions).

Does the heatmap tell the affordances of one object apart, or does it mark the object? Most generated objects
carry two affordances on different parts (a cup: ``hold`` on the handle, ``drink_with`` on the rim). For such an
image, ``rival_part`` is the share of the object's *other* affordances (those on another part) whose heatmap has
its maximum on the labelled affordance's part: a heatmap that separates affordances points there with its own
affordance (``part`` high) and not with the others (``rival_part`` low); an object-level heatmap gives both the
same figure. Both are averaged over the images whose object has such a rival (all but the chair's).

    python tools/analysis_tools/eval_cam_pointing.py configs/looptrans_synthetic.py \\
        work_dirs/looptrans_synthetic/iter_200.pth [--heatmaps cam pixel_logits] [--data-root DIR] [--split Seen] \\
        [--tolerance 15] [--exo | --noise] [--norm-stats ego]

Does the view the method transfers from localise the part? With ``--exo`` the same game is played on the
*exocentric training* images (a person's hand or hips on the part, ``<split>/exo_masks/{object,part}/...``, the
object and part as drawn before the person) with the model's exocentric CAM (``cam_head(..., view='exo')``, the
map the shared CAM and LOCATE's prototypes learn from), instead of the test heatmaps. Compare its ``part`` with the
egocentric CAM's on the test images: the part knowledge the exocentric view has and the egocentric one lacks is
what the transfer did not carry over. ``--exo`` also reports the exocentric classification accuracy, the top-1 of
the globally pooled exocentric CAM (the logits the classification loss trains): near 1 on the training images and
near chance on new ones is memorisation. New images of the same generator are a tree generated with another
``--seed``, given as ``--data-root``::

    python tools/misc/generate_synthetic_agd20k.py --out data/synthetic_heldout --splits Seen --seed 1 --num-exo 30
    python tools/analysis_tools/eval_cam_pointing.py CONFIG CHECKPOINT --exo --data-root data/synthetic_heldout

Where do the noise outputs look? With ``--noise`` (a model whose CAM classifier has noise outputs, the real
configs') the game is also played with the per-pixel maximum of the classifier's M noise maps on the egocentric
test images (row ``noise``), and the tool prints the share of the softmax over the C + M pooled logits that the
noise outputs take: outputs meant to absorb the exocentric views' people and background that point at the object
in an image of the object alone have taken the object from the class CAM.

Does the CAM point differently with one view's normalisation? With ``--norm-stats ego`` (or ``exo``) the BatchNorm
running statistics of the CAM projection are first re-estimated on that view's training images: a shared
projection trained once per view keeps statistics that blend both views', and the egocentric CAM is normalised
with the blend at test time.

Heatmaps are computed as :func:`looptrans.apis.inference_affordance` does (the test pipeline's resize, then
back to the image size, bilinear); a constant heatmap points nowhere (a miss).
"""

from __future__ import annotations

import argparse
import glob
import os.path as osp
from collections import defaultdict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import DictAction

from looptrans.apis.norm_stats import VIEW_FOLDERS, reestimate_cam_norm_stats, view_training_images
from looptrans.testing import AFFORDANCE_PARTS, EXO_MASK_DIR, TEST_MASK_DIR

Sample = Tuple[str, str, str, str]  # image, object mask, part mask, affordance
_MISSING = object()  # the end of a map stream, for :func:`_paired`
#: The pointing game's tolerance in image pixels (Zhang et al., "Top-down Neural Attention by Excitation
#: Backprop", ECCV 2016: a hit when the maximum lies within 15 pixels of the annotated region).
POINTING_TOLERANCE = 15.0
KEYS = ('object', 'object_near', 'part', 'part_near', 'mass')
#: Per exocentric image: 1.0 when the top-1 class of its pooled exocentric CAM is its affordance.
TOP1_KEY = 'top1'
#: The share of the object's other affordances whose heatmap's maximum is on the labelled part (module docstring).
RIVAL_KEY = 'rival_part'
#: ``--noise``: the per-pixel maximum of the CAM classifier's noise maps, and the noise outputs' softmax share.
NOISE_KEY = 'noise'
NOISE_SHARE_KEY = 'noise_share'


def _find_samples(root: str, classes: Sequence[str], mask_dir: str, image_dir: str, what: str) -> List[Sample]:
    """(image, object mask, part mask, affordance) of every image under ``<root>/<image_dir>`` with both masks
    under ``<root>/<mask_dir>/{object,part}``; a FileNotFoundError naming the folder and the fix when none has."""
    samples = []
    for part in sorted(glob.glob(osp.join(root, mask_dir, 'part', '*', '*', '*.png'))):
        aff, obj, name = part.split(osp.sep)[-3:]
        stem = osp.splitext(name)[0]
        whole = osp.join(root, mask_dir, 'object', aff, obj, name)
        images = glob.glob(osp.join(root, image_dir, aff, obj, stem + '.*'))
        if aff in classes and images and osp.isfile(whole):
            samples.append((images[0], whole, part, aff))
    if not samples:
        raise FileNotFoundError(
            f'no masks under {osp.join(root, mask_dir)!r} with {what} beside them; generate the data with '
            'tools/misc/generate_synthetic_agd20k.py (it writes them; a tree written before it did: the same '
            'options with --overwrite, and the images come out byte-identical).'
        )
    return samples


def find_test_samples(root: str, classes: Sequence[str]) -> List[Sample]:
    """(image, object mask, part mask, affordance) of every egocentric test image with both masks."""
    return _find_samples(root, classes, TEST_MASK_DIR, osp.join('testset', 'egocentric'), 'egocentric test images')


def find_exo_samples(root: str, classes: Sequence[str]) -> List[Sample]:
    """(image, object mask, part mask, affordance) of every exocentric training image with both masks."""
    return _find_samples(root, classes, EXO_MASK_DIR, osp.join('trainset', 'exocentric'), 'exocentric training images')


def rival_affordances(affordance: str, obj: str, classes: Sequence[str]) -> List[str]:
    """The affordances of ``classes`` that the generator also draws on ``obj``, on a part other than
    ``affordance``'s (:data:`looptrans.testing.AFFORDANCE_PARTS`); ``ride`` and ``sit_on`` share the bicycle's
    saddle, so neither is the other's rival."""
    own = AFFORDANCE_PARTS.get(affordance, {}).get(obj)
    if own is None:
        raise KeyError(f'the generator draws no {affordance!r} part on {obj!r}; is this a generated tree?')
    return [b for b in classes if b != affordance and AFFORDANCE_PARTS.get(b, {}).get(obj, own) != own]


def _rival_part(heatmaps: Dict[str, np.ndarray], rivals: Sequence[str], whole, part, tolerance: float) -> float:
    """Share of ``rivals`` whose heatmap's maximum lies on ``part``; NaN without rivals."""
    if not rivals:
        return float('nan')
    return float(np.mean([point(heatmaps[b], whole, part, tolerance)['part'] for b in rivals]))


def _near(mask: np.ndarray, y: int, x: int, tolerance: float) -> float:
    """1.0 when pixel (y, x) lies within ``tolerance`` pixels (Euclidean) of a pixel of ``mask``, else 0.0."""
    if mask[y, x]:
        return 1.0
    ys, xs = np.nonzero(mask)
    return float(ys.size > 0 and float(((ys - y) ** 2 + (xs - x) ** 2).min()) <= tolerance**2)


def point(
    heat: np.ndarray, object_mask: np.ndarray, part_mask: np.ndarray, tolerance: float = POINTING_TOLERANCE
) -> Dict[str, float]:
    """Pointing-game outcome of one heatmap: ``object`` / ``part`` (1.0 when its maximum lies on the object /
    on the part; the first maximum in row-major order; 0.0 for a constant or non-finite map), ``object_near`` /
    ``part_near`` (the same with the maximum allowed ``tolerance`` pixels away, the pointing game as Zhang et al.
    define it) and ``mass`` (share of the min-max normalised map on the object; 0.0 for a constant map)."""
    if heat.shape != object_mask.shape or heat.shape != part_mask.shape:
        raise ValueError(
            f'heatmap {heat.shape}, object mask {object_mask.shape} and part mask {part_mask.shape} differ'
        )
    if tolerance < 0:
        raise ValueError(f'tolerance must be >= 0 pixels, got {tolerance}')
    heat = np.asarray(heat, np.float64)
    lo, hi = heat.min(), heat.max()
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return dict(object=0.0, part=0.0, mass=0.0, object_near=0.0, part_near=0.0)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    norm = (heat - lo) / (hi - lo)
    return dict(
        object=float(object_mask[y, x]),
        part=float(part_mask[y, x]),
        mass=float(norm[object_mask].sum() / norm.sum()),
        object_near=_near(object_mask, y, x, tolerance),
        part_near=_near(part_mask, y, x, tolerance),
    )


def centre_heatmap(shape: Tuple[int, int]) -> np.ndarray:
    """The chance reference: an isotropic Gaussian at the image centre (sigma a quarter of the shorter side)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    sigma = min(h, w) / 4
    return np.exp(-((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (2 * sigma**2))


def _read_mask(path: str) -> np.ndarray:
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise OSError(f'cannot read the mask {path!r}; regenerate the data')
    return mask > 127


def _require_cam_head(model) -> None:
    if not hasattr(model, 'cam_head'):
        raise SystemExit(f'error: this tool scores the CAM head; this model ({type(model).__name__}) has no cam_head')


def _network_batches(model, paths: Sequence[str], batch_size: int) -> Iterator[Tuple[List[np.ndarray], torch.Tensor]]:
    """Per batch of ``paths``: the images as read (BGR) and the network input, as
    :func:`looptrans.apis.inference_affordance` makes it (the test pipeline's input size, PIL bilinear, then the
    model's preprocessor), on the model's device."""
    import mmcv

    from looptrans.apis.inference import resize_for_network, test_input_size

    size = test_input_size(model.cfg)
    device = next(model.parameters()).device
    for start in range(0, len(paths), batch_size):
        bgr = [mmcv.imread(p) for p in paths[start : start + batch_size]]
        inputs = [torch.from_numpy(np.ascontiguousarray(resize_for_network(img, size)))[None] for img in bgr]
        yield bgr, model.data_preprocessor(dict(inputs=inputs), False)['inputs'][:, 0].to(device)


def find_training_images(root: str, view: str) -> List[str]:
    """The ``view`` ('exo' or 'ego') training images of a split folder ``root``, sorted
    (:func:`looptrans.apis.view_training_images`); a FileNotFoundError naming the folder when there are none."""
    return view_training_images(root, view)


def recalibrate_projection_norm(model, paths: Sequence[str], view: str, batch_size: int = 8) -> int:
    """:func:`looptrans.apis.reestimate_cam_norm_stats` of ``model`` on the ``view`` images ``paths`` (prepared
    as ``tools/test.py`` prepares a test image), in batches of ``batch_size``; returns how many BatchNorm layers
    were re-estimated, a SystemExit naming the problem when it cannot be done."""
    _require_cam_head(model)
    try:
        return reestimate_cam_norm_stats(model, paths, view, batch_size)
    except ValueError as err:
        raise SystemExit(f'error: --norm-stats: {err}') from err


@torch.no_grad()
def iter_classifier_maps(
    model, paths: Sequence[str], batch_size: int = 8, view: str = 'exo'
) -> Iterator[Tuple[Dict[str, np.ndarray], str, Optional[float]]]:
    """Per image, in the order of ``paths``: every class's CAM of ``view`` (``cam_head.forward_embed(..., view)``)
    at the image's size, and the class its globally pooled CAM ranks first (``cam_head.logits``, what the
    classification loss trains). The maps are computed as :func:`looptrans.apis.inference_affordance` computes the
    egocentric one: the image resized to the test pipeline's input size (PIL bilinear), normalised by the model's
    preprocessor, the CAM resized to the input size and then to the image's (bilinear both times); the class comes
    from the CAM before resizing.

    A classifier with noise outputs (``cam_head.num_noise`` = M > 0, the real configs') also gives, under
    :data:`NOISE_KEY`, the per-pixel maximum of its M noise maps, and, as the third item, the share of the softmax
    over the C + M pooled logits that the noise outputs take (None without noise outputs): the cross-entropy the
    model trains is over all C + M outputs, so this is how much of the image the classifier gives to noise.

    A generator, one batch computed at a time: a caller that scores each image as it comes holds one batch of
    full-size maps, not the whole set's (2,800 exocentric images held 7.8 GB)."""
    import torch.nn.functional as F

    from looptrans.apis.inference import test_input_size

    _require_cam_head(model)
    classes = tuple(model.dataset_meta['classes'])
    num_classes, num_noise = len(classes), int(getattr(model.cam_head, 'num_noise', 0))
    size = test_input_size(model.cfg)
    for bgr, x in _network_batches(model, paths, batch_size):
        maps = model.cam_head.forward_embed(model.extract_feat(x), view)[0]
        pooled = model.cam_head.logits(maps)
        predicted = [classes[i] for i in pooled[:, :num_classes].argmax(dim=1).tolist()]
        shares = pooled.softmax(dim=1)[:, num_classes:].sum(dim=1).tolist() if num_noise else [None] * len(bgr)
        maps = F.interpolate(maps, size=size, mode='bilinear', align_corners=False).float().cpu().numpy()
        for img, cam, cls, share in zip(bgr, maps, predicted, shares):
            h0, w0 = img.shape[:2]
            per_image = {
                name: cv2.resize(cam[i], (w0, h0), interpolation=cv2.INTER_LINEAR) for i, name in enumerate(classes)
            }
            if num_noise:
                noise = cam[num_classes:].max(axis=0)
                per_image[NOISE_KEY] = cv2.resize(noise, (w0, h0), interpolation=cv2.INTER_LINEAR)
            yield per_image, cls, share


def _paired(samples: Sequence[Sample], per_image: Iterable) -> Iterator[Tuple[Sample, object]]:
    """``zip`` that refuses a count mismatch (a RuntimeError, never a silently shorter table): each sample with
    its maps, in order, one at a time."""
    maps = iter(per_image)
    for i, sample in enumerate(samples):
        item = next(maps, _MISSING)
        if item is _MISSING:
            raise RuntimeError(f'maps for {i} of {len(samples)} images')
        yield sample, item
    if next(maps, _MISSING) is not _MISSING:
        raise RuntimeError(f'more maps than the {len(samples)} images')


def noise_outcomes(model, samples: List[Sample], batch_size: int = 8, tolerance: float = POINTING_TOLERANCE):
    """Per egocentric test image, the pointing outcome of the per-pixel maximum of the classifier's noise maps
    (:func:`iter_classifier_maps`, ``view='ego'``) and its :data:`NOISE_SHARE_KEY`: do the outputs meant to absorb
    the exocentric views' noise (people, background) fire on the object alone? A SystemExit for a model whose CAM
    classifier has no noise outputs."""
    if not getattr(getattr(model, 'cam_head', None), 'num_noise', 0):
        raise SystemExit(
            'error: --noise scores the noise outputs of the CAM classifier; this model has none (the real configs '
            'have them: model.noise_on_cam_head=True with a noise head)'
        )
    maps = iter_classifier_maps(model, [s[0] for s in samples], batch_size, view='ego')
    rows = []
    for (_, obj_mask, part_mask, aff), (heat, _, share) in _paired(samples, maps):
        row = dict(point(heat[NOISE_KEY], _read_mask(obj_mask), _read_mask(part_mask), tolerance), affordance=aff)
        row[RIVAL_KEY] = np.nan  # one noise map per image: no affordance to tell apart
        row[NOISE_SHARE_KEY] = share
        rows.append(row)
    return rows


def evaluate(
    model,
    samples: List[Sample],
    sources: Sequence[str],
    batch_size: int = 8,
    tolerance: float = POINTING_TOLERANCE,
    exo: bool = False,
    noise: bool = False,
) -> Dict[str, List[dict]]:
    """Per heatmap source (and ``'centre'``), one pointing outcome (plus its affordance) per sample; with ``exo``
    the one source ``'exo_cam'`` (:func:`iter_classifier_maps` of the exo view) instead of ``sources``, whose
    outcomes also carry :data:`TOP1_KEY`; with ``noise`` (egocentric only) also the source :data:`NOISE_KEY`
    (:func:`noise_outcomes`), whose outcomes carry :data:`NOISE_SHARE_KEY`. The exocentric maps are scored as
    they stream, so a large exocentric set holds one batch of maps at a time."""
    from looptrans.apis import inference_affordance

    classes = tuple(model.dataset_meta['classes'])
    if exo:
        maps = iter_classifier_maps(model, [s[0] for s in samples], batch_size, view='exo')
        per_sample = ({'exo_cam': (heat, predicted)} for heat, predicted, _ in maps)
    else:
        by_source = {}
        saved = dict(model.test_cfg)
        try:
            for source in sources:
                model.test_cfg['heatmap'] = source
                results = inference_affordance(model, [s[0] for s in samples], affordances=None, batch_size=batch_size)
                by_source[source] = [result.heatmaps for result in results]
        finally:
            model.test_cfg.clear()
            model.test_cfg.update(saved)
        per_sample = ({src: (maps[i], None) for src, maps in by_source.items()} for i in range(len(samples)))

    outcomes: Dict[str, List[dict]] = defaultdict(list)
    for (img, obj_mask, part_mask, aff), maps in _paired(samples, per_sample):
        whole, part = _read_mask(obj_mask), _read_mask(part_mask)
        others = rival_affordances(aff, osp.basename(osp.dirname(img)), classes)
        centre = point(centre_heatmap(whole.shape), whole, part, tolerance)
        # every affordance's chance map is the same Gaussian: a rival points where the labelled one does
        outcomes['centre'].append(dict(centre, affordance=aff, **{RIVAL_KEY: centre['part'] if others else np.nan}))
        for source, (heat, predicted) in maps.items():
            row = dict(point(heat[aff], whole, part, tolerance), affordance=aff)
            row[RIVAL_KEY] = _rival_part(heat, others, whole, part, tolerance)
            if predicted is not None:
                row[TOP1_KEY] = float(predicted == aff)
            outcomes[source].append(row)
    if noise:
        outcomes[NOISE_KEY] = noise_outcomes(model, samples, batch_size, tolerance)
    return dict(outcomes)


def summarise(outcomes: List[dict], classes: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per affordance and ``overall``: the mean of every pointing figure (:data:`KEYS`, and :data:`TOP1_KEY` /
    :data:`NOISE_SHARE_KEY` where the outcomes carry them), the number of images, and over the ``rival_num``
    images that have rivals, ``rival_part`` and, for comparison on the same images, ``rival_own_part`` (the
    labelled affordance's ``part``); NaN where no image has rivals."""
    groups = defaultdict(list)
    for row in outcomes:
        groups[row['affordance']].append(row)
        groups['overall'].append(row)
    table = {}
    for name in [c for c in classes if c in groups] + ['overall']:
        rows = groups[name]
        keys = KEYS + tuple(k for k in (TOP1_KEY, NOISE_SHARE_KEY) if all(k in r for r in rows))
        table[name] = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        table[name]['num'] = len(rows)
        with_rivals = [r for r in rows if not np.isnan(r.get(RIVAL_KEY, np.nan))]
        table[name]['rival_num'] = len(with_rivals)
        for key, column in ((RIVAL_KEY, RIVAL_KEY), ('rival_own_part', 'part')):
            table[name][key] = float(np.mean([r[column] for r in with_rivals])) if with_rivals else float('nan')
    return table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--heatmaps',
        nargs='+',
        default=None,
        help="heatmap sources (model.test_cfg.heatmap values) to score; pixel maps are skipped for a model without "
        "a pixel head (default: 'cam' and the config's test map, model.test_cfg.heatmap)",
    )
    parser.add_argument('--data-root', help="generated tree (default: the config's test data_root)")
    parser.add_argument('--split', help="Seen or Unseen (default: the config's test split)")
    parser.add_argument(
        '--tolerance',
        type=float,
        default=POINTING_TOLERANCE,
        help='pixels (of the image) the maximum may lie from the object / part for the "near" columns '
        f'(default {POINTING_TOLERANCE:g}, the standard pointing game)',
    )
    parser.add_argument(
        '--exo',
        action='store_true',
        help="score the exocentric CAM on the exocentric training images (<split>/exo_masks) instead of the test "
        'heatmaps (--heatmaps is then ignored)',
    )
    parser.add_argument(
        '--noise',
        action='store_true',
        help='also score, on the egocentric test images, the per-pixel maximum of the CAM classifier\'s noise maps '
        'and report the share of the softmax the noise outputs take (a model whose classifier has noise outputs)',
    )
    parser.add_argument(
        '--norm-stats',
        choices=tuple(VIEW_FOLDERS),
        help="first re-estimate the CAM projection's BatchNorm running statistics on this view's training images of "
        'the played split (a shared projection trained per view keeps a blend of both views\' statistics)',
    )
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    args = parser.parse_args(argv)
    if args.exo and args.noise:
        parser.error('--noise scores the egocentric test images; it cannot be combined with --exo')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if not args.tolerance >= 0:
        parser.error(f'--tolerance must be >= 0 pixels, got {args.tolerance}')
    return args


def load(args: argparse.Namespace):
    """The model of ``args.config`` / ``args.checkpoint`` (with ``args.cfg_options``) and the generated split it is
    scored on (``--data-root`` / ``--split``, else the config's test data)."""
    from looptrans.apis import init_model
    from looptrans.utils.config_check import load_tool_config

    cfg = load_tool_config(args.config, args.cfg_options)
    test = cfg.test_dataloader.dataset
    root = osp.join(osp.expanduser(args.data_root or test.data_root), args.split or test.get('split', 'Seen'))
    return init_model(cfg, args.checkpoint, device=args.device), root


def default_heatmaps(model) -> List[str]:
    """'cam' and the model's test map: what the tests score (a probability map is a poor stand-in for a raw one:
    a sigmoid saturates to exactly 1 in float32 over a plateau, whose first pixel then counts as the maximum)."""
    test_map = model.test_cfg.get('heatmap', 'cam')
    return ['cam'] if test_map == 'cam' else ['cam', test_map]


def play(
    model,
    root: str,
    heatmaps: Optional[Sequence[str]] = None,
    exo: bool = False,
    batch_size: int = 8,
    tolerance: float = POINTING_TOLERANCE,
    noise: bool = False,
) -> Tuple[Dict[str, Dict[str, Dict[str, float]]], List[Sample]]:
    """The pointing game of ``model`` on the generated split ``root``: per source (the ``heatmaps`` the model has,
    or ``'exo_cam'`` with ``exo``, :data:`NOISE_KEY` too with ``noise``, and ``'centre'``; by default
    :func:`default_heatmaps`) the :func:`summarise` table, and the samples played."""
    if exo and noise:
        raise ValueError('noise=True scores the egocentric test images; it cannot be combined with exo=True')
    classes = tuple(model.dataset_meta['classes'])
    if exo:
        sources = ['exo_cam']
        samples = find_exo_samples(root, classes)
    else:
        pixel_maps = ('pixel', 'pixel_logits', 'fusion')
        sources = [
            s for s in (heatmaps or default_heatmaps(model)) if s not in pixel_maps or model.pixel_head is not None
        ]
        samples = find_test_samples(root, classes)
    outcomes = evaluate(model, samples, sources, batch_size, tolerance, exo=exo, noise=noise)
    shown = [*sources, *([NOISE_KEY] if noise else []), 'centre']
    return {src: summarise(outcomes[src], classes) for src in shown}, samples


def main(argv=None) -> Dict[str, Dict[str, Dict[str, float]]]:
    args = parse_args(argv)
    model, root = load(args)
    if args.norm_stats:
        paths = find_training_images(root, args.norm_stats)
        layers = recalibrate_projection_norm(model, paths, args.norm_stats, args.batch_size)
        print(
            f"the CAM projection's {layers} BatchNorm layers: running statistics re-estimated on {len(paths)} "
            f'{args.norm_stats} training images'
        )
    tables, samples = play(model, root, args.heatmaps, args.exo, args.batch_size, args.tolerance, args.noise)
    what = 'exocentric training images, exocentric CAM' if args.exo else 'egocentric test images'
    tol = f'{args.tolerance:g} px'
    print(f'pointing game on {len(samples)} {what} under {root} ({args.checkpoint})')
    print(
        f'| heatmap | affordance | images | max on object | within {tol} of object | max on part '
        f"| within {tol} of part | mass on object | on part, own / another affordance's map (images with one) |"
    )
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for src, table in tables.items():
        for name, row in table.items():
            if name == 'overall' or len(table) <= 9:
                figures = ' | '.join(f'{row[k]:.2f}' for k in KEYS)
                rival = 'n/a'
                if row['rival_num']:
                    rival = f'{row["rival_own_part"]:.2f} / {row[RIVAL_KEY]:.2f} ({row["rival_num"]})'
                print(f'| {src} | {name} | {row["num"]} | {figures} | {rival} |')
    if args.exo:
        classes = model.dataset_meta['classes']
        top1 = tables['exo_cam']['overall'][TOP1_KEY]
        print(
            f'exocentric classification (top-1 of the pooled exocentric CAM): {top1:.3f}'
            f' on these {len(samples)} images (chance {1 / len(classes):.3f}); memorisation is near 1 on the training'
            ' images and near chance on new ones (a tree of another --seed)'
        )
    if args.noise:
        share = tables[NOISE_KEY]['overall'][NOISE_SHARE_KEY]
        print(
            f'noise outputs: {share:.3f} of the softmax over the pooled class and noise logits of these images (mean);'
            f" the row '{NOISE_KEY}' is where the per-pixel maximum of the noise maps points"
        )
    return tables


if __name__ == '__main__':
    main()
