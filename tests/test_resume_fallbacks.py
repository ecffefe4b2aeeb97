"""--resume fallbacks, stale temporary files of interrupted saves, checkpoint permissions.

Before: ``last_checkpoint`` naming a deleted file was a ``FileNotFoundError``; ``--resume`` after a finished run
replayed every loader step before doing nothing; a SIGTERM during a save left its hidden ``.tmp`` file forever;
checkpoints were written ``-rw-------`` (mkstemp) instead of with the user's umask.
"""

import os
import os.path as osp
import re
import stat
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import QUICK_CONFIG, REPO, tiny_options, tool_env
from mmengine.runner import BaseLoop

from looptrans.engine.hooks import ResumeCheckHook
from looptrans.utils import (
    BrokenCheckpointError,
    TrainingFinishedError,
    atomic_write_bytes,
    find_resume_checkpoint,
    finished_message,
    remove_stale_temp_files,
    resolve_resume,
)


# ------------------------------------------------------------------ units
def _touch(path, data=b'x', age=0.0):
    with open(path, 'wb') as f:
        f.write(data)
    if age:
        t = time.time() - age
        os.utime(path, (t, t))


def test_deleted_last_checkpoint_falls_back_to_the_newest_existing(tmp_path):
    work = str(tmp_path)
    for n in (2, 4, 10):
        _touch(osp.join(work, f'iter_{n}.pth'), age=100 - n)
    _touch(osp.join(work, 'best_KLD_iter_4.pth'))  # newest by time, but not a numbered checkpoint
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'iter_12.pth'))  # deleted
    path, warnings = find_resume_checkpoint(work)
    assert path == osp.join(work, 'iter_10.pth')
    (warning,) = warnings
    assert 'iter_12.pth' in warning and 'does not exist' in warning and 'iter_10.pth' in warning


def test_resume_target_found_and_moved_work_dir(tmp_path):
    work = str(tmp_path)
    _touch(osp.join(work, 'iter_4.pth'))
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write('/somewhere/else/iter_4.pth')  # the work dir was moved: same name here
    assert find_resume_checkpoint(work) == (osp.join(work, 'iter_4.pth'), [])
    empty = str(tmp_path / 'empty')
    os.makedirs(empty)
    path, (warning,) = find_resume_checkpoint(empty)
    assert path is None and 'from scratch' in warning


def test_finished_message():
    iters = dict(type='IterBasedTrainLoop', max_iters=200)
    assert finished_message(dict(iter=199), iters, 'c.pth') is None
    message = finished_message(dict(iter=200), iters, 'c.pth')
    assert 'already finished' in message and 'train_cfg.max_iters=200' in message
    epochs = dict(type='EpochBasedTrainLoop', max_epochs=15)
    assert finished_message(dict(epoch=14, iter=9000), epochs, 'c.pth') is None
    assert 'max_epochs=15' in finished_message(dict(epoch=15, iter=9999), epochs, 'c.pth')


def _save(path, iteration):
    torch.save(dict(meta=dict(iter=iteration), state_dict={}), str(path))
    return str(path)


ITERS = dict(type='IterBasedTrainLoop', max_iters=4)


def test_resolve_resume(tmp_path):
    work = str(tmp_path)
    assert resolve_resume(work, None, ITERS) == (
        None,
        [f'--resume: {work!r} has no checkpoint (*.pth) to resume from; training starts from scratch.'],
    )
    two = _save(tmp_path / 'iter_2.pth', 2)
    path, (warning,) = resolve_resume(work, None, ITERS)  # no last_checkpoint: the newest, said so
    assert path == two and 'newest' in warning
    assert resolve_resume(work, two, ITERS) == (two, [])
    four = _save(tmp_path / 'iter_4.pth', 4)
    with pytest.raises(TrainingFinishedError, match=r'iter_4\.pth.*already finished.*max_iters=8'):
        resolve_resume(work, four, ITERS)
    with pytest.raises(FileNotFoundError, match=r'load_from=.*iter_9\.pth.*no such checkpoint'):
        resolve_resume(work, str(tmp_path / 'iter_9.pth'), ITERS)
    (tmp_path / 'iter_6.pth').write_bytes(b'')
    with pytest.raises(BrokenCheckpointError, match=r'iter_6\.pth.*empty'):
        resolve_resume(work, str(tmp_path / 'iter_6.pth'), ITERS)


