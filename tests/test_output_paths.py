"""An output folder that cannot be written fails at start-up naming the path (before:
after the model had run, or as a traceback from deep inside MMEngine).

tools/infer.py's --out-dir is tested in test_infer_tool.py, the symlink loop in
test_check_dataset_layout.py.
"""

import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import QUICK_CONFIG, REPO, tiny_options, tool_env

from looptrans.utils import UnwritableDirError, ensure_writable_dir


def _blocked(tmp_path, name='a_file'):
    """A path whose parent is a regular file: no one (not even root) can create it."""
    blocker = tmp_path / name
    blocker.write_text('x')
    return str(blocker / 'out')


def test_ensure_writable_dir(tmp_path):
    ok = str(tmp_path / 'new' / 'deeper')
    assert ensure_writable_dir(ok, '--work-dir') == ok and osp.isdir(ok) and os.listdir(ok) == []
    bad = _blocked(tmp_path)
    with pytest.raises(UnwritableDirError, match=r"--work-dir '.*a_file/out'.*is a file, not a folder"):
        ensure_writable_dir(bad, '--work-dir')
    with pytest.raises(UnwritableDirError, match='not a folder'):
        ensure_writable_dir(str(tmp_path / 'a_file'), '--show-dir')


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0, reason='root writes to read-only folders')
def test_read_only_folder(tmp_path):
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(UnwritableDirError, match='Permission denied'):
            ensure_writable_dir(str(folder), '--out-dir')
    finally:
        folder.chmod(0o700)


def _run(args):
    env = tool_env()
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc, proc.stdout + proc.stderr


def test_train_tool_unwritable_work_dir(tmp_path, synthetic_root):
    bad = _blocked(tmp_path)
    proc, out = _run(
        ['tools/train.py', QUICK_CONFIG, '--work-dir', bad, '--cfg-options', *tiny_options(synthetic_root, max_iters=1)]
    )
    assert proc.returncode != 0
    assert f"--work-dir {bad!r} cannot be written" in out and 'Traceback' not in out, out[-3000:]


def test_test_tool_unwritable_outputs(tmp_path, synthetic_root):
    """--work-dir, --show-dir and --out all unwritable: one run names each of them (one fix-and-rerun)."""
    checkpoint = tmp_path / 'c.pth'
    checkpoint.write_bytes(b'\0')  # never read: the outputs are checked first
    bad = {option: _blocked(tmp_path, f'file_{option[2:]}') for option in ('--work-dir', '--show-dir', '--out')}
    args = ['tools/test.py', QUICK_CONFIG, str(checkpoint), '--work-dir', bad['--work-dir']]
    args += ['--show-dir', bad['--show-dir'], '--out', osp.join(bad['--out'], 'results.pkl')]
    proc, out = _run(args + ['--cfg-options', *tiny_options(synthetic_root)])
    assert proc.returncode != 0 and 'Traceback' not in out, out[-3000:]
    for option, folder in bad.items():
        assert f'{option} {folder!r} cannot be written' in out, (option, out[-3000:])
