# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Batched part discovery: cosine K-means on frozen descriptors + CAM IoU.

LoopTrans (and LOCATE before it) partitions every egocentric image into K
parts by clustering self-supervised DINO descriptors, then picks the part
that overlaps the binarised CAM of the labelled affordance best as a
pixel-level pseudo-mask. The published code (LOCATE) clusters one image at a
time with ``fast_pytorch_kmeans``; here the whole batch is clustered at once on the
descriptors' device with batched matrix products, no per-sample Python loop
and no host-device round trip.
"""

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def farthest_point_init(x: Tensor, num_parts: int) -> Tensor:
    """Deterministic k-means++-like initial centres for unit vectors.

    The first centre is the descriptor most similar to the (normalised) mean
    descriptor; each next one is the descriptor farthest (largest cosine
    distance) from its nearest chosen centre. Ties go to the lowest index.
    With fewer than ``num_parts`` distinct descriptors some centres repeat;
    the repeated ones simply stay empty during K-means.

    Args:
        x (Tensor): L2-normalised descriptors (B, N, D).
        num_parts (int): Number of centres K.

    Returns:
        Tensor: Centre indices (B, K), long.
    """
    mean = F.normalize(x.mean(dim=1), dim=-1)  # (B, D)
    first = torch.einsum('bnd,bd->bn', x, mean).argmax(dim=1)
    indices = [first]
    # Cosine distance of every descriptor to its nearest chosen centre.
    nearest = 1 - torch.einsum('bnd,bd->bn', x, _gather_rows(x, first))
    for _ in range(num_parts - 1):
        nxt = nearest.argmax(dim=1)
        indices.append(nxt)
        dist = 1 - torch.einsum('bnd,bd->bn', x, _gather_rows(x, nxt))
        nearest = torch.minimum(nearest, dist)
    return torch.stack(indices, dim=1)


def random_init(x: Tensor, num_parts: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Distinct random centre indices (B, K), reproducible with ``generator``.

    The random numbers are drawn on the generator's device (CPU if None) and
    moved to the descriptors' device, so a CPU generator works for GPU
    inputs. When N < K the permutation is repeated cyclically.
    """
    num_samples, num_desc = x.shape[:2]
    device = generator.device if generator is not None else torch.device('cpu')
    order = torch.rand(num_samples, num_desc, generator=generator, device=device).argsort(dim=1).to(x.device)
    cols = torch.arange(num_parts, device=x.device) % num_desc
    return order[:, cols]


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x (B, N, D), index (B,) or (B, K) -> x[b, index[b]] (B, D) or (B, K, D)."""
    single = index.dim() == 1
    index = index.view(index.shape[0], -1)
    rows = x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
    return rows[:, 0] if single else rows


def cosine_kmeans(x: Tensor, init_index: Tensor, num_iters: int, active: Optional[Tensor] = None):
    """Batched spherical (cosine) K-means with fixed Lloyd iterations.

    Each step assigns every descriptor to the centre of highest cosine
    similarity (ties -> lowest centre index), then replaces every centre by
    the normalised mean of its members. An empty cluster keeps its previous
    centre, so the result never contains NaN.

    Args:
        x (Tensor): L2-normalised descriptors (B, N, D).
        init_index (Tensor): Indices of the initial centres (B, K).
        num_iters (int): Number of update steps.
        active (Tensor, optional): (B, K) bool, the centres each row may use (at least the first);
            inactive centres never receive a descriptor. This runs several K at once: one row per
            candidate K, all with K_max centres of which the first K are active.

    Returns:
        tuple[Tensor, Tensor]: Final centres (B, K, D) and the assignment
        (B, N) of every descriptor to its nearest final centre.
    """
    centres = _gather_rows(x, init_index)
    num_parts = centres.shape[1]
    block = None if active is None else (~active.bool())[:, None, :]  # (B, 1, K)

    def nearest(c: Tensor) -> Tensor:
        sim = torch.bmm(x, c.transpose(1, 2))
        if block is not None:
            sim = sim.masked_fill(block, float('-inf'))
        return sim.argmax(dim=2)

    for _ in range(num_iters):
        one_hot = F.one_hot(nearest(centres), num_parts).to(x.dtype)  # (B, N, K)
        sums = torch.bmm(one_hot.transpose(1, 2), x)  # (B, K, D)
        counts = one_hot.sum(dim=1)  # (B, K)
        centres = torch.where(counts[..., None] > 0, F.normalize(sums, dim=-1), centres)
    return centres, nearest(centres)


def cosine_silhouette(x: Tensor, assign: Tensor, num_parts: int) -> Tensor:
    """Mean silhouette of partitions under the cosine distance ``1 - x_i . x_j``, batched.

    ``s(i) = (b(i) - a(i)) / max(a(i), b(i))`` with ``a(i)`` the mean distance of ``i`` to the other
    members of its cluster and ``b(i)`` the smallest mean distance to another non-empty cluster; ``s(i) = 0``
    for a descriptor alone in its cluster (Rousseeuw, 1987) and when there is no other cluster.

    Args:
        x (Tensor): L2-normalised descriptors (B, N, D).
        assign (Tensor): Cluster of every descriptor (B, C, N) for C partitions of the same descriptors
            (e.g. one per candidate K), values in [0, num_parts).
        num_parts (int): Number of cluster slots.

    Returns:
        Tensor: (B, C) mean silhouette of each partition, in [-1, 1].
    """
    dist = (1 - torch.bmm(x, x.transpose(1, 2))).clamp(min=0)  # (B, N, N)
    one_hot = F.one_hot(assign, num_parts).to(x.dtype)  # (B, C, N, K)
    to_cluster = torch.einsum('bij,bcjk->bcik', dist, one_hot)  # summed distance of i to each cluster
    counts = one_hot.sum(dim=2, keepdim=True)  # (B, C, 1, K)
    own_count = torch.gather(counts.expand_as(one_hot), 3, assign[..., None])[..., 0]  # (B, C, N)
    own_sum = torch.gather(to_cluster, 3, assign[..., None])[..., 0]
    a = own_sum / (own_count - 1).clamp(min=1)
    mean_to = to_cluster / counts.clamp(min=1)
    other = (counts == 0) | one_hot.bool()
    b = mean_to.masked_fill(other, float('inf')).min(dim=3).values
    s = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
    s = torch.where((own_count > 1) & torch.isfinite(b), s, torch.zeros_like(s))
    return s.mean(dim=2)


def cls_attention_saliency(cls_attn: Tensor, heads: Sequence[int] = (0, 1, 3)) -> Tensor:
    """LOCATE's binary saliency mask from DINO's CLS attention (``models/locate.py``).

    Each selected head's CLS-to-patch attention is thresholded at its own spatial mean, the binary maps
    are averaged over the heads, min-max normalised (LOCATE's ``normalize_minmax``: a constant map gives
    zeros) and thresholded at their mean.

    Args:
        cls_attn (Tensor): CLS attention over the patches (B, num_heads, h, w).
        heads (Sequence[int]): Heads to use; LOCATE uses heads 0, 1 and 3 of ViT-S/16.

    Returns:
        Tensor: (B, h*w) bool; all False for an image whose heads agree everywhere (no salient region).
    """
    if cls_attn.dim() != 4:
        raise ValueError(f'cls_attention_saliency: expected cls_attn (B, heads, h, w), got {tuple(cls_attn.shape)}.')
    num_heads = cls_attn.shape[1]
    if not heads or min(heads) < 0 or max(heads) >= num_heads:
        raise ValueError(
            f'cls_attention_saliency: heads {tuple(heads)} must be in [0, {num_heads}) for a '
            f'backbone with {num_heads} heads; set part_discovery.saliency_heads.'
        )
    flat = cls_attn.flatten(2).float()  # (B, H, N)
    binary = (flat > flat.mean(dim=-1, keepdim=True)).float()
    sal = binary[:, list(heads)].mean(dim=1)  # (B, N)
    low = sal.min(dim=1, keepdim=True).values
    span = sal.max(dim=1, keepdim=True).values - low
    sal = torch.where(span > 0, (sal - low) / span.clamp(min=1e-12), torch.zeros_like(sal))
    return sal > sal.mean(dim=1, keepdim=True)


def part_saliency_score(parts: Tensor, saliency: Tensor) -> Tensor:
    """LOCATE's part score ``(|part ∩ sal| / |part| + |sal| / |part ∪ sal|) / 2`` of every part.

    High for a part inside the salient (object) region, low for a background part. An empty part scores
    0 (it cannot be chosen).

    Args:
        parts (Tensor): One-hot part assignment (B, N, K), float.
        saliency (Tensor): Binary saliency (B, N), float.

    Returns:
        Tensor: (B, K) scores in [0, 1].
    """
    inter = torch.einsum('bnk,bn->bk', parts, saliency)
    size = parts.sum(dim=1)
    sal_size = saliency.sum(dim=1, keepdim=True)
    union = size + sal_size - inter
    score = (inter / size.clamp(min=1) + sal_size / union.clamp(min=1)) / 2
    return torch.where(size > 0, score, torch.zeros_like(score))


def pseudo_mask_iou(pseudo_mask: Tensor, truth: Tensor) -> Tensor:
    """IoU (B,) of pseudo-masks (B, h, w) on the descriptor grid with true part masks (B, H, W) at the
    input size: the pseudo-mask is brought to (H, W) by nearest neighbour (how the pixel head's targets
    look at full resolution). Used by the ``pm_true_iou`` training log and ``eval_pseudo_masks.py``."""
    size = tuple(truth.shape[-2:])
    mask = F.interpolate(pseudo_mask[:, None].float(), size=size, mode='nearest')[:, 0] > 0.5
    truth = truth.bool()
    inter = (mask & truth).flatten(1).sum(1).float()
    union = (mask | truth).flatten(1).sum(1).float().clamp(min=1)
    return inter / union


@MODELS.register_module()
class PartDiscovery(nn.Module):
    """Select, per image, the K-means part that best matches the CAM.

    Steps (all batched, under ``torch.no_grad()``):

    1. L2-normalise descriptors, cosine K-means with ``num_parts`` clusters;
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
        exclude_background (str | None): 'saliency', 'border' or None (see step 3). Default: None.
        saliency_heads (Sequence[int]): CLS-attention heads of the saliency mask. Default: (0, 1, 3),
            LOCATE's choice for ViT-S/16.
        min_part_score (float): Minimum LOCATE part score of a candidate with ``'saliency'``.
            Default: 0.6 (LOCATE's ``part_iou_thd``).
        k_range (tuple[int, int]): Candidate K (inclusive) for ``num_parts='auto'``. Default: (2, 6).
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
    ) -> None:
        super().__init__()
        if exclude_background not in (None, 'border', 'saliency'):
            raise ValueError(
                f"PartDiscovery: exclude_background must be None, 'border' or 'saliency', got {exclude_background!r}."
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

    @staticmethod
    def _border_mask(h: int, w: int, device: torch.device) -> Tensor:
        """(h*w,) float mask of the grid's outermost ring of tokens."""
        mask = torch.ones(h, w, device=device)
        if h > 2 and w > 2:
            mask[1:-1, 1:-1] = 0
        return mask.flatten()

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

    @torch.no_grad()
    def forward(
        self, desc: Tensor, cam: Tensor, generator: Optional[torch.Generator] = None, cls_attn: Optional[Tensor] = None
    ) -> Dict[str, Tensor]:
        """Discover parts and pick pseudo-masks.

        Args:
            desc (Tensor): Frozen descriptors of the ego images (B, N, D),
                N = h * w in row-major grid order.
            cam (Tensor): Ego CAM of the labelled class (B, h, w).
            generator (torch.Generator, optional): Used by ``init='random'``.
            cls_attn (Tensor, optional): DINO's CLS attention of the ego images (B, heads, h, w);
                required by ``exclude_background='saliency'``.

        Returns:
            dict[str, Tensor]:
                - pseudo_mask (B, h, w) float in {0, 1}, zeros when invalid;
                - valid (B,) bool;
                - ious (B, K) float, IoU of each part with the CAM mask;
                - assign (B, N) long, part index of every descriptor;
                - part (B,) long, index of the selected part;
                - part_score (B, K) float, LOCATE's saliency score of each part (``'saliency'`` only);
                - num_parts (B,) long, the K chosen for each image (``num_parts='auto'`` only; K in the
                  shapes above is then ``k_range[1]``, and the parts beyond an image's K are empty).
        """
        if (
            desc.dim() != 3
            or cam.dim() != 3
            or desc.shape[0] != cam.shape[0]
            or desc.shape[1] != cam.shape[1] * cam.shape[2]
        ):
            raise ValueError(
                'PartDiscovery: expected desc (B, h*w, D) and cam (B, h, w), '
                f'got {tuple(desc.shape)} and {tuple(cam.shape)}; resize the '
                'CAM to the descriptor grid.'
            )
        x = F.normalize(desc.float(), dim=-1)
        if self.init == 'farthest':
            init_index = farthest_point_init(x, self.num_parts)
        else:
            init_index = random_init(x, self.num_parts, generator)
        extra = dict()
        if self.auto:
            assign, extra['num_parts'] = self._auto_kmeans(x, init_index)
        else:
            _, assign = cosine_kmeans(x, init_index, self.num_iters)

        cam_mask = self.binarize_cam(cam).float()  # (B, N)
        parts = F.one_hot(assign, self.num_parts).float()  # (B, N, K)
        inter = torch.einsum('bnk,bn->bk', parts, cam_mask)
        union = parts.sum(dim=1) + cam_mask.sum(dim=1, keepdim=True) - inter
        ious = inter / union.clamp(min=1)
        is_candidate = torch.ones_like(ious, dtype=torch.bool)
        if self.exclude_background == 'border':
            border = self._border_mask(*cam.shape[-2:], device=cam.device)  # (N,)
            border_share = torch.einsum('bnk,n->bk', parts, border)
            is_candidate = ~F.one_hot(border_share.argmax(dim=1), self.num_parts).bool()
        elif self.exclude_background == 'saliency':
            if (
                cls_attn is None
                or cls_attn.shape[0] != cam.shape[0]
                or tuple(cls_attn.shape[-2:]) != tuple(cam.shape[-2:])
            ):
                raise ValueError(
                    "PartDiscovery: exclude_background='saliency' needs cls_attn (B, heads, h, w) on the "
                    f'descriptor grid {tuple(cam.shape)}, got '
                    f'{None if cls_attn is None else tuple(cls_attn.shape)}; the descriptor backbone '
                    "must return 'cls_attn' (DINOVisionTransformer does), or use 'border'."
                )
            saliency = cls_attention_saliency(cls_attn, self.saliency_heads).float()
            extra['part_score'] = part_saliency_score(parts, saliency)
            is_candidate = extra['part_score'] >= self.min_part_score
        candidates = ious.masked_fill(~is_candidate, -1.0)
        part = candidates.argmax(dim=1)  # ties -> lowest part index
        best_iou = ious.gather(1, part[:, None])[:, 0]
        valid = is_candidate.any(dim=1) & (best_iou > 0) & (best_iou >= self.min_iou)
        pseudo_mask = (assign == part[:, None]) & valid[:, None]
        return dict(
            pseudo_mask=pseudo_mask.float().view_as(cam), valid=valid, ious=ious, assign=assign, part=part, **extra
        )
