"""MMEngine metrics of looptrans (registered in ``mmseg.registry.METRICS``)."""

from .affordance_metric import AffordanceMetric

__all__ = ['AffordanceMetric']
