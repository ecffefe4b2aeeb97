# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""The cosine silhouette of partitions, batched: how ``PartDiscovery(num_parts='auto')`` chooses K."""

import torch
import torch.nn.functional as F
from torch import Tensor


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
