"""Transforms for multi-view (egocentric + exocentric) affordance samples."""

from .crop import CropEgoBox
from .formatting import PackAffordanceInputs
from .loading import LoadAffordanceGT, LoadAffordanceViews, LoadEgoPartMask
from .multi_view import MultiViewTransform
from .resize import ResizeShortEdge

__all__ = [
    'LoadAffordanceViews',
    'LoadAffordanceGT',
    'LoadEgoPartMask',
    'MultiViewTransform',
    'PackAffordanceInputs',
    'ResizeShortEdge',
    'CropEgoBox',
]
