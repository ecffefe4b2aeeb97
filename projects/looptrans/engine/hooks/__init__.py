from .class_check_hook import ClassListCheckHook
from .config_check_hook import ConfigKeyCheckHook
from .pseudo_mask_hook import PseudoMaskHook
from .quiet_log_hook import QuietLogHook
from .resume_check_hook import ResumeCheckHook
from .run_checks import RUN_CHECK_HOOKS, add_run_check_hooks, missing_run_check_hooks
from .visualization_hook import AffordanceVisualizationHook
from .world_size_hook import WorldSizeCheckHook

__all__ = [
    'ClassListCheckHook',
    'ConfigKeyCheckHook',
    'PseudoMaskHook',
    'QuietLogHook',
    'ResumeCheckHook',
    'AffordanceVisualizationHook',
    'WorldSizeCheckHook',
    'RUN_CHECK_HOOKS',
    'add_run_check_hooks',
    'missing_run_check_hooks',
]
