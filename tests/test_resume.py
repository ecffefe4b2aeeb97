"""Interrupted runs: SIGKILL between checkpoints, --resume, and the result equals an uninterrupted run.

Also the reproducibility check: the same seed and config give identical losses across two runs on CPU.
"""

import os
import os.path as osp
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, REPO, tiny_options, tool_env

pytestmark = pytest.mark.slow

KILL_HOOK = '''
import os, signal
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class KillAfterIter(Hook):
    """SIGKILL the training process right after iteration ``at_iter`` (1-based): no cleanup, no save."""

    def __init__(self, at_iter):
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def _config(tmp_path, name, kill_at=None):
    hooks = ["dict(type='PseudoMaskHook', start_iter=2)"]
    imports = ['looptrans', 'looptrans.testing']  # the quick config's, + the kill hook's module
    if kill_at:
        hooks.append(f"dict(type='KillAfterIter', at_iter={kill_at})")
        imports.append('killhook')
    path = tmp_path / f'{name}.py'
    path.write_text(
        f"_base_ = ['{QUICK_CONFIG}']\n"
        f"custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n"
        f"custom_hooks = [{', '.join(hooks)}]\n"
    )
    return str(path)


def _train(config, work_dir, root, max_iters, tmp_path, resume=False):
    args = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    if resume:
        args.append('--resume')
    args += ['--cfg-options', *tiny_options(root, max_iters=max_iters, ckpt_interval=2)]
    # the kill hook's module beside the project (a PYTHONPATH of the caller's kept)
    env = tool_env(PYTHONPATH=os.pathsep.join(p for p in (str(tmp_path), os.environ.get('PYTHONPATH')) if p))
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _losses(log):
    return {int(i): float(v) for i, v in re.findall(r'Iter\(train\) \[\s*(\d+)/\d+\].*?\bloss: ([-\d.e]+)', log)}


@pytest.fixture(scope='module')
def runs(synthetic_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('resume')
    (tmp / 'killhook.py').write_text(KILL_HOOK)
    plain, killer = _config(tmp, 'plain'), _config(tmp, 'killer', kill_at=5)
    straight = _train(plain, str(tmp / 'straight'), synthetic_root, 6, tmp)
    assert straight.returncode == 0, straight.stderr[-4000:]
    killed = _train(killer, str(tmp / 'killed'), synthetic_root, 6, tmp)
    resumed = _train(plain, str(tmp / 'killed'), synthetic_root, 6, tmp, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return dict(tmp=tmp, straight=straight, killed=killed, resumed=resumed)


def test_kill_leaves_last_checkpoint_intact(runs):
    killed = runs['killed']
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    work = runs['tmp'] / 'killed'
    assert (work / 'iter_4.pth').exists()
    leftovers = [p.name for p in work.iterdir() if p.name.endswith('.tmp')]
    assert not leftovers, leftovers  # the atomic backend cleans or renames its temp files


def test_resume_after_kill_equals_uninterrupted_run(runs):
    a = torch.load(runs['tmp'] / 'straight' / 'iter_6.pth', map_location='cpu', weights_only=True)
    b = torch.load(runs['tmp'] / 'killed' / 'iter_6.pth', map_location='cpu', weights_only=True)
    assert a['meta']['iter'] == b['meta']['iter'] == 6
    assert a['state_dict'].keys() == b['state_dict'].keys()
    worst = max((a['state_dict'][k].float() - b['state_dict'][k].float()).abs().max().item() for k in a['state_dict'])
    assert worst < 1e-5, f'weights differ by up to {worst}'
    for ga, gb in zip(a['optimizer']['param_groups'], b['optimizer']['param_groups']):
        assert ga['lr'] == pytest.approx(gb['lr'], rel=1e-9)
    assert a['optimizer']['state'].keys() == b['optimizer']['state'].keys()
    for key, state in a['optimizer']['state'].items():  # AdamW moments (or SGD momentum) and step counts
        other = b['optimizer']['state'][key]
        assert state.keys() == other.keys()
        for name, value in state.items():
            torch.testing.assert_close(value, other[name], rtol=1e-5, atol=1e-6, msg=f'{key}.{name}')
    assert a['param_schedulers'] == b['param_schedulers']
    print(f'max weight difference after kill/resume: {worst:.3g}')
    # the resumed run's logged losses continue the uninterrupted run's
    straight = _losses(runs['straight'].stdout + runs['straight'].stderr)
    resumed = _losses(runs['resumed'].stdout + runs['resumed'].stderr)
    assert set(resumed) == {5, 6}
    for i in (5, 6):
        assert resumed[i] == pytest.approx(straight[i], rel=1e-5, abs=1e-6)


def test_same_seed_same_losses(runs):
    straight = _losses(runs['straight'].stdout + runs['straight'].stderr)
    killed = _losses(runs['killed'].stdout + runs['killed'].stderr)
    assert sorted(straight) == [1, 2, 3, 4, 5, 6]
    assert sorted(killed) == [1, 2, 3, 4]  # killed after iteration 5, before the logger reports it
    np.testing.assert_array_equal([straight[i] for i in range(1, 5)], [killed[i] for i in range(1, 5)])
    assert osp.exists(runs['tmp'] / 'straight' / 'last_checkpoint')
