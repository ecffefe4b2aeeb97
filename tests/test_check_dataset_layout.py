"""The dataset tree and tools/misc/check_dataset.py.

- two GT files with one stem (a.png, a.PNG): one was used without a word.
- a symlink loop in the tree gave a raw OSError.
- a valid 15000x12500 JPEG was "unreadable"; --decode header gave size warnings on EXIF-rotated JPEGs
    that the full decode did not (header and decoder disagreed on the size; both now follow the pipeline's
    LoadAffordanceViews(ignore_orientation=...)); an egocentric object folder without its exocentric folder
    said "No problem found"; paths with a trailing space were printed unquoted.
"""

import io
import logging
import os
import os.path as osp
import shutil
import struct

import cv2
import numpy as np
import pytest
from conftest import REPO, load_tool
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from PIL import Image

from looptrans.datasets import AGD20KDataset, LoadAffordanceViews
from looptrans.datasets.file_io import probe_file
from looptrans.datasets.folder_layout import SymlinkLoopError
from looptrans.testing import SYNTHETIC_SEEN_CLASSES

CLASSES = list(SYNTHETIC_SEEN_CLASSES)
TOOL = osp.join(REPO, 'tools', 'misc', 'check_dataset.py')


tool = load_tool('misc', 'check_dataset.py')
check_tree = tool.check_tree


@pytest.fixture
def tree(synthetic_root, tmp_path):
    dst = str(tmp_path / 'tree')
    shutil.copytree(osp.join(synthetic_root, 'Seen'), osp.join(dst, 'Seen'))
    init_default_scope('mmseg')
    return dst


def p(root, *parts):
    return osp.join(root, 'Seen', *parts)


def _paths(report, code):
    return sorted(x.path for x in report.problems if x.code == code)


def run(argv, capsys):
    code = tool.main(argv + ['--no-progress'])
    return code, capsys.readouterr().out


class _Log:
    def __init__(self):
        self.records = []

    def text(self, level=logging.WARNING):
        return '\n'.join(r.getMessage() for r in self.records if r.levelno >= level)


@pytest.fixture
def log():
    logger = MMLogger.get_current_instance()
    capture = _Log()

    class Handler(logging.Handler):
        def emit(self, record):
            capture.records.append(record)

    handler = Handler(level=logging.DEBUG)
    logger.addHandler(handler)
    yield capture
    logger.removeHandler(handler)


# ------------------------------------------------------------------ duplicate GT stems
def test_duplicate_gt_stems_are_an_error(tree, capsys):
    gt = p(tree, 'testset', 'GT', 'hold', 'cup', 'cup_000000.png')
    twin = gt[:-4] + '.PNG'
    cv2.imwrite(twin + '.tmp.png', np.zeros((8, 8), np.uint8))
    os.replace(twin + '.tmp.png', twin)
    with pytest.raises(ValueError) as info:
        AGD20KDataset(tree, split='Seen', mode='test', metainfo=dict(classes=CLASSES), lazy_init=False)
    assert repr(gt) in str(info.value) and repr(twin) in str(info.value)
    report = check_tree(tree, CLASSES, split='Seen', decode=None)
    (found,) = [x for x in report.problems if x.code == 'duplicate_gt']
    assert {found.path, found.detail.split('same stem as ')[-1].strip("'")} == {gt, twin}
    assert not report.ok
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--decode', 'none'], capsys)
    assert code == 1 and 'ERROR [duplicate_gt] 1 x' in out and repr(twin) in out and repr(gt) in out


# ------------------------------------------------------------------ symlink loop
def test_symlink_loop_is_a_clear_error(tree, capsys):
    link = p(tree, 'trainset', 'exocentric', 'hold', 'cup', 'loop')
    os.symlink('..', link)  # hold/cup/loop -> hold
    with pytest.raises(SymlinkLoopError) as info:
        AGD20KDataset(tree, split='Seen', mode='train', metainfo=dict(classes=CLASSES))
    message = str(info.value)
    assert repr(link) in message and "'..'" in message and 'hold' in message
    self_link = p(tree, 'testset', 'egocentric', 'hold', 'cup', 'me')
    os.symlink('me', self_link)  # a link to itself
    report = check_tree(tree, CLASSES, split='Seen', decode=None)
    assert _paths(report, 'symlink_loop') == sorted([link, self_link])
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--decode', 'none'], capsys)
    assert code == 1 and 'ERROR [symlink_loop] 2 x' in out


def test_symlinked_folders_without_a_loop_are_followed(tree):
    exo = p(tree, 'trainset', 'exocentric', 'hold')
    shutil.move(osp.join(exo, 'cup'), osp.join(tree, 'cup_elsewhere'))
    os.symlink(osp.join(tree, 'cup_elsewhere'), osp.join(exo, 'cup'))
    ds = AGD20KDataset(tree, split='Seen', mode='train', metainfo=dict(classes=CLASSES))
    assert ('hold', 'cup') in ds._exo_folders and len(ds._exo_folders[('hold', 'cup')]) == 3


