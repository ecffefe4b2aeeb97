"""Shared fixtures: a tiny generated AGD20K tree and config overrides that make runs take seconds."""

import importlib.util
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, List, Optional, Sequence

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Threads per test process: the cores shared out among pytest-xdist's workers (``-n``, setup.cfg), so that two
#: workers each running a tool do not each start two OpenMP threads on a 2-core machine (oversubscribed torch
#: is several times slower). Subprocesses get it as OMP_NUM_THREADS (:func:`tool_env`).
THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')))
QUICK_CONFIG = osp.join(REPO, 'configs', 'looptrans_synthetic.py')
#: Config options that shrink the quick config's model (1 ViT block, narrow heads): seconds on a CPU.
TINY_MODEL = {
    'model.backbone.arch.num_layers': 1,
    'model.cam_head.channels': 32,
    'model.noise_head.channels': 32,
    'model.pixel_head.channels': 32,  # = the CAM head's: the pixel decoder ends in its classifier
}


def build_tiny_looptrans(num_classes: int = 4, **model: dict):
    """A LoopTrans built in memory (mmseg scope): a random 2-block DINO ViT, narrow CAM and pixel heads;
    ``model`` adds or replaces top-level keys of the model dict (e.g. ``part_discovery=dict(...)``)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    tiny = dict(embed_dims=384, num_layers=2, num_heads=6, feedforward_channels=384)
    cfg = dict(
        type='LoopTrans',
        data_preprocessor=dict(type='AffordanceDataPreprocessor'),
        backbone=dict(type='DINOVisionTransformer', arch=tiny, patch_size=16, frozen=True),
        cam_head=dict(type='SharedCAMHead', in_channels=384, channels=32, num_classes=num_classes),
        pixel_head=dict(type='PixelAffordanceHead', in_channels=384, channels=16, num_classes=num_classes),
    )
    return MODELS.build({**cfg, **model})


def load_tool(*parts: str):
    """Import ``tools/<parts...>`` (a script, not a module of a package) and return it as a module."""
    path = osp.join(REPO, 'tools', *parts)
    spec = importlib.util.spec_from_file_location(f'tool_{osp.splitext(parts[-1])[0]}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """A small synthetic AGD20K tree (Seen and Unseen), generated once per test session."""
    from looptrans.testing import generate_synthetic_agd20k

    root = str(tmp_path_factory.mktemp('synthetic_agd20k'))
    generate_synthetic_agd20k(root, seed=0, num_exo=3, num_ego=1, num_test=1)
    return root


@pytest.fixture(scope='session')
def seen_tree(tmp_path_factory) -> str:
    """The smallest generated Seen tree (one image per view and pair) with its part and test masks, generated once
    per test session; the tests that use it only read it."""
    from looptrans.testing import generate_synthetic_agd20k

    root = str(tmp_path_factory.mktemp('seen_tree'))
    generate_synthetic_agd20k(root, seed=0, num_exo=1, num_ego=1, num_test=1, splits=['Seen'])
    return root


def tiny_options(data_root: str, max_iters: int = 4, ckpt_interval: int = 2) -> List[str]:
    """``--cfg-options`` that shrink the quick config to a seconds-long CPU run on ``data_root``."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.batch_size=4',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.batch_size=4',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        *[f'{k}={v}' for k, v in TINY_MODEL.items()],
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        f'default_hooks.checkpoint.interval={ckpt_interval}',
        'default_hooks.checkpoint.max_keep_ckpts=10',
        'default_hooks.logger.interval=1',
    ]


def tool_env(**extra: str) -> dict:
    """The environment of a tool run by a test: this one, unbuffered, :data:`THREADS` OpenMP threads."""
    return dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS=str(THREADS), **extra)


@pytest.fixture(scope='session', autouse=True)
def _share_the_cores():
    """In-process torch of this worker uses :data:`THREADS` threads (see there)."""
    import torch

    torch.set_num_threads(THREADS)


@pytest.fixture(autouse=True)
def _no_mmengine_logger_writes_to_a_closed_capture():
    """Point MMEngine's console handlers back at the live stream when a test's capture closes under them.

    ``MMLogger`` binds its console handler to the ``sys.stdout`` of the moment it is created. A logger first
    created inside a test that uses ``capsys`` keeps that test's capture buffer, which pytest closes when the test
    ends; every later ``print_log(logger='current')`` in the same worker then prints a "--- Logging error ---"
    traceback into whatever the later test captures. Not a defect of the code under test (a real process has
    one stdout), but it makes a later test's output depend on which tests ran before it in the worker.
    """
    yield
    import logging

    from mmengine.logging import MMLogger

    for logger in list(MMLogger._instance_dict.values()):
        for handler in logger.handlers:
            stream = getattr(handler, 'stream', None)
            if type(handler) is logging.StreamHandler and stream is not None and getattr(stream, 'closed', False):
                handler.stream = sys.stdout  # not setStream: it flushes the closed stream first


@pytest.fixture
def mmengine_log():
    """The messages (any level) that MMEngine's current logger emits during the test, through the real logger
    (a stub would hide a logging call that raises, e.g. a level given as text)."""
    import logging

    from mmengine.logging import MMLogger

    messages: List[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Collect()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def run_tool(args: List[str], cwd: str = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repo root; fail the test with the output if it fails."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(
            f'`python {" ".join(args)}` failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}'
        )
    return proc


def save_tiny_checkpoint(
    path: str,
    cfg_options: Optional[dict] = None,
    classes: Optional[Sequence[str]] = None,
    prepare: Optional[Callable] = None,
) -> str:
    """Save a checkpoint of the tiny quick-config model (:data:`TINY_MODEL` + ``cfg_options``, seed 0) as
    MMEngine writes it, with ``meta.dataset_meta.classes`` (default: the generated Seen classes);
    ``prepare(model)`` may change the weights first."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from looptrans.apis import without_pretrained
    from looptrans.testing import SYNTHETIC_SEEN_CLASSES

    cfg = Config.fromfile(QUICK_CONFIG)
    cfg.merge_from_dict({**TINY_MODEL, **(cfg_options or {})})
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(without_pretrained(cfg.model))
    if prepare is not None:
        prepare(model)
    classes = tuple(SYNTHETIC_SEEN_CLASSES if classes is None else classes)
    torch.save(dict(meta=dict(dataset_meta=dict(classes=classes)), state_dict=model.state_dict()), path)
    return str(path)
