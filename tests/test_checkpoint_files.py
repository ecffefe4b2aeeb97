"""A broken checkpoint file gets one message naming the file and what it is.

Before: an empty .pth gave a bare ``EOFError``, a zip of garbage ``Expected hasRecord("version")``, and an HTML
page saved as .pth was called a file that "would run arbitrary code".
"""

import io
import os
import pickle
import zipfile

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import looptrans  # noqa: F401  (installs the safe loader)
from looptrans.utils import BrokenCheckpointError, UnsafeCheckpointError, safe_torch_load


def _real_checkpoint_bytes():
    buf = io.BytesIO()
    torch.save(dict(meta=dict(iter=3), state_dict={'w': torch.randn(64, 64)}), buf)
    return buf.getvalue()


def _garbage_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('junk/data.txt', 'not a checkpoint')
    return buf.getvalue()


CASES = {
    'empty': (b'', 'empty (0 bytes)'),
    'truncated_zip': (_real_checkpoint_bytes()[:5000], 'truncated or corrupt zip archive'),
    'garbage_zip': (_garbage_zip(), 'truncated or corrupt zip archive'),
    'truncated_pickle': (
        pickle.dumps({'state_dict': {'w': list(range(1000))}}, protocol=2)[:300],
        'truncated or corrupt pickle stream',
    ),
    'html': (b'<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>', 'an HTML page'),
    'lfs_pointer': (b'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n', 'Git LFS pointer'),
    'binary': (bytes(range(7, 71)), 'not a PyTorch file'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_broken_checkpoint_is_named_and_described(tmp_path, case):
    data, what = CASES[case]
    path = str(tmp_path / f'{case}.pth')
    with open(path, 'wb') as f:
        f.write(data)
    with pytest.raises(BrokenCheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')  # the loader tools/test.py, --resume and init_model use
    message = str(info.value)
    assert repr(path) in message and what in message and f'({len(data)} bytes)' in message
    assert 'arbitrary' not in message  # not mistaken for an unsafe pickle
    with pytest.raises(BrokenCheckpointError):
        with open(path, 'rb') as f:
            safe_torch_load(io.BytesIO(f.read()), name=path)


def test_good_and_unsafe_checkpoints_are_unchanged(tmp_path):
    path = str(tmp_path / 'good.pth')
    with open(path, 'wb') as f:
        f.write(_real_checkpoint_bytes())
    assert _load_checkpoint(path, map_location='cpu')['meta']['iter'] == 3

    class RunsCode:
        def __reduce__(self):
            return (os.system, ('true',))

    evil = str(tmp_path / 'evil.pth')
    with open(evil, 'wb') as f:
        pickle.dump({'x': RunsCode()}, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(evil, map_location='cpu')
