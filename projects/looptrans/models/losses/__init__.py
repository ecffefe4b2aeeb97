# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Losses of LoopTrans and of the hosted LOCATE baseline (registered in ``mmseg.registry.MODELS``); the pixel
head's dice is mmseg's own ``DiceLoss``."""

from .correlation_loss import AffordanceCorrelationLoss
from .distillation_loss import DenoisingDistillationLoss
from .locate_losses import LOCATEConcentrationLoss, LOCATEPrototypeLoss
from .mse_loss import MapMSELoss

__all__ = [
    'AffordanceCorrelationLoss',
    'DenoisingDistillationLoss',
    'LOCATEConcentrationLoss',
    'LOCATEPrototypeLoss',
    'MapMSELoss',
]
