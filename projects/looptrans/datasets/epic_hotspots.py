"""EPIC-Hotspots: EPIC-Kitchens (2018) clips with the Interaction Hotspots annotations, and the box crop of
its inactive object images."""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import DATASETS, TRANSFORMS

from .opra import HotspotsVideoDataset


@DATASETS.register_module()
class EPICHotspotsDataset(HotspotsVideoDataset):
    """EPIC-Kitchens egocentric clips + inactive object images (Interaction Hotspots, ICCV 2019).

    Tree (``data_root`` is the EPIC-Kitchens 2018 folder, as ``_DATA_ROOTS['epic']`` of Interaction
    Hotspots; ``annotations.json`` and ``images/`` come from its ``data/epic/``)::

        <data_root>/annotations.json
        <data_root>/images/<image>                                          # test: inactive object crops
        <data_root>/frames_rgb_flow/rgb/train/<P01>/<P01_17>/frame_%010d.jpg   # video frames (60 fps)
        <data_root>/object_detection_images/train/<P01>/<P01_17>/%010d.jpg     # inactive object frames
        <data_root>/gt_cache/                                               # written on first use

    Matched to ``Tushar-N/interaction-hotspots`` ``data/epic.py``:

    * a clip ``{'v_id', 'start', 'stop', 'verb', 'noun'}`` uses frames ``range(start, stop + 1, 10)``
      (``EPICInteractions``, ``sample_rate=10``: 6 fps);
    * its egocentric view is a random inactive image of the clip's noun, ``inactive_images[noun]`` entries
      ``{'v_id', 'f_id', 'box'}`` from ``object_detection_images``; the item carries ``ego_box`` and the
      train pipeline crops it with :class:`CropEgoBox` (``CropPerturb``: random expansion and shift);
    * test entries ``{'image', 'verb', 'points', 'shape'}`` read ``images/<image[0]>`` and their GT map is
      transposed (``EPICHeatmaps``: ``generate_heatmaps(..., transpose=True)``; ``shape`` is
      ``(width, height)`` and points are ``(x, y)``).

    Missing clips, frames and images are skipped and counted in the log (the published code assumes a
    complete download).
    """

    DATASET_NAME = 'EPIC-Hotspots'
    DEFAULT_PREFIX = dict(frames='frames_rgb_flow/rgb/train', detections='object_detection_images/train',
                          images='images')
    DEFAULT_FRAME_STRIDE = 10
    GT_TRANSPOSE = True
    REQUIRED_KEYS = dict(train=('verbs', 'nouns', 'train_clips', 'inactive_images'),
                         test=('verbs', 'test_images'))
    LAYOUT = ('Expected EPIC-Hotspots tree:\n'
              '  <data_root>/annotations.json  (Interaction Hotspots data/epic/annotations.json)\n'
              '  <data_root>/images/<image>    (Interaction Hotspots data/epic/images/)\n'
              '  <data_root>/frames_rgb_flow/rgb/train/<P01>/<P01_17>/frame_%010d.jpg\n'
              '  <data_root>/object_detection_images/train/<P01>/<P01_17>/%010d.jpg')

    def __init__(self, *args, **kwargs) -> None:
        self._video_dirs: Dict[Tuple[str, str], bool] = {}
        self._nouns_without_images: set = set()
        super().__init__(*args, **kwargs)

    def video_dir(self, root_key: str, v_id: str) -> str:
        """``<prefix>/<participant>/<v_id>`` (``P01_17`` lives in ``P01/``)."""
        return self.join(self.prefix(root_key), str(v_id).split('_')[0], str(v_id))

    def _has_video(self, root_key: str, v_id: str) -> bool:
        key = (root_key, str(v_id))
        if key not in self._video_dirs:
            self._video_dirs[key] = self.isdir(self.video_dir(root_key, v_id))
        return self._video_dirs[key]

    def clip_frames(self, entry: Mapping) -> Tuple[List[str], int]:
        ids = range(int(entry['start']), int(entry['stop']) + 1, self.frame_stride)
        if not self._has_video('frames', entry['v_id']):
            return [], len(ids)
        folder = self.video_dir('frames', entry['v_id'])
        paths = [self.join(folder, f'frame_{f:010d}.jpg') for f in ids]
        return [p for p in paths if self.exists(p)], len(ids)

    def describe_clip(self, entry: Mapping) -> str:
        return f"{entry.get('v_id')}[{entry.get('start')}:{entry.get('stop')}]"

    def ego_candidates(self, entry: Mapping) -> Tuple[str, Tuple[dict, ...]]:
        noun = self.noun_name(entry)
        if noun in self._ego_pools:
            return noun, self._ego_pools[noun]
        if noun in self._nouns_without_images:
            return noun, ()
        candidates = []
        for item in self._annotations['inactive_images'].get(noun, ()):
            if not self._has_video('detections', item['v_id']):
                continue
            path = self.join(self.video_dir('detections', item['v_id']), f"{int(item['f_id']):010d}.jpg")
            if self.exists(path):
                candidates.append(dict(img_path=path, ego_box=[float(b) for b in item['box']]))
        if not candidates:
            self._nouns_without_images.add(noun)
        return noun, tuple(candidates)

    def test_image_path(self, entry: Mapping) -> str:
        name = str(entry['image'][0])
        path = self.join(self.prefix('images'), name)
        if '.' not in name.rsplit('/', 1)[-1] and not self.exists(path):
            path += '.jpg'  # the crops are JPEG files; tolerate ids given without the suffix
        return path

    def test_image_name(self, entry: Mapping) -> str:
        return str(entry['image'][0])

    def load_data_list(self) -> List[dict]:
        try:
            return super().load_data_list()
        finally:
            self._video_dirs.clear()
            self._nouns_without_images.clear()


