# Copyright (c) looptrans authors. Licensed under the Apache License 2.0.
"""Losses of LoopTrans (registered in ``mmseg.registry.MODELS``)."""
from .correlation_loss import AffordanceCorrelationLoss
from .dice_loss import SoftDiceLoss
from .distillation_loss import DenoisingDistillationLoss
from .utils import weighted_sample_mean

__all__ = [
    'AffordanceCorrelationLoss', 'DenoisingDistillationLoss', 'SoftDiceLoss',
    'weighted_sample_mean'
]
