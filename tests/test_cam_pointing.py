"""The pointing game on generated data: the generator's test masks and tools/analysis_tools/eval_cam_pointing.py."""

import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import QUICK_CONFIG, TINY_MODEL, load_tool, save_tiny_checkpoint

from looptrans.testing.synthetic_agd20k import (
    EXO_MASK_DIR,
    SYNTHETIC_SEEN_CLASSES,
    TEST_MASK_DIR,
    make_rng,
    render_egocentric,
    render_exocentric,
)


def _tool():
    return load_tool('analysis_tools', 'eval_cam_pointing.py')


TINY = ['--cfg-options', *[f'{k}={v}' for k, v in TINY_MODEL.items()]]


def _read(path):
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE)


def test_test_masks_are_the_drawn_object_and_part(seen_tree):
    """Each test image has its part mask (the GT heatmap's source) and its object mask; the part lies inside the
    object, the object's pixels differ from the plain background, and the masks change no random draw."""
    aff, obj = 'hold', 'kettle'
    rng = make_rng(0, 'Seen', 'test', aff, obj, index=0)
    img, heat, part, whole = render_egocentric(aff, obj, rng, return_part_mask=True, return_object_mask=True)
    img2, heat2 = render_egocentric(aff, obj, make_rng(0, 'Seen', 'test', aff, obj, index=0))
    assert np.array_equal(img, img2) and np.array_equal(heat, heat2)
    base = osp.join(seen_tree, 'Seen')
    assert np.array_equal(_read(osp.join(base, TEST_MASK_DIR, 'part', aff, obj, f'{obj}_000000.png')), part)
    assert np.array_equal(_read(osp.join(base, TEST_MASK_DIR, 'object', aff, obj, f'{obj}_000000.png')), whole)
    assert np.array_equal(_read(osp.join(base, 'testset', 'GT', aff, obj, f'{obj}_000000.png')), heat)
    assert set(np.unique(whole)) == {0, 255} and part.any()
    assert not np.any((part > 0) & (whole == 0))  # the part is part of the object
    assert 0.05 < (whole > 0).mean() < 0.6
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert part[y, x] and whole[y, x]  # the GT heatmap peaks on the part
    # object pixels stand out from the plain background around them
    diff = np.abs(img.astype(int) - np.median(img[whole == 0], axis=0)).sum(-1)
    assert diff[whole > 0].mean() > 4 * diff[whole == 0].mean()


def test_point_hand_cases():
    point = _tool().point
    whole = np.zeros((4, 5), bool)
    whole[1:3, 1:4] = True
    part = np.zeros((4, 5), bool)
    part[1, 3] = True
    heat = np.zeros((4, 5))
    heat[1, 3] = 2.0  # on the part
    heat[0, 0] = 1.0  # half as high, off the object
    assert point(heat, whole, part) == dict(
        object=1.0, part=1.0, mass=pytest.approx(1.0 / 1.5), object_near=1.0, part_near=1.0
    )
    heat[2, 1] = 3.0  # the maximum moves onto the object, off the part
    assert point(heat, whole, part)['object'] == 1.0 and point(heat, whole, part)['part'] == 0.0
    heat[3, 4] = 4.0  # and off the object
    out = point(heat, whole, part)
    assert out['object'] == 0.0 and out['part'] == 0.0
    assert out['mass'] == pytest.approx((2 / 4 + 3 / 4) / (1 / 4 + 2 / 4 + 3 / 4 + 1))
    # a constant map points nowhere; a NaN map too
    assert point(np.ones((4, 5)), whole, part) == dict(object=0.0, part=0.0, mass=0.0, object_near=0.0, part_near=0.0)
    assert point(np.full((4, 5), np.nan), whole, part)['object'] == 0.0
    with pytest.raises(ValueError, match='differ'):
        point(np.ones((3, 5)), whole, part)


