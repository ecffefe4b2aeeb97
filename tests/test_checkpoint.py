"""Safe checkpoint loading: MMEngine's own objects load, code-running pickles are refused."""

import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import looptrans  # noqa: F401  (installs the safe loader)
from looptrans.utils import UnsafeCheckpointError, allowed_checkpoint_globals, safe_torch_load


class _RunsCode:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def _mmengine_like_checkpoint() -> dict:
    buf = HistoryBuffer()
    for v in (0.5, 0.25, 0.125):
        buf.update(v)
    return dict(
        meta=dict(epoch=1, iter=3, seed=0, dataset_meta=dict(classes=('hold', 'cut_with'))),
        state_dict={'w': torch.randn(2, 2)},
        message_hub=dict(
            log_scalars={'train/loss': buf},
            runtime_info=dict(iter=np.int64(3), lr=np.float64(0.01), arr=np.arange(3, dtype=np.int32)),
            resumed_keys={'train/loss': True},
        ),
        optimizer=dict(state={0: dict(momentum_buffer=torch.zeros(2))}, param_groups=[dict(lr=0.01)]),
    )


def test_mmengine_checkpoint_round_trip(tmp_path):
    path = str(tmp_path / 'iter_3.pth')
    ckpt = _mmengine_like_checkpoint()
    torch.save(ckpt, path)
    loaded = _load_checkpoint(path, map_location='cpu')  # MMEngine's loader, as --resume uses
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    np.testing.assert_allclose(buf.data[0], [0.5, 0.25, 0.125])
    assert loaded['message_hub']['runtime_info']['iter'] == 3
    assert torch.equal(loaded['state_dict']['w'], ckpt['state_dict']['w'])


@pytest.mark.parametrize('protocol', [2, pickle.DEFAULT_PROTOCOL])
def test_code_running_pickle_is_refused(tmp_path, protocol):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': {}, 'payload': _RunsCode(str(marker))}, f, protocol=protocol)
    with pytest.raises(UnsafeCheckpointError, match=r'evil\.pth.*not loaded'):
        _load_checkpoint(path, map_location='cpu')  # the loader --resume and tools/test.py use
    assert not marker.exists(), 'the pickled payload ran'
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(path)
    if protocol == 2:  # torch names the refused global for protocol-2 pickles
        assert 'system' in str(info.value)
    assert not marker.exists()


class _Foreign:
    """An arbitrary user class: not on the allow-list."""


def test_foreign_object_is_refused(tmp_path):
    path = str(tmp_path / 'foreign.pth')
    torch.save({'obj': _Foreign()}, path)
    with pytest.raises(UnsafeCheckpointError, match='_Foreign'):
        _load_checkpoint(path, map_location='cpu')


def test_allow_list_is_exact():
    allowed = allowed_checkpoint_globals()
    names = {getattr(g, '__module__', '') + '.' + getattr(g, '__name__', '') for g in allowed}
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert not any(n.startswith(('os.', 'posix.', 'builtins.', 'subprocess.')) for n in names)
    assert all(n.startswith(('numpy', 'mmengine.logging')) for n in names), names


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def test_history_buffer_pickles_without_getattr(tmp_path):
    buf = HistoryBuffer()
    buf.update(1.0)
    path = str(tmp_path / 'hb.pth')
    torch.save({'b': buf}, path)
    assert 'builtins.getattr' not in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    loaded = safe_torch_load(path)['b']
    assert loaded.mean() == 1.0 and loaded.statistics('max') == 1.0


class _LegacyBuffer:
    """Pickles like MMEngine's original HistoryBuffer: state holds getattr(HistoryBuffer, 'mean')."""

    def __init__(self, attr: str, owner=HistoryBuffer) -> None:
        self.attr, self.owner = attr, owner

    def __reduce__(self):
        state = dict(
            max_length=10,
            _log_history=np.array([2.0]),
            _count_history=np.array([1.0]),
            statistics_methods={'mean': _Getattr(self.owner, self.attr)},
        )
        return (HistoryBuffer, (), state)


class _Getattr:
    def __init__(self, owner, attr):
        self.owner, self.attr = owner, attr

    def __reduce__(self):
        return (getattr, (self.owner, self.attr))


def test_legacy_mmengine_checkpoint_still_loads(tmp_path):
    path = str(tmp_path / 'legacy.pth')
    torch.save({'message_hub': {'log_scalars': {'loss': _LegacyBuffer('mean')}}}, path)
    loaded = _load_checkpoint(path, map_location='cpu')
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 2.0


def test_getattr_beyond_history_buffer_statistics_is_refused(tmp_path):
    path = str(tmp_path / 'legacy_evil.pth')
    torch.save({'b': _LegacyBuffer('__init__')}, path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        _load_checkpoint(path, map_location='cpu')
    torch.save({'b': _LegacyBuffer('tofile', owner=np.ndarray)}, path)
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')


def test_safe_loading_is_installed_by_one_named_idempotent_call():
    from mmengine.runner.checkpoint import CheckpointLoader

    from looptrans.utils import checkpoint as safe

    assert safe.safe_checkpoint_loading_installed()  # by `import looptrans`, in looptrans/__init__.py
    before = (dict(CheckpointLoader._schemes), HistoryBuffer.__getstate__)
    looptrans.install_safe_checkpoint_loading()  # a second call changes nothing
    assert (dict(CheckpointLoader._schemes), HistoryBuffer.__getstate__) == before
    assert CheckpointLoader._schemes[''] is safe._load_from_local
    assert CheckpointLoader._schemes['https://'] is safe._load_from_http
    assert HistoryBuffer.__getstate__ is safe._history_buffer_getstate
    docs = open(os.path.join(os.path.dirname(__file__), '..', 'docs', 'reliability.md')).read()
    assert 'install_safe_checkpoint_loading' in docs
