"""Offline install: tools/install/make_wheelhouse.sh + setup_env.sh --wheelhouse DIR --system-torch.

The fast tests check the wheelhouse helper (tools/install/wheelhouse.py) and setup_env.sh's refusals. The slow
test does what a cluster user does, here on CPU:

1. "the node": an interpreter that has torch and torchvision (with their dependencies) and nothing else — a
   venv whose .pth file points at a folder of links to those packages of the running environment;
2. ``pip list --format=freeze`` of it -> ``make_wheelhouse.sh DIR --python-version 3.11 --have FILE``
   (from PyPI; the only step with network);
3. ``setup_env.sh --wheelhouse DIR --system-torch --venv V`` with that interpreter, in a network namespace
   without network (``unshare -n``) when the machine allows it, else with pip's ``--no-index`` alone;
   mmcv is compiled there from the sdist in DIR;
4. two training iterations of the quick config in V; torch must come from "the node", mmcv from V, and
   ``pip check`` must be clean.

The wheelhouse lives at a fixed path under the user's cache folder (named after the Python and torch
versions), so pip's wheel cache (keyed by the sdist's URL) keeps the mmcv wheel built by the first run:
later runs skip the ~12-minute compile.
"""

import base64
import hashlib
import importlib.metadata as md
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from conftest import QUICK_CONFIG, REPO, THREADS, tiny_options

sys.path.insert(0, osp.join(REPO, 'tools', 'install'))
import wheelhouse  # noqa: E402

SETUP = osp.join(REPO, 'tools', 'install', 'setup_env.sh')
MAKE = osp.join(REPO, 'tools', 'install', 'make_wheelhouse.sh')


# ---------------------------------------------------------------- the helper
def test_dist_of_file_reads_wheels_and_sdists():
    assert wheelhouse.dist_of_file('opencv_python_headless-5.0.0.93-cp37-abi3-manylinux_2_28_x86_64.whl') == (
        'opencv-python-headless',
        '5.0.0.93',
    )
    assert wheelhouse.dist_of_file('Pillow-10.0.0-cp311-cp311-manylinux_2_28_x86_64.whl') == ('pillow', '10.0.0')
    assert wheelhouse.dist_of_file('mmcv-2.1.0.tar.gz') == ('mmcv', '2.1.0')
    assert wheelhouse.dist_of_file('typing_extensions-4.12.2-py3-none-any.whl') == ('typing-extensions', '4.12.2')
    assert wheelhouse.dist_of_file('wheelhouse.json') is None


def test_parse_have_takes_pinned_lines_only():
    have, ignored = wheelhouse.parse_have(
        'numpy==1.26.4\nPillow==10.2.0\ntorch==2.5.1+cu121\n# comment\n\n'
        'scipy @ file:///croot/scipy_1700/work\n-e git+https://x/y.git#egg=z\nPyYAML===6.0.1\n'
    )
    assert have == {'numpy': '1.26.4', 'pillow': '10.2.0', 'torch': '2.5.1+cu121', 'pyyaml': '6.0.1'}
    assert ignored == ['scipy @ file:///croot/scipy_1700/work', '-e git+https://x/y.git#egg=z']


def test_manylinux_platforms_name_every_tag_down_to_2014():
    tags = wheelhouse.manylinux_platforms('2.28')
    assert tags[0] == 'manylinux_2_28_x86_64' and 'manylinux_2_17_x86_64' in tags
    assert tags[-3:] == ['manylinux2014_x86_64', 'manylinux2010_x86_64', 'manylinux1_x86_64']
    assert len(tags) == 12 + 3
    with pytest.raises(ValueError):
        wheelhouse.manylinux_platforms('2.5')


def test_select_dropped_leaves_out_torch_and_what_the_target_has():
    files = [
        'torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl',
        'nvidia_cublas-13.0-py3-none-any.whl',
        'numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl',
        'numpy-1.26.4-cp311-cp311-x.whl',
        'scipy-1.17.1-cp311-cp311-manylinux_2_28_x86_64.whl',
        'setuptools-80.10.2-py3-none-any.whl',
        'mmcv-2.1.0.tar.gz',
    ]
    have = {'numpy': '2.4.6', 'setuptools': '80.10.2', 'torch': '2.14.1'}
    assert wheelhouse.select_dropped(files, have) == files[:3]  # build tools stay, other versions stay