def test_point_within_a_tolerance_counts_the_euclidean_distance_to_the_mask():
    point = _tool().point
    whole = np.zeros((20, 20), bool)
    whole[5, 5:8] = True  # a stroke
    part = np.zeros((20, 20), bool)
    part[5, 7] = True
    heat = np.zeros((20, 20))
    heat[8, 9] = 1.0  # 3 rows below and 2 columns right of the part pixel (5, 7): distance sqrt(13) = 3.61
    for tol, near in ((3.6, 0.0), (3.61, 1.0), (15, 1.0)):
        out = point(heat, whole, part, tolerance=tol)
        assert (out['object'], out['part']) == (0.0, 0.0)  # strictly: off the object
        assert (out['object_near'], out['part_near']) == (near, near), tol
    heat[:] = 0
    heat[5, 2] = 1.0  # 3 pixels left of the object, 5 of the part
    out = point(heat, whole, part, tolerance=4)
    assert (out['object_near'], out['part_near']) == (1.0, 0.0)
    assert point(heat, whole, np.zeros_like(part), tolerance=100)['part_near'] == 0.0  # no part: never near it
    with pytest.raises(ValueError, match='tolerance'):
        point(heat, whole, part, tolerance=-1)


def test_centre_heatmap_peaks_at_the_centre():
    heat = _tool().centre_heatmap((5, 7))
    assert np.unravel_index(np.argmax(heat), heat.shape) == (2, 3)
    assert heat[2, 3] == pytest.approx(1.0)


def test_tool_scores_maps_in_the_order_of_their_images(seen_tree, tmp_path, monkeypatch):
    """With heatmaps that are each image's own part mask, every maximum is on the part; with the part masks
    of the images shifted by one, far fewer are: images, masks and heatmaps stay aligned."""
    import looptrans.apis as apis

    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    real = apis.inference_affordance

    def run(shift):
        def fake(model, images, affordances=None, batch_size=8):
            results = real(model, images, affordances=affordances, batch_size=batch_size)
            parts = [
                _read(
                    p.replace(osp.join('testset', 'egocentric'), osp.join(TEST_MASK_DIR, 'part')).replace(
                        '.jpg', '.png'
                    )
                )
                for p in images
            ]
            parts = parts[shift:] + parts[:shift]
            for result, part in zip(results, parts):
                h, w = result.ori_shape
                part = cv2.resize(part, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float32)
                for name in result.heatmaps:
                    result.heatmaps[name] = cv2.GaussianBlur(part, (0, 0), 2)
            return results

        monkeypatch.setattr(apis, 'inference_affordance', fake)
        return tool.main([QUICK_CONFIG, str(ckpt), '--data-root', seen_tree, '--heatmaps', 'cam', *TINY])

    aligned, shifted = run(0), run(1)
    assert set(aligned) == {'cam', 'centre'}
    assert set(aligned['cam']) == set(SYNTHETIC_SEEN_CLASSES) | {'overall'}
    assert aligned['cam']['overall']['num'] == 14
    assert aligned['cam']['overall']['part'] == 1.0 and aligned['cam']['overall']['object'] == 1.0
    assert shifted['cam']['overall']['part'] < 0.5
    assert aligned['centre'] == shifted['centre']  # the chance reference does not depend on the model


def test_the_default_maps_are_the_cam_and_the_test_map():
    from types import SimpleNamespace

    tool = _tool()
    for test_map, expected in (
        ('pixel_logits', ['cam', 'pixel_logits']),
        ('pixel', ['cam', 'pixel']),
        ('cam', ['cam']),
    ):
        assert tool.default_heatmaps(SimpleNamespace(test_cfg=dict(heatmap=test_map))) == expected


def test_tool_runs_the_real_model_and_refuses_trees_without_masks(seen_tree, tmp_path):
    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    tables = tool.main([QUICK_CONFIG, str(ckpt), '--data-root', seen_tree, *TINY])
    assert set(tables) == {'cam', 'pixel_logits', 'centre'}  # by default the CAM and the config's test map
    for table in tables.values():
        for row in table.values():
            assert all(0.0 <= row[k] <= 1.0 for k in ('object', 'part', 'mass', 'object_near', 'part_near'))
            assert row['part'] <= row['object']  # the part is inside the object
            assert row['object'] <= row['object_near'] and row['part'] <= row['part_near']
    with pytest.raises(FileNotFoundError, match=r'test_masks.*egocentric test images.*generate_synthetic_agd20k'):
        tool.main([QUICK_CONFIG, str(ckpt), '--data-root', str(tmp_path), *TINY])
    with pytest.raises(FileNotFoundError, match=r'exo_masks.*exocentric training images.*--overwrite'):
        tool.main([QUICK_CONFIG, str(ckpt), '--data-root', str(tmp_path), '--exo', *TINY])


