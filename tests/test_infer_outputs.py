"""tools/infer.py and the inference API against inputs and disks that go wrong: every JSON names its own
image, outputs are whole or absent, a full disk or an over-long name is reported per image, a saturated map
and a model trained on generated data say so, degenerate maps keep their peak inside their mask."""

import errno
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, TINY_MODEL, load_tool, save_tiny_checkpoint

from looptrans.apis import describe_heatmap, inference_affordance, init_model, model_warnings
from looptrans.testing import SYNTHETIC_SEEN_CLASSES
from looptrans.utils import BrokenCheckpointError, safe_torch_load

tool = load_tool('infer.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


def _image(seed, h=40, w=56):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _run(checkpoint, inputs, *extra):
    argv = [QUICK_CONFIG, checkpoint, *inputs, '--affordance', 'hold', '--cfg-options']
    return tool.main(argv + [f'{k}={v}' for k, v in TINY_MODEL.items()] + list(extra))


def _write_images(folder, names, broken=()):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        if name in broken:
            (folder / name).write_bytes(b'\xff\xd8 not really a jpeg')
        else:
            cv2.imwrite(str(folder / name), _image(i, 30 + i, 40 + 2 * i))  # each image its own size


def test_each_json_names_its_own_image_when_a_batch_holds_unreadable_ones(checkpoint, tmp_path):
    names = [f'im{i:02d}.png' for i in range(10)]
    broken = {'im01.png', 'im04.png', 'im05.png'}
    _write_images(tmp_path / 'images', names, broken)
    out = tmp_path / 'out'
    assert _run(checkpoint, [str(tmp_path / 'images'), '--out-dir', str(out), '--batch-size', '4']) == 1
    for name in names:
        stem = osp.splitext(name)[0]
        if name in broken:
            assert not (out / f'{stem}.json').exists()
            continue
        record = json.loads((out / f'{stem}.json').read_text())
        assert record['image'] == str(tmp_path / 'images' / name)
        height, width = cv2.imread(record['image']).shape[:2]  # sizes differ per image: the pairing is checked
        assert (record['height'], record['width']) == (height, width)
        assert np.load(out / f'{stem}_hold.npy').shape == (height, width)


def test_a_full_disk_stops_cleanly_listing_what_was_not_written(checkpoint, tmp_path, monkeypatch, capsys):
    _write_images(tmp_path / 'images', [f'im{i}.png' for i in range(5)])
    calls = {'n': 0}
    real = tool.atomic_write_bytes

    def fill_up(data, path, durable=True):
        calls['n'] += 1
        if calls['n'] > 6:  # image 0 and half of image 1 fit (4 files each: .npy, .png, overlay, .json)
            raise OSError(errno.ENOSPC, 'No space left on device', path)
        real(data, path, durable)

    monkeypatch.setattr(tool, 'atomic_write_bytes', fill_up)
    out = tmp_path / 'out'
    assert _run(checkpoint, [str(tmp_path / 'images'), '--out-dir', str(out)]) == 1
    captured = capsys.readouterr()
    assert '1 of 5 image(s)' in captured.out and '1 heatmap(s) written' in captured.out
    assert 'stopped: 4 image(s) have no (or incomplete) outputs' in captured.err
    for i in range(1, 5):
        assert f'im{i}.png' in captured.err
    assert 'No space left on device' in captured.err
    assert calls['n'] == 7  # nothing more was attempted after the disk was full
    leftovers = [name for name in os.listdir(out) if name.endswith('.tmp')]
    assert leftovers == []  # no temporary file, and no torn file at a final name


def test_an_over_long_output_name_skips_that_image_only(checkpoint, tmp_path, capsys):
    images = tmp_path / 'images'
    long_name = 'x' * 245 + '.png'  # fits the file system; '<name>_hold_overlay.jpg' does not
    _write_images(images, ['a.png', long_name, 'b.png'])
    out = tmp_path / 'out'
    assert _run(checkpoint, [str(images), '--out-dir', str(out)]) == 1
    captured = capsys.readouterr()
    assert '2 of 3 image(s)' in captured.out
    assert long_name in captured.err and 'File name too long' in captured.err
    assert (out / 'a.json').exists() and (out / 'b.json').exists()
    assert not [name for name in os.listdir(out) if name.endswith('.tmp')]


def test_outputs_are_written_atomically(checkpoint, tmp_path, monkeypatch):
    """A failure while writing a file leaves no file at its final name (the old one, if any, stays whole)."""
    _write_images(tmp_path / 'images', ['a.png'])
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'a_hold.npy').write_bytes(b'old')
    real_replace = os.replace

    def die_on_npy(src, dst):
        if str(dst).endswith('.npy'):
            raise OSError(errno.EIO, 'Input/output error', dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', die_on_npy)
    assert _run(checkpoint, [str(tmp_path / 'images'), '--out-dir', str(out)]) == 1
    assert (out / 'a_hold.npy').read_bytes() == b'old'
    assert sorted(os.listdir(out)) == ['a_hold.npy']


def test_tilde_in_out_dir_is_the_home_folder(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path)
    _write_images(tmp_path / 'images', ['a.png'])
    assert _run(checkpoint, [str(tmp_path / 'images'), '--out-dir', '~/out']) == 0
    assert (tmp_path / 'home' / 'out' / 'a.json').exists()
    assert not (tmp_path / '~').exists()


def test_onnx_file_without_the_onnx_backend_names_the_flag(tmp_path, capsys):
    onnx = pytest.importorskip('onnx')
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node('Identity', ['x'], ['y'])],
        'g',
        [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1])],
    )
    path = tmp_path / 'model.onnx'
    onnx.save(onnx.helper.make_model(graph, producer_name='pytorch'), str(path))
    with pytest.raises(BrokenCheckpointError, match='--backend onnxruntime') as err:
        safe_torch_load(str(path))
    assert 'interrupted save' not in str(err.value)
    _write_images(tmp_path / 'images', ['a.png'])
    assert _run(str(path), [str(tmp_path / 'images'), '--out-dir', str(tmp_path / 'out')]) == 2
    assert '--backend onnxruntime' in capsys.readouterr().err


