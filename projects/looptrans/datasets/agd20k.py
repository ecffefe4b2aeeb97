"""AGD20K (Luo et al., CVPR 2022) in its published folder layout."""

from typing import Optional, Tuple

from mmseg.registry import DATASETS

from .affordance_folder import AffordanceFolderDataset

AGD20K_SEEN_CLASSES: Tuple[str, ...] = (
    'beat',
    'boxing',
    'brush_with',
    'carry',
    'catch',
    'cut',
    'cut_with',
    'drag',
    'drink_with',
    'eat',
    'hit',
    'hold',
    'jump',
    'kick',
    'lie_on',
    'lift',
    'look_out',
    'open',
    'pack',
    'peel',
    'pick_up',
    'pour',
    'push',
    'ride',
    'sip',
    'sit_on',
    'stick',
    'stir',
    'swing',
    'take_photo',
    'talk_on',
    'text_on',
    'throw',
    'type_on',
    'wash',
    'write',
)

AGD20K_UNSEEN_CLASSES: Tuple[str, ...] = (
    'carry',
    'catch',
    'cut',
    'cut_with',
    'drink_with',
    'eat',
    'hit',
    'hold',
    'jump',
    'kick',
    'lie_on',
    'open',
    'peel',
    'pick_up',
    'pour',
    'push',
    'ride',
    'sip',
    'sit_on',
    'stick',
    'swing',
    'take_photo',
    'throw',
    'type_on',
    'wash',
)


@DATASETS.register_module()
class AGD20KDataset(AffordanceFolderDataset):
    """AGD20K affordance grounding dataset (Seen / Unseen splits).

    Layout::

        <data_root>/<split>/trainset/{exocentric,egocentric}/<affordance>/<object>/*.jpg
        <data_root>/<split>/testset/egocentric/<affordance>/<object>/*.jpg
        <data_root>/<split>/testset/GT/<affordance>/<object>/<same stem>.png

    The default classes are the 36 Seen or 25 Unseen affordances
    (alphabetical, as published) chosen by ``split``; ``metainfo=dict(
    classes=(...))`` overrides them (e.g. for a split folder with another
    name). See :class:`AffordanceFolderDataset`
    for the arguments and the training sampling.

    Example:
        >>> ds = AGD20KDataset('data/AGD20K', split='Seen', mode='test')
        >>> ds[0]['data_samples'].affordance  # doctest: +SKIP
    """

    METAINFO = dict(classes=AGD20K_SEEN_CLASSES)
    SPLIT_CLASSES = dict(Seen=AGD20K_SEEN_CLASSES, Unseen=AGD20K_UNSEEN_CLASSES)
    LAYOUT_NAME = 'AGD20K'

    def __init__(self, data_root: str, split: str = 'Seen', **kwargs) -> None:
        if not split:
            raise ValueError('AGD20KDataset: `split` is required ("Seen" or "Unseen"; the folder under data_root).')
        super().__init__(data_root=data_root, split=split, **kwargs)

    @classmethod
    def default_classes(cls, split: Optional[str]) -> Tuple[str, ...]:
        """The published class list of ``split``."""
        if split not in cls.SPLIT_CLASSES:
            raise ValueError(
                f'{cls.__name__}: no default class list for split={split!r}; '
                f'use one of {sorted(cls.SPLIT_CLASSES)} or pass '
                'metainfo=dict(classes=(...)).'
            )
        return cls.SPLIT_CLASSES[split]
