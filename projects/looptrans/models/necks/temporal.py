# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Temporal aggregation of per-frame feature maps for the video benchmarks (OPRA, EPIC-Hotspots).

In the video setting the exocentric views of a LoopTrans sample are the ``T`` frames of a clip. The
segmentor encodes every frame with the (image) backbone, reshapes the exo features to ``(B, T, C, h, w)`` and
passes them through ``model.temporal``; the aggregator returns temporally contextualised per-frame features
of the same shape, which the shared CAM head then reads as ordinary exo views. Both aggregators work
independently at each spatial location, so the spatial layout the CAM relies on is untouched:

* :class:`LSTMTemporalAggregator` - an LSTM over the frames (LoopTrans' video extension, after the frame
  LSTM of Interaction Hotspots), projected back to ``C`` and added to the input;
* :class:`TemporalAttentionAggregator` - self-attention over the frames (the stronger temporal model the
  paper's limitations point to).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig
from torch import Tensor


def _check_clip(module: nn.Module, x: Tensor, channels: int) -> Tuple[int, int, int, int, int]:
    """Validate a ``(B, T, C, h, w)`` clip feature tensor and return its shape."""
    name = type(module).__name__
    if x.dim() != 5:
        raise ValueError(
            f'{name} expects clip features of shape (B, T, C, h, w), got {tuple(x.shape)}; '
            'reshape the exo features with feats.unflatten(0, (B, T)) first.'
        )
    if x.shape[2] != channels:
        raise ValueError(
            f'{name} was built for {channels} channels but got {x.shape[2]} '
            f'(features {tuple(x.shape)}); set channels={x.shape[2]} in model.temporal.'
        )
    if x.shape[1] < 1:
        raise ValueError(f'{name}: the clip has no frame (T=0).')
    return tuple(x.shape)  # type: ignore[return-value]


def _to_sequences(x: Tensor) -> Tensor:
    """``(B, T, C, h, w)`` -> ``(B*h*w, T, C)``: one sequence per spatial location."""
    b, t, c, h, w = x.shape
    return x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)


def _from_sequences(seq: Tensor, shape: Tuple[int, int, int, int, int]) -> Tensor:
    """Inverse of :func:`_to_sequences`."""
    b, t, c, h, w = shape
    return seq.reshape(b, h, w, t, c).permute(0, 3, 4, 1, 2).contiguous()


@MODELS.register_module()
class LSTMTemporalAggregator(BaseModule):
    """An LSTM over the frame axis at every spatial location: ``(B, T, C, h, w) -> (B, T, C, h, w)``.

    All ``B * h * w`` locations run as one batch of sequences ``(B*h*w, T, C)`` through a single
    ``nn.LSTM`` (cuDNN on GPU); its output at each step (``hidden`` channels) is projected back to ``C`` by a
    linear layer and, with ``residual=True``, added to the input frame's feature, so a frame keeps its own
    appearance and gains what the preceding frames say. The LSTM is causal: frame ``t`` only sees frames
    ``<= t``, and a one-frame clip is the first step of any clip starting with that frame.

    Args:
        channels: feature channels ``C`` (384 for DINO ViT-S/16 keys).
        hidden: LSTM hidden size; ``None`` uses ``channels``.
        residual: add the input to the projected LSTM output.
        num_layers: stacked LSTM layers.
        init_cfg: MMEngine initialisation config (PyTorch defaults when None).
    """

    def __init__(
        self,
        channels: int,
        hidden: Optional[int] = None,
        residual: bool = True,
        num_layers: int = 1,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden = channels if hidden is None else hidden
        if channels < 1 or hidden < 1 or num_layers < 1:
            raise ValueError(
                f'LSTMTemporalAggregator: channels, hidden and num_layers must be >= 1, got '
                f'{channels}, {hidden}, {num_layers}.'
            )
        self.channels = channels
        self.hidden = hidden
        self.residual = residual
        self.lstm = nn.LSTM(channels, hidden, num_layers=num_layers, batch_first=True)
        self.proj = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        """Temporally contextualised per-frame features, same shape as ``x`` ``(B, T, C, h, w)``."""
        shape = _check_clip(self, x, self.channels)
        seq = _to_sequences(x)
        out, _ = self.lstm(seq)
        out = self.proj(out)
        if self.residual:
            out = out + seq
        return _from_sequences(out, shape)


@MODELS.register_module()
class TemporalAttentionAggregator(BaseModule):
    """Self-attention over the frames at every spatial location: ``(B, T, C, h, w) -> (B, T, C, h, w)``.

    Pre-norm multi-head attention (``LayerNorm`` -> ``nn.MultiheadAttention``) over the ``T`` frames of each
    of the ``B * h * w`` location sequences, with a learned temporal position embedding (so frame order
    matters; without it the module is permutation-equivariant over frames) and a residual connection.

    Args:
        channels: feature channels ``C``; must be divisible by ``num_heads``.
        num_heads: attention heads.
        residual: add the input to the attention output.
        pos_embed: learn a temporal position embedding of ``max_frames`` steps.
        max_frames: longest clip the position embedding covers.
        dropout: attention dropout.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 8,
        residual: bool = True,
        pos_embed: bool = True,
        max_frames: int = 64,
        dropout: float = 0.0,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_heads < 1 or channels % num_heads:
            raise ValueError(
                f'TemporalAttentionAggregator: channels ({channels}) must be divisible by num_heads ({num_heads}).'
            )
        self.channels = channels
        self.residual = residual
        self.max_frames = max_frames
        self.norm = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, num_heads, dropout=dropout, batch_first=True)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_frames, channels)) if pos_embed else None
        if self.pos_embed is not None:
            trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        """Temporally contextualised per-frame features, same shape as ``x`` ``(B, T, C, h, w)``."""
        shape = _check_clip(self, x, self.channels)
        t = shape[1]
        if self.pos_embed is not None and t > self.max_frames:
            raise ValueError(
                f'TemporalAttentionAggregator: clip of {t} frames exceeds max_frames='
                f'{self.max_frames}; raise max_frames in model.temporal.'
            )
        seq = _to_sequences(x)
        q = self.norm(seq)
        if self.pos_embed is not None:
            q = q + self.pos_embed[:, :t]
        out, _ = self.attn(q, q, q, need_weights=False)
        if self.residual:
            out = out + seq
        return _from_sequences(out, shape)
