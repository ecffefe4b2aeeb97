from .atomic_backend import AtomicLocalBackend, atomic_write_bytes
from .checkpoint import (UnsafeCheckpointError, allowed_checkpoint_globals, register_safe_globals,
                         safe_torch_load)

__all__ = [
    'AtomicLocalBackend', 'atomic_write_bytes', 'UnsafeCheckpointError', 'allowed_checkpoint_globals',
    'register_safe_globals', 'safe_torch_load'
]
