"""The LoopTrans segmentor: shared CAM -> pixel localisation -> denoising distillation, in one closed loop."""

from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ...utils.maps import minmax_normalize
from ..backbones import DINOVisionTransformer
from ..heads import ViewCAMs, labels_of, select_class_maps
from ..heads.utils import as_feature_list
from ..part_discovery import PSEUDO_MASK_FIELD, PartDiscoveryResult
from .base import DEFAULT_HEATMAP, HEATMAP_SOURCES, AffordanceSegmentor, check_cfg_keys, split_views

__all__ = ['DEFAULT_HEATMAP', 'HEATMAP_SOURCES', 'LoopTrans']

#: The keys ``model.train_cfg`` / ``model.test_cfg`` understand; any other key is a typo.
TRAIN_CFG_KEYS = ('pixel_supervision',)
TEST_CFG_KEYS = ('heatmap', 'return_all')
#: The deprecated ``model.feature_key`` values and the DINO backbone ``out_type`` each one stands for.
FEATURE_KEY_OUT_TYPES = {'keys': 'keys', 'feats': 'featmap'}


def _is_dino_backbone(cfg: ConfigType) -> bool:
    """Whether a backbone config builds a :class:`DINOVisionTransformer` (or a subclass)."""
    kind = cfg.get('type')
    if isinstance(kind, str):
        kind = MODELS.get(kind)
    return isinstance(kind, type) and issubclass(kind, DINOVisionTransformer)


def dino_backbone_cfg(backbone: ConfigType, feature_key: Optional[str] = None) -> dict:
    """The backbone config LoopTrans builds: a DINO ViT whose config names no ``out_type`` gives the heads the last
    block's keys (``out_type='keys'``, as LOCATE); any other backbone is built as configured.

    ``feature_key`` is the deprecated way of choosing the DINO output (``'keys'`` -> ``out_type='keys'``,
    ``'feats'`` -> ``out_type='featmap'``): it still works, with a warning naming the replacement, and a conflict
    with the backbone's own ``out_type`` is an error.
    """
    cfg = dict(backbone)
    if feature_key is not None:
        if feature_key not in FEATURE_KEY_OUT_TYPES:
            raise ValueError(f"feature_key must be 'keys' or 'feats', got {feature_key!r}")
        out_type = FEATURE_KEY_OUT_TYPES[feature_key]
        if not _is_dino_backbone(cfg):
            fix = 'delete model.feature_key: it has no effect on a non-DINO backbone'
        else:
            fix = f"set model.backbone.out_type={out_type!r} and delete model.feature_key"
            if cfg.get('out_type', out_type) != out_type:
                raise ValueError(
                    f'model.feature_key={feature_key!r} asks for out_type={out_type!r} but model.backbone.out_type='
                    f'{cfg["out_type"]!r}; delete model.feature_key (the backbone decides what the heads read).'
                )
            cfg['out_type'] = out_type
        warnings.warn(f'model.feature_key is deprecated: {fix}.', FutureWarning, stacklevel=2)
    if _is_dino_backbone(cfg):
        cfg.setdefault('out_type', 'keys')
    return cfg


