from .inference import (
    IMAGE_EXTENSIONS,
    SATURATION_LEVEL,
    AffordanceRegion,
    AffordanceResult,
    describe_heatmap,
    inference_affordance,
    init_model,
    load_image,
    model_warnings,
    resolve_affordances,
    without_pretrained,
)
from .norm_stats import norm_stats_state, reestimate_cam_norm_stats, view_training_images
from .pipeline import InferencePipeline, InferencePipelineError
from .serving import ImageFileInfo, inspect_image_file, overlay_picture, result_json

__all__ = [
    'AffordanceRegion',
    'AffordanceResult',
    'describe_heatmap',
    'inference_affordance',
    'InferencePipeline',
    'InferencePipelineError',
    'init_model',
    'load_image',
    'model_warnings',
    'norm_stats_state',
    'reestimate_cam_norm_stats',
    'resolve_affordances',
    'view_training_images',
    'without_pretrained',
    'IMAGE_EXTENSIONS',
    'SATURATION_LEVEL',
    'ImageFileInfo',
    'inspect_image_file',
    'overlay_picture',
    'result_json',
]
