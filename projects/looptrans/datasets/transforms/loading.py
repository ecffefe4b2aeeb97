"""Loading of the egocentric / exocentric views and of the GT heatmaps."""

import logging
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS

from ...utils.bilinear import resize_bilinear
from ..file_io import decode_gt, decode_image, ensure_bgr3, gt_heatmap, read_file, truncation

__all__ = ['LoadAffordanceViews', 'LoadAffordanceGT', 'LoadEgoPartMask', 'ensure_bgr3']


def _decode_stored_orientation(data: bytes, backend: str) -> Optional[np.ndarray]:
    """BGR uint8 image as stored (EXIF orientation not applied), or None.

    None for anything :func:`~looptrans.datasets.file_io.decode_image` must
    judge (empty, cut short, undecodable): the caller then goes through it,
    so bad files raise its :class:`BadFileError` with the usual message.
    """
    if not data or truncation(data) is not None:
        return None
    try:
        img = mmcv.imfrombytes(data, flag='color_ignore_orientation', channel_order='bgr', backend=backend)
    except Exception:  # noqa: BLE001 - the checked decoder reports it
        return None
    if img is None or img.size == 0:
        return None
    return np.ascontiguousarray(ensure_bgr3(img))


@TRANSFORMS.register_module()
class LoadAffordanceViews(BaseTransform):
    """Load the egocentric image and, when present, the exocentric images.

    Images are decoded as 3-channel BGR uint8, like every OpenMMLab loader
    (grayscale, palette and CMYK files are converted, alpha is dropped). A
    file that is missing, empty, cut short or not an image raises
    :class:`~looptrans.datasets.file_io.BadFileError` naming the file; the
    affordance datasets catch it in training and draw another item.

    The published pipelines read images with ``Image.open(path).convert(
    'RGB')``, which does not apply the EXIF orientation tag; with
    ``ignore_orientation=True`` (default) the pixels are those, as stored.
    OpenCV's decoder (``imdecode_backend='cv2'``, the fastest here) gives
    the same pixels as PIL for 8-bit RGB / gray / palette / alpha images
    (JPEG, PNG, BMP, WebP); CMYK JPEGs may differ by one grey level and
    16-bit PNGs are scaled (PIL clips them), see ``docs/data_pipeline.md``.

    Required keys: ``img_path``; optional ``exo_paths`` (list, train).

    Added keys: ``img`` (ego, HxWx3 uint8), ``exo_imgs`` (list of HxWx3 uint8,
    only when ``exo_paths`` is given), ``ori_shape`` and ``img_shape`` (the
    ego image's (h, w)).

    Args:
        imdecode_backend (str): ``mmcv.imfrombytes`` backend. Defaults to
            'cv2'.
        ignore_orientation (bool): Keep the stored pixel layout, ignoring
            the EXIF orientation tag, as the published PIL loading does.
            False rotates the image upright (mmcv's default). Defaults to
            True.
        backend_args (dict, optional): MMEngine file backend arguments.
    """

    def __init__(
        self, imdecode_backend: str = 'cv2', ignore_orientation: bool = True, backend_args: Optional[dict] = None
    ) -> None:
        if imdecode_backend not in ('cv2', 'pillow', 'turbojpeg'):
            raise ValueError(
                f'LoadAffordanceViews: imdecode_backend={imdecode_backend!r} '
                "is not one of 'cv2', 'pillow', 'turbojpeg'"
            )
        self.imdecode_backend = imdecode_backend
        self.ignore_orientation = bool(ignore_orientation)
        self.backend_args = backend_args

    def _load(self, path: str) -> np.ndarray:
        owner = type(self).__name__
        data = read_file(path, self.backend_args, owner)
        if self.ignore_orientation:
            img = _decode_stored_orientation(data, self.imdecode_backend)
            if img is not None:
                return img
        return decode_image(data, path, owner, self.imdecode_backend)

    def transform(self, results: dict) -> dict:
        img = self._load(results['img_path'])
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        exo_paths = results.get('exo_paths')
        if exo_paths:
            results['exo_imgs'] = [self._load(p) for p in exo_paths]
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(imdecode_backend='
            f'{self.imdecode_backend!r}, ignore_orientation='
            f'{self.ignore_orientation}, '
            f'backend_args={self.backend_args})'
        )


def _size_hw(size: Optional[Union[int, Sequence[int]]]) -> Optional[Tuple[int, int]]:
    """``None``, or ``size`` (an int or ``(h, w)``) as a checked ``(h, w)``."""
    if size is None:
        return None
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in hw):
        raise ValueError(f'LoadAffordanceGT: resize_to must be a positive int or (h, w), got {size!r}')
    return int(hw[0]), int(hw[1])


