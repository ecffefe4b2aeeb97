# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Necks of LoopTrans (registered in ``mmseg.registry.MODELS``): temporal aggregation of clip features."""

from .temporal import LSTMTemporalAggregator, TemporalAttentionAggregator

__all__ = ['LSTMTemporalAggregator', 'TemporalAttentionAggregator']