# ------------------------------------------------------------------ degenerate and saturated maps
def test_constant_map_has_its_peak_inside_a_full_mask():
    for heat in (np.zeros((1, 1)), np.full((4, 6), 0.3)):
        region = describe_heatmap(heat, 0.9)
        x, y = region.peak
        assert region.mask[y, x]
        assert region.bbox == (0, 0, heat.shape[1] - 1, heat.shape[0] - 1)
        assert region.saturation == 1.0 and region.saturated


def test_a_constant_map_with_resize_rounding_is_still_constant():
    """A constant float32 map resized bilinearly differs by ~1e-8 between pixels; min-max normalised, that noise
    would be a mask and a low saturation. Below CONSTANT_RANGE of the magnitude the map is constant."""
    import torch
    import torch.nn.functional as F

    flat = torch.full((1, 1, 4, 4), -0.025965704)
    heat = F.interpolate(flat, size=(67, 83), mode='bilinear', align_corners=False)[0, 0].numpy()
    noise = np.random.RandomState(0).uniform(-3e-9, 3e-9, heat.shape).astype(np.float32)
    region = describe_heatmap(heat + noise)
    assert region.saturation == 1.0 and region.mask.all()
    real = np.zeros((10, 10), np.float32)
    real[2:4, 2:4] = 1e-4  # a small but real bump (10x the tolerance at this magnitude) still localises
    region = describe_heatmap(real)
    assert region.area == 4 and not region.saturated


def test_saturation_is_the_share_of_pixels_near_the_maximum():
    heat = np.zeros((10, 10))
    heat[:6] = 1.0  # 60 % at the maximum
    heat[6, :5] = 0.95  # 5 % more above 0.9 of the range
    heat[7, 0] = 0.85  # below
    region = describe_heatmap(heat)
    assert region.saturation == pytest.approx(0.65)
    assert region.saturated
    heat[:6] = 0.0
    heat[0, 0] = 1.0
    region = describe_heatmap(heat)
    assert region.saturation == pytest.approx(0.06) and not region.saturated
    assert region.to_dict()['saturated'] is False and region.to_dict()['saturation'] == pytest.approx(0.06)


