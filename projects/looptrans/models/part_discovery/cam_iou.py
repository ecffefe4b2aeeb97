# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""LoopTrans's part discovery: cosine K-means parts of the frozen descriptors, the one that best overlaps the CAM.

LoopTrans (and LOCATE before it) partitions every egocentric image into K parts by clustering self-supervised
DINO descriptors, then picks the part that overlaps the binarised CAM of the labelled affordance best as a
pixel-level pseudo-mask.
"""

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType
from torch import Tensor

from .base import BasePartDiscovery, PartDiscoveryResult
from .kmeans import cosine_kmeans, farthest_point_init, random_init
from .saliency import border_mask, cls_attention_map, cls_attention_saliency, least_salient_part, part_saliency_score
from .silhouette import cosine_silhouette

#: The background rules of :class:`PartDiscovery` (its step 3).
EXCLUDE_BACKGROUND = (None, 'border', 'saliency', 'least_salient')


@MODELS.register_module()
class PartDiscovery(BasePartDiscovery):
    """Select, per image, the K-means part that best matches the CAM.

    Steps (all batched, under ``torch.no_grad()``):

    1. L2-normalise descriptors, cosine K-means with ``num_parts`` clusters; or, with a ``clusterer`` (the
       published LoopTrans code's trained module, :class:`LearnedPartClusterer`), every descriptor goes to its
       most similar part token;
    2. binarise the CAM: min-max normalise, then ``> mean`` (``cam_thr=
       'mean'``) or ``> cam_thr``; a constant CAM gives an empty mask;
    3. IoU of every part with the CAM mask; the best candidate part is the pseudo-mask. Which parts are
       candidates is ``exclude_background``'s choice: the background part must not be, since a diffuse
       early CAM would otherwise often overlap it most.

       - ``'saliency'`` (LOCATE, ``models/locate.py``; for DINO weights): a saliency mask is built from
         DINO's CLS attention (:func:`cls_attention_saliency`) and every part gets LOCATE's score
         ``p = (|part ∩ sal| / |part| + |sal| / |part ∪ sal|) / 2`` (:func:`part_saliency_score`).
         Parts with ``p < min_part_score`` (mostly outside the salient object) are no candidates, and an
         image without any candidate is invalid: LOCATE skips an image whose best part scores below 0.6.
         A large object that fills the frame and touches every border keeps all its parts.
       - ``'least_salient'`` (the published LoopTrans code, ``models/looptrans.py``; for DINO weights): the
         part whose tokens have the lowest mean CLS attention (heads ``saliency_heads`` averaged, min-max
         normalised: :func:`cls_attention_map`) is no candidate; every other part is, with no part-score gate.
       - ``'border'`` (for random-weight backbones, whose attention is no saliency): the part holding the
         largest share of the grid's border tokens is no candidate. Egocentric images are object-centric,
         so that part is usually the background, but also the object when it fills the frame.
       - None: every part is a candidate.

    A sample is *valid* when it has a candidate, its best IoU is > 0 and >= ``min_iou``; invalid
    samples (e.g. an all-zero CAM) get an all-zero pseudo-mask and should be
    ignored by the pixel loss.

    Args:
        num_parts (int | str): Number of parts K (>= 2), or ``'auto'``: K is chosen per image from the
            descriptors alone, as the K in ``k_range`` whose cosine K-means partition has the highest mean
            silhouette (:func:`cosine_silhouette`). The silhouette scores the very partition the pseudo-mask
            is taken from and has no bandwidth to tune (an eigengap would need an affinity kernel and
            scores a spectral embedding we do not cluster). Default: 4.
        num_iters (int): Lloyd iterations. Default: 10.
        min_iou (float): Minimum best IoU of a valid sample. Default: 0.0.
        cam_thr (str | float): 'mean' or a threshold in [0, 1] applied to the
            min-max normalised CAM. Default: 'mean'.
        init (str): 'farthest' (deterministic farthest-point init) or
            'random' (distinct random descriptors drawn with the generator
            passed to :meth:`forward`; the generator is ignored otherwise).
            Default: 'farthest'.
        exclude_background (str | None): 'saliency', 'least_salient', 'border' or None (see step 3).
            Default: None.
        saliency_heads (Sequence[int]): CLS-attention heads of the saliency (``'saliency'`` and
            ``'least_salient'``). Default: (0, 1, 3), LOCATE's and the published LoopTrans code's choice for ViT-S/16.
        min_part_score (float): Minimum LOCATE part score of a candidate with ``'saliency'``.
            Default: 0.6 (LOCATE's ``part_iou_thd``).
        k_range (tuple[int, int]): Candidate K (inclusive) for ``num_parts='auto'``. Default: (2, 6).
        clusterer (dict, optional): A trained part clustering to use instead of K-means (step 1), e.g.
            ``dict(type='LearnedPartClusterer', checkpoint='checkpoints/cluster_seen.pth')``; its number of parts
            must be ``num_parts``, and ``num_iters`` / ``init`` then go unused. Its weights are loaded by
            :meth:`init_weights`. Default: None (K-means).
    """

    def __init__(
        self,
        num_parts: Union[int, str] = 4,
        num_iters: int = 10,
        min_iou: float = 0.0,
        cam_thr: Union[str, float] = 'mean',
        init: str = 'farthest',
        exclude_background: Optional[str] = None,
        saliency_heads: Sequence[int] = (0, 1, 3),
        min_part_score: float = 0.6,
        k_range: Tuple[int, int] = (2, 6),
        clusterer: Optional[ConfigType] = None,
    ) -> None:
        super().__init__()
        if exclude_background not in EXCLUDE_BACKGROUND:
            raise ValueError(
                f'PartDiscovery: exclude_background must be one of {EXCLUDE_BACKGROUND}, got {exclude_background!r}.'
            )
        self.exclude_background = exclude_background
        self.auto = num_parts == 'auto'
        if self.auto:
            k_min, k_max = (int(k) for k in k_range)
            if k_min < 2 or k_max < k_min:
                raise ValueError(
                    f'PartDiscovery: k_range must be (k_min, k_max) with 2 <= k_min <= k_max, got {tuple(k_range)}.'
                )
            self.k_range = (k_min, k_max)
            num_parts = k_max  # cluster slots; each image uses its chosen K of them
        elif not isinstance(num_parts, int) or isinstance(num_parts, bool):
            raise ValueError(f"PartDiscovery: num_parts must be an int >= 2 or 'auto', got {num_parts!r}.")
        elif num_parts < 2:
            raise ValueError(
                f'PartDiscovery: num_parts must be >= 2, got {num_parts}: with one part the pseudo-mask is '
                'the whole image, so the pixel head learns nothing about where the affordance is.'
            )
        if num_iters < 0:
            raise ValueError(f'PartDiscovery: num_iters must be >= 0, got {num_iters}.')
        if not 0 <= min_part_score <= 1:
            raise ValueError(f'PartDiscovery: min_part_score must be in [0, 1], got {min_part_score}.')
        self.saliency_heads = tuple(int(h) for h in saliency_heads)
        self.min_part_score = float(min_part_score)
        if isinstance(cam_thr, str):
            if cam_thr != 'mean':
                raise ValueError(f"PartDiscovery: cam_thr must be 'mean' or a float in [0, 1], got {cam_thr!r}.")
        elif not 0 <= cam_thr <= 1:
            raise ValueError(f"PartDiscovery: cam_thr must be 'mean' or a float in [0, 1], got {cam_thr}.")
        if init not in ('farthest', 'random'):
            raise ValueError(f"PartDiscovery: init must be 'farthest' or 'random', got {init!r}.")
        self.num_parts = num_parts
        self.num_iters = num_iters
        self.min_iou = min_iou
        self.cam_thr = cam_thr
        self.init = init
        self.clusterer = None if clusterer is None else MODELS.build(clusterer)
        if self.clusterer is not None and (self.auto or self.clusterer.num_parts != num_parts):
            raise ValueError(
                f'PartDiscovery: the clusterer has {self.clusterer.num_parts} part tokens, but num_parts is '
                f"{'auto' if self.auto else num_parts}; a trained clusterer fixes K: set num_parts="
                f'{self.clusterer.num_parts}.'
            )

    def init_weights(self) -> None:
        """Load the clusterer's trained weights (called by the segmentor's ``init_weights``)."""
        if self.clusterer is not None:
            self.clusterer.init_weights()

    def binarize_cam(self, cam: Tensor) -> Tensor:
        """(B, h, w) CAM -> (B, h*w) bool mask (empty for a constant CAM)."""
        flat = cam.flatten(1).float()
        low = flat.min(dim=1, keepdim=True).values
        span = flat.max(dim=1, keepdim=True).values - low
        norm = torch.where(span > 0, (flat - low) / span.clamp(min=1e-12), torch.zeros_like(flat))
        thr = norm.mean(dim=1, keepdim=True) if self.cam_thr == 'mean' else self.cam_thr
        return norm > thr

    def _auto_kmeans(self, x: Tensor, init_index: Tensor) -> Tuple[Tensor, Tensor]:
        """K-means for every K of ``k_range`` in one batched run, and per image the K of highest cosine
        silhouette (ties -> the smaller K). Returns the chosen assignment (B, N) and K (B,).

        The candidate runs are rows of one batch (B * num_K rows of K_max centres, the first K active); the
        initial centres of K are the first K of the K_max initial centres (farthest-point and random
        initialisations are both nested), so no per-image or per-K Python loop runs.
        """
        num, n_desc = x.shape[:2]
        k_min, k_max = self.k_range
        ks = torch.arange(k_min, k_max + 1, device=x.device)
        active = torch.arange(k_max, device=x.device)[None] < ks[:, None]  # (num_K, K_max)
        _, assign = cosine_kmeans(
            x.repeat_interleave(len(ks), dim=0),
            init_index.repeat_interleave(len(ks), dim=0),
            self.num_iters,
            active.repeat(num, 1),
        )
        assign = assign.view(num, len(ks), n_desc)
        best = cosine_silhouette(x, assign, k_max).argmax(dim=1)  # first maximum -> smaller K
        chosen = assign[torch.arange(num, device=x.device), best]
        return chosen, ks[best]

    def _candidates(self, parts: Tensor, cam: Tensor, cls_attn: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        """(B, K) bool: the parts that may become the pseudo-mask (step 3), and the saliency part scores."""
        if self.exclude_background == 'border':
            border = border_mask(*cam.shape[-2:], device=cam.device)  # (N,)
            border_share = torch.einsum('bnk,n->bk', parts, border)
            return ~F.one_hot(border_share.argmax(dim=1), self.num_parts).bool(), None
        if self.exclude_background in ('saliency', 'least_salient'):
            if (
                cls_attn is None
                or cls_attn.shape[0] != cam.shape[0]
                or tuple(cls_attn.shape[-2:]) != tuple(cam.shape[-2:])
            ):
                raise ValueError(
                    f'PartDiscovery: exclude_background={self.exclude_background!r} needs cls_attn (B, heads, h, w) '
                    f'on the descriptor grid {tuple(cam.shape)}, got '
                    f'{None if cls_attn is None else tuple(cls_attn.shape)}; the descriptor backbone '
                    "must return 'cls_attn' (DINOVisionTransformer does), or use 'border'."
                )
        if self.exclude_background == 'least_salient':
            background = least_salient_part(parts, cls_attention_map(cls_attn, self.saliency_heads))
            return ~F.one_hot(background, self.num_parts).bool(), None
        if self.exclude_background == 'saliency':
            saliency = cls_attention_saliency(cls_attn, self.saliency_heads).float()
            score = part_saliency_score(parts, saliency)
            return score >= self.min_part_score, score
        return torch.ones(parts.shape[0], self.num_parts, dtype=torch.bool, device=parts.device), None

    def _assign(self, desc: Tensor, generator: Optional[torch.Generator]) -> Tuple[Tensor, Optional[Tensor]]:
        """Step 1: the part of every descriptor (B, N), and K per image (B,) with ``num_parts='auto'``."""
        if self.clusterer is not None:
            return self.clusterer.assign(desc.float()), None  # raw keys, as the published module gets them
        x = F.normalize(desc.float(), dim=-1)
        if self.init == 'farthest':
            init_index = farthest_point_init(x, self.num_parts)
        else:
            init_index = random_init(x, self.num_parts, generator)
        if self.auto:
            return self._auto_kmeans(x, init_index)
        return cosine_kmeans(x, init_index, self.num_iters)[1], None

    def discover(
        self, desc: Tensor, cam: Tensor, generator: Optional[torch.Generator] = None, cls_attn: Optional[Tensor] = None
    ) -> PartDiscoveryResult:
        """Discover parts and pick pseudo-masks.

        Args:
            desc (Tensor): Frozen descriptors of the ego images (B, N, D),
                N = h * w in row-major grid order.
            cam (Tensor): Ego CAM of the labelled class (B, h, w).
            generator (torch.Generator, optional): Used by ``init='random'``.
            cls_attn (Tensor, optional): DINO's CLS attention of the ego images (B, heads, h, w);
                required by ``exclude_background='saliency'``.

        Returns:
            PartDiscoveryResult: ``pseudo_mask``, ``valid``, ``ious`` (B, K) (IoU of each part with the CAM
            mask), ``assign`` (B, N), ``part`` (B,), ``part_score`` (B, K) (``'saliency'`` only) and
            ``num_parts`` (B,) (``num_parts='auto'`` only; K in the shapes above is then ``k_range[1]``, and
            the parts beyond an image's K are empty).
        """
        assign, num_parts = self._assign(desc, generator)

        cam_mask = self.binarize_cam(cam).float()  # (B, N)
        parts = F.one_hot(assign, self.num_parts).float()  # (B, N, K)
        inter = torch.einsum('bnk,bn->bk', parts, cam_mask)
        union = parts.sum(dim=1) + cam_mask.sum(dim=1, keepdim=True) - inter
        ious = inter / union.clamp(min=1)
        is_candidate, part_score = self._candidates(parts, cam, cls_attn)
        candidates = ious.masked_fill(~is_candidate, -1.0)
        part = candidates.argmax(dim=1)  # ties -> lowest part index
        best_iou = ious.gather(1, part[:, None])[:, 0]
        valid = is_candidate.any(dim=1) & (best_iou > 0) & (best_iou >= self.min_iou)
        pseudo_mask = (assign == part[:, None]) & valid[:, None]
        return PartDiscoveryResult(
            pseudo_mask=pseudo_mask.float().view_as(cam),
            valid=valid,
            ious=ious,
            assign=assign,
            part=part,
            part_score=part_score,
            num_parts=num_parts,
        )
