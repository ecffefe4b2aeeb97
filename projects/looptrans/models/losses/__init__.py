# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Losses of LoopTrans and of the hosted LOCATE baseline (registered in ``mmseg.registry.MODELS``); the pixel
head's dice is the published LoopTrans code's (:class:`MapDiceLoss`, real-data configs) or mmseg's own ``DiceLoss``
(generated-data configs)."""

from .correlation_loss import AffordanceCorrelationLoss, AffordanceMapCorrelationLoss
from .distillation_loss import DenoisingDistillationLoss
from .locate_losses import LOCATEConcentrationLoss, LOCATEPrototypeLoss
from .mse_loss import MAP_ACTIVATIONS, MapDiceLoss, MapMSELoss, activate_maps

__all__ = [
    'MAP_ACTIVATIONS',
    'AffordanceCorrelationLoss',
    'AffordanceMapCorrelationLoss',
    'DenoisingDistillationLoss',
    'LOCATEConcentrationLoss',
    'LOCATEPrototypeLoss',
    'MapDiceLoss',
    'MapMSELoss',
    'activate_maps',
]
