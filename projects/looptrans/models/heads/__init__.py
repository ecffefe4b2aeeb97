# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Heads of LoopTrans (registered in ``mmseg.registry.MODELS``)."""

from .noise_head import NoiseHead
from .pixel_affordance_head import PixelAffordanceHead
from .shared_cam_head import SharedCAMHead, TokenMLP, ViewCAMs
from .utils import labels_of, masked_average_pool, select_class_maps

__all__ = [
    'NoiseHead',
    'PixelAffordanceHead',
    'SharedCAMHead',
    'TokenMLP',
    'ViewCAMs',
    'labels_of',
    'masked_average_pool',
    'select_class_maps',
]
