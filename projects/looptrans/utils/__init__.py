from .checkpoint import (UnsafeCheckpointError, allowed_checkpoint_globals, register_safe_globals,
                         safe_torch_load)

__all__ = [
    'UnsafeCheckpointError', 'allowed_checkpoint_globals', 'register_safe_globals', 'safe_torch_load'
]