def test_rival_affordances_are_the_other_affordances_drawn_on_another_part_of_the_object():
    rivals = _tool().rival_affordances
    classes = SYNTHETIC_SEEN_CLASSES
    assert rivals('hold', 'cup', classes) == ['drink_with']  # handle against rim
    assert rivals('hold', 'knife', classes) == ['cut_with']
    assert rivals('push', 'bicycle', classes) == ['ride', 'sit_on']  # grip against saddle
    assert rivals('ride', 'bicycle', classes) == ['push']  # sit_on shares the saddle: not a rival
    assert rivals('sit_on', 'chair', classes) == []  # the chair has one affordance
    assert rivals('hold', 'cup', ('hold', 'pour')) == []  # only the model's classes count
    with pytest.raises(KeyError, match="no 'ride' part on 'cup'"):
        rivals('ride', 'cup', classes)


def _fake_maps(real, rival_map):
    """An inference whose labelled affordance's map is the image's own part and every other affordance's map is
    ``rival_map(part, object)`` (masks from the generator, blurred as a heatmap)."""

    def fake(model, images, affordances=None, batch_size=8):
        results = real(model, images, affordances=affordances, batch_size=batch_size)
        for path, result in zip(images, results):
            labelled = path.split(osp.sep)[-3]
            mask = {}
            for kind in ('part', 'object'):
                stem = path.replace(osp.join('testset', 'egocentric'), osp.join(TEST_MASK_DIR, kind))
                h, w = result.ori_shape
                mask[kind] = cv2.resize(_read(stem.replace('.jpg', '.png')), (w, h), interpolation=cv2.INTER_NEAREST)
            for name in result.heatmaps:
                heat = mask['part'] if name == labelled else rival_map(mask['part'], mask['object'])
                result.heatmaps[name] = cv2.GaussianBlur(heat.astype(np.float32), (0, 0), 2)
        return results

    return fake


def test_rival_part_tells_affordance_maps_from_object_maps(seen_tree, tmp_path, monkeypatch):
    """Maps that put each affordance on its own part point at the labelled part with the labelled affordance
    only (own 1, rivals 0); maps that mark the same region whatever the affordance point there with every
    affordance (own = rivals); the chair, whose only affordance has no rival, is left out of both."""
    import looptrans.apis as apis

    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    real = apis.inference_affordance

    def run(rival_map):
        monkeypatch.setattr(apis, 'inference_affordance', _fake_maps(real, rival_map))
        return tool.main([QUICK_CONFIG, str(ckpt), '--data-root', seen_tree, '--heatmaps', 'cam', *TINY])['cam']

    # each rival on the object but off the labelled part (eroded, so the blur's peak stays off the part)
    separated = run(lambda part, whole: cv2.erode(((whole > 0) & (part == 0)).astype(np.uint8), np.ones((5, 5))))
    object_level = run(lambda part, whole: part)  # every affordance's map is the labelled part
    for table in (separated, object_level):
        assert table['sit_on']['num'] == 2 and table['sit_on']['rival_num'] == 1  # the bicycle's, not the chair's
        assert table['overall']['rival_num'] == table['overall']['num'] - 1
        assert table['overall']['rival_own_part'] == 1.0
    assert separated['overall']['rival_part'] == 0.0
    assert object_level['overall']['rival_part'] == 1.0
    assert object_level['hold']['rival_part'] == 1.0 and separated['hold']['rival_part'] == 0.0


def test_summary_of_rows_without_rivals_is_nan_and_never_a_crash():
    table = _tool().summarise(
        [dict(object=1.0, object_near=1.0, part=1.0, part_near=1.0, mass=0.5, affordance='sit_on', rival_part=np.nan)],
        ('sit_on',),
    )
    assert table['sit_on']['rival_num'] == 0
    assert np.isnan(table['sit_on']['rival_part']) and np.isnan(table['sit_on']['rival_own_part'])


