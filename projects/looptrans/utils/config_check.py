"""Typos in top-level config keys: a warning naming the closest known key.

MMEngine's ``Runner.from_cfg`` reads a fixed set of top-level keys (its ``__init__`` arguments and a few
more) and ignores every other one without a word, so ``--cfg-options trian_cfg.max_iters=2`` trains the full
schedule. Other top-level keys are legitimate in a config *file*: they are variables of the file or of its
``_base_`` files (``data_root``, ``num_classes``, ``dataset_type``, ``train_pipeline`` ...) that other
entries use. Two rules follow:

* a key **given on the command line** that the Runner does not read has no effect, because a config's
  variables were substituted when the file was read: either it is a typo (``trian_cfg``: not in the config)
  or an override of a variable (``data_root``) that should target the fields using it;
* a key **in the config file** whose name is one edit away from a Runner key (``trian_cfg``,
  ``defualt_hooks``) is almost surely a typo; other unknown keys are the file's own variables.

Both are warnings (:func:`check_top_level_keys`), never errors: a plug-in may read its own top-level keys.
The same holds for a key set in code after ``Config.fromfile`` (``cfg.trian_cfg = ...`` or
``cfg.data_root = ...`` in a notebook): :func:`check_runner_config` finds such keys by reading the config
file again, and ``ConfigKeyCheckHook`` runs it inside the Runner, so ``Runner.from_cfg(cfg)`` gets the
warnings as the tools do. Unknown keys inside ``model.train_cfg`` / ``model.test_cfg`` are checked in the
segmentor.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

#: Top-level keys read by ``Runner.from_cfg`` / the tools besides ``Runner.__init__``'s arguments.
EXTRA_RUNTIME_KEYS = frozenset(
    {
        '_base_',
        'custom_imports',
        'model_wrapper_cfg',
        'compile',
        'runner_type',
        'launcher',
        'work_dir',
        'load_from',
        'resume',
        'env_cfg',
        'log_processor',
        'log_level',
        'visualizer',
        'default_scope',
        'randomness',
        'experiment_name',
        'auto_scale_lr',
        'cfg',
    }
)

#: difflib ratio above which a config-file key is reported as a probable typo of a Runner key.
TYPO_CUTOFF = 0.8


def runner_keys() -> Set[str]:
    """The top-level keys MMEngine's Runner reads: its ``__init__`` arguments plus :data:`EXTRA_RUNTIME_KEYS`."""
    from mmengine.runner import Runner

    params = inspect.signature(Runner.__init__).parameters
    return {name for name in params if name != 'self'} | set(EXTRA_RUNTIME_KEYS)


def closest_key(key: str, known: Iterable[str], cutoff: float = 0.6) -> Optional[str]:
    """The known key most similar to ``key`` (``difflib``), or None below ``cutoff``."""
    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=cutoff)
    return matches[0] if matches else None


#: How :func:`check_top_level_keys` names a key that was set after the config file was read.
CLI_ORIGIN = '--cfg-options'
CODE_ORIGIN = 'set after the config file was read: by --cfg-options, or in code as `cfg.{key} = ...`'


def check_top_level_keys(
    cfg: Config,
    cli_options: Optional[dict] = None,
    file_keys: Optional[Iterable[str]] = None,
    log: bool = True,
    origin: str = CLI_ORIGIN,
) -> List[str]:
    """Warn about top-level keys that are probably typos; return the warnings.

    Args:
        cfg: the config after ``--cfg-options`` were merged.
        cli_options: the ``--cfg-options`` dict (``DictAction``), whose first dotted component is a top-level
            key; None when there were none.
        file_keys: the top-level keys of the config as read from the file(s), before the command-line
            overrides (default: those of ``cfg`` less the command-line keys).
        log: also log each warning (``print_log``, WARNING).
        origin: how the keys of ``cli_options`` were set, for the messages: :data:`CLI_ORIGIN` or
            :data:`CODE_ORIGIN` (``{key}`` is filled in).
    """
    known = runner_keys()
    cli_top = sorted({str(k).split('.', 1)[0] for k in (cli_options or {})})
    if file_keys is None:
        file_keys = [k for k in cfg.keys() if k not in cli_top]
    file_keys = set(file_keys)
    warnings: List[str] = []
    for key in cli_top:
        if key in known:
            continue
        where = f'{origin} {key}=...' if origin == CLI_ORIGIN else f'`{key}` ({origin.format(key=key)})'
        if key in file_keys:
            warnings.append(
                f'{where}: `{key}` is a variable of the config file, not a key the Runner reads; '
                'variables are substituted when the file is read, so overriding it here changes nothing. '
                f'Override the fields that use it instead (e.g. train_dataloader.dataset.{key}=... when it '
                'is a dataset setting).'
            )
            continue
        hint = closest_key(key, known | file_keys)
        warnings.append(
            f'{where}: unknown top-level key `{key}`; the Runner does not read it, so this '
            'override has no effect.' + (f' Did you mean `{hint}`?' if hint else '')
        )
    for key in sorted(file_keys - known):
        hint = closest_key(key, known, TYPO_CUTOFF)
        if hint is not None:
            source = f' in {cfg.filename!r}' if getattr(cfg, 'filename', None) else ''
            warnings.append(
                f'top-level key `{key}`{source} is not read by the Runner; did you mean `{hint}`? (As '
                f'written, `{key}` is ignored.)'
            )
    if log:
        for message in warnings:
            print_log(message, logger='current', level=logging.WARNING)
    return warnings