class _TrainLoop(BaseLoop):
    def __init__(self):
        super().__init__(runner=None, dataloader=SimpleNamespace(dataset=None))

    def run(self):
        pass


def _runner(work_dir, resume=True, load_from=None, training=True, has_loaded=False):
    return SimpleNamespace(
        work_dir=str(work_dir),
        cfg=dict(train_cfg=ITERS),
        _resume=resume,
        _load_from=load_from,
        _has_loaded=has_loaded,
        _train_loop=_TrainLoop() if training else dict(type='IterBasedTrainLoop'),
    )


def test_resume_hook_sets_what_mmengine_loads(tmp_path):
    hook = ResumeCheckHook()
    empty = _runner(tmp_path / 'none')
    hook.before_run(empty)
    assert empty._resume is False and empty._load_from is None  # nothing to resume: from scratch
    two = _save(tmp_path / 'iter_2.pth', 2)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_3.pth'))  # deleted
    runner = _runner(tmp_path)
    hook.before_run(runner)
    assert runner._resume is True and runner._load_from == two
    with pytest.raises(TrainingFinishedError):
        hook.before_run(_runner(tmp_path, load_from=_save(tmp_path / 'iter_4.pth', 4)))
    for untouched in (_runner(tmp_path, training=False), _runner(tmp_path, has_loaded=True), _runner(tmp_path, False)):
        before = dict(vars(untouched))
        hook.before_run(untouched)  # test() / val(), a runner that has loaded, no resume: left alone
        assert vars(untouched) == before


def test_stale_temp_files_are_removed_and_others_kept(tmp_path):
    work = str(tmp_path)
    stale = osp.join(work, '.iter_4.pth.k2j3h4g5.tmp')
    keep = [osp.join(work, n) for n in ('iter_4.pth', '.hidden_notes.tmp', 'x.tmp', '.iter_4.pth.short.tmp')]
    for path in [stale, *keep]:
        _touch(path)
    assert remove_stale_temp_files(work) == [stale]
    assert not osp.exists(stale) and all(osp.exists(p) for p in keep)


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_checkpoints_are_written_with_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = str(tmp_path / 'iter_1.pth')
        atomic_write_bytes(b'data', path)
        plain = str(tmp_path / 'plain.bin')
        with open(plain, 'wb') as f:  # what torch.save / open() give
            f.write(b'data')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode) == 0o666 & ~umask


# ------------------------------------------------------------------ through tools/train.py
def _train(work_dir, root, max_iters, resume=False, ckpt_interval=1):
    args = [sys.executable, 'tools/train.py', QUICK_CONFIG, '--work-dir', work_dir]
    if resume:
        args.append('--resume')
    args += ['--cfg-options', *tiny_options(root, max_iters=max_iters, ckpt_interval=ckpt_interval)]
    env = tool_env()
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return proc, proc.stdout + proc.stderr


@pytest.mark.slow
def test_train_tool_resume_fallbacks(synthetic_root, tmp_path):
    work = str(tmp_path / 'work')
    proc, log = _train(work, synthetic_root, max_iters=2)
    assert proc.returncode == 0, log[-3000:]
    stale = osp.join(work, '.iter_2.pth.abcd1234.tmp')
    _touch(stale, b'\0' * 1000)
    # a finished run: said at once, nothing replayed, exit 0; the stale temp file is gone
    proc, log = _train(work, synthetic_root, max_iters=2, resume=True)
    assert proc.returncode == 0, log[-3000:]
    assert 'already finished' in log and 'Advance dataloader' not in log and 'Iter(train)' not in log
    assert not osp.exists(stale) and 'interrupted' in log
    # last_checkpoint names a deleted file: the newest existing checkpoint is used, with a warning
    os.remove(osp.join(work, 'iter_2.pth'))
    proc, log = _train(work, synthetic_root, max_iters=2, resume=True)
    assert proc.returncode == 0, log[-3000:]
    assert 'does not exist' in log and 'iter_1.pth' in log
    assert re.search(r'resumed epoch: \d+, iter: 1', log)
    assert [int(i) for i in re.findall(r'Iter\(train\) \[\s*(\d+)/2\]', log)] == [2]
    mode = stat.S_IMODE(os.stat(osp.join(work, 'iter_2.pth')).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask, oct(mode)
