"""Build a wheelhouse for installing looptrans on a machine without internet (see make_wheelhouse.sh).

Standard library only: it runs with any Python that has pip, on the machine that has internet.

What goes in (for one target Python version, Linux x86_64, manylinux up to ``--glibc``):

- mmcv's source distribution (``requirements/mminstall.txt``; it is compiled on the target machine,
  against the torch there),
- wheels of everything the install needs besides torch/torchvision: the build tools
  (``requirements/build.txt`` and pip), mmcv's own dependencies (read from the sdist's
  ``requirements/runtime.txt``, plus ``opencv-python``, which mmcv's setup.py adds), and
  ``requirements/runtime.txt`` (mmengine, mmsegmentation, mmpretrain, ...) with all their dependencies,
  resolved with ``pip download --only-binary=:all: --python-version X.Y --platform ...``.

Not in it: torch, torchvision (the target machine brings its own; nothing here depends on them) and the test
tools (``requirements/tests.txt``: timm needs torch). ``--have FILE`` (the target interpreter's
``python -m pip list --format=freeze``) leaves out what the target already has: the download is resolved
with those versions pinned (so the installed ones satisfy the requirements), then their files are dropped.
The build tools (pip, setuptools, wheel, ninja) are always kept: the install's own venv gets them.

``wheelhouse.json`` in the folder records the target, every file with its size, and what was left out;
``setup_env.sh --wheelhouse DIR`` reads it to refuse a wheelhouse made for another Python version.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MANIFEST = 'wheelhouse.json'
# Always in the wheelhouse (the install creates a venv that needs its own build tools), whatever --have says.
BUILD_TOOLS = ('pip', 'setuptools', 'wheel', 'ninja')
# Never in the wheelhouse: the target machine brings its own CUDA torch (and its CUDA libraries).
NEVER = re.compile(r'^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$')
MAX_MIB_DEFAULT = 64.0


def normalize_name(name: str) -> str:
    """PEP 503 project name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def dist_of_file(filename: str) -> Optional[Tuple[str, str]]:
    """(normalized name, version) of a wheel or sdist file name, or None for other files."""
    base = osp.basename(filename)
    if base.endswith('.whl'):
        parts = base[:-4].split('-')
        if len(parts) in (5, 6):
            return normalize_name(parts[0]), parts[1]
        return None
    for ext in ('.tar.gz', '.zip', '.tar.bz2', '.tgz'):
        if base.endswith(ext):
            stem = base[: -len(ext)]
            name, sep, version = stem.rpartition('-')
            if sep and name and version:
                return normalize_name(name), version
    return None


def parse_have(text: str) -> Tuple[Dict[str, str], List[str]]:
    """``name==version`` lines of a ``pip list --format=freeze`` / ``pip freeze`` output.

    Returns ({normalized name: version}, ignored lines). Lines without a pinned version (``name @ url``,
    ``-e ...``, comments) cannot say what is installed and are returned as ignored.
    """
    have: Dict[str, str] = {}
    ignored: List[str] = []
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;]+)', line)
        if m:
            have[normalize_name(m.group(1))] = m.group(2)
        else:
            ignored.append(raw.strip())
    return have, ignored


def read_requirements(path: str) -> List[str]:
    """Requirement lines of a requirements file (comments, blank lines and options dropped)."""
    out = []
    with open(path) as f:
        for raw in f:
            line = raw.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                out.append(line)
    return out


def sdist_runtime_requirements(sdist: str) -> List[str]:
    """``requirements/runtime.txt`` inside an sdist (mmcv's setup.py reads its install_requires from it)."""
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split('/')
            if parts[1:] == ['requirements', 'runtime.txt']:
                data = tar.extractfile(member).read().decode()
                return [ln.split('#', 1)[0].strip() for ln in data.splitlines() if ln.split('#', 1)[0].strip()]
    raise RuntimeError(f'{sdist} has no requirements/runtime.txt')