def keys_set_after_loading(cfg: Config) -> Optional[Tuple[Dict[str, Any], List[str]]]:
    """The top-level keys of ``cfg`` that differ from its file, and the file's keys; None without a file.

    The file (``cfg.filename``) is read again: a key it does not have, or a key the Runner does not read
    whose value differs from the file's, was set afterwards (``--cfg-options``, ``merge_from_dict`` or an
    assignment in code). Keys the Runner reads are not compared: changing those is what overrides are for.
    """
    filename = getattr(cfg, 'filename', None)
    if not filename or not osp.isfile(filename):
        return None
    original = Config.fromfile(filename)
    file_keys = list(original.keys())
    known = runner_keys()
    later = {
        key: cfg[key] for key in cfg.keys() if key not in original or (key not in known and cfg[key] != original[key])
    }
    return later, file_keys


def check_runner_config(cfg: Config, log: bool = True) -> List[str]:
    """:func:`check_top_level_keys` for the config a Runner was built from (``ConfigKeyCheckHook``).

    Keys set after the file was read (:func:`keys_set_after_loading`) are reported as overrides that have no
    effect; keys of the file as probable typos. A config built from a dict (no file) gets the typo check only.
    """
    found = keys_set_after_loading(cfg)
    if found is None:
        return check_top_level_keys(cfg, log=log)
    later, file_keys = found
    return check_top_level_keys(cfg, later, file_keys, log=log, origin=CODE_ORIGIN)


class ConfigOptionError(ValueError):
    """A ``--cfg-options`` value that cannot be what the config expects there (the message names the key)."""


_MISSING = object()


def _config_value(cfg: Config, dotted: str) -> Any:
    """The value at ``a.b.c`` of ``cfg`` (list indices as numbers), or :data:`_MISSING`."""
    node: Any = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for part in dotted.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def check_option_types(cfg: Config, cli_options: Optional[dict]) -> None:
    """Refuse a ``--cfg-options`` text where the config holds a number or a boolean.

    ``DictAction`` keeps a value it cannot read as a number as text, so ``train_cfg.max_iters=abc`` used to
    fail later with ``invalid literal for int()``, naming neither the key nor the option.

    Raises:
        ConfigOptionError: naming the key, the value given and the type (and value) the config has there.
    """
    problems = []
    for key, value in (cli_options or {}).items():
        current = _config_value(cfg, str(key))
        if current is _MISSING or current is None or not isinstance(value, str):
            continue
        if isinstance(current, bool):
            kind = 'True or False'
        elif isinstance(current, int):
            kind = 'an integer'
        elif isinstance(current, float):
            kind = 'a number'
        else:
            continue
        problems.append(f'--cfg-options {key}={value}: expected {kind} (the config has {current!r}), got {value!r}')
    if problems:
        raise ConfigOptionError('; '.join(problems))


def load_tool_config(
    config: str,
    cfg_options: Optional[dict] = None,
    launcher: str = 'none',
    work_dir: Optional[str] = None,
    check_keys: bool = True,
) -> Config:
    """The config as the tools start from it (as mmseg's tools do): the file, ``cfg_options`` merged
    (``--cfg-options``; value types checked by :func:`check_option_types`, top-level keys by
    :func:`check_top_level_keys` when ``check_keys``), ``launcher`` set, and ``work_dir`` from the command
    line, else the config's, else ``./work_dirs/<config name>`` (``~`` expanded: a quoted ``'~/runs'`` is the
    home folder, not a folder named ``~``).

    ``tools/train.py`` and ``tools/test.py`` pass ``check_keys=False``: the Runner they build checks the keys
    itself (``ConfigKeyCheckHook``), and each typo is reported once.

    Raises:
        FileNotFoundError: ``config`` is not a file (the message names it).
        ConfigOptionError: a ``--cfg-options`` value of the wrong type.
    """
    config = osp.expanduser(config)
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist')
    cfg = Config.fromfile(config)
    file_keys = list(cfg.keys())
    check_option_types(cfg, cfg_options)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if check_keys:
        check_top_level_keys(cfg, cfg_options, file_keys)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    cfg.work_dir = osp.expanduser(cfg.work_dir)
    return cfg


def innermost_dataset(dataset: Optional[dict]) -> Optional[dict]:
    """The dataset config inside dataset wrappers (``ConcatDataset`` / ``RepeatDataset``-style ``dataset=...``): the
    first one with a ``data_root``, else the innermost; None for None."""
    while isinstance(dataset, dict) and 'data_root' not in dataset and isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    return dataset
