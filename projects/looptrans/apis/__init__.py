from .inference import (
    IMAGE_EXTENSIONS,
    AffordanceResult,
    inference_affordance,
    init_model,
    load_image,
    resolve_affordances,
    without_pretrained,
)

__all__ = [
    'AffordanceResult',
    'inference_affordance',
    'init_model',
    'load_image',
    'resolve_affordances',
    'without_pretrained',
    'IMAGE_EXTENSIONS',
]
