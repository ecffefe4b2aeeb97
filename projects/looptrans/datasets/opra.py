"""OPRA (Fang et al., CVPR 2018) with the Interaction Hotspots annotations (see :mod:`.hotspots_video`)."""

from __future__ import annotations

from typing import List, Mapping, Tuple

from mmengine import fileio
from mmseg.registry import DATASETS

from .hotspots_video import HotspotsVideoDataset


@DATASETS.register_module()
class OPRADataset(HotspotsVideoDataset):
    """OPRA (product review videos, Fang et al. CVPR 2018) in the Interaction Hotspots setting.

    Tree (``data_root`` is the OPRA download folder, as ``_DATA_ROOTS['opra']`` of Interaction Hotspots)::

        <data_root>/annotations.json                 # Interaction Hotspots: data/opra/annotations.json
        <data_root>/data/frames/<channel>/<playlist>/<product>/<a>_<b>.mp4/image-%08d.jpg   # 5 fps frames
        <data_root>/data/images/<channel>/<playlist>/<product>/<image file>                  # static images
        <data_root>/gt_cache/                        # written on first use (GT heatmaps)

    A clip entry ``{'clip': [channel, playlist, product, a, b], 'verb', 'noun', 'nframes', 'image'}`` gives
    frames ``1..nframes`` (``data/opra.py`` ``OPRAInteractions``: ``sample_rate=1``) and its product's
    static image ``data/images/<image...>`` (the positive of ``select_inactive_instances``), which becomes
    the egocentric view. Test entries ``{'image', 'verb', 'points', 'shape'}`` are rendered without
    transpose (``OPRAHeatmaps``: ``generate_heatmaps(..., transpose=False)``). Clips whose folder is
    missing are skipped, as the published code does, and counted in the log.

    Example:
        >>> ds = OPRADataset('data/opra', mode='test')  # doctest: +SKIP
    """

    DATASET_NAME = 'OPRA'
    DEFAULT_PREFIX = dict(frames='data/frames', images='data/images')
    DEFAULT_FRAME_STRIDE = 1
    GT_TRANSPOSE = False
    LAYOUT = (
        'Expected OPRA tree:\n'
        '  <data_root>/annotations.json  (Interaction Hotspots data/opra/annotations.json)\n'
        '  <data_root>/data/frames/<channel>/<playlist>/<product>/<a>_<b>.mp4/image-%08d.jpg\n'
        '  <data_root>/data/images/<channel>/<playlist>/<product>/<image>'
    )

    def clip_dir(self, entry: Mapping) -> str:
        clip = entry['clip']
        if len(clip) != 5:
            raise ValueError(
                f'OPRADataset: clip {clip!r} must have 5 parts [channel, playlist, product, '
                'a, b] (folder <channel>/<playlist>/<product>/<a>_<b>.mp4).'
            )
        return self.join(self.prefix('frames'), str(clip[0]), str(clip[1]), str(clip[2]), f'{clip[3]}_{clip[4]}.mp4')

    def clip_frames(self, entry: Mapping) -> Tuple[List[str], int]:
        folder = self.clip_dir(entry)
        names = [f'image-{f:08d}.jpg' for f in range(1, int(entry['nframes']) + 1, self.frame_stride)]
        if not self.isdir(folder):
            return [], len(names)
        present = set(fileio.list_dir_or_file(folder, list_dir=False, backend_args=self.backend_args))
        return [self.join(folder, n) for n in names if n in present], len(names)

    def static_image_path(self, entry: Mapping) -> str:
        return self.join(self.prefix('images'), *[str(p) for p in entry['image']])

    def ego_candidates(self, entry: Mapping) -> Tuple[str, Tuple[dict, ...]]:
        path = self.static_image_path(entry)
        if path not in self._ego_pools and not self.exists(path):
            return path, ()
        return path, (dict(img_path=path),)

    def test_image_path(self, entry: Mapping) -> str:
        return self.static_image_path(entry)

    def describe_clip(self, entry: Mapping) -> str:
        return self.clip_dir(entry)