def manylinux_platforms(glibc: str) -> List[str]:
    """``--platform`` values for x86_64 manylinux wheels that run on glibc ``glibc`` (e.g. 2.28).

    pip does not expand ``manylinux_2_28`` to the older tags itself, so every one is named.
    """
    major, minor = (int(x) for x in glibc.split('.'))
    if major != 2 or minor < 17:
        raise ValueError(f'--glibc must be 2.17 or newer, got {glibc}')
    tags = [f'manylinux_2_{m}_x86_64' for m in range(minor, 16, -1)]
    return tags + ['manylinux2014_x86_64', 'manylinux2010_x86_64', 'manylinux1_x86_64']


def files_in(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if dist_of_file(f) is not None)


def select_dropped(files: Iterable[str], have: Dict[str, str]) -> List[str]:
    """Files to leave out: torch & co always; files whose exact name and version the target already has."""
    dropped = []
    for f in files:
        dist = dist_of_file(f)
        if dist is None:
            continue
        name, version = dist
        if NEVER.match(name):
            dropped.append(f)
        elif name not in BUILD_TOOLS and have.get(name) == version:
            dropped.append(f)
    return dropped


def summary(folder: str, max_mib: float) -> dict:
    """Sizes of the wheelhouse's files (bytes) and the total in MiB."""
    files = [
        dict(file=f, name=dist_of_file(f)[0], version=dist_of_file(f)[1], bytes=os.path.getsize(osp.join(folder, f)))
        for f in files_in(folder)
    ]
    total = sum(x['bytes'] for x in files)
    return dict(files=files, total_bytes=total, total_mib=round(total / 2**20, 2), max_mib=max_mib)


def opencv_standin_wheel(folder: str, version: str) -> str:
    """Write a files-less ``opencv-python`` wheel that depends on ``opencv-python-headless``; return its name.

    mmengine's wheel requires ``opencv-python`` by name, which needs libGL.so.1 (often absent on GPU
    nodes) and is 16 MiB larger than the headless build with the same ``cv2``. The stand-in satisfies that
    requirement with the headless build; its version carries the local label ``+looptrans.headless`` so
    ``pip list`` shows what it is. mmcv's setup.py picks ``opencv-python-headless`` itself when installed.
    """
    full = f'{version}+looptrans.headless'
    info = f'opencv_python-{full}.dist-info'
    metadata = (
        'Metadata-Version: 2.1\nName: opencv-python\n'
        f'Version: {full}\n'
        'Summary: Stand-in for opencv-python that installs opencv-python-headless (the same cv2, no '
        'GUI, no libGL); written by looptrans tools/install/make_wheelhouse.sh\n'
        'Requires-Dist: opencv-python-headless\n'
    )
    wheel = 'Wheel-Version: 1.0\nGenerator: looptrans make_wheelhouse\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
    name = f'opencv_python-{full}-py3-none-any.whl'
    record = []
    with zipfile.ZipFile(osp.join(folder, name), 'w', zipfile.ZIP_DEFLATED) as zf:
        for member, text in ((f'{info}/METADATA', metadata), (f'{info}/WHEEL', wheel)):
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
            zf.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data)
            record.append(f'{member},sha256={digest},{len(data)}')
        record.append(f'{info}/RECORD,,')
        zf.writestr(zipfile.ZipInfo(f'{info}/RECORD', date_time=(1980, 1, 1, 0, 0, 0)), '\n'.join(record) + '\n')
    return name


def run(cmd: Sequence[str], env: Optional[Dict[str, str]] = None) -> int:
    print('+ ' + ' '.join(cmd), flush=True)
    return subprocess.call(list(cmd), env=env)


