"""Multi-process training and testing under MMEngine's launcher (torchrun, gloo on CPU).

The test set of the generated tree has an odd number of images, so 2 processes get a padded sampler; the
2-process metric must still equal the 1-process one (each image counted once).
"""

import glob
import os.path as osp
import re

import pytest
from conftest import QUICK_CONFIG, REPO, run_tool, tiny_options, tool_env

pytestmark = pytest.mark.slow


def _torchrun(args):
    return run_tool(
        [
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            '--standalone',  # torchrun picks a free port itself, at bind time (no race with other tests)
            *args,
            '--launcher',
            'pytorch',
        ]
    )


def _figures(log: str) -> dict:
    last = log.split('Iter(test)')[-1]
    return {k: float(v) for k, v in re.findall(r'(KLD|SIM|NSS): ([-\d.]+)', last)}


@pytest.fixture(scope='module')
def dist_run(synthetic_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('dist'))
    opts = tiny_options(synthetic_root, max_iters=2, ckpt_interval=2) + ['env_cfg.dist_cfg.backend=gloo']
    train = _torchrun(['tools/train.py', QUICK_CONFIG, '--work-dir', work_dir, '--cfg-options', *opts])
    return dict(work_dir=work_dir, train=train, opts=opts, root=synthetic_root)


def test_two_process_training_runs(dist_run):
    log = dist_run['train'].stdout + dist_run['train'].stderr
    assert 'Distributed launcher: pytorch' in log or 'distributed: True' in log
    assert re.search(r'Iter\(train\) \[2/2\]', log)
    assert osp.isfile(osp.join(dist_run['work_dir'], 'iter_2.pth'))


def test_two_process_test_equals_one_process(dist_run, tmp_path):
    n_all = len(glob.glob(osp.join(dist_run['root'], 'Seen', 'testset', 'GT', '*', '*', '*.png')))
    n_test = n_all - 1 if n_all % 2 == 0 else n_all  # odd: 2 processes get a padded last batch
    opts = dist_run['opts'] + [f'test_dataloader.dataset.indices={n_test}']
    ckpt = osp.join(dist_run['work_dir'], 'iter_2.pth')
    single = run_tool(
        ['tools/test.py', QUICK_CONFIG, ckpt, '--work-dir', str(tmp_path / 'one'), '--cfg-options', *opts]
    )
    double = _torchrun(
        ['tools/test.py', QUICK_CONFIG, ckpt, '--work-dir', str(tmp_path / 'two'), '--cfg-options', *opts]
    )
    one, two = _figures(single.stdout + single.stderr), _figures(double.stdout + double.stderr)
    assert set(one) == {'KLD', 'SIM', 'NSS'}
    for key in one:
        assert two[key] == pytest.approx(one[key], abs=1e-4), (key, one, two)
    counted = re.findall(r'num_images=(\d+)', double.stdout + double.stderr)
    assert counted and int(counted[-1]) == n_test


# Run in a child process: a process group initialised inside the test worker would leave c10d state (threads,
# a store) behind for the worker's later tests.
_BLOCK_THEN_REPORT = """
import sys
import torch.distributed as dist
from looptrans.utils.dist import process_group_closed_on_exit

store, raise_inside = sys.argv[1], sys.argv[2] == 'raise'
try:
    with process_group_closed_on_exit():
        dist.init_process_group('gloo', init_method='file://' + store, rank=0, world_size=1)
        print('alive inside:', dist.is_initialized())
        if raise_inside:
            raise SystemExit('error: something went wrong')
except SystemExit as err:
    print('raised:', err)
print('alive after:', dist.is_initialized())
"""


@pytest.mark.parametrize('ending', ['return', 'raise'])
def test_the_process_group_is_destroyed_when_the_block_ends(ending, tmp_path):
    proc = run_tool(['-c', _BLOCK_THEN_REPORT, str(tmp_path / 'store'), ending])
    assert 'alive inside: True' in proc.stdout and 'alive after: False' in proc.stdout, proc.stdout
    assert ('raised: error: something went wrong' in proc.stdout) == (ending == 'raise')


# The tool's main() under --launcher pytorch with one process, then the state of the default group.
_MAIN_THEN_REPORT = """
import importlib.util, sys
import torch.distributed as dist
spec = importlib.util.spec_from_file_location('tool', sys.argv[1])
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)
sys.argv = sys.argv[1:]
# the real one ends the process (os._exit); this one reports when it is called and lets main() return
tool.exit_finished_run = lambda status=0: print(f'exit_finished_run({status}); group alive:', dist.is_initialized())
try:
    tool.main()
finally:
    print('process group alive after main:', dist.is_initialized())
"""


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_the_tools_leave_no_live_process_group(tool, dist_run, tmp_path):
    """A gloo group still alive at interpreter exit can abort a rank (SIGABRT) after a run that finished."""
    args = [QUICK_CONFIG]
    if tool == 'test':
        args.append(osp.join(dist_run['work_dir'], 'iter_2.pth'))
    args += ['--work-dir', str(tmp_path / 'work'), '--cfg-options', *dist_run['opts'], '--launcher', 'pytorch']
    wrapper = tmp_path / 'main_then_report.py'
    wrapper.write_text(_MAIN_THEN_REPORT)
    run = ['-m', 'torch.distributed.run', '--nproc_per_node=1', '--standalone', str(wrapper)]
    proc = run_tool([*run, osp.join(REPO, 'tools', f'{tool}.py'), *args])
    assert 'process group alive after main: False' in proc.stdout, proc.stdout[-2000:]
    # a finished multi-process CPU run leaves without the interpreter's finalisation, its group destroyed first
    assert 'exit_finished_run(0); group alive: False' in proc.stdout, proc.stdout[-2000:]


_FINISH_THEN_EXIT = """
import atexit, logging, sys
from looptrans.utils.dist import exit_finished_run

atexit.register(lambda: print('finalised'))
handler = logging.FileHandler(sys.argv[1])
logging.getLogger('run').addHandler(handler)
logging.getLogger('run').warning('metrics written')
sys.stdout.write('last line, unflushed')
exit_finished_run(3)
print('not reached')
"""


def test_a_finished_run_exits_with_its_output_flushed_and_without_finalisation(tmp_path):
    """exit_finished_run: the logs and the buffered standard output are out, the status is the one given, and no
    finaliser ran (the interpreter's teardown, where a gloo rank can abort, is skipped)."""
    import subprocess
    import sys

    log = tmp_path / 'run.log'
    proc = subprocess.run(
        [sys.executable, '-c', _FINISH_THEN_EXIT, str(log)],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == 'last line, unflushed'  # flushed; neither the atexit handler nor the next line ran
    assert log.read_text() == 'metrics written\n'
