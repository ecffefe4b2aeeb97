from . import (  # noqa: F401
    backbones,
    data_preprocessors,
    heads,
    initializers,
    losses,
    necks,
    part_discovery,  # noqa: F401
    segmentors,
)
