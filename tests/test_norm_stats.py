"""The CAM projection's BatchNorm statistics re-estimated on one view's images: ``looptrans.apis.norm_stats`` and
``tools/misc/reestimate_norm_stats.py``, which writes them into a copy of a checkpoint."""

import hashlib
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, TINY_MODEL, load_tool, save_tiny_checkpoint
from PIL import Image

from looptrans.apis import init_model, norm_stats_state, reestimate_cam_norm_stats, view_training_images

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def _tool():
    return load_tool('misc', 'reestimate_norm_stats.py')


def _norm_layers(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _by_hand_inputs(model, paths, proj):
    """Each BatchNorm layer's input in ``proj`` for ``paths`` as one batch, the images prepared without the
    project's pipeline code: PIL decode, PIL bilinear resize to 224 x 224, (x - mean) / std in RGB order."""
    images = []
    for path in paths:
        rgb = np.asarray(Image.open(path).convert('RGB').resize((224, 224), Image.BILINEAR), np.float32)
        images.append(torch.from_numpy(((rgb - MEAN) / STD).transpose(2, 0, 1)))
    layers, seen = _norm_layers(proj), {}
    hooks = [m.register_forward_hook(lambda m, args, out: seen.__setitem__(m, args[0])) for m in layers]
    try:
        with torch.no_grad():
            model.cam_head.forward_embed(model.extract_feat(torch.stack(images)), 'ego')
    finally:
        for hook in hooks:
            hook.remove()
    return layers, [seen[m] for m in layers]


@pytest.fixture
def shared_model(tmp_path):
    return init_model(QUICK_CONFIG, save_tiny_checkpoint(tmp_path / 'tiny.pth'), cfg_options=TINY_MODEL)


def test_statistics_are_the_batch_statistics_of_the_images_as_the_test_pipeline_prepares_them(seen_tree, shared_model):
    """One batch of four egocentric images: each BatchNorm layer of the shared projection holds the mean and the
    unbiased variance of its input, recomputed from images prepared by hand; the layers end in eval mode, and no
    other tensor of the model changes."""
    paths = view_training_images(seen_tree, 'ego', split='Seen')[:4]
    model = shared_model
    others = {k: v.clone() for k, v in model.state_dict().items() if k not in norm_stats_state(model, 'ego')}

    assert reestimate_cam_norm_stats(model, paths, 'ego', batch_size=4) == 2
    layers, inputs = _by_hand_inputs(model, paths, model.cam_head.projs['shared'])
    for layer, x in zip(layers, inputs):
        assert not layer.training and layer.momentum == 0.1 and layer.num_batches_tracked.item() == 1
        torch.testing.assert_close(layer.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(layer.running_var, x.var(dim=(0, 2, 3), unbiased=True), rtol=1e-3, atol=1e-3)
    assert not model.training
    for key, value in model.state_dict().items():
        if key in others:
            assert torch.equal(value, others[key]), key


def test_arrays_and_paths_give_the_same_statistics(seen_tree, shared_model):
    """An image given as a BGR array is prepared as the same image given by its path."""
    import cv2

    paths = view_training_images(seen_tree, 'ego', split='Seen')[:3]
    reestimate_cam_norm_stats(shared_model, paths, 'ego', batch_size=3)
    from_paths = {k: v.clone() for k, v in norm_stats_state(shared_model, 'ego').items()}
    reestimate_cam_norm_stats(shared_model, [cv2.imread(p) for p in paths], 'ego', batch_size=3)
    for key, value in norm_stats_state(shared_model, 'ego').items():
        torch.testing.assert_close(value, from_paths[key], rtol=0, atol=1e-6)


def test_a_per_view_projection_keeps_the_other_views_statistics(seen_tree, tmp_path):
    options = {**TINY_MODEL, 'model.cam_head.shared': False}
    ckpt = save_tiny_checkpoint(tmp_path / 'sep.pth', cfg_options={'model.cam_head.shared': False})
    model = init_model(QUICK_CONFIG, ckpt, cfg_options=options)
    ego, exo = norm_stats_state(model, 'ego'), norm_stats_state(model, 'exo')
    assert all(k.startswith('cam_head.projs.ego.') for k in ego) and len(ego) == 6
    assert all(k.startswith('cam_head.projs.exo.') for k in exo) and len(exo) == 6
    exo_before = {k: v.clone() for k, v in exo.items()}
    reestimate_cam_norm_stats(model, view_training_images(seen_tree, 'ego', split='Seen')[:4], 'ego', 2)
    assert all(torch.equal(v, exo_before[k]) for k, v in norm_stats_state(model, 'exo').items())
    means = [v for k, v in norm_stats_state(model, 'ego').items() if k.endswith('running_mean')]
    assert len(means) == 2 and not any(torch.equal(m, torch.zeros_like(m)) for m in means)


def test_a_failure_leaves_the_statistics_as_they_were(seen_tree, shared_model, tmp_path):
    """An unreadable image in the second batch: a ValueError naming it, and the statistics of before (not the
    half-reset ones); refusals of what cannot be done, each named."""
    paths = view_training_images(seen_tree, 'ego', split='Seen')[:4]
    reestimate_cam_norm_stats(shared_model, paths, 'ego', batch_size=2)
    before = {k: v.clone() for k, v in norm_stats_state(shared_model, 'ego').items()}
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8\xff\xe0 not a jpeg')
    with pytest.raises(ValueError, match='broken.jpg'):
        reestimate_cam_norm_stats(shared_model, [*paths[:2], str(broken), paths[3]], 'ego', batch_size=2)
    for key, value in norm_stats_state(shared_model, 'ego').items():
        assert torch.equal(value, before[key]), key
    layers = _norm_layers(shared_model.cam_head.projs['shared'])
    assert all(not m.training and m.momentum == 0.1 for m in layers)

    with pytest.raises(ValueError, match='no ego images'):
        reestimate_cam_norm_stats(shared_model, [], 'ego')
    with pytest.raises(ValueError, match='batch_size'):
        reestimate_cam_norm_stats(shared_model, paths, 'ego', batch_size=0)
    with pytest.raises(ValueError, match="view must be 'exo' or 'ego'"):
        reestimate_cam_norm_stats(shared_model, paths, 'side')
    with pytest.raises(ValueError, match='no shared CAM head'):
        reestimate_cam_norm_stats(torch.nn.Linear(2, 2), paths, 'ego')


def test_training_images_of_a_view(seen_tree, tmp_path):
    """The images at <affordance>/<object>/<image> of the view's training folder, under the split when given;
    hidden and misplaced files left out; a missing or empty folder named."""
    ego = view_training_images(seen_tree, 'ego', split='Seen')
    exo = view_training_images(osp.join(seen_tree, 'Seen'), 'exo')
    assert ego == sorted(ego) and len(ego) == 14 and len(exo) == 14
    assert all('/trainset/egocentric/' in p for p in ego) and all('/trainset/exocentric/' in p for p in exo)

    root = tmp_path / 'tree'
    folder = root / 'trainset' / 'egocentric'
    (folder / 'hold' / 'cup').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='no ego training images'):
        view_training_images(root, 'ego')
    shutil.copy(ego[0], folder / 'hold' / 'cup' / 'a.jpg')
    Image.new('RGB', (8, 8)).save(folder / 'hold' / 'cup' / 'b.PNG')
    (folder / 'hold' / 'cup' / '._a.jpg').write_bytes(b'')
    shutil.copy(ego[0], folder / 'hold' / 'misplaced.jpg')
    assert [osp.basename(p) for p in view_training_images(root, 'ego')] == ['a.jpg', 'b.PNG']
    with pytest.raises(FileNotFoundError, match=r"no exo training folder .*trainset/exocentric"):
        view_training_images(root, 'exo')
    with pytest.raises(FileNotFoundError, match='Seen'):
        view_training_images(root, 'ego', split='Seen')


def _digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_tool_writes_a_copy_with_only_the_statistics_changed(seen_tree, tmp_path, capsys):
    """The copy loads strictly with the config; its statistics are those re-estimated in memory on the tree's
    egocentric training images in the training batch size; every other tensor and the meta are the source's; the
    source file is untouched; meta.norm_stats says what was done."""
    tool = _tool()
    source = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    digest = _digest(source)
    out = str(tmp_path / 'copy' / 'ego_stats.pth')
    options = [f'{k}={v}' for k, v in TINY_MODEL.items()]
    record = tool.main([QUICK_CONFIG, source, out, '--data-root', seen_tree, '--cfg-options', *options])
    assert _digest(source) == digest
    assert 'on 14 ego images (batches of 8' in capsys.readouterr().out
    assert record['images'] == 14 and record['batch_size'] == 8 and record['layers'] == 2
    assert record['view'] == 'ego' and record['source'] == osp.abspath(source)

    expected = init_model(QUICK_CONFIG, source, cfg_options=TINY_MODEL)
    reestimate_cam_norm_stats(expected, view_training_images(seen_tree, 'ego', 'Seen'), 'ego', batch_size=8)
    copy = torch.load(out, map_location='cpu', weights_only=True)
    original = torch.load(source, map_location='cpu', weights_only=True)
    stats = norm_stats_state(expected, 'ego')
    assert set(copy['state_dict']) == set(original['state_dict'])
    for key, value in copy['state_dict'].items():
        if key in stats:
            torch.testing.assert_close(value, stats[key], rtol=0, atol=1e-6)
            assert not torch.equal(value, original['state_dict'][key]) or key.endswith('num_batches_tracked'), key
        else:
            assert torch.equal(value, original['state_dict'][key]), key
    assert copy['meta']['dataset_meta'] == original['meta']['dataset_meta']
    assert copy['meta']['norm_stats'] == record
    reloaded = init_model(QUICK_CONFIG, out, cfg_options=TINY_MODEL)  # strict loading
    for key, value in norm_stats_state(reloaded, 'ego').items():
        torch.testing.assert_close(value, stats[key], rtol=0, atol=1e-6)


def test_tool_options_choose_the_images(seen_tree, tmp_path, capsys):
    """``--images`` takes every image under a folder, ``--max-images`` an evenly spaced subset, ``--batch-size``
    the batches, ``--view exo`` the exocentric training images."""
    tool = _tool()
    source = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    options = ['--cfg-options', *[f'{k}={v}' for k, v in TINY_MODEL.items()]]
    own = tmp_path / 'own' / 'deeper'
    own.mkdir(parents=True)
    for i, path in enumerate(view_training_images(seen_tree, 'ego', 'Seen')[:5]):
        shutil.copy(path, own / f'{i}.jpg')
    (own / 'notes.txt').write_text('not an image')
    record = tool.main([QUICK_CONFIG, source, str(tmp_path / 'a.pth'), '--images', str(tmp_path / 'own'), *options])
    assert record['images'] == 5 and record['images_from'] == str(tmp_path / 'own')
    record = tool.main(
        [QUICK_CONFIG, source, str(tmp_path / 'b.pth'), '--data-root', seen_tree, '--view', 'exo', '--max-images',
         '4', '--batch-size', '2', *options]
    )  # fmt: skip
    assert (record['view'], record['images'], record['batch_size']) == ('exo', 4, 2)
    assert tool.evenly_spaced(list('abcdefghij'), 4) == ['a', 'c', 'f', 'h']
    assert tool.evenly_spaced(list('abc'), 5) == ['a', 'b', 'c']


def test_tool_refuses_what_it_cannot_do(seen_tree, tmp_path, capsys):
    tool = _tool()
    source = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    options = ['--cfg-options', *[f'{k}={v}' for k, v in TINY_MODEL.items()]]
    with pytest.raises(SystemExit):
        tool.main([QUICK_CONFIG, source, source, *options])
    assert 'is the checkpoint itself' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([QUICK_CONFIG, source, str(tmp_path / 'x.pth'), '--images', seen_tree, '--split', 'Seen'])
    assert '--images replaces the training tree' in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r'no ego training folder .*give --images DIR'):
        tool.main([QUICK_CONFIG, source, str(tmp_path / 'x.pth'), '--data-root', str(tmp_path), *options])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit, match='--images: no image'):
        tool.main([QUICK_CONFIG, source, str(tmp_path / 'x.pth'), '--images', str(tmp_path / 'empty'), *options])
    plain = save_tiny_checkpoint(tmp_path / 'plain.pth', cfg_options={'model.cam_head.norm_cfg': None})
    with pytest.raises(SystemExit, match='the projection has no BatchNorm'):
        tool.main(
            [QUICK_CONFIG, plain, str(tmp_path / 'x.pth'), '--data-root', seen_tree, *options,
             'model.cam_head.norm_cfg=None']
        )  # fmt: skip
    other = save_tiny_checkpoint(tmp_path / 'other.pth', classes=['a', 'b', 'c', 'd', 'e', 'f', 'g'])
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'<html>not a checkpoint</html>')
    for wrong, message in ((other, 'class'), (str(broken), 'broken.pth')):
        with pytest.raises(SystemExit, match=rf'^error: .*{message}'):
            tool.main([QUICK_CONFIG, wrong, str(tmp_path / 'x.pth'), '--data-root', seen_tree, *options])
    assert not os.path.exists(tmp_path / 'x.pth')
