"""The hooks that make a LoopTrans run safe, and the place they are registered: ``default_hooks``.

Every LoopTrans config registers :data:`RUN_CHECK_HOOKS` as entries of ``default_hooks``, so that a
``Runner`` built from it (``tools/train.py``, ``tools/test.py`` or ``Runner.from_cfg(cfg)`` in a notebook)
runs the same checks. ``default_hooks`` and not ``custom_hooks``: MMEngine's config inheritance *merges* a
child's ``default_hooks`` dict into its base's, but *replaces* a list, so a check placed in a base's
``custom_hooks`` would vanish from every child config that sets ``custom_hooks = [...]`` of its own (the
ablations set ``custom_hooks = []``). A child turns one off only by naming it
(``default_hooks = dict(class_lists=None)``), never by accident.
"""

from __future__ import annotations

from typing import Dict, List

from mmengine.config import Config

#: ``default_hooks`` entry name -> hook type: the checks every LoopTrans run gets.
RUN_CHECK_HOOKS: Dict[str, str] = {
    'quiet_log': 'QuietLogHook',  # MMEngine's notices that say nothing about a LoopTrans run dropped
    'config_keys': 'ConfigKeyCheckHook',  # top-level keys the Runner ignores named (typos, late overrides)
    'resume_check': 'ResumeCheckHook',  # resume=True: a checkpoint that exists; a finished run says so
    'class_lists': 'ClassListCheckHook',  # heads / datasets / checkpoint agree on the classes
    'world_size': 'WorldSizeCheckHook',  # a resume with another number of processes says so
}


def _hook_type(hook: object) -> str:
    hook_type = hook.get('type', '') if isinstance(hook, dict) else type(hook).__name__
    return str(getattr(hook_type, '__name__', hook_type)).split('.')[-1]


def missing_run_check_hooks(cfg: Config) -> List[str]:
    """The :data:`RUN_CHECK_HOOKS` entries that ``cfg`` neither registers (in ``default_hooks`` or as a hook
    of the same type in ``custom_hooks``) nor switches off by name (``default_hooks.<name> = None``)."""
    default_hooks = dict(cfg.get('default_hooks') or {})
    custom_types = {_hook_type(hook) for hook in cfg.get('custom_hooks') or []}
    registered = {_hook_type(hook) for hook in default_hooks.values() if hook is not None} | custom_types
    return [
        name for name, hook_type in RUN_CHECK_HOOKS.items() if name not in default_hooks and hook_type not in registered
    ]


def add_run_check_hooks(cfg: Config) -> List[str]:
    """Register the :data:`RUN_CHECK_HOOKS` that ``cfg`` lacks (:func:`missing_run_check_hooks`) in its
    ``default_hooks``; return their entry names.

    For a config of one's own that does not inherit them from the LoopTrans bases; an entry switched off by
    name stays off.
    """
    missing = missing_run_check_hooks(cfg)
    if missing:
        default_hooks = dict(cfg.get('default_hooks') or {})
        default_hooks.update({name: dict(type=RUN_CHECK_HOOKS[name]) for name in missing})
        cfg.default_hooks = default_hooks
    return missing
