"""Transforms for multi-view (egocentric + exocentric) affordance samples."""

from .crop import CropEgoBox
from .formatting import PackAffordanceInputs
from .loading import LoadAffordanceGT, LoadAffordanceViews
from .multi_view import MultiViewTransform
from .resize import ResizeShortEdge

__all__ = [
    'LoadAffordanceViews',
    'LoadAffordanceGT',
    'MultiViewTransform',
    'PackAffordanceInputs',
    'ResizeShortEdge',
    'CropEgoBox',
]
