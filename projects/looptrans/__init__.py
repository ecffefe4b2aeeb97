"""LoopTrans: closed-loop transfer for weakly-supervised affordance grounding (ICCV 2025).

Importing this package registers every module in the mmseg registries (scope ``mmseg``) and makes
MMEngine's checkpoint loading safe under torch >= 2.6 (see :mod:`looptrans.utils.checkpoint`).
"""

from .utils import checkpoint as _checkpoint

_checkpoint.install()

from . import apis, datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__version__ = '0.1.0'
__all__ = ['__version__']
