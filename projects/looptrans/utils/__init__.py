from .atomic_backend import AtomicLocalBackend, atomic_write_bytes, remove_stale_temp_files
from .checkpoint import (
    BrokenCheckpointError,
    UnsafeCheckpointError,
    allowed_checkpoint_globals,
    install_safe_checkpoint_loading,
    register_safe_globals,
    safe_torch_load,
)
from .class_lists import (
    CheckpointMismatchError,
    ClassListMismatchError,
    check_checkpoint_fits,
    check_class_lists,
    check_head_classes,
    checkpoint_classes,
    load_checkpoint_strictly,
)
from .config_check import check_runner_config, check_top_level_keys
from .messages import preview
from .paths import UnwritableDirError, WorkDirBusyError, ensure_writable_dir, lock_work_dir
from .resume import TrainingFinishedError, find_resume_checkpoint, finished_message, resolve_resume

__all__ = [
    'AtomicLocalBackend',
    'atomic_write_bytes',
    'remove_stale_temp_files',
    'BrokenCheckpointError',
    'UnsafeCheckpointError',
    'allowed_checkpoint_globals',
    'install_safe_checkpoint_loading',
    'register_safe_globals',
    'safe_torch_load',
    'CheckpointMismatchError',
    'ClassListMismatchError',
    'check_checkpoint_fits',
    'check_class_lists',
    'check_head_classes',
    'checkpoint_classes',
    'load_checkpoint_strictly',
    'check_runner_config',
    'check_top_level_keys',
    'UnwritableDirError',
    'WorkDirBusyError',
    'lock_work_dir',
    'ensure_writable_dir',
    'find_resume_checkpoint',
    'finished_message',
    'resolve_resume',
    'TrainingFinishedError',
    'preview',
]
