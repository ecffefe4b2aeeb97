# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""The published LoopTrans code's learned part clustering (ACSeg-style), to load its authors' trained weights.

The published code (SooLab/LoopTrans, ``models/cluster.py``) does not split the egocentric image into parts with
K-means: K learnable part tokens attend to the image's frozen DINO keys through 8 layers of cross- and
self-attention, and every key goes to the token it is most cosine-similar to. The module is trained without labels
(after ACSeg, Li et al. CVPR 2023) on the AGD20K Seen or Unseen training images, and the authors distribute the
two trained modules (``cluster_seen.pth``, ``cluster_unseen.pth``); their training code is not released. Inside
LoopTrans the module is frozen: its assignment is an ``argmax``, which passes no gradient.

:class:`LearnedPartClusterer` is that module with the same parameter names, so that the authors' files load as
they are; :class:`~looptrans.models.part_discovery.PartDiscovery` uses it through its ``clusterer`` argument in
place of K-means.
"""

from __future__ import annotations

import os.path as osp
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.registry import MODELS
from torch import Tensor, nn

#: Where the authors distribute the trained modules (the published code's README, "Cluster Module").
PUBLISHED_WEIGHTS_URL = 'https://drive.google.com/drive/folders/1w8Y4KI5AXyoXu469RFKjnn-TGAx1HbLC'


class _FeedForward(nn.Module):
    """Linear -> GELU -> Linear with the published module's layout (``net.0`` and ``net.3`` hold the weights)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden_dim, dim), nn.Dropout(0.0)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@MODELS.register_module()
