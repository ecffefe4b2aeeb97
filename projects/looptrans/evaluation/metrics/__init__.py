"""MMEngine metrics of looptrans (registered in ``mmseg.registry.METRICS``)."""

from .affordance_metric import AffordanceMetric
from .dump_results import AtomicDumpResults

__all__ = ['AffordanceMetric', 'AtomicDumpResults']
