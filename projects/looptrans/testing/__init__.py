"""Generated data for the tests, the quick start and CPU checks, beside (not inside) the runtime package.

``import looptrans`` does not import this package. A config that trains on the generated trees imports it
through MMEngine's ``custom_imports`` (``configs/looptrans_synthetic.py``), which registers
:class:`SyntheticAGD20KDataset`; tests and ``tools/misc/generate_synthetic_*.py`` import the generators.

* :mod:`.synthetic_agd20k`: a small AGD20K-layout tree with a learnable signal (Seen and Unseen splits);
* :mod:`.synthetic_video`: small OPRA and EPIC-Hotspots trees in the Interaction Hotspots formats.

The class tuples below are the one place where the generated class lists are written down.
"""

from .synthetic_agd20k import (
    AFFORDANCE_PARTS,
    EXO_MASK_DIR,
    OBJECT_MASK_DIR,
    PART_MASK_DIR,
    SYNTHETIC_SEEN_CLASSES,
    SYNTHETIC_UNSEEN_CLASSES,
    SYNTHETIC_UNSEEN_TEST_OBJECTS,
    TEST_MASK_DIR,
    SyntheticAGD20KDataset,
    generate_synthetic_agd20k,
)
from .synthetic_video import (
    SYNTHETIC_EPIC_VERB_MAP,
    SYNTHETIC_EPIC_VERBS,
    SYNTHETIC_NOUNS,
    SYNTHETIC_OPRA_VERB_MAP,
    SYNTHETIC_OPRA_VERBS,
    generate_synthetic_epic,
    generate_synthetic_opra,
    generate_synthetic_video,
)

__all__ = [
    'AFFORDANCE_PARTS',
    'EXO_MASK_DIR',
    'OBJECT_MASK_DIR',
    'PART_MASK_DIR',
    'SYNTHETIC_SEEN_CLASSES',
    'SYNTHETIC_UNSEEN_CLASSES',
    'SYNTHETIC_UNSEEN_TEST_OBJECTS',
    'TEST_MASK_DIR',
    'SyntheticAGD20KDataset',
    'generate_synthetic_agd20k',
    'SYNTHETIC_EPIC_VERB_MAP',
    'SYNTHETIC_EPIC_VERBS',
    'SYNTHETIC_NOUNS',
    'SYNTHETIC_OPRA_VERB_MAP',
    'SYNTHETIC_OPRA_VERBS',
    'generate_synthetic_epic',
    'generate_synthetic_opra',
    'generate_synthetic_video',
]
