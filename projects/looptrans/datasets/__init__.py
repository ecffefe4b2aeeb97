"""Affordance datasets, their transforms and the synthetic AGD20K generator."""
from .affordance_folder import AffordanceFolderDataset
from .agd20k import AGD20K_SEEN_CLASSES, AGD20K_UNSEEN_CLASSES, AGD20KDataset
from .hico_iif import HICO_IIF_CLASSES, HICOIIFDataset
from .synthetic import (SYNTHETIC_SEEN_CLASSES, SYNTHETIC_UNSEEN_CLASSES,
                        SYNTHETIC_UNSEEN_TEST_OBJECTS,
                        generate_synthetic_agd20k)
from .transforms import (LoadAffordanceGT, LoadAffordanceViews,
                         MultiViewTransform, PackAffordanceInputs)

__all__ = [
    'AffordanceFolderDataset', 'AGD20KDataset', 'HICOIIFDataset',
    'AGD20K_SEEN_CLASSES', 'AGD20K_UNSEEN_CLASSES', 'HICO_IIF_CLASSES',
    'SYNTHETIC_SEEN_CLASSES', 'SYNTHETIC_UNSEEN_CLASSES',
    'SYNTHETIC_UNSEEN_TEST_OBJECTS', 'generate_synthetic_agd20k',
    'LoadAffordanceViews', 'LoadAffordanceGT', 'MultiViewTransform',
    'PackAffordanceInputs'
]
