"""The LoopTrans segmentor: shared CAM -> pixel localisation -> denoising distillation, in one closed loop."""

from __future__ import annotations

import difflib
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ...utils.maps import minmax_normalize
from ..heads import masked_average_pool, select_class_maps
from ..heads.utils import as_feature_list, loss_names
from ..part_discovery import pseudo_mask_iou

#: What ``model.test_cfg.heatmap`` may name (see :meth:`LoopTrans.decode_heatmaps`).
HEATMAP_SOURCES = ('pixel', 'pixel_logits', 'cam', 'fusion')
#: The default with a pixel head, chosen on the generated validation split (docs/results.md, "Test-time heatmap").
DEFAULT_HEATMAP = 'pixel'
#: The keys ``model.train_cfg`` / ``model.test_cfg`` understand; any other key is a typo.
TRAIN_CFG_KEYS = ('pixel_supervision',)
TEST_CFG_KEYS = ('heatmap', 'return_all')


def _check_cfg_keys(name: str, cfg: dict, known: Sequence[str]) -> None:
    """Refuse unknown keys in ``model.<name>`` (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
        raise ValueError(f'model.{name} has unknown keys {", ".join(hints)}; known keys: {list(known)}.')


@MODELS.register_module()
class LoopTrans(BaseSegmentor):
    """Closed-loop transfer for weakly-supervised affordance grounding (ICCV 2025).

    Training data flow for a batch of ``B`` samples, each with one egocentric image and ``V`` exocentric
    images (``inputs`` is ``(B, 1 + V, 3, H, W)``, view 0 egocentric; see ``docs/data_flow.md``):

    1. the backbone encodes all ``B * (1 + V)`` images in one pass;
    2. the shared CAM head turns exo and ego features into class activation maps and GAP logits
       (classification loss on both views);
    3. part discovery clusters the frozen DINO descriptors of each ego image into K parts and takes the part
       with the highest IoU against the ego CAM of the labelled affordance as its pseudo-mask; the pixel head
       is trained on it (dice + MSE);
    4. the noise heads absorb non-affordance context in the exo CAMs; the denoising distillation loss pulls
       the exo affordance feature towards the ego feature pooled by the pixel head's (clean) localisation;
    5. the correlation loss aligns the affordance correlations of the two views.

    At test time only the egocentric image is used: the heatmap of the asked affordance comes from the pixel
    head (``test_cfg.heatmap='pixel'``, its sigmoid, the default when a pixel head exists;
    ``'pixel_logits'``), the shared CAM (``'cam'``) or their product (``'fusion'``).

    Args:
        backbone: image encoder config. A :class:`DINOVisionTransformer` doubles as the descriptor
            extractor for part discovery (one pass); any other mmseg/mmpretrain backbone needs
            ``descriptor``.
        cam_head: :class:`SharedCAMHead` config (``shared=False`` is the "no shared CAM" ablation).
        pixel_head: :class:`PixelAffordanceHead` config, or None ("no pixel alignment" ablation).
        noise_head: :class:`NoiseHead` config, or None ("no denoising distillation" ablation).
        corr_loss: :class:`AffordanceCorrelationLoss` config, or None.
        part_discovery: :class:`PartDiscovery` config (K parts).
        descriptor: frozen DINO backbone config giving part-discovery descriptors when ``backbone`` is not
            a DINO ViT; None to take them from ``backbone``.
        neck: optional neck applied to the backbone output.
        temporal: optional temporal aggregator for video clips (OPRA / EPIC): the exocentric views are the
            frames of a clip, and this module maps their features (B, T, C, h, w) to temporally
            contextualised per-frame features of the same shape before the shared CAM head.
        feature_key: which DINO output feeds the heads when the backbone is a DINO ViT: ``'keys'`` (the
            last block's attention keys, as LOCATE) or ``'feats'`` (the final normed tokens).
        train_cfg: ``dict(pixel_supervision=True)``; the :class:`PseudoMaskHook` switches pixel supervision
            on after its warm-up.
        test_cfg: ``dict(heatmap=<one of HEATMAP_SOURCES>, return_all=False)``.
            Unknown keys in ``train_cfg`` / ``test_cfg`` are an error.
    """

    def __init__(
        self,
        backbone: ConfigType,
        cam_head: ConfigType,
        pixel_head: OptConfigType = None,
        noise_head: OptConfigType = None,
        corr_loss: OptConfigType = None,
        part_discovery: ConfigType = dict(type='PartDiscovery', num_parts=4),
        descriptor: OptConfigType = None,
        neck: OptConfigType = None,
        temporal: OptConfigType = None,
        feature_key: str = 'keys',
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        data_preprocessor: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.cam_head = MODELS.build(cam_head)
        self.pixel_head = MODELS.build(pixel_head) if pixel_head is not None else None
        self.noise_head = MODELS.build(noise_head) if noise_head is not None else None
        self.corr_loss = MODELS.build(corr_loss) if corr_loss is not None else None
        self.part_discovery = MODELS.build(part_discovery)
        self.descriptor = MODELS.build(descriptor) if descriptor is not None else None
        self.temporal = MODELS.build(temporal) if temporal is not None else None
        if self.descriptor is None and not hasattr(self.backbone, 'forward_descriptors'):
            raise ValueError(
                f'{type(self.backbone).__name__} gives no DINO descriptors for part discovery: set '
                "model.descriptor=dict(type='DINOVisionTransformer', frozen=True, ...) in the config."
            )
        if feature_key not in ('keys', 'feats'):
            raise ValueError(f"feature_key must be 'keys' or 'feats', got {feature_key!r}")
        self.feature_key = feature_key
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        _check_cfg_keys('train_cfg', self.train_cfg, TRAIN_CFG_KEYS)
        _check_cfg_keys('test_cfg', self.test_cfg, TEST_CFG_KEYS)
        self._heatmap_source()  # a bad test_cfg.heatmap fails now, not after training
        #: switched by PseudoMaskHook; pixel losses are zero (graph kept) while False.
        self.pixel_supervision = bool(self.train_cfg.get('pixel_supervision', True))
        #: the last training step's pseudo-masks, for PseudoMaskHook dumps (detached, on device).
        self.last_pseudo_masks: Optional[Dict[str, Tensor]] = None
        self.num_classes = self.cam_head.num_classes

    # ------------------------------------------------------------------ features
    @property
    def shares_descriptor_pass(self) -> bool:
        """True when the backbone itself is the DINO ViT that gives part-discovery descriptors."""
        return self.descriptor is None

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Backbone (and neck) feature levels of a batch of images (N, 3, H, W), as mmseg segmentors
        return them; each head selects its input with its own ``in_index`` / ``input_transform``."""
        return self._encode(inputs)[0]

    def _encode(self, images: Tensor, num_desc: int = 0) -> Tuple[List[Tensor], Optional[Dict[str, Tensor]]]:
        """Encode ``images`` into feature levels; also return the part-discovery descriptors of the first
        ``num_desc`` images: ``keys`` (num_desc, h*w, D), ``cls_attn`` (num_desc, heads, h, w), detached.

        With a DINO backbone one pass yields both (the descriptors are the frozen last-block keys).
        """
        desc = None
        if self.shares_descriptor_pass:
            out = self.backbone.forward_descriptors(images)
            keys = out['keys']  # (N, h*w, D)
            grid = tuple(out['feats'].shape[-2:])
            if self.feature_key == 'keys':
                feats = [keys.transpose(1, 2).reshape(keys.shape[0], -1, *grid)]
            else:
                feats = [out['feats']]
            if num_desc:
                desc = dict(keys=keys[:num_desc].detach(), cls_attn=out['cls_attn'][:num_desc].detach())
        else:
            outs = self.backbone(images)
            if self.with_neck:
                outs = self.neck(outs)
            feats = as_feature_list(outs)
            if num_desc:
                with torch.no_grad():
                    out = self.descriptor.forward_descriptors(images[:num_desc])
                desc = dict(keys=out['keys'].detach(), cls_attn=out['cls_attn'].detach())
        return feats, desc

    @staticmethod
    def _split_views(inputs: Tensor) -> Tuple[Tensor, Tensor]:
        if inputs.dim() != 5:
            raise ValueError(
                f'LoopTrans expects inputs of shape (B, V, 3, H, W), got {tuple(inputs.shape)}; '
                'use AffordanceDataPreprocessor and PackAffordanceInputs.'
            )
        return inputs[:, 0], inputs[:, 1:]

    @staticmethod
    def _labels(data_samples: SampleList, device: torch.device) -> Tensor:
        return torch.as_tensor([int(s.metainfo['gt_label']) for s in data_samples], device=device)

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Named losses (``loss_*``) plus pseudo-mask statistics (``pm_*``, logged, not optimised): ``pm_valid``
        (share of samples with a pseudo-mask), ``pm_area`` (its area share), ``pm_iou`` (its IoU with the
        CAM-thresholded region part discovery matched), ``pm_num_parts`` (mean K with ``num_parts='auto'``) and,
        on data with true part masks, ``pm_true_iou`` (IoU with the true affordance part)."""
        ego, exo = self._split_views(inputs)
        B, V = exo.shape[:2]
        if V == 0:
            raise ValueError('training needs exocentric views: inputs has only the egocentric view (V=1)')
        labels = self._labels(data_samples, inputs.device)

        feats, desc_ego = self._encode(torch.cat([ego, exo.flatten(0, 1)]), num_desc=B)
        feats_ego, feats_exo = [f[:B] for f in feats], [f[B:] for f in feats]
        feat_exo = self.cam_head.select_inputs(feats_exo)
        if self.temporal is not None:
            feat_exo = self.temporal(feat_exo.unflatten(0, (B, V))).flatten(0, 1)

        cams_exo, emb_exo, cams_ego, emb_ego = self.cam_head.forward_views(feat_exo, feats_ego)
        logits_exo = self.cam_head.logits(cams_exo)
        logits_ego = self.cam_head.logits(cams_ego)
        losses = self.cam_head.loss_by_feat(logits_exo, logits_ego, labels)

        cam_ego = select_class_maps(cams_ego, labels)  # (B, h, w)
        teacher = minmax_normalize(cam_ego.detach())  # clean ego localisation, refined below
        if self.pixel_head is not None:
            pixel_logits = self.pixel_head(feats_ego)
            if self.pixel_supervision:
                parts = self._pseudo_masks(desc_ego, cam_ego.detach())
                losses.update(self.pixel_head.loss_by_feat(pixel_logits, labels, parts['pseudo_mask'], parts['valid']))
                losses.update(self._pseudo_mask_stats(parts))
                losses.update(self._true_part_iou(parts, data_samples, tuple(ego.shape[-2:])))
                teacher = select_class_maps(pixel_logits, labels).detach().sigmoid()
            else:
                zero = pixel_logits.sum() * 0  # keeps the head in the graph for DDP
                losses.update({name: zero.clone() for name in loss_names(self.pixel_head.loss_decode)})

        if self.noise_head is not None:
            teacher = F.interpolate(teacher[:, None], size=emb_ego.shape[-2:], mode='bilinear', align_corners=False)[
                :, 0
            ]
            f_pixel = masked_average_pool(emb_ego, teacher).detach()
            noise_maps = self.noise_head(emb_exo)
            exo_labels = labels.repeat_interleave(V)
            exo_cam = select_class_maps(cams_exo, exo_labels)
            losses.update(self.noise_head.loss_by_feat(noise_maps, emb_exo, exo_cam, f_pixel))

        if self.corr_loss is not None:
            losses[self.corr_loss.loss_name] = self.corr_loss(logits_exo.view(B, V, -1), logits_ego)
        return losses

    def _pseudo_masks(self, desc_ego: Dict[str, Tensor], cam_ego: Tensor) -> Dict[str, Tensor]:
        """Part discovery on the ego descriptors, with the CAM brought to the descriptor grid (h, w)."""
        grid = tuple(desc_ego['cls_attn'].shape[-2:])
        if tuple(cam_ego.shape[-2:]) != grid:
            cam_ego = F.interpolate(cam_ego[:, None], size=grid, mode='bilinear', align_corners=False)[:, 0]
        parts = self.part_discovery(desc_ego['keys'], cam_ego, cls_attn=desc_ego['cls_attn'])
        self.last_pseudo_masks = dict(pseudo_mask=parts['pseudo_mask'], valid=parts['valid'], cam=cam_ego.detach())
        return parts

    @staticmethod
    def _pseudo_mask_stats(parts: Dict[str, Tensor]) -> Dict[str, Tensor]:
        valid = parts['valid'].float()
        stats = dict(
            pm_valid=valid.mean(),
            pm_area=parts['pseudo_mask'].flatten(1).mean(1).mul(valid).sum() / valid.sum().clamp(min=1),
            pm_iou=parts['ious'].max(dim=1).values.mean(),
        )
        if 'num_parts' in parts:  # PartDiscovery(num_parts='auto'): the mean K chosen
            stats['pm_num_parts'] = parts['num_parts'].float().mean()
        return stats

    @staticmethod
    def _true_part_iou(parts: Dict[str, Tensor], data_samples: SampleList, size: Tuple[int, int]) -> Dict[str, Tensor]:
        """``pm_true_iou``: mean IoU of the valid pseudo-masks with the true affordance part, over the samples
        that carry one (``gt_sem_seg``, the ego part mask of :class:`~looptrans.datasets.LoadEgoPartMask`, on
        generated data); nothing when none does. The pseudo-mask (descriptor grid) is brought to the input size
        by nearest neighbour, as ``tools/analysis_tools/eval_pseudo_masks.py`` does."""
        has = [i for i, s in enumerate(data_samples) if 'gt_sem_seg' in s and bool(parts['valid'][i])]
        if not has:
            return {}
        device = parts['pseudo_mask'].device
        truth = torch.stack([data_samples[i].gt_sem_seg.data[0] for i in has]).to(device) > 0
        if tuple(truth.shape[-2:]) != size:
            raise ValueError(f'gt_sem_seg (true part mask) is {tuple(truth.shape[-2:])}, the inputs {size}')
        index = torch.as_tensor(has, device=device)
        return dict(pm_true_iou=pseudo_mask_iou(parts['pseudo_mask'][index], truth).mean())

    # ------------------------------------------------------------------ inference
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
            self._check_heatmap_source(source)
        out: Dict[str, Tensor] = {}
        if any(src in ('pixel', 'pixel_logits', 'fusion') for src in sources):
            logits = self._resize(self.pixel_head(feats), size)
            out['pixel_logits'] = logits
            out['pixel'] = logits.sigmoid()
        if any(src in ('cam', 'fusion') for src in sources):
            out['cam'] = self._resize(self.cam_head(feats, view='ego') if cams is None else cams, size)
        if 'fusion' in sources:
            cam = out['cam']
            out['fusion'] = out['pixel'] * minmax_normalize(cam.flatten(0, 1)).view_as(cam)
        return {src: out[src] for src in sources}

    @staticmethod
    def _resize(maps: Tensor, size: Tuple[int, int]) -> Tensor:
        if tuple(maps.shape[-2:]) == tuple(size):
            return maps
        return F.interpolate(maps, size=tuple(size), mode='bilinear', align_corners=False)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Heatmaps of every affordance for the egocentric images, (B, C, H, W) at the input size, from
        the source ``test_cfg.heatmap`` names (see :meth:`decode_heatmaps`)."""
        ego = inputs[:, 0] if inputs.dim() == 5 else inputs
        source = self._heatmap_source()
        return self.decode_heatmaps(self.extract_feat(ego), ego.shape[-2:], (source,))[source]

    def _check_heatmap_source(self, source: str) -> None:
        if source not in HEATMAP_SOURCES:
            raise ValueError(f'model.test_cfg.heatmap must be one of {HEATMAP_SOURCES}, got {source!r}')
        if source != 'cam' and self.pixel_head is None:
            raise ValueError(f"model.test_cfg.heatmap={source!r} needs a pixel_head; use 'cam'")

    def _heatmap_source(self) -> str:
        source = self.test_cfg.get('heatmap', DEFAULT_HEATMAP if self.pixel_head is not None else 'cam')
        self._check_heatmap_source(source)
        return source

    def inference(self, inputs: Tensor, batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """Heatmap scores of every affordance, (B, C, H, W) at the input size, per ``test_cfg.heatmap``
        (the role of mmseg's ``EncoderDecoder.inference``; egocentric images (B, 3, H, W) or packed
        views (B, V, 3, H, W), of which view 0 is used)."""
        return self.encode_decode(inputs, batch_img_metas or [])

    def inference_with_logits(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """:meth:`inference`'s heatmaps (B, C, H, W) and the CAM head's image-level logits (B, C) (the
        global average of the ego CAMs, the classifier's view of "what can be done with this object"),
        from one backbone pass."""
        ego = inputs[:, 0] if inputs.dim() == 5 else inputs
        source = self._heatmap_source()
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
        labels = self._labels(data_samples, maps.device)
        chosen = select_class_maps(maps, labels)
        return_all = self.test_cfg.get('return_all', False)
        for i, sample in enumerate(data_samples):
            sample.set_data(dict(pred_heatmap=PixelData(data=chosen[i : i + 1].clone())))
            if return_all:
                sample.set_data(dict(pred_heatmaps=PixelData(data=maps[i].clone())))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples: OptConfigType = None) -> Tensor:
        """Raw all-class heatmaps (for FLOPs counting and export)."""
        return self.encode_decode(inputs, [])