# --------------------------------------------------------------------------- #
# --exo: the exocentric CAM on the exocentric training images
# --------------------------------------------------------------------------- #
def test_exo_masks_are_the_drawn_object_and_part(seen_tree):
    """Each exocentric training image has the masks of its object and affordance part as drawn before the person;
    the part lies inside the object, and asking for the masks changes no random draw."""
    aff, obj = 'pour', 'kettle'
    img, part, whole = render_exocentric(aff, obj, make_rng(0, 'Seen', 'exo', aff, obj, index=0), return_masks=True)
    assert np.array_equal(img, render_exocentric(aff, obj, make_rng(0, 'Seen', 'exo', aff, obj, index=0)))
    base = osp.join(seen_tree, 'Seen', EXO_MASK_DIR)
    assert np.array_equal(_read(osp.join(base, 'part', aff, obj, f'{obj}_000000.png')), part)
    assert np.array_equal(_read(osp.join(base, 'object', aff, obj, f'{obj}_000000.png')), whole)
    assert set(np.unique(whole)) == {0, 255} and part.any()
    assert not np.any((part > 0) & (whole == 0))
    assert 0.01 < (whole > 0).mean() < 0.3  # exocentric objects are small, beside a person


def _exo_part_maps(paths, shift):
    """Every class's map = the blurred exocentric part mask of the image ``shift`` places further on."""
    parts = [
        _read(p.replace(osp.join('trainset', 'exocentric'), osp.join(EXO_MASK_DIR, 'part')).replace('.jpg', '.png'))
        for p in paths
    ]
    parts = parts[shift:] + parts[:shift]
    maps = []
    for path, part in zip(paths, parts):
        h, w = cv2.imread(path).shape[:2]
        blurred = cv2.GaussianBlur(
            cv2.resize(part, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float32), (0, 0), 2
        )
        maps.append({name: blurred for name in SYNTHETIC_SEEN_CLASSES})
    return maps


def _affordance(path):
    return path.split(osp.sep)[-3]


def test_exo_tool_scores_maps_in_the_order_of_their_images(seen_tree, tmp_path, monkeypatch, capsys):
    """``--exo`` with maps that are each exocentric image's own part: every maximum on the part; shifted by one
    image, far fewer: images, exocentric masks and maps stay aligned. The classes given with them (each image's
    own affordance, then its neighbour's) make the reported accuracy, counted here by hand."""
    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')

    def run(shift):
        def fake(model, paths, batch_size=8, view='exo'):
            classes = [_affordance(p) for p in paths]
            yield from zip(_exo_part_maps(paths, shift), classes[shift:] + classes[:shift], [None] * len(paths))

        monkeypatch.setattr(tool, 'iter_classifier_maps', fake)
        return tool.main([QUICK_CONFIG, str(ckpt), '--data-root', seen_tree, '--exo', *TINY])

    aligned, shifted = run(0), run(1)
    assert set(aligned) == {'exo_cam', 'centre'}
    assert aligned['exo_cam']['overall']['num'] == 14  # one exocentric image per affordance / object
    assert aligned['exo_cam']['overall']['part'] == 1.0 and aligned['exo_cam']['overall']['object'] == 1.0
    assert shifted['exo_cam']['overall']['part'] < 0.5
    paths = [s[0] for s in tool.find_exo_samples(osp.join(seen_tree, 'Seen'), SYNTHETIC_SEEN_CLASSES)]
    by_hand = np.mean([_affordance(a) == _affordance(b) for a, b in zip(paths, paths[1:] + paths[:1])])
    assert aligned['exo_cam']['overall']['top1'] == 1.0
    assert shifted['exo_cam']['overall']['top1'] == pytest.approx(by_hand) and 0 < by_hand < 1
    assert 'top1' not in shifted['centre']['overall']  # a chance map classifies nothing
    assert f'pooled exocentric CAM): {by_hand:.3f} on these 14 images (chance 0.143)' in capsys.readouterr().out


class _Maps(dict):
    """A per-image map dict that can be tracked by weak reference (a plain dict cannot)."""