def test_opencv_standin_is_a_valid_wheel(tmp_path):
    name = wheelhouse.opencv_standin_wheel(str(tmp_path), '5.0.0.93')
    assert name == 'opencv_python-5.0.0.93+looptrans.headless-py3-none-any.whl'
    with zipfile.ZipFile(tmp_path / name) as zf:
        info = 'opencv_python-5.0.0.93+looptrans.headless.dist-info'
        assert sorted(zf.namelist()) == [f'{info}/METADATA', f'{info}/RECORD', f'{info}/WHEEL']
        meta = zf.read(f'{info}/METADATA').decode()
        assert 'Name: opencv-python\n' in meta and 'Requires-Dist: opencv-python-headless\n' in meta
        for line in zf.read(f'{info}/RECORD').decode().splitlines():
            path, digest, size = line.split(',')
            if path.endswith('RECORD'):
                continue
            data = zf.read(path)
            assert int(size) == len(data)
            assert digest == 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    # pip accepts it (no dependency resolution, no network)
    target = tmp_path / 'target'
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--no-index',
            '--target',
            str(target),
            str(tmp_path / name),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    dist = next(md.distributions(path=[str(target)]))
    assert dist.metadata['Name'] == 'opencv-python' and dist.requires == ['opencv-python-headless']


def test_check_refuses_a_wheelhouse_for_another_python(tmp_path, capsys):
    here = f'{sys.version_info[0]}.{sys.version_info[1]}'
    assert wheelhouse.main(['check', str(tmp_path)]) == 1  # no manifest
    (tmp_path / wheelhouse.MANIFEST).write_text(json.dumps(dict(python_version='3.99')))
    assert wheelhouse.main(['check', str(tmp_path)]) == 1
    assert 'made for Python 3.99' in capsys.readouterr().err
    (tmp_path / wheelhouse.MANIFEST).write_text(json.dumps(dict(python_version=here)))
    assert wheelhouse.main(['check', str(tmp_path)]) == 0


def test_make_refuses_a_non_empty_folder_and_bad_version(tmp_path):
    (tmp_path / 'something').write_text('x')
    assert wheelhouse.main(['make', str(tmp_path)]) == 2
    assert wheelhouse.main(['make', str(tmp_path / 'new'), '--python-version', '312']) == 2


def _bash(args, **kw):
    return subprocess.run(['bash', *args], capture_output=True, text=True, timeout=120, **kw)


def test_setup_env_refuses_unknown_options_and_a_python_without_torch(tmp_path):
    proc = _bash([SETUP, '--frobnicate'])
    assert proc.returncode == 2 and 'unknown option --frobnicate' in proc.stderr
    bare = tmp_path / 'bare'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(bare)], check=True)
    venv = tmp_path / 'venv'
    proc = _bash([SETUP, '--system-torch', '--python', str(bare / 'bin' / 'python'), '--venv', str(venv)])
    assert proc.returncode == 2 and 'cannot import torch and torchvision' in proc.stderr
    assert not venv.exists()
    proc = _bash([SETUP, '--wheelhouse', str(tmp_path / 'missing'), '--venv', str(venv)])
    assert proc.returncode == 2 and 'no wheelhouse folder' in proc.stderr
    assert not venv.exists()


def test_make_wheelhouse_usage():
    proc = _bash([MAKE])
    assert proc.returncode == 2 and '--python-version' in proc.stdout
    assert _bash([MAKE, '--help']).returncode == 0


# ---------------------------------------------------------------- end to end
def _torch_closure():
    """Installed distributions torch and torchvision need (themselves included), by normalized name."""
    from packaging.requirements import Requirement

    seen, todo = {}, ['torch', 'torchvision']
    while todo:
        name = wheelhouse.normalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[name] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(req.name)
    return seen


def make_torch_site(folder):
    """A folder of links to torch, torchvision and their dependencies (top-level entries and .dist-info)."""
    os.makedirs(folder, exist_ok=True)
    for dist in _torch_closure().values():
        base = str(dist.locate_file(''))
        tops = {str(f).split('/')[0] for f in dist.files or [] if not str(f).startswith('..')}
        for top in tops:
            src, dst = osp.join(base, top), osp.join(folder, top)
            if osp.exists(src) and not osp.lexists(dst) and top != '__pycache__':
                os.symlink(src, dst)
    return folder


def _cache_root():
    import torch

    root = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
    tag = f'cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}'
    return osp.join(root, 'looptrans', 'offline-install-test', tag)


