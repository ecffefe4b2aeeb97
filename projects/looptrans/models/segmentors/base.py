# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""What every affordance segmentor of this package shares: packed views, config checks, and test-time inference.

:class:`AffordanceSegmentor` is mmseg's ``BaseSegmentor`` for weakly-supervised affordance grounding: a training
batch packs one egocentric and ``V`` exocentric images per sample (``inputs`` (B, 1 + V, 3, H, W)), and the test
output is a heatmap per affordance of the egocentric image. A subclass implements ``extract_feat`` (images ->
feature levels) and ``loss``, and has a ``cam_head`` (:class:`~looptrans.models.heads.SharedCAMHead`) and a
``pixel_head`` (or None); inference (:meth:`~AffordanceSegmentor.inference`, ``predict``, the heatmap sources) is
this class's, hence the same for :class:`LoopTrans` and :class:`LOCATE`.
"""

from __future__ import annotations

import difflib
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.structures import SegDataSample
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor

from ...utils.maps import minmax_normalize
from ..heads import labels_of, select_class_maps
from ..heads.utils import resize_to

#: What ``model.test_cfg.heatmap`` may name (see :meth:`AffordanceSegmentor.decode_heatmaps`).
HEATMAP_SOURCES = ('pixel', 'pixel_logits', 'cam', 'fusion')
#: The default with a pixel head, chosen on the generated validation split (docs/results.md, "Test-time heatmap").
DEFAULT_HEATMAP = 'pixel'


def check_cfg_keys(name: str, cfg: dict, known: Sequence[str]) -> None:
    """Refuse unknown keys in ``model.<name>`` (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
        raise ValueError(f'model.{name} has unknown keys {", ".join(hints)}; known keys: {list(known)}.')


def split_views(inputs: Tensor) -> Tuple[Tensor, Tensor]:
    """Packed views (B, 1 + V, 3, H, W) -> egocentric images (B, 3, H, W) and exocentric ones (B, V, 3, H, W)."""
    if inputs.dim() != 5:
        raise ValueError(
            f'LoopTrans expects inputs of shape (B, V, 3, H, W), got {tuple(inputs.shape)}; '
            'use AffordanceDataPreprocessor and PackAffordanceInputs.'
        )
    return inputs[:, 0], inputs[:, 1:]


class AffordanceSegmentor(BaseSegmentor):
    """Base of the affordance segmentors: test-time heatmaps from the CAM head and the pixel head.

    Subclasses set ``self.cam_head``, ``self.pixel_head`` (or None), ``self.test_cfg`` (``heatmap``,
    ``return_all``) and implement ``extract_feat`` and ``loss``.
    """

    # ------------------------------------------------------------------ heatmap source
    @property
    def heatmap_source(self) -> str:
        """The heatmap ``inference`` gives: ``test_cfg.heatmap``, by default ``'pixel'`` with a pixel head and
        ``'cam'`` without; checked (:meth:`check_heatmap_source`)."""
        source = self.test_cfg.get('heatmap', DEFAULT_HEATMAP if self.pixel_head is not None else 'cam')
        self.check_heatmap_source(source)
        return source

    def check_heatmap_source(self, source: str) -> None:
        """Raise a ValueError naming the fix unless this model can give the heatmap ``source``."""
        if source not in HEATMAP_SOURCES:
            raise ValueError(f'model.test_cfg.heatmap must be one of {HEATMAP_SOURCES}, got {source!r}')
        if source != 'cam' and self.pixel_head is None:
            raise ValueError(f"model.test_cfg.heatmap={source!r} needs a pixel_head; use 'cam'")

    # ------------------------------------------------------------------ inference
    def pixel_logits(self, feats: List[Tensor]) -> Tensor:
        """The pixel head's logits (B, C, h', w') of the ego feature levels; a subclass whose pixel head reads
        other features (LoopTrans with ``pixel_on_cam_head``) routes them here, for training and inference."""
        return self.pixel_head(feats)

    def decode_heatmaps(
        self, feats: List[Tensor], size: Tuple[int, int], sources: Sequence[str], cams: Optional[Tensor] = None
    ) -> Dict[str, Tensor]:
        """Heatmaps of every affordance from the ego feature levels, (B, C, H, W) at ``size``, one per
        source.

        Sources (``test_cfg.heatmap``): ``'pixel'`` the pixel head's probabilities (sigmoid),
        ``'pixel_logits'`` its logits, ``'cam'`` the raw ego CAMs, ``'fusion'`` the pixel probabilities
        times the min-max normalised CAM (each class map). The pixel head and the CAM head each run at
        most once, whatever the sources (``cams``: the CAM head's output on ``feats`` when the caller has
        it already); every map is resized bilinearly to ``size``.
        """
        for source in sources:
            self.check_heatmap_source(source)
        out: Dict[str, Tensor] = {}
        if any(src in ('pixel', 'pixel_logits', 'fusion') for src in sources):
            logits = self._resize(self.pixel_logits(feats), size)
            out['pixel_logits'] = logits
            out['pixel'] = logits.sigmoid()
        if any(src in ('cam', 'fusion') for src in sources):
            out['cam'] = self._resize(self.cam_head(feats, view='ego') if cams is None else cams, size)
        if 'fusion' in sources:
            cam = out['cam']
            out['fusion'] = out['pixel'] * minmax_normalize(cam.flatten(0, 1)).view_as(cam)
        return {src: out[src] for src in sources}

    _resize = staticmethod(resize_to)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Heatmaps of every affordance for the egocentric images, (B, C, H, W) at the input size, from
        the source ``test_cfg.heatmap`` names (see :meth:`decode_heatmaps`)."""
        ego = inputs[:, 0] if inputs.dim() == 5 else inputs
        source = self.heatmap_source
        return self.decode_heatmaps(self.extract_feat(ego), ego.shape[-2:], (source,))[source]

    def inference(self, inputs: Tensor, batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """Heatmap scores of every affordance, (B, C, H, W) at the input size, per ``test_cfg.heatmap``
        (the role of mmseg's ``EncoderDecoder.inference``; egocentric images (B, 3, H, W) or packed
        views (B, V, 3, H, W), of which view 0 is used)."""
        return self.encode_decode(inputs, batch_img_metas or [])

    def inference_with_logits(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """:meth:`inference`'s heatmaps (B, C, H, W) and the CAM head's image-level logits (B, C) (the
        global average of the ego CAMs, the classifier's view of "what can be done with this object"),
        from one backbone pass, the CAM head running once."""
        ego = inputs[:, 0] if inputs.dim() == 5 else inputs
        source = self.heatmap_source
        feats = self.extract_feat(ego)
        cams = self.cam_head(feats, view='ego')
        maps = self.decode_heatmaps(feats, ego.shape[-2:], (source,), cams=cams)[source]
        return maps, self.cam_head.logits(cams)

    def predict(self, inputs: Tensor, data_samples: Optional[SampleList] = None) -> SampleList:
        """Write ``pred_heatmap`` (1, H, W) for each sample's affordance (its ``gt_label``), and
        ``pred_heatmaps`` (C, H, W) with ``test_cfg.return_all``, into the data samples.

        Without data samples (as mmseg's ``EncoderDecoder.predict``), new ones are made and carry the
        heatmaps of every affordance in ``pred_heatmaps`` (there is no asked affordance then).
        Each sample's maps are its own tensors, not slices of the batch's (a slice would keep, and pickle, the
        whole batch's storage with each sample: ``tools/test.py --out``, metrics that keep predictions).
        """
        maps = self.inference(inputs)
        if data_samples is None:
            return [
                SegDataSample(pred_heatmaps=PixelData(data=m.clone()), metainfo=dict(img_shape=tuple(m.shape[-2:])))
                for m in maps
            ]
        chosen = select_class_maps(maps, labels_of(data_samples, maps.device))
        return_all = self.test_cfg.get('return_all', False)
        for i, sample in enumerate(data_samples):
            sample.set_data(dict(pred_heatmap=PixelData(data=chosen[i : i + 1].clone())))
            if return_all:
                sample.set_data(dict(pred_heatmaps=PixelData(data=maps[i].clone())))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples: OptConfigType = None) -> Tensor:
        """Raw all-class heatmaps (for FLOPs counting and export)."""
        return self.encode_decode(inputs, [])
