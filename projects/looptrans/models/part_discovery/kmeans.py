# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Batched spherical (cosine) K-means on L2-normalised descriptors, and its initialisations.

The published code (LOCATE) clusters one image at a time with ``fast_pytorch_kmeans``; here the whole batch
is clustered at once on the descriptors' device with batched matrix products, no per-sample Python loop and
no host-device round trip.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """x (B, N, D), index (B,) or (B, K) -> x[b, index[b]] (B, D) or (B, K, D)."""
    single = index.dim() == 1
    index = index.view(index.shape[0], -1)
    rows = x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
    return rows[:, 0] if single else rows


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
    nearest = 1 - torch.einsum('bnd,bd->bn', x, gather_rows(x, first))
    for _ in range(num_parts - 1):
        nxt = nearest.argmax(dim=1)
        indices.append(nxt)
        dist = 1 - torch.einsum('bnd,bd->bn', x, gather_rows(x, nxt))
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
    centres = gather_rows(x, init_index)
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
