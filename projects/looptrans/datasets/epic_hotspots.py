"""EPIC-Hotspots: EPIC-Kitchens (2018) clips with the Interaction Hotspots annotations (the box crop of its
inactive object images is :class:`~.transforms.CropEgoBox`)."""

from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

from mmseg.registry import DATASETS

from .hotspots_video import HotspotsVideoDataset


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
    DEFAULT_PREFIX = dict(
        frames='frames_rgb_flow/rgb/train', detections='object_detection_images/train', images='images'
    )
    DEFAULT_FRAME_STRIDE = 10
    GT_TRANSPOSE = True
    REQUIRED_KEYS = dict(train=('verbs', 'nouns', 'train_clips', 'inactive_images'), test=('verbs', 'test_images'))
    LAYOUT = (
        'Expected EPIC-Hotspots tree:\n'
        '  <data_root>/annotations.json  (Interaction Hotspots data/epic/annotations.json)\n'
        '  <data_root>/images/<image>    (Interaction Hotspots data/epic/images/)\n'
        '  <data_root>/frames_rgb_flow/rgb/train/<P01>/<P01_17>/frame_%010d.jpg\n'
        '  <data_root>/object_detection_images/train/<P01>/<P01_17>/%010d.jpg'
    )

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