def test_exo_game_scores_each_image_as_its_maps_arrive(seen_tree, tmp_path, monkeypatch):
    """The exocentric game keeps no image's maps once they are scored: when the stream computes an image's maps, at
    most the previous image's are still alive (a tool that collects every map before scoring holds them all, which
    on 2,800 generated exocentric images took 7.8 GB)."""
    import gc
    import weakref

    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    refs, most = [], []

    def fake(model, paths, batch_size=8, view='exo'):
        for maps, path in zip(_exo_part_maps(paths, 0), paths):
            gc.collect()
            most.append(sum(ref() is not None for ref in refs))
            item = _Maps(maps)
            refs.append(weakref.ref(item))
            yield item, _affordance(path), None
            del item

    monkeypatch.setattr(tool, 'iter_classifier_maps', fake)
    tables = tool.main([QUICK_CONFIG, str(ckpt), '--data-root', seen_tree, '--exo', *TINY])
    assert tables['exo_cam']['overall']['num'] == len(most) == 14
    assert max(most) <= 1


def test_maps_and_images_of_different_counts_are_refused():
    """A stream of maps shorter or longer than the images is an error naming the counts, never a shorter table."""
    tool = _tool()
    samples = [('a.jpg', 'o.png', 'p.png', 'hold')] * 3
    assert [m for _, m in tool._paired(samples, iter('xyz'))] == list('xyz')
    with pytest.raises(RuntimeError, match='maps for 2 of 3 images'):
        list(tool._paired(samples, iter('xy')))
    with pytest.raises(RuntimeError, match='more maps than the 3 images'):
        list(tool._paired(samples, iter('wxyz')))


def test_exo_cam_is_the_exo_view_computed_as_inference_computes_the_ego_cam(seen_tree, tmp_path):
    """With separate exo / ego projections, the tool's exocentric maps equal the heatmaps inference gives for the
    egocentric CAM once the exo projection carries the ego projection's weights, and differ before: the same
    resizing and preprocessing as inference, through the exo projection."""
    from looptrans.apis import inference_affordance, init_model

    tool = _tool()
    options = {**TINY_MODEL, 'model.cam_head.shared': False, 'model.test_cfg.heatmap': 'cam'}
    ckpt = save_tiny_checkpoint(tmp_path / 'sep.pth', cfg_options={'model.cam_head.shared': False})
    model = init_model(QUICK_CONFIG, ckpt, cfg_options=options)
    paths = [s[0] for s in tool.find_exo_samples(osp.join(seen_tree, 'Seen'), SYNTHETIC_SEEN_CLASSES)[:3]]
    ego = [r.heatmaps for r in inference_affordance(model, paths, affordances=None)]
    before = [maps for maps, _, _ in tool.iter_classifier_maps(model, paths, batch_size=2)]
    model.cam_head.projs['exo'].load_state_dict(model.cam_head.projs['ego'].state_dict())
    after, predicted, _ = zip(*tool.iter_classifier_maps(model, paths, batch_size=2))
    for e, b, a, path in zip(ego, before, after, paths):
        assert set(a) == {*SYNTHETIC_SEEN_CLASSES, 'noise'} and a['hold'].shape == cv2.imread(path).shape[:2]
        for name in SYNTHETIC_SEEN_CLASSES:
            np.testing.assert_allclose(a[name], e[name], rtol=1e-4, atol=1e-5)
        assert max(np.abs(b[n] - e[n]).max() for n in SYNTHETIC_SEEN_CLASSES) > 1e-3
    # the class is the one inference ranks first with the same projection (its image-level logits)
    results = inference_affordance(model, paths, affordances=None)
    assert list(predicted) == [max(r.logits, key=r.logits.get) for r in results]