def make(args: argparse.Namespace) -> int:
    out = osp.abspath(args.dir)
    if osp.isdir(out) and os.listdir(out):
        if not args.overwrite:
            print(f'make_wheelhouse: {out} is not empty (use --overwrite to replace its contents)', file=sys.stderr)
            return 2
        for f in os.listdir(out):
            path = osp.join(out, f)
            shutil.rmtree(path) if osp.isdir(path) and not osp.islink(path) else os.remove(path)
    os.makedirs(out, exist_ok=True)
    pyver = args.python_version
    if not re.fullmatch(r'3\.\d+', pyver):
        print(f'make_wheelhouse: --python-version must look like 3.12, got {pyver!r}', file=sys.stderr)
        return 2
    pip = [args.python, '-m', 'pip']
    have: Dict[str, str] = {}
    if args.have:
        with open(args.have) as f:
            have, ignored = parse_have(f.read())
        if ignored:
            print(
                f'make_wheelhouse: ignored {len(ignored)} line(s) of {args.have} without a pinned version '
                f'(use `python -m pip list --format=freeze` on the target): {ignored[:5]}'
            )

    req = osp.join(REPO, 'requirements')
    mm = read_requirements(osp.join(req, 'mminstall.txt'))
    # 1. mmcv's sources (no wheel of mmcv 2.1.0 with ops exists for a custom torch: it is compiled there).
    #    pip prepares an sdist's metadata even to download it, in an isolated build env whose setuptools
    #    must still have pkg_resources (mmcv's setup.py imports it): PIP_BUILD_CONSTRAINT (pip >= 25.3)
    #    or PIP_CONSTRAINT (older pips apply it to build envs too) pins setuptools there.
    build_pins = [
        r
        for r in read_requirements(osp.join(req, 'build.txt'))
        if normalize_name(re.split(r'[<>=!~; ]', r, 1)[0]) == 'setuptools'
    ]
    with tempfile.NamedTemporaryFile('w', suffix='-build-constraints.txt', delete=False) as f:
        f.write(''.join(p + '\n' for p in build_pins))
        build_constraints = f.name
    env = dict(os.environ)
    for var in ('PIP_CONSTRAINT', 'PIP_BUILD_CONSTRAINT'):
        env[var] = ' '.join(x for x in (os.environ.get(var, ''), build_constraints) if x)
    try:
        status = run(pip + ['download', '-q', '--no-deps', '--no-binary', ':all:', '-d', out, *mm], env=env)
    finally:
        os.remove(build_constraints)
    if status != 0:
        return 1
    sdists = [f for f in files_in(out) if not f.endswith('.whl')]
    mmcv_deps: List[str] = []
    for s in sdists:
        mmcv_deps += sdist_runtime_requirements(osp.join(out, s))
    mmcv_deps.append('opencv-python>=3')  # mmcv's setup.py adds it (or -headless, when that is installed)

    # 2. Wheels of everything else, for the target Python and platform.
    target = [
        '--only-binary=:all:',
        '--python-version',
        pyver,
        '--implementation',
        'cp',
        '--abi',
        'cp' + pyver.replace('.', ''),
    ]
    for p in manylinux_platforms(args.glibc):
        target += ['--platform', p]
    reqs = [
        'pip>=23.2',
        *read_requirements(osp.join(req, 'build.txt')),
        *mmcv_deps,
        *read_requirements(osp.join(req, 'runtime.txt')),
    ]
    download = pip + ['download', '-q', '-d', out, *target, *reqs]
    pinned = {n: v for n, v in have.items() if n not in BUILD_TOOLS and not NEVER.match(n)}
    status = 1
    if pinned:
        with tempfile.NamedTemporaryFile('w', suffix='-have-constraints.txt', delete=False) as f:
            f.write(''.join(f'{n}=={v}\n' for n, v in sorted(pinned.items())))
            constraints = f.name
        try:
            status = run(download + ['-c', constraints])
        finally:
            os.remove(constraints)
        if status != 0:
            print(
                'make_wheelhouse: the versions in --have conflict with the requirements; resolving without '
                'them (files that still match an installed version are left out)',
                flush=True,
            )
    if status != 0:
        status = run(download)
    if status != 0:
        return 1

    opencv_note = None
    if args.opencv == 'headless' and 'opencv-python' not in have:
        # 3. opencv-python -> opencv-python-headless of the same version (or the one the target has), and a
        #    stand-in opencv-python that depends on it (see opencv_standin_wheel).
        full = [f for f in files_in(out) if dist_of_file(f)[0] == 'opencv-python']
        version = have.get('opencv-python-headless') or (dist_of_file(full[0])[1] if full else None)
        if version is None:
            print('make_wheelhouse: no opencv-python was resolved; cannot switch to headless', file=sys.stderr)
            return 1
        for f in full:
            os.remove(osp.join(out, f))
        if 'opencv-python-headless' not in have:
            if (
                run(pip + ['download', '-q', '--no-deps', '-d', out, *target, f'opencv-python-headless=={version}'])
                != 0
            ):
                return 1
        opencv_note = opencv_standin_wheel(out, version)

    dropped = select_dropped(files_in(out), have)
    for f in dropped:
        os.remove(osp.join(out, f))
    info = summary(out, args.max_mib)
    info.update(
        python_version=pyver,
        implementation='cp',
        glibc=args.glibc,
        platforms=manylinux_platforms(args.glibc),
        left_out=dropped,
        requirements=reqs,
        have_file=osp.abspath(args.have) if args.have else None,
        opencv=args.opencv,
        opencv_standin=opencv_note,
    )
    with open(osp.join(out, MANIFEST), 'w') as f:
        json.dump(info, f, indent=1)
        f.write('\n')
    print_summary(out, info, dropped)
    if info['total_mib'] > args.max_mib:
        print(
            f'make_wheelhouse: WARNING: {info["total_mib"]:.1f} MiB is over the {args.max_mib:g} MiB '
            'budget. The largest files are listed above; pass --have with the target\'s '
            '`python -m pip list --format=freeze` to leave out what it already has.',
            flush=True,
        )
        if args.strict_size:
            return 3
    return 0


