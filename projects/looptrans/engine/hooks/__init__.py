from .pseudo_mask_hook import PseudoMaskHook
from .visualization_hook import AffordanceVisualizationHook

__all__ = ['PseudoMaskHook', 'AffordanceVisualizationHook']
