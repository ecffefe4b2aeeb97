""" "What can I do with this object, and where?": top-K affordances with probabilities, and per heatmap the
peak, mask, box and polygon a robot consumes (looptrans.apis.inference, tools/infer.py --top-k)."""

import json
import os.path as osp

import numpy as np
import pytest

from looptrans.apis.inference import AffordanceResult, describe_heatmap, run_inference

CLASSES = ('cut_with', 'hold', 'pour', 'sit_on')


def test_describe_heatmap_on_a_known_map():
    heat = np.zeros((40, 60), np.float32)
    heat[10:20, 30:50] = 0.6  # a 20 x 10 block ...
    heat[14, 41] = 1.0  # ... with its peak at x=41, y=14
    heat[30:33, 2:5] = 0.2  # a weak blob below the threshold
    region = describe_heatmap(heat, threshold=0.5)
    assert region.peak == (41, 14) and region.peak_score == pytest.approx(1.0)
    assert region.bbox == (30, 10, 49, 19) and region.area == 200
    assert region.mask.sum() == 200 and not region.mask[31, 3]
    xs, ys = zip(*region.polygon)
    assert (min(xs), min(ys), max(xs), max(ys)) == region.bbox
    # a lower threshold takes the weak blob too; the polygon stays the largest contour
    low = describe_heatmap(heat, threshold=0.1)
    assert low.area == 209 and low.bbox == (2, 10, 49, 32)
    assert len(low.polygon) == len(region.polygon)
    # a constant map scores every pixel at its maximum: the whole image is its mask (its peak lies inside),
    # and it is saturated (it localises nothing)
    flat = describe_heatmap(np.full((5, 5), 3.0))
    assert flat.area == 25 and flat.bbox == (0, 0, 4, 4) and flat.peak == (0, 0) and flat.saturated
    assert not region.saturated and region.saturation == pytest.approx(1 / heat.size)  # only the peak >= 0.9
    with pytest.raises(ValueError, match='threshold'):
        describe_heatmap(heat, threshold=0)
    json.dumps(region.to_dict())


def _fake_forward(batch):
    """Image i: logits favour class (i % 4), then (i + 1) % 4; class c's heatmap peaks at x = 10 c."""
    b, _, h, w = batch.shape
    logits = np.full((b, len(CLASSES)), -2.0, np.float32)
    maps = np.zeros((b, len(CLASSES), h, w), np.float32)
    for i in range(b):
        logits[i, i % 4], logits[i, (i + 1) % 4] = 3.0, 1.0
        for c in range(len(CLASSES)):
            maps[i, c, 5, 10 * c] = 1.0
    return maps, logits


def test_top_k_picks_each_images_most_probable_affordances():
    images = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(3)]
    results = run_inference(_fake_forward, CLASSES, (16, 32), images, top_k=2)
    for i, result in enumerate(results):
        assert isinstance(result, AffordanceResult)
        assert result.affordances == [CLASSES[i % 4], CLASSES[(i + 1) % 4]]
        assert list(result.heatmaps) == result.affordances
        logits = np.array([result.logits[c] for c in CLASSES])
        expected = np.exp(logits) / np.exp(logits).sum()
        assert np.allclose([result.probs[c] for c in CLASSES], expected)
        assert sum(result.probs.values()) == pytest.approx(1.0)
        for name in result.affordances:
            # the peak is found at the original image size (network 16 x 32 -> image 32 x 48)
            x, y = result.regions[name].peak
            assert abs(x - 10 * CLASSES.index(name) * 48 / 32) <= 2 and abs(y - 5 * 2) <= 2
        summary = result.to_dict()
        assert [a['name'] for a in summary['affordances']] == result.affordances
        json.dumps(summary)
    named = run_inference(_fake_forward, CLASSES, (16, 32), images[0], affordances=['pour'])
    assert named.affordances == ['pour'] and set(named.probs) == set(CLASSES)
    with pytest.raises(ValueError, match='not both'):
        run_inference(_fake_forward, CLASSES, (16, 32), images, affordances=['pour'], top_k=1)
    for bad in (0, 5):
        with pytest.raises(ValueError, match='top_k'):
            run_inference(_fake_forward, CLASSES, (16, 32), images, top_k=bad)


@pytest.mark.parametrize(
    'config, split_classes',
    [('looptrans_agd20k.py', 36), ('looptrans_agd20k_unseen.py', 25), ('looptrans_hico_iif.py', 10)],
)
def test_class_list_of_a_config_follows_its_split(config, split_classes):
    """Without dataset_meta in a checkpoint, inference names the channels from the config's dataset:
    the Unseen and HICO-IIF lists, not the Seen one (a bug: a method no dataset defines was called)."""
    from conftest import REPO
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from looptrans.apis.inference import _classes_from_config
    from looptrans.datasets import AGD20KDataset

    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    classes = tuple(_classes_from_config(cfg))
    assert len(classes) == split_classes
    if 'unseen' in config:
        assert classes == AGD20KDataset.default_classes('Unseen') and 'beat' not in classes
