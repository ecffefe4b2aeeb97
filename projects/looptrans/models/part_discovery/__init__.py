# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Part discovery: the pseudo-masks that supervise the pixel head.

- :mod:`.base`: the interface, :class:`BasePartDiscovery` (subclass it and implement ``discover``) and its
  typed result :class:`PartDiscoveryResult` (pseudo-masks, validity, part IoUs and their statistics);
- :mod:`.cam_iou`: :class:`PartDiscovery`, LoopTrans's algorithm (K-means parts matched to the CAM by IoU);
- :mod:`.learned_clusters`: :class:`LearnedPartClusterer`, the published LoopTrans code's trained part clustering,
  which :class:`PartDiscovery` uses in place of K-means when given one;
- :mod:`.kmeans`, :mod:`.saliency`, :mod:`.silhouette`: its building blocks (batched cosine K-means, LOCATE's
  CLS-attention saliency and part score, the published LoopTrans code's least salient part, the silhouette that
  chooses K).
"""

from .base import PSEUDO_MASK_FIELD, BasePartDiscovery, PartDiscoveryResult, check_discovery_inputs, pseudo_mask_iou
from .cam_iou import PartDiscovery
from .kmeans import cosine_kmeans, farthest_point_init, gather_rows, random_init
from .learned_clusters import PUBLISHED_WEIGHTS_URL, LearnedPartClusterer, read_clusterer_state
from .saliency import (
    border_attention_share,
    border_mask,
    cls_attention_map,
    cls_attention_saliency,
    least_salient_part,
    part_saliency_score,
)
from .silhouette import cosine_silhouette

__all__ = [
    'PSEUDO_MASK_FIELD',
    'PUBLISHED_WEIGHTS_URL',
    'LearnedPartClusterer',
    'BasePartDiscovery',
    'PartDiscovery',
    'PartDiscoveryResult',
    'border_attention_share',
    'border_mask',
    'check_discovery_inputs',
    'cls_attention_map',
    'cls_attention_saliency',
    'cosine_kmeans',
    'cosine_silhouette',
    'farthest_point_init',
    'gather_rows',
    'least_salient_part',
    'part_saliency_score',
    'pseudo_mask_iou',
    'random_init',
    'read_clusterer_state',
]