def print_summary(out: str, info: dict, dropped: List[str]) -> None:
    files = sorted(info['files'], key=lambda x: -x['bytes'])
    print(f'wheelhouse: {out}')
    print(f'  for CPython {info["python_version"]} on Linux x86_64 with glibc >= {info["glibc"]}')
    print(f'  {len(files)} files, {info["total_mib"]:.1f} MiB; largest:')
    for x in files[:6]:
        print(f'    {x["bytes"] / 2**20:7.1f} MiB  {x["file"]}')
    if info.get('opencv_standin'):
        print(f'  opencv: opencv-python-headless + stand-in {info["opencv_standin"]}')
    if dropped:
        print(
            f'  left out ({len(dropped)}, already on the target or torch): '
            + ', '.join(sorted({dist_of_file(f)[0] for f in dropped}))
        )


def check(args: argparse.Namespace) -> int:
    """Exit 0 when the wheelhouse at ``args.dir`` fits the running interpreter's Python version."""
    path = osp.join(args.dir, MANIFEST)
    if not osp.isfile(path):
        print(
            f'setup_env: {args.dir} has no {MANIFEST}: not made by tools/install/make_wheelhouse.sh?', file=sys.stderr
        )
        return 1
    with open(path) as f:
        info = json.load(f)
    here = f'{sys.version_info[0]}.{sys.version_info[1]}'
    if info.get('python_version') != here:
        print(
            f'setup_env: the wheelhouse {args.dir} was made for Python {info.get("python_version")}, but '
            f'the environment runs Python {here}. Make it with `make_wheelhouse.sh DIR --python-version '
            f'{here}` or point --python at a Python {info.get("python_version")}.',
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    mk = sub.add_parser('make', help='download the wheelhouse')
    mk.add_argument('dir')
    mk.add_argument('--python-version', default='3.11', help='target CPython version, e.g. 3.12')
    mk.add_argument(
        '--glibc',
        default='2.28',
        help='oldest glibc of the target (torch >= 2.6 wheels need 2.28); wheels up to this manylinux tag are taken',
    )
    mk.add_argument('--have', help="the target's `python -m pip list --format=freeze`: leave those out")
    mk.add_argument('--python', default=sys.executable, help='interpreter whose pip downloads')
    mk.add_argument('--max-mib', type=float, default=MAX_MIB_DEFAULT, help='size budget to warn about')
    mk.add_argument('--strict-size', action='store_true', help='exit 3 when over --max-mib')
    mk.add_argument(
        '--opencv',
        choices=['headless', 'python'],
        default='headless',
        help='headless (default): opencv-python-headless plus a stand-in opencv-python wheel '
        '(no libGL needed, ~15 MiB smaller); python: the opencv-python wheel itself',
    )
    mk.add_argument('--overwrite', action='store_true', help='empty DIR first if it has files')
    ck = sub.add_parser('check', help="exit 0 if DIR's wheelhouse fits this interpreter")
    ck.add_argument('dir')
    args = parser.parse_args(argv)
    return make(args) if args.command == 'make' else check(args)


if __name__ == '__main__':
    sys.exit(main())
