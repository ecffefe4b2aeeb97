"""Training and testing runs that would otherwise lose or tear their outputs, or change the recipe silently:
one live run per work dir, a resume with another number of processes, ``--out`` written atomically with
compact records, config paths and option values that fail in one clean line, launchers that find the venv."""

import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import QUICK_CONFIG, REPO, TINY_MODEL, load_tool, tool_env

from looptrans.engine.hooks import WorldSizeCheckHook
from looptrans.engine.hooks.world_size_hook import world_size_message
from looptrans.evaluation.metrics import AtomicDumpResults
from looptrans.evaluation.metrics.dump_results import own_storage
from looptrans.utils import WorkDirBusyError, lock_work_dir
from looptrans.utils.config_check import ConfigOptionError, load_tool_config

HOLD_LOCK = (
    'import sys, time; sys.path.insert(0, {projects!r}); from looptrans.utils.paths import lock_work_dir; '
    'handle = lock_work_dir({work_dir!r}); print("locked", flush=True); time.sleep(60)'
)


def _holder(work_dir):
    """A separate process that holds the work dir's lock until it is killed."""
    code = HOLD_LOCK.format(projects=osp.join(REPO, 'projects'), work_dir=str(work_dir))
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True, env=tool_env())
    assert proc.stdout.readline().strip() == 'locked'
    return proc