def test_one_pixel_image_gives_a_box_and_a_peak_inside_it(checkpoint, tmp_path):
    path = tmp_path / 'dot.png'
    cv2.imwrite(str(path), np.full((1, 1, 3), 128, np.uint8))
    model = init_model(QUICK_CONFIG, checkpoint, cfg_options=dict(TINY_MODEL))
    region = inference_affordance(model, str(path), 'hold').regions['hold']
    assert region.bbox == (0, 0, 0, 0) and region.peak == (0, 0) and region.mask[0, 0]


def test_saturated_map_is_reported_in_the_json_and_the_table(checkpoint, tmp_path, capsys):
    def flat_heads(model):  # every output channel constant: a saturated map
        for module in model.pixel_head.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.zeros_(module.weight)

    flat = save_tiny_checkpoint(str(tmp_path / 'flat.pth'), prepare=flat_heads)
    _write_images(tmp_path / 'images', ['a.png'])
    out = tmp_path / 'out'
    assert _run(flat, [str(tmp_path / 'images'), '--out-dir', str(out)]) == 0
    record = json.loads((out / 'a.json').read_text())
    assert record['affordances'][0]['saturated'] is True
    assert any("'hold' heatmap is saturated" in w for w in record['warnings'])
    assert 'SATURATED' in capsys.readouterr().out


# ------------------------------------------------------------------ the model's training data
def test_model_trained_on_generated_data_says_so(tmp_path, mmengine_log):
    path = save_tiny_checkpoint(str(tmp_path / 'generated.pth'))
    ckpt = torch.load(path, weights_only=True)
    ckpt['meta']['dataset_meta']['generated_data'] = True  # as SyntheticAGD20KDataset's metainfo writes it
    torch.save(ckpt, path)
    model = init_model(QUICK_CONFIG, path, cfg_options=dict(TINY_MODEL))
    assert model.dataset_meta['generated_data'] is True
    assert any('trained on generated data' in m for m in mmengine_log)
    result = inference_affordance(model, _image(0), 'hold')
    assert 'trained on generated data' in result.warnings[0]
    assert result.to_dict()['warnings'][0] == result.warnings[0]


def test_model_trained_on_real_data_has_no_such_warning(tmp_path):
    path = save_tiny_checkpoint(str(tmp_path / 'real.pth'))
    ckpt = torch.load(path, weights_only=True)
    ckpt['meta']['dataset_meta']['generated_data'] = False
    torch.save(ckpt, path)
    model = init_model(QUICK_CONFIG, path, cfg_options=dict(TINY_MODEL))
    assert model_warnings(model.dataset_meta) == []
    assert inference_affordance(model, _image(0), 'hold').warnings == []


def test_generated_dataset_marks_its_metainfo(synthetic_root):
    from looptrans.testing import SyntheticAGD20KDataset

    dataset = SyntheticAGD20KDataset(data_root=synthetic_root, split='Seen', mode='test', lazy_init=True)
    assert dataset.metainfo['generated_data'] is True


def test_checkpoint_without_a_class_list_loads_with_a_warning(tmp_path, mmengine_log):
    """The warning path runs for real (the MMEngine logger, not a stub): it used to raise TypeError."""
    path = save_tiny_checkpoint(str(tmp_path / 'foreign.pth'))
    ckpt = torch.load(path, weights_only=True)
    del ckpt['meta']
    torch.save(ckpt, path)
    model = init_model(QUICK_CONFIG, path, cfg_options=dict(TINY_MODEL))
    assert any('records no class list' in m for m in mmengine_log)
    assert model.dataset_meta['classes'] == tuple(SYNTHETIC_SEEN_CLASSES)  # the config's
    # a checkpoint without meta is a foreign one: its training data is judged from the config (generated here)
    assert model.dataset_meta['generated_data'] is True