@MODELS.register_module()
class LoopTrans(AffordanceSegmentor):
    """Closed-loop transfer for weakly-supervised affordance grounding (ICCV 2025).

    Training data flow for a batch of ``B`` samples, each with one egocentric image and ``V`` exocentric
    images (``inputs`` is ``(B, 1 + V, 3, H, W)``, view 0 egocentric; see ``docs/data_flow.md``):

    1. the backbone (then the neck, if any) encodes all ``B * (1 + V)`` images in one pass; a DINO backbone
       gives the part-discovery descriptors of the ego images in the same pass (:meth:`extract_feat`,
       :meth:`part_descriptors`);
    2. the shared CAM head turns exo and ego features into class activation maps and GAP logits
       (classification loss on both views);
    3. part discovery clusters the frozen DINO descriptors of each ego image into K parts and takes the part
       with the highest IoU against the ego CAM of the labelled affordance as its pseudo-mask
       (:meth:`discover_parts`); it travels to the pixel head in the data samples (``gt_pseudo_mask``), and
       the pixel head is trained on it (dice + MSE);
    4. the noise heads absorb non-affordance context in the exo CAMs; the denoising distillation loss pulls
       the exo affordance feature towards the ego feature pooled by the pixel head's (clean) localisation;
    5. the correlation loss aligns the affordance correlations of the two views;
    6. optionally (the published code does), a concentration loss on the pixel head's maps.

    At test time only the egocentric image is used: the heatmap of the asked affordance comes from the pixel
    head (``test_cfg.heatmap='pixel'``, its sigmoid, the default when a pixel head exists;
    ``'pixel_logits'``), the shared CAM (``'cam'``) or their product (``'fusion'``); see
    :class:`~looptrans.models.segmentors.base.AffordanceSegmentor`.

    Args:
        backbone: image encoder config. A :class:`DINOVisionTransformer` doubles as the descriptor
            extractor for part discovery (one pass); its ``out_type`` says what the heads read (``'keys'``,
            the last block's attention keys as LOCATE, is set when the config names none; ``'featmap'`` the
            final normed tokens). Any other mmseg/mmpretrain backbone needs ``descriptor``.
        cam_head: :class:`SharedCAMHead` config (``shared=False`` is the "no shared CAM" ablation).
        pixel_head: :class:`PixelAffordanceHead` config, or None ("no pixel alignment" ablation).
        noise_head: :class:`NoiseHead` config, or None ("no denoising distillation" ablation).
        corr_loss: :class:`AffordanceCorrelationLoss` (Cross-View-AG's, on logits) or
            :class:`AffordanceMapCorrelationLoss` (the published LoopTrans code's, on maps) config, or None.
        pixel_on_cam_head: the published LoopTrans code's pixel branch: the pixel head reads the CAM head's
            token-MLP features (``aff_proj``) instead of the backbone's, and ends in the CAM head's classifier
            (``aff_fc``) instead of its own; needs the pixel head's ``channels`` and ``num_classes`` to be the CAM
            head's. Default: False (its own input and classifier).
        noise_on_cam_head: the published LoopTrans code's noise maps: the last M outputs of the CAM head's
            classifier (``aff_fc`` of C + 15 outputs) instead of the noise head's own 1x1 conv. LoopTrans builds
            the CAM head with ``num_noise`` = the noise head's ``num_noise`` and the noise head with
            ``maps_from_cam_head=True``: the noise outputs then also take part in the cross-entropy of both
            views, in the correlation loss and (through the shared classifier, with ``pixel_on_cam_head``) in
            the concentration loss, as in the published code; inference gives the C class maps only. Needs
            ``noise_head``. Default: False.
        concentration_loss: a loss on the pixel head's logits of every class (B, C, H', W'), or None: the
            published LoopTrans code applies LOCATE's concentration loss (:class:`LOCATEConcentrationLoss`,
            weight 0.07) to its pixel decoder's maps in every step. Needs ``pixel_head``.
        part_discovery: a part-discovery config (a :class:`~looptrans.models.part_discovery.BasePartDiscovery`;
            default :class:`PartDiscovery` with K=4 parts).
        descriptor: frozen DINO backbone config giving part-discovery descriptors when ``backbone`` is not
            a DINO ViT; None to take them from ``backbone``.
        neck: optional neck applied to the backbone output (with any backbone).
        temporal: optional temporal aggregator for video clips (OPRA / EPIC): the exocentric views are the
            frames of a clip, and this module maps their features (B, T, C, h, w) to temporally
            contextualised per-frame features of the same shape before the shared CAM head.
        feature_key: deprecated: set ``backbone.out_type`` instead (``'keys'`` -> ``'keys'``, ``'feats'`` ->
            ``'featmap'``); see :func:`dino_backbone_cfg`.
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
        pixel_on_cam_head: bool = False,
        noise_on_cam_head: bool = False,
        concentration_loss: OptConfigType = None,
        part_discovery: ConfigType = dict(type='PartDiscovery', num_parts=4),
        descriptor: OptConfigType = None,
        neck: OptConfigType = None,
        temporal: OptConfigType = None,
        feature_key: Optional[str] = None,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        data_preprocessor: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(dino_backbone_cfg(backbone, feature_key))
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.noise_on_cam_head = bool(noise_on_cam_head)
        noise_head = self._noise_head_cfg(cam_head, noise_head)
        self.noise_head = MODELS.build(noise_head) if noise_head is not None else None
        if self.noise_on_cam_head:
            if cam_head.get('num_noise', self.noise_head.num_noise) != self.noise_head.num_noise:
                raise ValueError(
                    f'LoopTrans: model.cam_head.num_noise={cam_head["num_noise"]} but model.noise_head.num_noise='
                    f'{self.noise_head.num_noise}; with noise_on_cam_head the noise head decides it: delete '
                    'model.cam_head.num_noise.'
                )
            cam_head = dict(cam_head, num_noise=self.noise_head.num_noise)
        self.cam_head = MODELS.build(cam_head)
        self.pixel_head = MODELS.build(pixel_head) if pixel_head is not None else None
        self.corr_loss = MODELS.build(corr_loss) if corr_loss is not None else None
        self.pixel_on_cam_head = bool(pixel_on_cam_head)
        if self.pixel_on_cam_head:
            if self.pixel_head is None:
                raise ValueError(
                    'LoopTrans: pixel_on_cam_head routes the pixel head through the CAM head, and model.pixel_head '
                    'is None; set model.pixel_on_cam_head=False in a config without a pixel head.'
                )
            if self.pixel_head.in_channels != self.cam_head.in_channels:
                raise ValueError(
                    f'LoopTrans: with pixel_on_cam_head the pixel head reads the CAM head\'s token-MLP features '
                    f'({self.cam_head.in_channels} channels); set model.pixel_head.in_channels='
                    f'{self.cam_head.in_channels} (got {self.pixel_head.in_channels}).'
                )
            self.pixel_head.use_classifier(self.cam_head.conv_seg, num_extra=self.cam_head.num_noise)
        if concentration_loss is not None and self.pixel_head is None:
            raise ValueError(
                'LoopTrans: concentration_loss acts on the pixel head\'s maps, and model.pixel_head is None; set '
                'model.concentration_loss=None in a config without a pixel head.'
            )
        self.concentration_loss = MODELS.build(concentration_loss) if concentration_loss is not None else None
        self.part_discovery = MODELS.build(part_discovery)
        self.descriptor = MODELS.build(descriptor) if descriptor is not None else None
        self.temporal = MODELS.build(temporal) if temporal is not None else None
        if self.descriptor is None and not hasattr(self.backbone, 'forward_with_descriptors'):
            raise ValueError(
                f'{type(self.backbone).__name__} gives no DINO descriptors for part discovery: set '
                "model.descriptor=dict(type='DINOVisionTransformer', frozen=True, ...) in the config."
            )
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        check_cfg_keys('train_cfg', self.train_cfg, TRAIN_CFG_KEYS)
        check_cfg_keys('test_cfg', self.test_cfg, TEST_CFG_KEYS)
        self.heatmap_source  # reading it checks test_cfg.heatmap: a bad one fails now, not after training
        #: switched by PseudoMaskHook; pixel losses are zero (graph kept) while False.
        self.pixel_supervision = bool(self.train_cfg.get('pixel_supervision', True))
        #: the last training step's part discovery (on device, no gradient), for PseudoMaskHook's pictures.
        self.last_part_discovery: Optional[PartDiscoveryResult] = None
        self.num_classes = self.cam_head.num_classes

    def _noise_head_cfg(self, cam_head: ConfigType, noise_head: OptConfigType) -> Optional[dict]:
        """The noise-head config to build: with ``noise_on_cam_head`` it reads the CAM head's noise outputs
        (``maps_from_cam_head``; :meth:`__init__` then gives the CAM head its ``num_noise``); without it neither
        config may ask for the other's maps."""
        noise_head = None if noise_head is None else dict(noise_head)
        asked = cam_head.get('num_noise', 0)
        if not self.noise_on_cam_head:
            if asked or (noise_head or {}).get('maps_from_cam_head', False):
                raise ValueError(
                    'LoopTrans: model.cam_head.num_noise / model.noise_head.maps_from_cam_head put the noise maps in '
                    'the CAM head\'s classifier, which model.noise_on_cam_head=True sets up; set that instead and '
                    'delete the two keys.'
                )
            return noise_head
        if noise_head is None:
            raise ValueError(
                'LoopTrans: noise_on_cam_head gives the CAM head\'s classifier the noise head\'s outputs, and '
                'model.noise_head is None; set model.noise_on_cam_head=False in a config without a noise head.'
            )
        return dict(noise_head, maps_from_cam_head=True)

    # ------------------------------------------------------------------ features
    @property
    def shares_descriptor_pass(self) -> bool:
        """True when the backbone itself is the DINO ViT that gives part-discovery descriptors."""
        return self.descriptor is None

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Feature levels of a batch of images (N, 3, H, W): the backbone's output, then the neck's when there is
        one, as mmseg segmentors return them; each head selects its input with its own ``in_index`` /
        ``input_transform``."""
        return self._encode(inputs)[0]

    @torch.no_grad()
    def part_descriptors(self, images: Tensor) -> Dict[str, Tensor]:
        """The part-discovery inputs of images (N, 3, H, W), from the frozen DINO ViT (the backbone itself, or
        ``descriptor``): ``keys`` (N, h*w, D), the last block's attention keys, and ``cls_attn``
        (N, heads, h, w), its CLS attention; no gradient."""
        encoder = self.backbone if self.shares_descriptor_pass else self.descriptor
        out = encoder.forward_descriptors(images)
        return dict(keys=out['keys'].detach(), cls_attn=out['cls_attn'].detach())

    def _encode(self, images: Tensor, num_desc: int = 0) -> Tuple[List[Tensor], Optional[Dict[str, Tensor]]]:
        """:meth:`extract_feat` of ``images`` and the :meth:`part_descriptors` of the first ``num_desc`` of them
        (None for 0). With a DINO backbone one pass yields both."""
        desc = None
        if num_desc and self.shares_descriptor_pass:
            outs, out = self.backbone.forward_with_descriptors(images)
            desc = {name: value[:num_desc].detach() for name, value in out.items()}
        else:
            outs = self.backbone(images)
            if num_desc:
                desc = self.part_descriptors(images[:num_desc])
        if self.with_neck:
            outs = self.neck(outs)
        return as_feature_list(outs), desc

    def _encode_views(
        self, ego: Tensor, exo: Tensor
    ) -> Tuple[List[Tensor], Union[List[Tensor], Tensor], Dict[str, Tensor]]:
        """Ego feature levels, exo CAM-head input (feature levels, or the CAM head's selected input after
        ``temporal``) and the ego part-discovery descriptors of a training batch, from one encoder pass over its
        ``B * (1 + V)`` images."""
        num, views = exo.shape[:2]
        feats, desc_ego = self._encode(torch.cat([ego, exo.flatten(0, 1)]), num_desc=num)
        feats_ego, feats_exo = [f[:num] for f in feats], [f[num:] for f in feats]
        if self.temporal is not None:  # over the frames of each clip, on the CAM head's selected input
            clip = self.cam_head.select_inputs(feats_exo).unflatten(0, (num, views))
            feats_exo = self.temporal(clip).flatten(0, 1)
        return feats_ego, feats_exo, desc_ego

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Named losses (``loss_*``) plus pseudo-mask statistics (``pm_*``, logged, not optimised; see
        :meth:`PartDiscoveryResult.statistics <looptrans.models.part_discovery.PartDiscoveryResult.statistics>`).

        The pseudo-masks reach the pixel head in ``data_samples`` (``gt_pseudo_mask``, written here: from part
        discovery while pixel supervision is on, removed while it is off)."""
        ego, exo = split_views(inputs)
        num, views = exo.shape[:2]
        if views == 0:
            raise ValueError('training needs exocentric views: inputs has only the egocentric view (V=1)')
        feats_ego, feats_exo, desc_ego = self._encode_views(ego, exo)

        cams = self.cam_head.forward_views(feats_exo, feats_ego)
        losses = self.cam_head.loss_by_feat(cams, data_samples)

        labels = labels_of(data_samples, inputs.device)
        cam_ego = select_class_maps(cams.ego_cams, labels).detach()  # (B, h, w)
        teacher = self.distillation_teacher(cam_ego)
        pixel_logits = None
        if self.pixel_head is not None:
            pixel_logits = self.pixel_logits(feats_ego, with_extra=True)
            parts = self.discover_parts(desc_ego, cam_ego) if self.pixel_supervision else None
            self._hand_over_pseudo_masks(parts, data_samples)
            losses.update(self.pixel_head.loss_by_feat(pixel_logits, data_samples))
            if self.concentration_loss is not None:
                losses[self.concentration_loss.loss_name] = self.concentration_loss(pixel_logits)
            if parts is not None:
                losses.update(parts.statistics(data_samples, tuple(ego.shape[-2:])))
                teacher = select_class_maps(pixel_logits, labels).detach().sigmoid()

        if self.noise_head is not None and getattr(self.noise_head, 'pooling', None) == 'published':
            ego_map = select_class_maps(cams.ego_cams if pixel_logits is None else pixel_logits, labels)
            exo_in, ego_in = self.cam_head.select_inputs(feats_exo), self.cam_head.select_inputs(feats_ego)
            losses.update(self.noise_head.loss_published(cams, exo_in, ego_in, ego_map, data_samples))
        elif self.noise_head is not None:
            losses.update(self.noise_head.loss(cams, teacher, data_samples))
        if self.corr_loss is not None:
            losses[self.corr_loss.loss_name] = self._correlation(cams, pixel_logits, num, views)
        return losses

    def _correlation(self, cams: ViewCAMs, pixel_logits: Optional[Tensor], num: int, views: int) -> Tensor:
        """``corr_loss`` on what it reads (its ``reads``): the image-level logits of both views (Cross-View-AG's
        form), or the exo CAMs (B, V, C, h, w) and the ego maps, the pixel head's logits where there is a pixel
        head (the published LoopTrans code's ``ego_pred``) and the ego CAMs otherwise."""
        if getattr(self.corr_loss, 'reads', 'logits') == 'maps':
            ego = cams.ego_cams if pixel_logits is None else pixel_logits
            return self.corr_loss(cams.exo_cams.unflatten(0, (num, views)), ego)
        return self.corr_loss(cams.exo_logits.view(num, views, -1), cams.ego_logits)

    def pixel_logits(self, feats: List[Tensor], with_extra: bool = False) -> Tensor:
        """The pixel head's logits (B, C, h', w') of ego feature levels: on the backbone's features, or with
        ``pixel_on_cam_head`` on the CAM head's token-MLP features (the CAM head's input selection first).

        ``with_extra``: also the noise outputs of the CAM head's classifier that the pixel head borrows
        (``noise_on_cam_head``), (B, C + M, h', w'), as the training losses of the published code read them."""
        if not self.pixel_on_cam_head:
            return self.pixel_head(feats)
        tokens = self.cam_head.token_mlp(self.cam_head.select_inputs(feats))
        return self.pixel_head.forward_all(tokens) if with_extra else self.pixel_head(tokens)

    def distillation_teacher(self, cam_ego: Tensor) -> Optional[Tensor]:
        """The clean ego localisation the denoising distillation feeds back, before the pixel head's output
        (which :meth:`loss` uses instead once the pixel head is supervised).

        With a pixel head the teacher is the pixel head's localisation only (the paper's ``f_pixel``), so until
        the :class:`PseudoMaskHook` switches pixel supervision on there is none (``None``: the noise head waits).
        Feeding the untrained ego CAM back instead pulls the shared CAM towards the backdrop, which most of an
        unlocalised map's weight lies on (measured in ``docs/generated_benchmark.md``). Without a pixel head
        (the "shared CAM + denoising" and "denoising" ablation rows) the min-max normalised ego CAM of the
        labelled affordance is the teacher from the start: there is nothing else to distil.
        """
        return minmax_normalize(cam_ego) if self.pixel_head is None else None

    def discover_parts(self, desc_ego: Dict[str, Tensor], cam_ego: Tensor) -> PartDiscoveryResult:
        """``model.part_discovery`` on ego descriptors (:meth:`part_descriptors`) and the ego CAM of each
        sample's affordance (B, h', w'), brought to the descriptor grid (bilinear); kept in
        :attr:`last_part_discovery`."""
        grid = tuple(desc_ego['cls_attn'].shape[-2:])
        if tuple(cam_ego.shape[-2:]) != grid:
            cam_ego = self._resize(cam_ego[:, None], grid)[:, 0]
        parts = self.part_discovery(desc_ego['keys'], cam_ego, cls_attn=desc_ego['cls_attn'])
        self.last_part_discovery = parts
        return parts

    @staticmethod
    def _hand_over_pseudo_masks(parts: Optional[PartDiscoveryResult], data_samples: SampleList) -> None:
        """Write the valid pseudo-masks into the data samples, or (pixel supervision off) remove any."""
        if parts is not None:
            parts.to_data_samples(data_samples)
            return
        for sample in data_samples:
            if PSEUDO_MASK_FIELD in sample:
                delattr(sample, PSEUDO_MASK_FIELD)
