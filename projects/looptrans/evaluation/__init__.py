"""Evaluation: the published affordance-grounding protocols, as pure functions and a metric."""

from .functional import (
    agd20k_scores,
    agd20k_scores_batched,
    auc_judd,
    gaussian_blur_5x5,
    hotspots_fixations,
    hotspots_scores,
    kld,
    kld_sim,
    minmax_normalize,
    nss,
    replace_nonfinite,
    resize_maps,
    sim,
)
from .metrics import AffordanceMetric

__all__ = [
    'AffordanceMetric',
    'agd20k_scores',
    'agd20k_scores_batched',
    'hotspots_scores',
    'kld',
    'sim',
    'kld_sim',
    'nss',
    'auc_judd',
    'resize_maps',
    'minmax_normalize',
    'gaussian_blur_5x5',
    'hotspots_fixations',
    'replace_nonfinite',
]
