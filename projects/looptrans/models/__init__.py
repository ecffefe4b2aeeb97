from . import backbones, data_preprocessors, heads, losses, necks, segmentors  # noqa: F401
from . import part_discovery  # noqa: F401
