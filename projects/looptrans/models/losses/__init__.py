# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Losses of LoopTrans (registered in ``mmseg.registry.MODELS``); the pixel head's dice is mmseg's own
``DiceLoss``."""

from .correlation_loss import AffordanceCorrelationLoss
from .distillation_loss import DenoisingDistillationLoss
from .mse_loss import MapMSELoss

__all__ = ['AffordanceCorrelationLoss', 'DenoisingDistillationLoss', 'MapMSELoss']
