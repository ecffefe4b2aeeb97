"""tools/infer.py and
inference_affordance on a user's images.

- equal file names in different sub-folders overwrote each other's outputs while the tool counted them all;
   an --out-dir inside the input folder was read back as input on every run.
- a float image in [0, 1] was cast to uint8 (a black image); pathlib.Path and PIL images were a TypeError.
- one unreadable image aborted the whole run; --batch-size 0 / -1 and --alpha 5 were accepted.
"""

import os
import os.path as osp
import pathlib
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from conftest import QUICK_CONFIG, REPO, TINY_MODEL, load_tool, save_tiny_checkpoint
from PIL import Image

from looptrans.apis import inference_affordance, init_model, load_image
from looptrans.testing import SYNTHETIC_SEEN_CLASSES

CLASSES = SYNTHETIC_SEEN_CLASSES
MODEL_OPTIONS = TINY_MODEL
TOOL = osp.join(REPO, 'tools', 'infer.py')


tool = load_tool('infer.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


@pytest.fixture(scope='module')
def model(checkpoint):
    return init_model(QUICK_CONFIG, checkpoint, cfg_options=dict(MODEL_OPTIONS))


def _image(seed, h=40, w=56):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _run(checkpoint, inputs, *extra):
    argv = [
        QUICK_CONFIG,
        checkpoint,
        *inputs,
        '--affordance',
        'hold',
        '--cfg-options',
        *[f'{k}={v}' for k, v in MODEL_OPTIONS.items()],
        *extra,
    ]
    return tool.main(argv)


def _outputs(folder):
    return sorted(osp.relpath(osp.join(r, f), folder) for r, _, fs in os.walk(folder) for f in fs)


# ------------------------------------------------------------------ output names and the out-dir
def test_equal_file_names_in_sub_folders_keep_their_relative_path(checkpoint, tmp_path, capsys):
    images = tmp_path / 'images'
    for i, rel in enumerate(['a/cup.jpg', 'b/cup.jpg', 'b/cup.png', 'cup.jpg']):
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / rel), _image(i))
    out_dir = tmp_path / 'out'
    assert _run(checkpoint, [str(images), '--out-dir', str(out_dir)]) == 0
    bases = ('a/cup', 'b/cup_jpg', 'b/cup_png', 'cup')
    expected = sorted(
        [f'{base}_hold{suffix}' for base in bases for suffix in ('.npy', '.png', '_overlay.jpg')]
        + [f'{base}.json' for base in bases]
    )
    assert _outputs(str(out_dir)) == expected
    assert '4 heatmap(s) written' in capsys.readouterr().out


def test_files_given_directly_from_two_folders_do_not_collide(checkpoint, tmp_path, capsys):
    for folder in ('x', 'y'):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / 'mug.jpg'), _image(len(folder)))
    out_dir = tmp_path / 'out'
    assert (
        _run(checkpoint, [str(tmp_path / 'x' / 'mug.jpg'), str(tmp_path / 'y' / 'mug.jpg'), '--out-dir', str(out_dir)])
        == 0
    )
    assert [p for p in _outputs(str(out_dir)) if p.endswith('.npy')] == ['x/mug_hold.npy', 'y/mug_hold.npy']
    assert '2 heatmap(s) written' in capsys.readouterr().out


def test_out_dir_inside_the_input_folder_is_never_read(checkpoint, tmp_path, capsys):
    images = tmp_path / 'images'
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f'im{i}.jpg'), _image(i))
    out_dir = images / 'heatmaps'
    for _ in range(3):
        assert _run(checkpoint, [str(images), '--out-dir', str(out_dir)]) == 0
        assert '2 of 2 image(s)' in capsys.readouterr().out
    assert len(_outputs(str(out_dir))) == 2 * (3 + 1)  # 3 files per heatmap + 1 JSON per image