def _network_off_prefix():
    """``unshare -n`` (a new network namespace with no network) when this machine lets us use it."""
    if shutil.which('unshare') and subprocess.run(['unshare', '-n', 'true'], capture_output=True).returncode == 0:
        return ['unshare', '-n']
    return []


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get('LOOPTRANS_TEST_OFFLINE_INSTALL') != '1',
    reason='downloads a wheelhouse from PyPI and compiles mmcv in a fresh offline venv (~12-15 min on 2 cores the '
    'first time on a machine); opt in with LOOPTRANS_TEST_OFFLINE_INSTALL=1 (.ci/run does)',
)
def test_offline_install_from_wheelhouse_on_system_torch(tmp_path, synthetic_root):
    t0 = time.time()
    node = tmp_path / 'node'  # "the node's Python": torch + torchvision and their dependencies only
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(node)], check=True)
    node_py = str(node / 'bin' / 'python')
    site = subprocess.run(
        [node_py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    torch_site = make_torch_site(str(tmp_path / 'torch-site'))
    with open(osp.join(site, 'node_torch.pth'), 'w') as f:
        f.write(torch_site + '\n')
    probe = subprocess.run([node_py, '-c', 'import torch, torchvision, mmengine'], capture_output=True, text=True)
    assert 'No module named \'mmengine\'' in probe.stderr, probe.stderr  # torch yes, OpenMMLab no
    have = tmp_path / 'node-have.txt'
    freeze = subprocess.run(
        [sys.executable, '-m', 'pip', 'list', '--format=freeze', '--path', torch_site],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    have.write_text(freeze)
    assert re.search(r'(?m)^torch==', freeze) and re.search(r'(?m)^numpy==', freeze)

    # 2. the wheelhouse (network: PyPI)
    house = osp.join(_cache_root(), 'wheelhouse')
    pyver = f'{sys.version_info[0]}.{sys.version_info[1]}'
    proc = subprocess.run(
        ['bash', MAKE, house, '--python-version', pyver, '--have', str(have), '--overwrite'],
        capture_output=True,
        text=True,
        timeout=1800,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = json.load(open(osp.join(house, wheelhouse.MANIFEST)))
    names = {f['name'] for f in info['files']}
    assert 'mmcv-2.1.0.tar.gz' in {f['file'] for f in info['files']}
    assert {
        'mmengine',
        'mmsegmentation',
        'mmpretrain',
        'opencv-python-headless',
        'opencv-python',
        'setuptools',
        'scipy',
    } <= names
    assert not names & {'torch', 'torchvision', 'numpy', 'pillow'}  # on "the node" already
    t_make = time.time() - t0

    # 3. the offline install, compiling mmcv against the node's torch
    venv = tmp_path / 'venv'
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME')}
    env.update(PYTHON=node_py, MAX_JOBS=env.get('MAX_JOBS', str(os.cpu_count() or 2)))
    proc = subprocess.run(
        [*_network_off_prefix(), 'bash', SETUP, '--wheelhouse', house, '--system-torch', '--venv', str(venv)],
        capture_output=True,
        text=True,
        timeout=9000,
        env=env,
        cwd=REPO,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'looptrans environment ready' in log
    t_install = time.time() - t0 - t_make
    vpy = str(venv / 'bin' / 'python')
    where = json.loads(
        subprocess.run(
            [
                vpy,
                '-c',
                'import json, torch, mmcv, mmcv.ops, cv2, mmengine, mmseg, mmpretrain; print(json.dumps('
                '{m.__name__: m.__file__ for m in (torch, mmcv, cv2, mmengine, mmseg, mmpretrain)}))',
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert where['torch'].startswith(torch_site), where  # the node's torch, not a copy
    for mod in ('mmcv', 'cv2', 'mmengine', 'mmseg', 'mmpretrain'):
        assert where[mod].startswith(str(venv)), where
    check = subprocess.run([vpy, '-m', 'pip', 'check'], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    # 4. two iterations of the quick config in the new environment
    work = tmp_path / 'work'
    proc = subprocess.run(
        [
            vpy,
            'tools/train.py',
            QUICK_CONFIG,
            '--work-dir',
            str(work),
            '--cfg-options',
            *tiny_options(synthetic_root, max_iters=2, ckpt_interval=2),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(env, PYTHONUNBUFFERED='1', OMP_NUM_THREADS=str(THREADS)),
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    losses = re.findall(r'Iter\(train\) \[\s*\d+/2\].*?loss: ([\d.naninf]+)', log)
    assert len(losses) == 2 and all(np.isfinite(float(x)) for x in losses), losses
    assert osp.isfile(work / 'iter_2.pth')
    figures = dict(
        wheelhouse_mib=info['total_mib'],
        files=len(info['files']),
        make_s=round(t_make),
        install_s=round(t_install),
        total_s=round(time.time() - t0),
        network_namespace=bool(_network_off_prefix()),
    )
    with open(osp.join(_cache_root(), 'last_run.json'), 'w') as f:
        json.dump(figures, f)
    print('offline install:', figures)
    shutil.rmtree(venv, ignore_errors=True)  # ~0.5 GB; pytest keeps its last three temp folders
