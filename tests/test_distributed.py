"""Multi-process training and testing under MMEngine's launcher (torchrun, gloo on CPU).

The test set of the generated tree has an odd number of images, so 2 processes get a padded sampler; the
2-process metric must still equal the 1-process one (each image counted once).
"""

import glob
import os.path as osp
import re

import pytest
from conftest import QUICK_CONFIG, run_tool, tiny_options

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