def test_noise_row_points_with_the_noise_maps_and_reports_their_softmax_share(seen_tree, tmp_path, capsys):
    """``--noise`` on a checkpoint whose classifier gives class maps of 0 and noise maps of a constant b: the
    reported share is the softmax of the pooled logits computed by hand, M e^b / (C + M e^b), per image and in the
    printed summary; a constant noise map points nowhere (a miss, as for any constant heatmap)."""
    import torch

    tool = _tool()
    bias = 1.5

    def prepare(model):
        with torch.no_grad():
            model.cam_head.conv_seg.weight.zero_()
            model.cam_head.conv_seg.bias.zero_()
            model.cam_head.conv_seg.bias[-model.cam_head.num_noise :] = bias

    ckpt = save_tiny_checkpoint(tmp_path / 'noise.pth', prepare=prepare)
    model, root = tool.load(tool.parse_args([QUICK_CONFIG, ckpt, '--data-root', seen_tree, *TINY]))
    num_noise, num_classes = model.cam_head.num_noise, len(SYNTHETIC_SEEN_CLASSES)
    assert num_noise > 0  # the quick config's classifier has noise outputs
    samples = tool.find_test_samples(root, SYNTHETIC_SEEN_CLASSES)
    rows = tool.noise_outcomes(model, samples)
    assert len(rows) == len(samples)
    expected = num_noise * np.exp(bias) / (num_classes + num_noise * np.exp(bias))
    for row in rows:
        assert row['noise_share'] == pytest.approx(expected, rel=1e-5)
        assert row['object'] == 0.0 and row['mass'] == 0.0  # a constant noise map points nowhere
        assert np.isnan(row['rival_part'])

    tables = tool.main([QUICK_CONFIG, ckpt, '--data-root', seen_tree, '--noise', '--heatmaps', 'cam', *TINY])
    assert set(tables) == {'cam', 'noise', 'centre'}
    assert tables['noise']['overall']['noise_share'] == pytest.approx(expected, rel=1e-5)
    assert 'noise_share' not in tables['cam']['overall']
    assert f'noise outputs: {expected:.3f} of the softmax' in capsys.readouterr().out


def test_noise_maps_are_the_maximum_of_the_classifier_noise_outputs_in_image_order(seen_tree, tmp_path):
    """The ``noise`` map of :func:`iter_classifier_maps` is the per-pixel maximum of the classifier's last M outputs,
    resized as the class CAMs are: checked against the CAM head's own outputs for the same input, resized by hand,
    so a wrong channel slice (class maps for noise) or a minimum for the maximum fails."""
    import torch.nn.functional as F
    from mmengine.config import Config

    from looptrans.apis import init_model
    from looptrans.apis.inference import resize_for_network, test_input_size

    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    model = init_model(QUICK_CONFIG, ckpt, cfg_options=dict(TINY_MODEL))
    paths = [s[0] for s in tool.find_test_samples(osp.join(seen_tree, 'Seen'), SYNTHETIC_SEEN_CLASSES)[:3]]
    maps, _, shares = zip(*tool.iter_classifier_maps(model, paths, batch_size=2, view='ego'))
    assert len(shares) == len(paths) and all(0 < share < 1 for share in shares)
    size = test_input_size(model.cfg if isinstance(model.cfg, Config) else Config(model.cfg))
    for path, got in zip(paths, maps):
        img = cv2.imread(path)
        inputs = [torch_from(resize_for_network(img, size))]
        x = model.data_preprocessor(dict(inputs=inputs), False)['inputs'][:, 0]
        out = model.cam_head.forward_embed(model.extract_feat(x), 'ego')[0].detach()
        noise = out[0, len(SYNTHETIC_SEEN_CLASSES) :]
        assert noise.shape[0] == model.cam_head.num_noise
        up = F.interpolate(noise[None], size=size, mode='bilinear', align_corners=False)[0].max(0).values.numpy()
        want = cv2.resize(up, img.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(got['noise'], want, rtol=1e-4, atol=1e-5)
        assert np.abs(got['noise'] - got['hold']).max() > 1e-4


def torch_from(array):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))[None]


def test_noise_refuses_a_classifier_without_noise_outputs_and_the_exo_game(seen_tree, tmp_path):
    """A model whose CAM classifier has no noise outputs gets an error naming the setting, not an empty row;
    ``--noise`` with ``--exo`` is refused before any model is loaded."""
    tool = _tool()
    options = {'model.noise_on_cam_head': False, 'model.noise_head': None}
    ckpt = save_tiny_checkpoint(tmp_path / 'plain.pth', cfg_options=options)
    plain = [f'{k}={v}' for k, v in options.items()]
    with pytest.raises(SystemExit, match=r'noise_on_cam_head=True'):
        tool.main([QUICK_CONFIG, ckpt, '--data-root', seen_tree, '--noise', *TINY, *plain])
    with pytest.raises(SystemExit):
        tool.parse_args([QUICK_CONFIG, ckpt, '--noise', '--exo'])


