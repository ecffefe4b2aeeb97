"""The Python API works when Python runs in a folder that holds a folder named
``looptrans`` (typically the clone itself, ``~/looptrans``), which Python would import as an empty namespace
package: ``LoopTrans is not in the mmseg::model registry``.

The package is installed as a path entry (``package_dir = =projects`` in setup.cfg: the editable install
writes ``projects/`` into a ``.pth`` file). A regular package found on ``sys.path`` wins over a namespace
portion found earlier, whereas setuptools' import-hook (used for the old ``looptrans = projects/looptrans``
mapping) runs only after the whole ``sys.path`` search has produced the namespace package.
"""

import os.path as osp
import subprocess
import sys
import textwrap

from conftest import QUICK_CONFIG, REPO, tool_env

SCRIPT = textwrap.dedent(f'''
    import os.path as osp
    import looptrans
    from looptrans.apis import inference_affordance, init_model
    assert looptrans.__file__ and osp.samefile(osp.dirname(looptrans.__file__),
                                               {osp.join(REPO, 'projects', 'looptrans')!r}), looptrans.__path__
    model = init_model({QUICK_CONFIG!r}, cfg_options={{'model.backbone.arch.num_layers': 1}})
    import numpy as np
    result = inference_affordance(model, np.zeros((32, 32, 3), np.uint8), 'hold')
    print('OK', type(model).__name__, result.heatmaps['hold'].shape)
''')


def _run_in(cwd, *args):
    env = tool_env()
    env.pop('PYTHONPATH', None)  # the package must be found as a user's script finds it
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_api_works_next_to_a_folder_named_looptrans(tmp_path):
    clone = tmp_path / 'looptrans'  # what `git clone .../looptrans` leaves in the current folder
    (clone / 'configs').mkdir(parents=True)
    (clone / 'README.md').write_text('a clone')
    proc = _run_in(str(tmp_path), '-c', SCRIPT)
    assert proc.returncode == 0 and 'OK LoopTrans (32, 32)' in proc.stdout, proc.stderr[-3000:]


def test_api_works_from_inside_the_clone_parent_with_a_script(tmp_path):
    clone = tmp_path / 'looptrans'
    clone.mkdir()
    script = tmp_path / 'demo.py'  # a script next to the clone: its folder is sys.path[0]
    script.write_text(SCRIPT)
    proc = _run_in(str(tmp_path), str(script))
    assert proc.returncode == 0 and 'OK LoopTrans' in proc.stdout, proc.stderr[-3000:]
