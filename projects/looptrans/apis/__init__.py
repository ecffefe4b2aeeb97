from .inference import (AffordanceResult, inference_affordance, init_model, load_image, resolve_affordances,
                        without_pretrained)

__all__ = [
    'AffordanceResult', 'inference_affordance', 'init_model', 'load_image', 'resolve_affordances',
    'without_pretrained'
]