def _norm_layers(proj):
    import torch

    return [m for m in proj.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _norm_inputs(tool, model, paths, view):
    """Each BatchNorm layer's input in the projection ``view`` goes through, for ``paths`` in one eval-mode pass."""
    import torch

    head = model.cam_head
    layers, seen = _norm_layers(head.projs['shared' if head.shared else view]), {}
    hooks = [m.register_forward_hook(lambda m, args, out: seen.__setitem__(m, args[0].detach())) for m in layers]
    try:
        with torch.no_grad():
            for _, x in tool._network_batches(model, paths, len(paths)):
                head.forward_embed(model.extract_feat(x), view)
    finally:
        for hook in hooks:
            hook.remove()
    return [seen[m] for m in layers]


def test_norm_stats_are_the_views_own_batch_statistics(seen_tree, tmp_path):
    """Re-estimated on one batch of egocentric images, every BatchNorm layer of the egocentric projection holds that
    batch's mean and unbiased variance of its input, recomputed by hand from the layer's input; in two batches,
    the first layer holds the mean of the two batch means (a cumulative average, not a momentum update); the
    layers end in eval mode with their momentum, and the exocentric projection of a per-view head is untouched."""
    import torch

    from looptrans.apis import init_model

    tool = _tool()
    options = {**TINY_MODEL, 'model.cam_head.shared': False}
    ckpt = save_tiny_checkpoint(tmp_path / 'sep.pth', cfg_options={'model.cam_head.shared': False})
    model = init_model(QUICK_CONFIG, ckpt, cfg_options=options)
    root = osp.join(seen_tree, 'Seen')
    paths = tool.find_training_images(root, 'ego')[:4]
    exo_before = {k: v.clone() for k, v in model.cam_head.projs['exo'].state_dict().items()}

    assert tool.recalibrate_projection_norm(model, paths, 'ego', batch_size=len(paths)) == 2
    layers = _norm_layers(model.cam_head.projs['ego'])
    for layer, x in zip(layers, _norm_inputs(tool, model, paths, 'ego')):
        assert not layer.training and layer.momentum == 0.1
        torch.testing.assert_close(layer.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-2, atol=1e-4)
        torch.testing.assert_close(layer.running_var, x.var(dim=(0, 2, 3), unbiased=True), rtol=1e-2, atol=1e-4)
    for key, value in model.cam_head.projs['exo'].state_dict().items():
        assert torch.equal(value, exo_before[key]), key

    tool.recalibrate_projection_norm(model, paths, 'ego', batch_size=2)
    halves = [_norm_inputs(tool, model, half, 'ego')[0].mean(dim=(0, 2, 3)) for half in (paths[:2], paths[2:])]
    torch.testing.assert_close(layers[0].running_mean, (halves[0] + halves[1]) / 2, rtol=1e-4, atol=1e-6)
    assert layers[0].num_batches_tracked.item() == 2


def test_norm_stats_option_changes_the_cam_and_refuses_what_it_cannot_do(seen_tree, tmp_path, capsys):
    """``--norm-stats``: the shared projection's statistics from exocentric images differ from those from
    egocentric ones, and the tool says what it re-estimated; a projection without BatchNorm and a split
    without training images of the view get errors naming them."""
    import torch

    tool = _tool()
    ckpt = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    args = [QUICK_CONFIG, ckpt, '--data-root', seen_tree, '--heatmaps', 'cam', *TINY]
    model, root = tool.load(tool.parse_args(args))
    stats = {}
    for view in ('ego', 'exo'):
        tool.recalibrate_projection_norm(model, tool.find_training_images(root, view), view)
        stats[view] = _norm_layers(model.cam_head.projs['shared'])[0].running_mean.clone()
    assert not torch.allclose(stats['ego'], stats['exo'])

    tool.main([*args, '--norm-stats', 'ego'])
    assert "the CAM projection's 2 BatchNorm layers: running statistics re-estimated on 14 ego" in (
        capsys.readouterr().out
    )
    plain = save_tiny_checkpoint(tmp_path / 'plain.pth', cfg_options={'model.cam_head.norm_cfg': None})
    with pytest.raises(SystemExit, match='the projection has no BatchNorm'):
        tool.main(
            [
                QUICK_CONFIG,
                plain,
                '--data-root',
                seen_tree,
                '--norm-stats',
                'ego',
                *TINY,
                'model.cam_head.norm_cfg=None',
            ]
        )
    with pytest.raises(FileNotFoundError, match='no exo training'):
        tool.find_training_images(str(tmp_path), 'exo')
