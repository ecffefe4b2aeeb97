# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""LOCATE (Li et al., CVPR 2023) hosted as a baseline segmentor.

"LOCATE: Localize and Transfer Object Parts for Weakly Supervised Affordance Grounding"; published code
https://github.com/Reagan1311/LOCATE (``models/locate.py``, ``train.py``). The model is the published one
expressed with this repository's modules: the frozen DINO ViT (:class:`DINOVisionTransformer`, last-block keys
as descriptors), :class:`SharedCAMHead` with ``shared=False`` (LOCATE's ``aff_proj`` token MLP, separate
``aff_exo_proj`` / ``aff_ego_proj``, shared ``aff_fc``), and the losses of ``locate_losses.py``. Inference is
:class:`LoopTrans`'s with ``test_cfg.heatmap='cam'``. Every difference from the published code is listed, with
its reason, in ``docs/locate_baseline.md``.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, print_log
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ...utils.maps import minmax_normalize
from ..heads import labels_of, select_class_maps
from ..part_discovery import border_mask, cls_attention_saliency, gather_rows, part_saliency_score
from .base import AffordanceSegmentor, check_cfg_keys, split_views

#: The keys ``model.train_cfg`` / ``model.test_cfg`` of :class:`LOCATE` understand.
TRAIN_CFG_KEYS = ('warm_epoch', 'warm_iter')
TEST_CFG_KEYS = ('heatmap', 'return_all')
#: eps of LOCATE's min-max normalisation of the exo CAMs (``tmp_max - tmp_min + 1e-10``) and of the
#: centroid similarity maps (``tmp_sim_max - tmp_sim_min + 1e-12``).
EXO_CAM_EPS = 1e-10
SIM_MAP_EPS = 1e-12


def exo_affordance_mask(exo_cam: Tensor, threshold: float) -> Tensor:
    """Which exo descriptors LOCATE clusters: per exo view, the tokens where the min-max normalised exo CAM of
    the labelled affordance exceeds ``threshold`` (LOCATE's ``aff_cam_thd``, 0.6).

    Args:
        exo_cam (Tensor): Exo CAM of each sample's affordance (B, V, h, w).
        threshold (float): On the normalised CAM ``(cam - min) / (max - min + 1e-10)`` of each view.

    Returns:
        Tensor: (B, V*h*w) bool, views in order then tokens in row-major order: LOCATE's concatenation order
        (``torch.cat`` over the views of the selected columns).
    """
    norm = minmax_normalize(exo_cam.flatten(0, 1).flatten(1).float(), eps=EXO_CAM_EPS)
    return (norm > threshold).view(exo_cam.shape[0], -1)


def _squared_distances(x: Tensor, centres: Tensor) -> Tensor:
    """``|x - c|^2`` (B, M, K) as ``fast_pytorch_kmeans`` computes its euclidean similarity (negated)."""
    return (
        x.square().sum(-1, keepdim=True)
        + centres.square().sum(-1)[:, None, :]
        - 2 * torch.bmm(x, centres.transpose(1, 2))
    )


