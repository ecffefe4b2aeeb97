"""Affordance datasets and their transforms (the generated trees are in :mod:`looptrans.testing`)."""

from .affordance_folder import AffordanceFolderDataset
from .agd20k import AGD20K_SEEN_CLASSES, AGD20K_UNSEEN_CLASSES, AGD20KDataset

# Video benchmarks (OPRA, EPIC-Hotspots).
from .epic_hotspots import EPICHotspotsDataset
from .file_io import BadFileError, MissingFileError
from .hico_iif import HICO_IIF_CLASSES, HICOIIFDataset
from .hotspots_gt import HotspotsGTCache, points_to_heatmap
from .hotspots_video import HotspotsVideoDataset
from .opra import OPRADataset
from .transforms import (
    CropEgoBox,
    LoadAffordanceGT,
    LoadAffordanceViews,
    LoadEgoPartMask,
    MultiViewTransform,
    PackAffordanceInputs,
)

__all__ = [
    'AffordanceFolderDataset',
    'AGD20KDataset',
    'HICOIIFDataset',
    'AGD20K_SEEN_CLASSES',
    'AGD20K_UNSEEN_CLASSES',
    'HICO_IIF_CLASSES',
    'LoadAffordanceViews',
    'LoadAffordanceGT',
    'LoadEgoPartMask',
    'MultiViewTransform',
    'PackAffordanceInputs',
    'BadFileError',
    'MissingFileError',
    'HotspotsVideoDataset',
    'OPRADataset',
    'EPICHotspotsDataset',
    'CropEgoBox',
    'HotspotsGTCache',
    'points_to_heatmap',
]