# ------------------------------------------------------------------ skip unreadable, validate args
def test_unreadable_image_is_skipped_and_reported(checkpoint, tmp_path, capsys):
    images = tmp_path / 'images'
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f'ok{i}.jpg'), _image(i))
    (images / 'broken.jpg').write_bytes(b'<html>not an image</html>')
    out_dir = tmp_path / 'out'
    assert _run(checkpoint, [str(images), '--out-dir', str(out_dir), '--batch-size', '2']) == 1
    captured = capsys.readouterr()
    assert '3 of 4 image(s)' in captured.out and '3 heatmap(s) written' in captured.out
    assert 'broken.jpg' in captured.err and 'skipped' in captured.err
    assert sorted(p for p in _outputs(str(out_dir)) if p.endswith('.npy')) == [f'ok{i}_hold.npy' for i in range(3)]


@pytest.mark.parametrize(
    'option, value',
    [('--batch-size', '0'), ('--batch-size', '-1'), ('--batch-size', 'x'), ('--alpha', '5'), ('--alpha', '-0.1')],
)
def test_bad_arguments_are_refused_by_argparse(option, value, capsys):
    with pytest.raises(SystemExit) as err:
        tool.parse_args(['c.py', 'k.pth', 'x.jpg', '--all', option, value])
    assert err.value.code == 2
    assert option in capsys.readouterr().err


# ------------------------------------------------------------------ --out-dir not writable
def test_unwritable_out_dir_fails_at_start_up_naming_it(checkpoint, tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    cv2.imwrite(str(tmp_path / 'im.jpg'), _image(0))
    out_dir = str(blocker / 'heatmaps')
    assert _run(checkpoint, [str(tmp_path / 'im.jpg'), '--out-dir', out_dir]) == 2
    err = capsys.readouterr().err
    assert '--out-dir' in err and out_dir in err and 'is a file' in err


# ------------------------------------------------------------------ default out-dir is git-ignored
def test_default_out_dir_is_git_ignored():
    if shutil.which('git') is None or not osp.isdir(osp.join(REPO, '.git')):
        pytest.skip('not a git checkout')
    path = osp.join(tool.DEFAULT_OUT_DIR, 'mug_hold.png')
    proc = subprocess.run(['git', 'check-ignore', '-q', path], cwd=REPO)
    assert proc.returncode == 0, f'{path} is not git-ignored'


# ------------------------------------------------------------------ the Python API's inputs
def test_float_images_in_unit_range_equal_uint8(model, tmp_path):
    image = _image(3)
    expected = inference_affordance(model, image, 'hold').heatmaps['hold']
    as_float = inference_affordance(model, image.astype(np.float32) / 255, 'hold').heatmaps['hold']
    np.testing.assert_allclose(as_float, expected, rtol=1e-5, atol=1e-6)
    loaded, _ = load_image(image.astype(np.float64) / 255)
    np.testing.assert_array_equal(loaded, image)


@pytest.mark.parametrize(
    'bad, match',
    [
        (np.full((8, 8, 3), 200.0, np.float32), r'\[0, 1\]'),
        (np.full((8, 8, 3), np.nan, np.float32), 'NaN'),
        (np.full((8, 8, 3), 1000, np.int32), '0-255'),
        (np.zeros((8, 8, 3), bool), 'mask'),
    ],
)
def test_other_arrays_are_refused_clearly(model, bad, match):
    with pytest.raises(ValueError, match=match):
        inference_affordance(model, bad, 'hold')


def test_path_objects_and_pil_images_are_accepted(model, tmp_path):
    image = _image(4)
    path = tmp_path / 'mug.png'  # lossless: the same pixels whichever way it is read
    cv2.imwrite(str(path), image)
    expected = inference_affordance(model, str(path), 'hold')
    from_path = inference_affordance(model, pathlib.Path(path), 'hold')
    from_pil = inference_affordance(model, Image.open(path), 'hold')
    batch = inference_affordance(model, [pathlib.Path(path), Image.fromarray(image[..., ::-1])], 'hold')
    assert from_path.image_path == str(path)
    for result in (from_path, from_pil, *batch):
        np.testing.assert_allclose(result.heatmaps['hold'], expected.heatmaps['hold'], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='batch_size'):
        inference_affordance(model, image, 'hold', batch_size=0)
    with pytest.raises(TypeError, match='path'):
        inference_affordance(model, 12, 'hold')