@TRANSFORMS.register_module()
class LoadAffordanceGT(BaseTransform):
    """Load a GT heatmap as float64 in [0, 1] at the file's own size.

    8-bit files are divided by 255.0 and 16-bit files by 65535.0 in float64,
    as the published evaluation code does (LOCATE / Cross-View-AG:
    ``cv2.imread(path, cv2.IMREAD_GRAYSCALE) / 255.0``, then
    ``cv2.resize(gt, (224, 224))`` on the float64 map). The precision
    matters: resizing puts many GT pixels exactly half-way between two grey
    levels, and in float32 some of them land on the other side of NSS's
    ``> 0.1`` fixation threshold, which moves NSS by up to a few 1e-3 per
    image (``tests/test_gt_fidelity.py``). :class:`PackAffordanceInputs` and
    :class:`~looptrans.evaluation.AffordanceMetric` keep the float64.

    A GT stored with three or four equal colour channels is read from its
    first channel (exactly what the published grayscale read gives). A
    colour GT whose channels differ (likely a colour-mapped rendering, for
    which luma is not the heat) is converted with ITU-R 601 weights
    (``0.299 R + 0.587 G + 0.114 B``, alpha ignored) after scaling, so no
    precision is lost to rounding, and logged as a warning, once per
    transform. A four-channel GT whose map is in its alpha channel (constant
    colour channels: maps exported from drawing tools) is read from the
    alpha channel; gray colour channels cut out by a two-level alpha read as
    the map where opaque and 0 where transparent; a file in which both vary
    otherwise is refused with its name
    (:func:`~looptrans.datasets.file_io.gt_map_source`, which
    ``tools/misc/check_dataset.py`` applies too). Unreadable files raise
    :class:`~looptrans.datasets.file_io.BadFileError`.

    With ``resize_to``, the map is also resized here, in the data-loader
    workers, with the call the metric would make
    (``cv2.resize(gt, (w, h), interpolation=cv2.INTER_LINEAR)`` in float64,
    so the scores are bit for bit the same): the test loop's main process
    then neither resizes it nor receives the full-size float64 map (2.4 MB
    for a 640x480 GT, 0.4 MB at 224x224). It must be the size the metric
    resizes GT maps to first: the evaluation size of the AGD20K protocol
    (224) or ``HOTSPOTS_GT_SIZE`` (224) of the Hotspots protocol;
    :class:`~looptrans.evaluation.AffordanceMetric` checks it
    (``gt_resized_to``).

    Required keys: ``gt_path``. Added keys: ``gt_heatmap`` ((h0, w0)
    float64, or ``resize_to``), ``gt_resized_to`` ((h, w), only with
    ``resize_to``).

    Args:
        backend_args (dict, optional): MMEngine file backend arguments.
        resize_to (int | tuple[int, int], optional): ``(h, w)`` (or one side
            of a square) to resize the GT to. Defaults to None (kept at the
            file's size).
    """

    def __init__(
        self, backend_args: Optional[dict] = None, resize_to: Optional[Union[int, Tuple[int, int]]] = None
    ) -> None:
        self.backend_args = backend_args
        self.resize_to = _size_hw(resize_to)
        self._warned_color = False

    def transform(self, results: dict) -> dict:
        path = results['gt_path']
        owner = type(self).__name__
        raw = decode_gt(read_file(path, self.backend_args, owner), path, owner)
        heat, source = gt_heatmap(raw, path, owner)
        if source == 'colour' and not self._warned_color:
            print_log(
                f'{owner}: GT heatmap {path!r} is a colour image whose '
                'channels differ; it is converted to gray with ITU-R 601 '
                'weights. If it is a colour-mapped rendering the scores are '
                'wrong: store GT as single-channel PNGs (warned once; '
                'tools/misc/check_dataset.py lists every such file).',
                logger='current',
                level=logging.WARNING,
            )
            self._warned_color = True
        if self.resize_to is not None:
            h, w = self.resize_to
            if heat.shape != (h, w):
                # the metric's own resize (cv2.INTER_LINEAR to ~1e-14): scores are bit for bit those of
                # the GT resized in AffordanceMetric
                heat = resize_bilinear(heat, (h, w))[0]
            results['gt_resized_to'] = (h, w)
        results['gt_heatmap'] = heat
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(backend_args={self.backend_args}, resize_to={self.resize_to})'


@TRANSFORMS.register_module()
class LoadEgoPartMask(BaseTransform):
    """Load the true affordance-part mask of the egocentric image, when the sample has one.

    Pseudo-mask quality decides what the pixel head learns; with this transform in the training pipeline
    :class:`~looptrans.models.LoopTrans` logs the IoU of every training step's pseudo-masks with the true
    part (``pm_true_iou``). Only generated data knows the true part
    (:class:`~looptrans.testing.SyntheticAGD20KDataset` puts ``part_mask_path`` into the train items whose
    mask exists); a sample without ``part_mask_path`` passes through unchanged, so the transform is
    harmless on real data.

    The mask becomes ``gt_seg_map`` (uint8, 1 = part) in ``seg_fields``, the mmseg convention, so the
    egocentric view's geometric transforms in :class:`MultiViewTransform` (``ResizeShortEdge``, mmseg
    ``RandomCrop``, mmcv ``RandomFlip`` / ``Resize``) move it with the image; nearest-neighbour resizing keeps
    it binary. It must have the egocentric image's size.

    Required keys: ``img`` (to check the size); optional ``part_mask_path``.
    Added keys: ``gt_seg_map``, ``seg_fields``.
    """

    def __init__(self, backend_args: Optional[dict] = None, threshold: int = 127) -> None:
        self.backend_args = backend_args
        self.threshold = int(threshold)

    def transform(self, results: dict) -> dict:
        path = results.get('part_mask_path')
        if not path:
            return results
        owner = type(self).__name__
        raw = decode_gt(read_file(path, self.backend_args, owner), path, owner)
        if raw.ndim == 3:
            raw = raw[..., 0]
        shape = results['img'].shape[:2]
        if raw.shape != shape:
            raise ValueError(
                f'{owner}: part mask {path!r} is {raw.shape[1]}x{raw.shape[0]} but its egocentric image '
                f'{results.get("img_path")!r} is {shape[1]}x{shape[0]}; the mask must cover the image pixel '
                'for pixel (regenerate the data with tools/misc/generate_synthetic_agd20k.py --overwrite).'
            )
        results['gt_seg_map'] = (raw > self.threshold).astype(np.uint8)
        fields = list(results.get('seg_fields', []))
        if 'gt_seg_map' not in fields:
            fields.append('gt_seg_map')
        results['seg_fields'] = fields
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(backend_args={self.backend_args}, threshold={self.threshold})'