@TRANSFORMS.register_module()
class CropEgoBox(BaseTransform):
    """Crop the egocentric image to its object box with a random expansion and shift (EPIC-Hotspots).

    Matches ``CropPerturb`` and ``expand_box`` of ``Tushar-N/interaction-hotspots`` ``data/epic.py``: the box
    ``[xmin, ymin, xmax, ymax]`` grows by ``U(expand)`` of its width/height (half on each side, limited by
    the image border), then moves by ``U(-shift, shift)`` of its size in x and y; the crop keeps the image
    inside the box and fills the part of the box outside the image with black, as ``PIL.Image.crop``.
    Random numbers come from ``np.random``.

    With ``random=False`` (deterministic) the box is cropped as given. Items without ``ego_box`` pass
    through unchanged, so the transform can sit in any pipeline.

    Required keys: ``img``; optional ``ego_box``. Modified keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        expand: range of the relative expansion (published ``(0.5, 1.5)``).
        shift: maximum relative shift (published 0.2).
        random: draw the expansion and shift; False crops the plain box.
    """

    def __init__(self, expand: Sequence[float] = (0.5, 1.5), shift: float = 0.2, random: bool = True) -> None:
        if len(expand) != 2 or not 0 <= expand[0] <= expand[1]:
            raise ValueError(f'CropEgoBox: expand must be (lo, hi) with 0 <= lo <= hi, got {expand!r}')
        if shift < 0:
            raise ValueError(f'CropEgoBox: shift must be >= 0, got {shift!r}')
        self.expand = (float(expand[0]), float(expand[1]))
        self.shift = float(shift)
        self.random = bool(random)

    def crop_box(self, box: Sequence[float], width: int, height: int) -> List[int]:
        """The integer crop box ``[x0, y0, x1, y1)`` (may extend past the image)."""
        xmin, ymin, xmax, ymax = box
        if not self.random:
            return [int(xmin), int(ymin), int(xmax), int(ymax)]
        ratio = np.random.uniform(*self.expand)
        dx, dy = int((xmax - xmin) * ratio), int((ymax - ymin) * ratio)
        left, right = min(dx // 2, xmin), min(dx // 2, width - xmax)
        top, bottom = min(dy // 2, ymin), min(dy // 2, height - ymax)
        x0, y0 = max(xmin - left, 0), max(ymin - top, 0)
        x1, y1 = min(xmax + right, width - 1), min(ymax + bottom, height - 1)
        tx, ty = np.random.uniform(-self.shift, self.shift, size=2)
        ox, oy = tx * (x1 - x0), ty * (y1 - y0)
        return [int(x0 + ox), int(y0 + oy), int(x1 + ox), int(y1 + oy)]

    @staticmethod
    def crop(img: np.ndarray, box: Sequence[int]) -> np.ndarray:
        """``img[y0:y1, x0:x1]`` with zeros where the box leaves the image."""
        x0, y0, x1, y1 = box
        h, w = img.shape[:2]
        out = np.zeros((y1 - y0, x1 - x0) + img.shape[2:], dtype=img.dtype)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
        return out

    def transform(self, results: dict) -> dict:
        box = results.get('ego_box')
        if box is None:
            return results
        img = results['img']
        h, w = img.shape[:2]
        if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f'CropEgoBox: ego_box {list(box)} of {results.get("img_path")!r} must be '
                             '[xmin, ymin, xmax, ymax] with xmax > xmin and ymax > ymin; fix the '
                             'inactive_images entry in annotations.json.')
        x0, y0, x1, y1 = self.crop_box(box, w, h)
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)  # never an empty crop
        img = np.ascontiguousarray(self.crop(img, (x0, y0, x1, y1)))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(expand={self.expand}, shift={self.shift}, random={self.random})'
