"""LoopTrans: closed-loop transfer for weakly-supervised affordance grounding (ICCV 2025).

Importing this package registers every module in the mmseg registries (scope ``mmseg``) and installs safe
checkpoint loading for MMEngine (below).
"""

from .utils.checkpoint import install_safe_checkpoint_loading

# MMEngine 0.10 cannot load its own checkpoints under torch >= 2.6 (weights_only=True). This routes MMEngine's
# checkpoint loading through torch.load(weights_only=True) with an allow-list of exactly the types MMEngine
# writes: never a full unpickle. It patches MMEngine for this process (what and why: the function's docstring
# and docs/reliability.md, "Safe checkpoint loading"). Idempotent; nothing else in the package patches MMEngine.
install_safe_checkpoint_loading()

from . import apis, datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__version__ = '0.1.0'
__all__ = ['__version__', 'install_safe_checkpoint_loading']
