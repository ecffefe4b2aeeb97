"""Affordance datasets, their transforms and the synthetic AGD20K generator."""
from .affordance_folder import AffordanceFolderDataset
from .checks import BadFileError, MissingFileError, check_tree
from .agd20k import AGD20K_SEEN_CLASSES, AGD20K_UNSEEN_CLASSES, AGD20KDataset
from .hico_iif import HICO_IIF_CLASSES, HICOIIFDataset
from .synthetic import (SYNTHETIC_SEEN_CLASSES, SYNTHETIC_UNSEEN_CLASSES,
                        SYNTHETIC_UNSEEN_TEST_OBJECTS,
                        generate_synthetic_agd20k)
from .transforms import (LoadAffordanceGT, LoadAffordanceViews,
                         MultiViewTransform, PackAffordanceInputs)
# Video benchmarks (OPRA, EPIC-Hotspots) and their synthetic generators.
from .epic_hotspots import CropEgoBox, EPICHotspotsDataset
from .hotspots_gt import HotspotsGTCache, points_to_heatmap
from .opra import HotspotsVideoDataset, OPRADataset
from .synthetic_video import (SYNTHETIC_EPIC_VERB_MAP, SYNTHETIC_OPRA_VERB_MAP,
                              generate_synthetic_epic, generate_synthetic_opra)

__all__ = [
    'AffordanceFolderDataset', 'AGD20KDataset', 'HICOIIFDataset',
    'AGD20K_SEEN_CLASSES', 'AGD20K_UNSEEN_CLASSES', 'HICO_IIF_CLASSES',
    'SYNTHETIC_SEEN_CLASSES', 'SYNTHETIC_UNSEEN_CLASSES',
    'SYNTHETIC_UNSEEN_TEST_OBJECTS', 'generate_synthetic_agd20k',
    'LoadAffordanceViews', 'LoadAffordanceGT', 'MultiViewTransform',
    'PackAffordanceInputs', 'BadFileError', 'MissingFileError', 'check_tree',
    'HotspotsVideoDataset', 'OPRADataset', 'EPICHotspotsDataset', 'CropEgoBox',
    'HotspotsGTCache', 'points_to_heatmap', 'SYNTHETIC_OPRA_VERB_MAP',
    'SYNTHETIC_EPIC_VERB_MAP', 'generate_synthetic_opra', 'generate_synthetic_epic'
]
