from .class_check_hook import ClassListCheckHook
from .pseudo_mask_hook import PseudoMaskHook
from .quiet_log_hook import QuietLogHook
from .visualization_hook import AffordanceVisualizationHook
from .world_size_hook import WorldSizeCheckHook

__all__ = ['ClassListCheckHook', 'PseudoMaskHook', 'QuietLogHook', 'AffordanceVisualizationHook', 'WorldSizeCheckHook']