def euclidean_farthest_init(x: Tensor, valid: Tensor, num_clusters: int) -> Tensor:
    """Deterministic initial centres for euclidean K-means over the valid rows of each sample (maximin).

    The first centre is the valid point nearest the mean of the valid points; each next one the valid point
    farthest from its nearest chosen centre (ties: the lowest index). A sample with fewer distinct valid
    points than ``num_clusters`` repeats centres (the repeated ones stay empty).

    Args:
        x (Tensor): Points (B, M, D).
        valid (Tensor): (B, M) bool.
        num_clusters (int): K.

    Returns:
        Tensor: Indices (B, K) into M.
    """
    weight = valid.to(x.dtype)
    mean = (x * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp(min=1)
    first = _squared_distances(x, mean[:, None])[..., 0].masked_fill(~valid, float('inf')).argmin(dim=1)
    indices = [first]
    nearest = _squared_distances(x, gather_rows(x, first)[:, None])[..., 0].masked_fill(~valid, float('-inf'))
    for _ in range(num_clusters - 1):
        nxt = nearest.argmax(dim=1)
        indices.append(nxt)
        nearest = torch.minimum(nearest, _squared_distances(x, gather_rows(x, nxt)[:, None])[..., 0])
    return torch.stack(indices, dim=1)


def euclidean_kmeans(x: Tensor, valid: Tensor, num_clusters: int, max_iters: int = 300, tol: float = 1e-4) -> Tensor:
    """Batched Lloyd K-means in euclidean distance over the valid rows of each sample, deterministic.

    LOCATE runs ``fast_pytorch_kmeans.KMeans(n_clusters=3, mode='euclidean', max_iter=300)`` (tol 1e-4) on
    each sample's selected exo descriptors. This is the same iteration, batched: assign every valid point to
    the nearest centre (ties: the lowest index), move every centre to the mean of its points, stop a sample
    once the squared centre shift summed over its centres is <= ``tol`` (the update of that iteration is
    kept, as the library does) or after ``max_iters``. Two differences: the initial centres come from
    :func:`euclidean_farthest_init` (the library draws random points), and an empty cluster keeps its centre
    (the library sets it to zero).

    Args:
        x (Tensor): Points (B, M, D) (computed in float32 or wider).
        valid (Tensor): (B, M) bool, the points of each sample.
        num_clusters (int): K.
        max_iters (int): Most Lloyd iterations. Default: 300.
        tol (float): Convergence threshold on the squared centre shift. Default: 1e-4.

    Returns:
        Tensor: Centres (B, K, D).
    """
    if x.dim() != 3 or tuple(valid.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f'euclidean_kmeans: expected x (B, M, D) and valid (B, M), got {tuple(x.shape)}, {tuple(valid.shape)}.'
        )
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    valid = valid.bool()
    weight = valid.to(x.dtype)[..., None]
    centres = gather_rows(x, euclidean_farthest_init(x, valid, num_clusters))
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for _ in range(max_iters):
        assign = _squared_distances(x, centres).argmin(dim=2)
        one_hot = F.one_hot(assign, num_clusters).to(x.dtype) * weight  # (B, M, K)
        counts = one_hot.sum(dim=1)[..., None]  # (B, K, 1)
        means = torch.bmm(one_hot.transpose(1, 2), x) / counts.clamp(min=1)
        moved = torch.where(counts > 0, means, centres)
        shift = (moved - centres).square().sum(dim=(1, 2))
        centres = torch.where(done[:, None, None], centres, moved)
        done = done | (shift <= tol)
        if bool(done.all()):
            break
    return centres


def select_part_prototypes(
    centroids: Tensor, ego_desc: Tensor, saliency: Tensor, threshold: float, has_centroids: Optional[Tensor] = None
) -> Dict[str, Tensor]:
    """LOCATE's part-prototype selection, batched.

    Per sample (``models/locate.py``, "find object part prototypes"): the L2-normalised centroids' cosine
    similarity maps to the (L2-normalised) ego descriptors, each min-max normalised (eps 1e-12) and binarised
    at its mean (``sim_map_hard``); the part score ``(|sim_hard ∩ sal| / |sim_hard| + |sal| / |sim_hard ∪
    sal|) / 2`` against the binary saliency ``sal`` (:func:`part_saliency_score`); the prototype is the best
    scoring centroid, if its score is >= ``threshold`` (LOCATE's ``part_iou_thd``, 0.6; LOCATE skips the
    sample when ``p_score.max() < part_iou_thd``).

    Args:
        centroids (Tensor): K-means centres (B, K, D) (normalised here).
        ego_desc (Tensor): Ego descriptors (B, N, D).
        saliency (Tensor): Binary saliency (B, N) (LOCATE's ``sam_hard``).
        threshold (float): The gate on the best part score.
        has_centroids (Tensor, optional): (B,) bool, the samples that were clustered (LOCATE skips a sample
            with fewer than K selected exo descriptors); None: all.

    Returns:
        dict[str, Tensor]: ``prototype`` (B, D) (zeros where invalid, as LOCATE's ``part_proto``), ``valid``
        (B,) bool, ``part`` (B,) long (the best centroid), ``part_score`` (B, K), ``sim_maps`` (B, K, N) (the
        raw similarity maps, LOCATE's ``sim_maps``).
    """
    cens = F.normalize(centroids, dim=-1)
    sim = torch.bmm(cens, F.normalize(ego_desc.to(cens.dtype), dim=-1).transpose(1, 2))  # (B, K, N)
    sim_norm = minmax_normalize(sim.flatten(0, 1), eps=SIM_MAP_EPS).view_as(sim)
    hard = (sim_norm > sim_norm.mean(dim=-1, keepdim=True)).to(sim.dtype)
    score = part_saliency_score(hard.transpose(1, 2), saliency.to(sim.dtype))
    best_score, part = score.max(dim=1)
    valid = best_score >= threshold
    if has_centroids is not None:
        valid = valid & has_centroids.bool()
    prototype = gather_rows(cens, part) * valid[:, None].to(cens.dtype)
    return dict(prototype=prototype, valid=valid, part=part, part_score=score, sim_maps=sim)


@MODELS.register_module()
class LOCATE(AffordanceSegmentor):
    """LOCATE (CVPR 2023) as a baseline: localise the affordance part in the exo views, transfer it to the ego.

    Training, for a batch of ``B`` samples of one ego and ``V`` exo images (``inputs`` (B, 1 + V, 3, H, W),
    view 0 egocentric, as :class:`LoopTrans`):

    1. the frozen DINO ViT gives the last block's keys of every image (one pass) and the ego CLS attention;
    2. the CAM branch (:class:`SharedCAMHead`, ``shared=False``) gives exo and ego CAMs, their global average
       the logits: cross-entropy on the ego logits and on every exo view's logits (``loss_cls_ego``,
       ``loss_cls_exo``; LOCATE's ``ego_ce``, ``exo_ce``);
    3. the concentration loss on every ego CAM (``loss_concentration``; LOCATE's ``loss_cen``);
    4. once the warm-up is over (``train_cfg``): per sample, the exo keys where the min-max exo CAM of the
       label is > ``aff_cam_thd`` are clustered into ``cluster_num`` parts (euclidean K-means), the centroid
       whose similarity map best matches the ego saliency is the part prototype (gate ``part_iou_thd``), and
       the prototype loss pulls the ego CAM-pooled keys towards it (``loss_proto``; LOCATE's ``con_loss``).
       ``proto_valid`` (logged, not optimised) is the share of samples with a prototype.

    Test: the ego CAM of the asked affordance (``pred_heatmap``), as :class:`LoopTrans` with
    ``test_cfg.heatmap='cam'`` (the inference of their common base,
    :class:`~looptrans.models.segmentors.base.AffordanceSegmentor`: the same outputs).

    Args:
        backbone: a frozen :class:`DINOVisionTransformer` config (descriptors and features: its last-block keys).
        cam_head: :class:`SharedCAMHead` config; LOCATE's branch is ``shared=False``.
        concentration_loss: :class:`LOCATEConcentrationLoss` config (LOCATE: weight 0.07).
        prototype_loss: :class:`LOCATEPrototypeLoss` config (LOCATE: margin ``cel_margin`` 0.5, weight 1).
        aff_cam_thd: threshold on the min-max exo CAM selecting the descriptors to cluster. Default: 0.6.
        cluster_num: K of the K-means. Default: 3.
        part_iou_thd: gate on the best part score. Default: 0.6.
        kmeans_iters: most K-means iterations (LOCATE's ``max_iter``). Default: 300.
        kmeans_tol: K-means convergence threshold (``fast_pytorch_kmeans``' default tol). Default: 1e-4.
        exclude_background: where the saliency of the part score comes from: ``'saliency'`` (LOCATE: DINO's CLS
            attention, heads ``saliency_heads``, :func:`cls_attention_saliency`) or ``'border'`` (for random-weight
            backbones, whose attention is no saliency: every token off the grid's outermost ring, the
            object-centric prior LoopTrans's ``PartDiscovery(exclude_background='border')`` uses). Default:
            'saliency'.
        saliency_heads: CLS-attention heads of the saliency (LOCATE: 0, 1, 3 of ViT-S/16). Default: (0, 1, 3).
        train_cfg: ``dict(warm_epoch=E)`` (LOCATE's ``--warm_epoch``, default 0): the prototype loss is on in the
            0-based epochs ``> E`` (LOCATE's ``epoch[0] > epoch[1]``, so from the second epoch with 0); or
            ``dict(warm_iter=I)`` for iteration-based loops (whose epoch stays 0: ``warm_epoch`` would never end
            there, which is logged as a warning): on in the 0-based iterations ``> I``. The counter is the
            runner's (MMEngine's ``MessageHub`` runtime info); outside a runner the loss is on. Default:
            ``dict(warm_epoch=0)``.
        test_cfg: ``dict(heatmap='cam', return_all=False)``; ``'cam'`` is the only heatmap LOCATE has.
    """

    #: LOCATE has no pixel head (tools that offer pixel heatmaps ask).
    pixel_head = None

    def __init__(
        self,
        backbone: ConfigType,
        cam_head: ConfigType,
        concentration_loss: ConfigType = dict(type='LOCATEConcentrationLoss', loss_weight=0.07),
        prototype_loss: ConfigType = dict(type='LOCATEPrototypeLoss', margin=0.5, loss_weight=1.0),
        aff_cam_thd: float = 0.6,
        cluster_num: int = 3,
        part_iou_thd: float = 0.6,
        kmeans_iters: int = 300,
        kmeans_tol: float = 1e-4,
        exclude_background: str = 'saliency',
        saliency_heads: Sequence[int] = (0, 1, 3),
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        data_preprocessor: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if not hasattr(self.backbone, 'forward_descriptors') or not getattr(self.backbone, 'frozen', False):
            raise ValueError(
                f'LOCATE needs a frozen DINO ViT backbone (DINOVisionTransformer, frozen=True) giving last-block '
                f'keys and CLS attention; got {type(self.backbone).__name__}.'
            )
        self.cam_head = MODELS.build(cam_head)
        self.concentration_loss = MODELS.build(concentration_loss)
        self.prototype_loss = MODELS.build(prototype_loss)
        if not 0 <= aff_cam_thd < 1 or not 0 <= part_iou_thd <= 1:
            raise ValueError(
                f'LOCATE: aff_cam_thd must be in [0, 1) and part_iou_thd in [0, 1], got '
                f'{aff_cam_thd} and {part_iou_thd}.'
            )
        if cluster_num < 1 or kmeans_iters < 1:
            raise ValueError(f'LOCATE: cluster_num and kmeans_iters must be >= 1, got {cluster_num}, {kmeans_iters}.')
        if exclude_background not in ('saliency', 'border'):
            raise ValueError(f"LOCATE: exclude_background must be 'saliency' or 'border', got {exclude_background!r}.")
        self.aff_cam_thd = float(aff_cam_thd)
        self.cluster_num = int(cluster_num)
        self.part_iou_thd = float(part_iou_thd)
        self.kmeans_iters = int(kmeans_iters)
        self.kmeans_tol = float(kmeans_tol)
        self.exclude_background = exclude_background
        self.saliency_heads = tuple(int(h) for h in saliency_heads)
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        check_cfg_keys('train_cfg', self.train_cfg, TRAIN_CFG_KEYS)
        check_cfg_keys('test_cfg', self.test_cfg, TEST_CFG_KEYS)
        if len(self.train_cfg) > 1:
            raise ValueError(f'LOCATE: model.train_cfg takes warm_epoch or warm_iter, not both: {self.train_cfg}.')
        if not self.train_cfg:
            self.train_cfg['warm_epoch'] = 0  # LOCATE's default
        self.heatmap_source  # reading it checks test_cfg.heatmap: a bad one fails now, not after training
        self._warned_warm_up = False
        self.num_classes = self.cam_head.num_classes

    # ------------------------------------------------------------------ features
    def _descriptors(self, images: Tensor) -> Dict[str, Tensor]:
        """``keys`` (N, h*w, D) and ``cls_attn`` (N, heads, h, w) of the frozen ViT (no gradient), ``grid`` (h, w)."""
        out = self.backbone.forward_descriptors(images)
        return dict(keys=out['keys'].detach(), cls_attn=out['cls_attn'].detach(), grid=tuple(out['feats'].shape[-2:]))

    @staticmethod
    def _keys_to_map(keys: Tensor, grid) -> Tensor:
        return keys.transpose(1, 2).reshape(keys.shape[0], keys.shape[2], *grid)

    def extract_feat(self, inputs: Tensor) -> list:
        """The CAM branch's input: the last block's keys as a map (N, D, h, w), in a list (mmseg's contract)."""
        desc = self._descriptors(inputs)
        return [self._keys_to_map(desc['keys'], desc['grid'])]

    # ------------------------------------------------------------------ training
    def _prototype_loss_on(self) -> bool:
        """Whether the warm-up (``train_cfg``) is over at the runner's current epoch / iteration."""
        key, warm = next(iter(self.train_cfg.items()))
        hub = MessageHub.get_current_instance()
        counter = hub.get_info('iter' if key == 'warm_iter' else 'epoch')
        limit = hub.get_info('max_iters' if key == 'warm_iter' else 'max_epochs')
        if counter is not None and limit is not None and int(warm) >= int(limit) - 1 and not self._warned_warm_up:
            self._warned_warm_up = True  # e.g. warm_epoch in an iteration loop, whose epoch stays 0
            print_log(
                f'LOCATE: model.train_cfg.{key}={warm} with {limit} training '
                f'{"iterations" if key == "warm_iter" else "epochs"}: the prototype loss never starts '
                '(use warm_iter with an iteration-based loop).',
                logger='current',
                level=logging.WARNING,
            )
        return counter is None or int(counter) > int(warm)

    def _saliency(self, cls_attn: Tensor) -> Tensor:
        """(B, h*w) bool: LOCATE's ``sam_hard`` (``'saliency'``) or the grid's interior (``'border'``)."""
        if self.exclude_background == 'saliency':
            return cls_attention_saliency(cls_attn, self.saliency_heads)
        interior = border_mask(*cls_attn.shape[-2:], device=cls_attn.device) == 0
        return interior[None].expand(cls_attn.shape[0], -1)

    @torch.no_grad()
    def part_prototypes(self, exo_keys: Tensor, exo_cam: Tensor, ego_keys: Tensor, ego_cls_attn: Tensor):
        """LOCATE's part prototypes of a batch (no gradient): see :func:`exo_affordance_mask`,
        :func:`euclidean_kmeans` and :func:`select_part_prototypes`.

        Args:
            exo_keys (Tensor): (B, V, h*w, D) exo descriptors.
            exo_cam (Tensor): (B, V, h, w) exo CAM of each sample's affordance.
            ego_keys (Tensor): (B, h*w, D) ego descriptors.
            ego_cls_attn (Tensor): (B, heads, h, w) ego CLS attention.

        Returns:
            dict[str, Tensor]: :func:`select_part_prototypes`' outputs, plus ``centroids`` (B, K, D) and
            ``num_selected`` (B,) (the exo descriptors clustered).
        """
        selected = exo_affordance_mask(exo_cam, self.aff_cam_thd)
        points = exo_keys.flatten(1, 2)
        num_selected = selected.sum(dim=1)
        centroids = euclidean_kmeans(points, selected, self.cluster_num, self.kmeans_iters, self.kmeans_tol)
        out = select_part_prototypes(
            centroids, ego_keys, self._saliency(ego_cls_attn), self.part_iou_thd, num_selected >= self.cluster_num
        )
        return dict(out, centroids=centroids, num_selected=num_selected)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """LOCATE's training losses: ``loss_cls_exo``, ``loss_cls_ego``, ``loss_concentration``, ``loss_proto``
        (zero during the warm-up), and ``proto_valid`` (logged)."""
        ego, exo = split_views(inputs)
        num, views = exo.shape[:2]
        if views == 0:
            raise ValueError('training needs exocentric views: inputs has only the egocentric view (V=1)')
        labels = labels_of(data_samples, inputs.device)

        desc = self._descriptors(torch.cat([ego, exo.flatten(0, 1)]))
        keys, grid = desc['keys'], desc['grid']
        feats = self._keys_to_map(keys, grid)
        cams = self.cam_head.forward_views(feats[num:], feats[:num])
        cams_exo, cams_ego = cams.exo_cams, cams.ego_cams
        losses = self.cam_head.loss_by_feat(cams, data_samples)
        losses[self.concentration_loss.loss_name] = self.concentration_loss(cams_ego)

        cam_ego = select_class_maps(cams_ego, labels)  # (B, h, w), with gradient: the prototype loss trains it
        if not self._prototype_loss_on():
            losses[self.prototype_loss.loss_name] = cam_ego.sum() * 0
            return losses
        exo_cam = select_class_maps(cams_exo, labels.repeat_interleave(views)).view(num, views, *grid)
        parts = self.part_prototypes(
            keys[num:].view(num, views, *keys.shape[1:]), exo_cam, keys[:num], desc['cls_attn'][:num]
        )
        losses[self.prototype_loss.loss_name] = self.prototype_loss(
            cam_ego, feats[:num], parts['prototype'], parts['valid']
        )
        losses['proto_valid'] = parts['valid'].float().mean()
        return losses

    # ------------------------------------------------------------------ inference
    def check_heatmap_source(self, source: str) -> None:
        """LOCATE has only the ego CAM; any other ``test_cfg.heatmap`` is a ValueError."""
        if source != 'cam':
            raise ValueError(f"LOCATE has only the ego CAM: model.test_cfg.heatmap must be 'cam', got {source!r}")