# ------------------------------------------------------------------ one live run per work dir
def test_a_second_run_in_a_live_work_dir_is_refused_naming_the_first(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(WorkDirBusyError, match=f'pid {holder.pid}') as err:
            lock_work_dir(str(tmp_path))
        assert str(tmp_path) in str(err.value) and '--work-dir' in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    # a killed run leaves no lock behind
    handle = lock_work_dir(str(tmp_path))
    assert f'pid {os.getpid()}' in open(osp.join(tmp_path, '.train.lock')).read()
    handle.close()


def test_train_tool_refuses_a_busy_work_dir_before_building_anything(tmp_path):
    holder = _holder(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, 'tools/train.py', QUICK_CONFIG, '--work-dir', str(tmp_path)],
            cwd=REPO,
            env=tool_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith('error: work dir')
    assert 'in use by another training run' in proc.stderr
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.pth')]


# ------------------------------------------------------------------ resume with another world size
def test_world_size_message_gives_both_batch_sizes_and_the_fix():
    message = world_size_message(1, 8, 2, 8)
    assert '2 process(es)' in message and 'trained with 1' in message
    assert 'from 8 (1 x 8) to 16 (2 x 8)' in message
    assert 'train_dataloader.batch_size=4' in message
    assert world_size_message(2, 8, 2, 8) is None
    assert 'resume with 3 process(es)' in world_size_message(3, 3, 2, 3)  # 9 does not split over 2


def _runner(world_size, batch_size, resume=True):
    return SimpleNamespace(
        world_size=world_size, cfg=dict(train_dataloader=dict(batch_size=batch_size)), _resume=resume
    )


def test_world_size_hook_records_and_compares(monkeypatch):
    logged = []
    from looptrans.engine.hooks import world_size_hook

    real = world_size_hook.print_log

    def spy(message, logger=None, level=None):
        logged.append(message)
        real(message, logger=logger, level=level)  # the real logger runs too: a bad level would raise

    monkeypatch.setattr(world_size_hook, 'print_log', spy)
    hook = WorldSizeCheckHook()
    checkpoint = dict(meta=dict(iter=2))
    hook.before_save_checkpoint(_runner(1, 8), checkpoint)
    assert checkpoint['meta'] == dict(iter=2, world_size=1, train_batch_size=8)
    hook.after_load_checkpoint(_runner(2, 8), checkpoint)
    assert len(logged) == 1 and 'from 8 (1 x 8) to 16 (2 x 8)' in logged[0]
    hook.after_load_checkpoint(_runner(1, 8), checkpoint)  # same world size
    hook.after_load_checkpoint(_runner(2, 8, resume=False), checkpoint)  # load_from: a new schedule
    hook.after_load_checkpoint(_runner(2, 8), dict(meta=dict(iter=2)))  # an older checkpoint: nothing known
    assert len(logged) == 1


# ------------------------------------------------------------------ config paths and option values
def test_a_text_where_the_config_has_a_number_names_the_key():
    with pytest.raises(ConfigOptionError, match=r'train_cfg\.max_iters=abc: expected an integer') as err:
        load_tool_config(QUICK_CONFIG, {'train_cfg.max_iters': 'abc', 'train_cfg.val_interval': 'x'})
    assert 'val_interval' in str(err.value)  # every bad value at once
    cfg = load_tool_config(QUICK_CONFIG, {'train_cfg.max_iters': 3, 'work_dir': '~/runs'})
    assert cfg.train_cfg.max_iters == 3
    assert cfg.work_dir == osp.join(osp.expanduser('~'), 'runs')


@pytest.mark.parametrize('tool, extra', [('train.py', []), ('test.py', ['nothing.pth'])])
@pytest.mark.parametrize('problem', ['missing_config', 'bad_value'])
def test_tools_fail_in_one_clean_line(tool, extra, problem, tmp_path):
    if problem == 'missing_config':
        args = [str(tmp_path / 'no_such_config.py'), *extra]
        expected = 'no_such_config.py'
    else:
        args = [QUICK_CONFIG, *extra, '--cfg-options', 'train_cfg.max_iters=abc']
        expected = 'train_cfg.max_iters=abc'
    proc = subprocess.run(
        [sys.executable, osp.join('tools', tool), *args],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in proc.stderr
    assert lines[-1].startswith('error: ') and expected in lines[-1]


# ------------------------------------------------------------------ --out: atomic, compact
def test_dump_records_hold_their_own_sample_not_the_batch(tmp_path):
    batch = torch.rand(8, 1, 224, 224)
    records = own_storage([dict(pred_heatmap=dict(data=batch[i])) for i in range(8)])
    one = len(pickle.dumps(records[0]))
    assert one < 1.2 * 224 * 224 * 4  # one map (200 KB), not the batch (1.6 MB)
    assert torch.equal(records[3]['pred_heatmap']['data'], batch[3])


def test_dump_is_written_atomically(tmp_path, monkeypatch):
    out = tmp_path / 'results.pkl'
    out.write_bytes(b'the previous run')
    metric = AtomicDumpResults(out_file_path=str(out))
    metric.process({}, [dict(pred_heatmap=dict(data=torch.rand(1, 4, 4)))])

    def die(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', die)
    with pytest.raises(OSError):
        metric.compute_metrics(metric.results)
    assert out.read_bytes() == b'the previous run'  # never a torn pickle at the final name
    assert os.listdir(tmp_path) == ['results.pkl']
    monkeypatch.undo()
    metric.compute_metrics(metric.results)
    with open(out, 'rb') as f:
        assert torch.equal(pickle.load(f)[0]['pred_heatmap']['data'], metric.results[0]['pred_heatmap']['data'])


def test_predict_gives_each_sample_its_own_map():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from looptrans.apis import without_pretrained

    cfg = Config.fromfile(QUICK_CONFIG)
    cfg.merge_from_dict(TINY_MODEL)
    init_default_scope('mmseg')
    model = MODELS.build(without_pretrained(cfg.model)).eval()
    samples = []
    for label in (0, 1, 2):
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=(64, 64), gt_label=label))
        samples.append(sample)
    with torch.no_grad():
        out = model.predict(torch.rand(3, 3, 64, 64), samples)
    for sample in out:
        data = sample.pred_heatmap.data
        assert data.untyped_storage().nbytes() == data.numel() * data.element_size()


# ------------------------------------------------------------------ launchers without the venv activated
def test_launchers_find_the_project_venv_without_activation():
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHON')}
    env['PATH'] = '/usr/bin:/bin'
    proc = subprocess.run(
        ['bash', '-c', 'source tools/find_python.sh && echo "$PYTHON"'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    found = proc.stdout.strip()
    assert subprocess.run([found, '-c', 'import looptrans, torch'], env=env).returncode == 0
    if osp.isfile(osp.join(REPO, '.venv', 'bin', 'python')):
        assert found == osp.join(REPO, '.venv', 'bin', 'python')


def test_launchers_name_the_fix_when_no_python_has_the_project(tmp_path):
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', QUICK_CONFIG, '1'],
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable + '-missing'),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert 'setup_env.sh' in proc.stderr and 'PYTHON=' in proc.stderr


def test_test_tool_warns_that_an_old_out_file_is_still_the_old_one(tmp_path):
    """Before any image is scored: the --out file of an earlier run is named as such."""
    tool = load_tool('test.py')
    out = tmp_path / 'old.pkl'
    out.write_bytes(b'x')
    old = time.time() - 3600
    os.utime(out, (old, old))
    cfg = SimpleNamespace(work_dir=str(tmp_path / 'w'))
    args = SimpleNamespace(
        checkpoint=QUICK_CONFIG, work_dir=None, show_dir=None, out=str(out), show=False, launcher='none'
    )
    logs = []
    real = tool.print_log
    tool.print_log = lambda message, **kwargs: (logs.append(message), real(message, **kwargs))
    try:
        tool.check_outputs(cfg, args)
    finally:
        tool.print_log = real
    assert len(logs) == 1 and 'earlier run' in logs[0] and str(out) in logs[0]
    args.out = str(tmp_path / 'results.txt')
    with pytest.raises(SystemExit, match=r'\*\.pkl'):
        tool.check_outputs(cfg, args)


# ------------------------------------------------------------------ MMEngine's notices that say nothing
def test_known_noise_is_dropped_and_everything_else_kept():
    import logging

    from looptrans.engine.hooks import QuietLogHook
    from looptrans.utils.log_noise import KNOWN_NOISE

    logger = logging.getLogger('looptrans-test-noise')
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger.addHandler(Collect())
    logger.propagate = False
    QuietLogHook().before_run(SimpleNamespace(logger=logger))
    QuietLogHook().before_run(SimpleNamespace(logger=logger))  # idempotent
    assert len(logger.filters) == 1
    for noise in KNOWN_NOISE:
        logger.warning(noise + ' ...')
    logger.warning('Reach the end of the world')  # only the known starts go
    logger.warning('The checkpoint was trained with 1 process')
    assert seen == ['Reach the end of the world', 'The checkpoint was trained with 1 process']


def test_the_metric_says_nothing_about_its_unprefixed_keys(mmengine_log):
    from mmengine.logging import MMLogger

    from looptrans.evaluation import AffordanceMetric

    logger = MMLogger.get_current_instance()
    before = list(logger.filters)  # an earlier runner's QuietLogHook may have left its own filter here
    AffordanceMetric()
    assert not [m for m in mmengine_log if 'prefix' in m]
    assert logger.filters == before  # the metric's temporary filter is removed again
