"""HICO-IIF (Xu et al., WSMA, AAAI 2024) in the AGD20K folder layout."""

from typing import Optional, Tuple

from mmseg.registry import DATASETS

from .affordance_folder import AffordanceFolderDataset

HICO_IIF_CLASSES: Tuple[str, ...] = (
    'cut_with',
    'drink_with',
    'hold',
    'open',
    'pour',
    'sip',
    'stick',
    'stir',
    'swing',
    'type_on',
)


@DATASETS.register_module()
class HICOIIFDataset(AffordanceFolderDataset):
    """HICO-IIF affordance grounding dataset, 10 affordances.

    The published release has no Seen/Unseen level: ``trainset/`` and
    ``testset/`` sit directly under the dataset folder, so ``split`` defaults
    to ``None``::

        <data_root>/trainset/{exocentric,egocentric}/<affordance>/<object>/*.jpg
        <data_root>/testset/egocentric/<affordance>/<object>/*.jpg
        <data_root>/testset/GT/<affordance>/<object>/<same stem>.png

    Set ``split`` when the tree is nested one level deeper. See
    :class:`AffordanceFolderDataset` for the other arguments.
    """

    METAINFO = dict(classes=HICO_IIF_CLASSES)
    LAYOUT_NAME = 'HICO-IIF'

    def __init__(self, data_root: str, split: Optional[str] = None, **kwargs) -> None:
        super().__init__(data_root=data_root, split=split, **kwargs)
