from .inference import AffordanceResult, inference_affordance, init_model, resolve_affordances

__all__ = ['AffordanceResult', 'inference_affordance', 'init_model', 'resolve_affordances']