class LearnedPartClusterer(nn.Module):
    """K part tokens refined against the image's descriptors; each descriptor joins its most similar token.

    Per layer: ``q = q + CrossAttn(q0, x, x)``, ``q = q + SelfAttn(q0, q0, q0)``, ``q = q + FFN(q)``,
    ``q = LayerNorm(q)``, where ``q0`` are the initial tokens: the published module computes its attention query
    once, before the layer loop, so every layer attends with the initial tokens (kept here: the trained weights
    expect it). The output is the cosine similarity of every descriptor with every refined token, plus 1.

    The module is frozen (its parameters never require gradient): the published code uses it through an argmax.

    Args:
        num_parts (int): Part tokens K. Default: 4 (the published module's).
        embed_dims (int): Descriptor width. Default: 384 (DINO ViT-S keys).
        num_layers (int): Attention layers. Default: 8.
        num_heads (int): Heads of every attention. Default: 8.
        checkpoint (str, optional): The authors' trained module (``cluster_seen.pth`` / ``cluster_unseen.pth``,
            a state dict of this layout), loaded strictly by :meth:`init_weights`, i.e. when training starts
            (a checkpoint of the whole model carries the module's weights too, so testing needs no file).
            None: random tokens, for tests; part discovery from an untrained module is meaningless.
    """

    def __init__(
        self,
        num_parts: int = 4,
        embed_dims: int = 384,
        num_layers: int = 8,
        num_heads: int = 8,
        checkpoint: Optional[str] = None,
    ) -> None:
        super().__init__()
        if num_parts < 2:
            raise ValueError(f'LearnedPartClusterer: num_parts must be >= 2, got {num_parts}.')
        if num_layers < 1 or embed_dims % num_heads:
            raise ValueError(
                f'LearnedPartClusterer: needs num_layers >= 1 and embed_dims divisible by num_heads, got '
                f'num_layers={num_layers}, embed_dims={embed_dims}, num_heads={num_heads}.'
            )
        self.num_parts = num_parts
        self.embed_dims = embed_dims
        self.checkpoint = checkpoint
        self.tokens = nn.Embedding(num_parts, embed_dims)
        self.cross_attn_layers = nn.ModuleList(nn.MultiheadAttention(embed_dims, num_heads) for _ in range(num_layers))
        self.self_attn_layers = nn.ModuleList(nn.MultiheadAttention(embed_dims, num_heads) for _ in range(num_layers))
        self.norm_layers = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(num_layers))
        self.ffn_layers = nn.ModuleList(_FeedForward(embed_dims, 4 * embed_dims) for _ in range(num_layers))
        self.requires_grad_(False)

    def init_weights(self) -> None:
        """Load :attr:`checkpoint` (strictly); nothing without one."""
        if self.checkpoint is None:
            return
        self.load_state_dict(read_clusterer_state(self.checkpoint))
        print_log(f'LearnedPartClusterer: loaded the trained part clustering from {self.checkpoint}', 'current')

    def load_state_dict(self, state_dict: Dict[str, Tensor], strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` with an error that names the mismatching keys and shapes."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        wrong = sorted(k for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
        if strict and (missing or unexpected or wrong):
            shapes = ', '.join(f'{k}: {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}' for k in wrong[:3])
            raise ValueError(
                f'LearnedPartClusterer ({self.num_parts} parts, {self.embed_dims} dims, {len(self.norm_layers)} '
                f'layers) cannot take this state dict: missing {missing[:3]}{"..." if len(missing) > 3 else ""}, '
                f'unexpected {unexpected[:3]}{"..." if len(unexpected) > 3 else ""}, wrong shapes [{shapes}]. '
                'Expected the published LoopTrans cluster module (cluster_seen.pth / cluster_unseen.pth) and the '
                'matching num_parts / embed_dims / num_layers.'
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, desc: Tensor) -> Tensor:
        """(B, N, D) descriptors -> (B, N, K) cosine similarity with the refined part tokens, plus 1."""
        if desc.dim() != 3 or desc.shape[-1] != self.embed_dims:
            raise ValueError(
                f'LearnedPartClusterer: expected descriptors (B, N, {self.embed_dims}), got {tuple(desc.shape)}.'
            )
        tokens = self.tokens.weight.to(desc.dtype)
        query = tokens.unsqueeze(0).expand(desc.shape[0], -1, -1)  # (B, K, D)
        initial = query.transpose(0, 1)  # (K, B, D): the attention query of every layer (see the class docstring)
        keys = desc.transpose(0, 1)  # (N, B, D), nn.MultiheadAttention's sequence-first layout
        for cross, self_attn, norm, ffn in zip(
            self.cross_attn_layers, self.self_attn_layers, self.norm_layers, self.ffn_layers
        ):
            query = query + cross(initial, keys, keys, need_weights=False)[0].transpose(0, 1)
            query = query + self_attn(initial, initial, initial, need_weights=False)[0].transpose(0, 1)
            query = norm(query + ffn(query))
        similarity = F.normalize(desc, dim=-1) @ F.normalize(query, dim=-1).transpose(1, 2)
        return similarity + 1

    @torch.no_grad()
    def assign(self, desc: Tensor) -> Tensor:
        """(B, N, D) descriptors -> (B, N) part index of every descriptor (its most similar token)."""
        return self(desc).argmax(dim=-1)


def read_clusterer_state(path: str) -> Dict[str, Tensor]:
    """The tensors of a trained cluster module file, read without unpickling code (``weights_only``).

    Accepts the published files (a bare state dict) and the same under a ``state_dict`` or ``model`` key.

    Raises:
        FileNotFoundError: no file at ``path``, with where the authors distribute the weights.
        ValueError: the file holds no state dict of tensors.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'LearnedPartClusterer: no trained cluster module at {path!r}. Download cluster_seen.pth / '
            f'cluster_unseen.pth from the LoopTrans authors ({PUBLISHED_WEIGHTS_URL}) and put it there, or '
            'split the parts with K-means instead: --cfg-options model.part_discovery.clusterer=None.'
        )
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # a truncated or foreign file: name it instead of a pickle traceback
        raise ValueError(f'LearnedPartClusterer: cannot read {path!r} as a state dict of tensors ({err}).') from err
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f'LearnedPartClusterer: {path!r} holds no state dict of tensors.')
    return state