# ------------------------------------------------------------------ huge JPEG
def _jpeg_with_size(height, width):
    """A small valid JPEG whose frame header (SOF0) says height x width: PIL's header parse sees a
    height x width image, as it would for a real photo of that size."""
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buf, format='JPEG')
    data = bytearray(buf.getvalue())
    sof = data.find(b'\xff\xc0')
    data[sof + 5 : sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def test_huge_jpeg_header_is_not_called_unreadable(tmp_path):
    path = tmp_path / 'huge.jpg'
    path.write_bytes(_jpeg_with_size(12500, 15000))  # 187.5 M pixels > 2 x PIL's limit
    probe = probe_file(str(path), level='header')
    assert probe.error is None, probe.error
    assert probe.shape == (12500, 15000)
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's global limit is left as it was


def test_full_decode_ignores_pils_pixel_limit(tmp_path, monkeypatch):
    # the same mechanism on a small file: PIL's limit lowered below the image's pixel count
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
    path = tmp_path / 'photo.jpg'
    cv2.imwrite(str(path), np.full((40, 60, 3), 90, np.uint8))
    probe = probe_file(str(path), level='full')
    assert probe.error is None and probe.shape == (40, 60)
    assert Image.MAX_IMAGE_PIXELS == 100


# ------------------------------------------------------------------ EXIF rotation
def _exif_rotated_jpeg(path, stored_hw, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    h, w = stored_hw
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
        path, format='JPEG', exif=exif.tobytes()
    )


@pytest.mark.parametrize('ignore_orientation', [True, False])
@pytest.mark.parametrize('orientation', [6, 8, 3])
def test_header_size_agrees_with_the_pipeline_decoder_on_exif_rotation(tmp_path, orientation, ignore_orientation):
    path = str(tmp_path / 'rot.jpg')
    _exif_rotated_jpeg(path, (40, 64), orientation)
    loader = LoadAffordanceViews(ignore_orientation=ignore_orientation)  # what training / testing see
    seen = loader.transform(dict(img_path=path))['img'].shape[:2]
    header = probe_file(path, level='header', ignore_orientation=ignore_orientation)
    full = probe_file(path, level='full', ignore_orientation=ignore_orientation)
    assert header.shape == full.shape == tuple(seen)
    assert header.exif_orientation == orientation


@pytest.mark.parametrize('exif', ['ignore', 'apply'])
def test_exif_rotated_test_images_header_and_full_agree(tree, capsys, exif):
    image = p(tree, 'testset', 'egocentric', 'hold', 'cup', 'cup_000000.jpg')
    gt = p(tree, 'testset', 'GT', 'hold', 'cup', 'cup_000000.png')
    h, w = cv2.imread(gt, cv2.IMREAD_GRAYSCALE).shape
    _exif_rotated_jpeg(image, (w, h), 6)  # stored sideways; upright (as viewers show it) h x w like its GT
    found = {}
    for decode in ('header', 'full'):
        code, out = run(
            [
                '--data-root',
                tree,
                '--classes',
                *CLASSES,
                '--mode',
                'test',
                '--decode',
                decode,
                '--exif-orientation',
                exif,
                '--max-paths',
                '-1',
            ],
            capsys,
        )
        found[decode] = ('[gt_size_mismatch]' in out, '[exif_rotated] 1 x' in out)
    # the pipeline reads the image as stored (ignore): GT and image really differ, at both levels;
    # turned upright (apply): they match, at both levels (before: header and full disagreed)
    assert found['header'] == found['full'] == ((exif == 'ignore'), True)


def test_check_dataset_takes_the_orientation_setting_from_the_config(tree, capsys, tmp_path):
    cfg = tmp_path / 'apply.py'
    cfg.write_text(
        f"_base_ = ['{osp.join(REPO, 'configs', 'looptrans_synthetic.py')}']\n"
        "train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadAffordanceViews', "
        "ignore_orientation=False)]))\n"
    )
    code, out = run(['--config', str(cfg), '--data-root', tree, '--decode', 'none'], capsys)
    assert 'exif-orientation=apply' in out
    code, out = run(
        ['--config', osp.join(REPO, 'configs', 'looptrans_synthetic.py'), '--data-root', tree, '--decode', 'none'],
        capsys,
    )
    assert 'exif-orientation=ignore' in out


# ------------------------------------------------------------------ egocentric folder never used
def test_egocentric_object_without_exocentric_folder_is_reported(tree, capsys, log):
    ego = p(tree, 'trainset', 'egocentric', 'hold', 'teapot')
    os.makedirs(ego)
    shutil.copy(p(tree, 'trainset', 'egocentric', 'hold', 'cup', 'cup_000000.jpg'), osp.join(ego, 't.jpg'))
    report = check_tree(tree, CLASSES, split='Seen', decode=None)
    assert _paths(report, 'ego_unused') == [ego]
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--decode', 'none'], capsys)
    assert code == 0 and 'WARNING [ego_unused] 1 x' in out and 'No problem found' not in out
    AGD20KDataset(tree, split='Seen', mode='train', metainfo=dict(classes=CLASSES))
    assert 'never used' in log.text() and 'hold/teapot' in log.text()


def test_egocentric_folder_used_as_a_fallback_is_not_reported(tree):
    # hold/knife has exocentric images but no egocentric folder: hold/teapot's images are its fallback
    shutil.rmtree(p(tree, 'trainset', 'egocentric', 'hold', 'knife'))
    ego = p(tree, 'trainset', 'egocentric', 'hold', 'teapot')
    os.makedirs(ego)
    shutil.copy(p(tree, 'trainset', 'egocentric', 'hold', 'cup', 'cup_000000.jpg'), osp.join(ego, 't.jpg'))
    report = check_tree(tree, CLASSES, split='Seen', decode=None)
    assert _paths(report, 'ego_unused') == [] and _paths(report, 'ego_fallback')


# ------------------------------------------------------------------ quoted paths
def test_paths_are_printed_quoted(tree, capsys):
    odd = p(tree, 'trainset', 'exocentric', 'hold', 'teapot ')  # trailing space
    os.makedirs(odd)
    code, out = run(['--data-root', tree, '--classes', *CLASSES, '--decode', 'none'], capsys)
    assert repr(odd) in out
    assert f'    {odd}\n' not in out
